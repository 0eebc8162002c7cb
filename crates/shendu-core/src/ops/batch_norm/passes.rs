//! Batch norm's passes over the data: the per-channel statistics, the gradient's two sums per
//! channel, and the per-channel affine maps that write the output and the input's gradient,
//! each optionally through the fused activation's [`Gate`].

#[cfg(target_arch = "x86_64")]
use crate::cpu::channel_sums::{self, ChannelSums};
use crate::cpu::elementwise::SendPtr;
#[cfg(target_arch = "x86_64")]
use crate::cpu::simd::as_f32;
use crate::cpu::simd::{dispatch, Madd, SimdKernel};
use crate::cpu::threads::parallel_ranges;
use crate::dtype::{Float, WithDType};
use crate::pool::PooledVec;

use super::activation::Gate;

/// `[N, C, rest]` as `(n, c, plane)`, plane the product of the rest (1 for `[N, C]`).
pub(super) type Geo = (usize, usize, usize);

/// `sum(f(x))` over a slice: blocks of 256 values summed in 8 lanes of `T` (vectorised), the
/// block sums added in f64, so long planes keep f64-like accuracy at f32 speed.
#[inline(always)]
fn blocked_sum<T: Float>(s: &[T], f: impl Fn(T) -> T) -> f64 {
    let mut total = 0.0f64;
    for block in s.chunks(256) {
        let mut acc = [T::ZERO; 8];
        let lanes = block.chunks_exact(8);
        let rest = lanes.remainder();
        for c in lanes {
            for j in 0..8 {
                acc[j] += f(c[j]);
            }
        }
        let mut t = T::ZERO;
        for &v in rest {
            t += f(v);
        }
        total += acc.iter().map(|&a| WithDType::to_f64(a)).sum::<f64>() + WithDType::to_f64(t);
    }
    total
}

/// `(sum(g' * (x - mean)), sum(g'))` over two equal slices, `g' = gated(x, g)`, blocked as
/// [`blocked_sum`].
#[inline(always)]
fn blocked_grad_sums<T: Float>(x: &[T], g: &[T], mean: T, gated: impl Fn(T, T) -> T) -> (f64, f64) {
    let (mut gx, mut gs) = (0.0f64, 0.0f64);
    for (xb, gb) in x.chunks(256).zip(g.chunks(256)) {
        let (mut ax, mut ag) = ([T::ZERO; 8], [T::ZERO; 8]);
        let (xl, gl) = (xb.chunks_exact(8), gb.chunks_exact(8));
        let (xr, gr) = (xl.remainder(), gl.remainder());
        for (xc, gc) in xl.zip(gl) {
            for j in 0..8 {
                let gv = gated(xc[j], gc[j]);
                ax[j] += gv * (xc[j] - mean);
                ag[j] += gv;
            }
        }
        let (mut tx, mut tg) = (T::ZERO, T::ZERO);
        for (&xv, &gv) in xr.iter().zip(gr) {
            let gv = gated(xv, gv);
            tx += gv * (xv - mean);
            tg += gv;
        }
        gx += ax.iter().map(|&a| WithDType::to_f64(a)).sum::<f64>() + WithDType::to_f64(tx);
        gs += ag.iter().map(|&a| WithDType::to_f64(a)).sum::<f64>() + WithDType::to_f64(tg);
    }
    (gx, gs)
}

/// The `(mean, 1/sqrt(var + eps))` of each channel (see [`channel_moments`]).
fn channel_stats<T: Float>(x: &[T], geo: Geo, eps: f64) -> Vec<(f64, f64)> {
    channel_moments(x, geo).into_iter().map(|(mean, var)| (mean, 1.0 / (var + eps).sqrt())).collect()
}

/// The `(mean, biased variance)` of each channel, channels in parallel.
///
/// f32 on AVX2 takes one pass in memory order: the sums of `x - s` and of `(x - s)^2` around a
/// shift `s`, the mean of the channel's plane in the first image, so that
/// `mean = s + E[x - s]` and `var = E[(x - s)^2] - E[x - s]^2`. The shift is the mean of a `1/n` share of the values, so
/// `(mean - s)^2 <= n * var` and the subtraction cancels at most `log2(n + 1)` bits of sums
/// that are accumulated to f64 from f32 blocks of 256 (6 bits at batch 64, and none when the
/// first image is typical). A second pass around the mean read `x` from memory twice: a third
/// of batch norm's reductions in a MobileNet step. Elsewhere: the mean, then the variance
/// around it (two passes, no cancellation).
pub(super) fn channel_moments<T: Float>(x: &[T], (n, c, plane): Geo) -> Vec<(f64, f64)> {
    let m = (n * plane) as f64;
    let mut stats = vec![(0.0, 0.0); c];
    let dst = SendPtr(stats.as_mut_ptr());
    parallel_ranges(c, 1, |r| {
        // SAFETY: each range of channels writes its own entries.
        let out = unsafe { dst.slice_mut(r.clone()) };
        #[cfg(target_arch = "x86_64")]
        if let Some(xf) = as_f32(x) {
            let first_plane = |ch: usize| xf.get(ch * plane..(ch + 1) * plane).filter(|p| !p.is_empty());
            let shifts: Vec<f32> =
                r.clone().map(|ch| first_plane(ch).map_or(0.0, |p| (blocked_sum(p, |v| v) / p.len() as f64) as f32)).collect();
            let sums = ChannelSums { x: xf, g: None, geo: (n, c, plane), chans: r.clone(), means: &shifts, gates: None };
            let mut sq = vec![(0.0, 0.0); r.len()];
            if channel_sums::sums_in_order(&sums, &mut sq) {
                for (o, (&(dev, dev2), &shift)) in out.iter_mut().zip(sq.iter().zip(&shifts)) {
                    let off = dev / m;
                    *o = (shift as f64 + off, (dev2 / m - off * off).max(0.0));
                }
                return;
            }
        }
        for (ch, o) in r.zip(out) {
            let planes = || (0..n).map(move |i| &x[(i * c + ch) * plane..(i * c + ch + 1) * plane]);
            let mean = planes().map(|p| blocked_sum(p, |v| v)).sum::<f64>() / m;
            let mt = T::from_f64(mean);
            let var = planes().map(|p| blocked_sum(p, |v| (v - mt) * (v - mt))).sum::<f64>() / m;
            *o = (mean, var);
        }
    });
    stats
}

/// The `(mean, invstd)` of each channel: from a [`BatchNormStats`] input when there is one, else
/// computed from `x`.
pub(super) fn stats_of<T: Float>(given: Option<&Vec<f64>>, x: &[T], geo: Geo, eps: f64) -> PerChannel {
    match given {
        Some(v) => rows_per_channel(v, geo.1),
        None => channel_stats(x, geo, eps),
    }
}

/// The first two rows of a `[rows, c]` per-channel input as pairs: `(mean, invstd)` of the
/// statistics, or the two gradient sums.
pub(super) fn rows_per_channel(v: &[f64], c: usize) -> PerChannel {
    (0..c).map(|ch| (v[ch], v[c + ch])).collect()
}

/// Per channel, two f64 numbers: `(mean, invstd)` for statistics, `(sum(g * xhat), sum(g))`
/// for gradient sums.
pub(super) type PerChannel = Vec<(f64, f64)>;

/// The forward's pre-activation `z = za_c * x + zk_c` (`z` holds `za, zk` for each channel) and
/// its activation: what the backward passes need to gate the gradient as the activation did.
/// `z` is computed with the same multiply-add as the forward's, so the gate sees the same value.
#[derive(Clone, Copy)]
pub(super) struct Gated<'a, T> {
    pub z: &'a [T],
    pub gate: Gate<T>,
}

/// Each channel's statistics and gradient sums `(sum(g' * xhat), sum(g'))`, with `g'` the
/// gradient through the activation when `gated` is given, else `g` itself.
pub(super) fn grad_sums<T: Float>(
    x: &[T],
    g: &[T],
    geo: Geo,
    eps: f64,
    given: Option<&Vec<f64>>,
    gated: Option<Gated<'_, T>>,
) -> (PerChannel, PerChannel) {
    let stats = stats_of(given, x, geo, eps);
    let mut sums = vec![(0.0, 0.0); geo.1];
    let out = SendPtr(sums.as_mut_ptr());
    parallel_ranges(geo.1, 1, |chans| {
        let sums = ChannelGradSums { x, g, geo, stats: &stats, gated, out, chans };
        #[cfg(target_arch = "x86_64")]
        if sums.in_memory_order() {
            return;
        }
        dispatch(sums)
    });
    (stats, sums)
}

/// [`grad_sums`] over the channels `chans`: the f32 sums in one walk through memory where they
/// run, else the portable loops one channel at a time (through `dispatch`).
struct ChannelGradSums<'a, T> {
    x: &'a [T],
    g: &'a [T],
    geo: Geo,
    stats: &'a PerChannel,
    gated: Option<Gated<'a, T>>,
    out: SendPtr<(f64, f64)>,
    chans: std::ops::Range<usize>,
}

impl<T: Float> SimdKernel for ChannelGradSums<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        for ch in self.chans.clone() {
            let sums = self.channel::<A>(ch, self.stats[ch].0);
            self.put(ch, sums);
        }
    }
}

impl<T: Float> ChannelGradSums<'_, T> {
    /// Stores channel `ch`'s `(sum(g' * (x - mean)), sum(g'))` as `(sum(g' * xhat), sum(g'))`.
    fn put(&self, ch: usize, (gx, gs): (f64, f64)) {
        // SAFETY: each range of channels writes its own entries.
        unsafe { *self.out.0.add(ch) = (gx * self.stats[ch].1, gs) };
    }

    /// The f32 sums of every channel of the range in one walk through memory (see
    /// [`channel_sums::sums_in_order`]); false where they do not apply.
    #[cfg(target_arch = "x86_64")]
    fn in_memory_order(&self) -> bool {
        // `as_f32` holds only where the FMA kernels run, so the gate recomputes `z` with the
        // fused multiply-add, as the forward that made it did.
        let (Some(xf), Some(gf)) = (as_f32(self.x), as_f32(self.g)) else { return false };
        let chans = self.chans.clone();
        let means: Vec<f32> = chans.clone().map(|ch| self.stats[ch].0 as f32).collect();
        let gates: Option<Vec<channel_sums::ZGate>> = self.gated.map(|gt| chans.clone().map(|ch| z_gate(gt, ch)).collect());
        let mut sums = vec![(0.0, 0.0); chans.len()];
        let request = ChannelSums { x: xf, g: Some(gf), geo: self.geo, chans: chans.clone(), means: &means, gates: gates.as_deref() };
        if !channel_sums::sums_in_order(&request, &mut sums) {
            return false;
        }
        chans.zip(sums).for_each(|(ch, sums)| self.put(ch, sums));
        true
    }

    /// `(sum(g' * (x - mean)), sum(g'))` over one channel's planes (the portable loops).
    #[inline(always)]
    fn channel<A: Madd>(&self, ch: usize, mean: f64) -> (f64, f64) {
        let (n, c, plane) = self.geo;
        let zc = self.gated.map(|gt| (gt.z[2 * ch], gt.z[2 * ch + 1], gt.gate));
        let mt = T::from_f64(mean);
        let (mut gx, mut gs) = (0.0, 0.0);
        for i in 0..n {
            let p = (i * c + ch) * plane..(i * c + ch + 1) * plane;
            let (a, b) = match zc {
                None => blocked_grad_sums(&self.x[p.clone()], &self.g[p], mt, |_, g| g),
                Some((za, zk, gate)) if gate.leaky() => {
                    blocked_grad_sums(&self.x[p.clone()], &self.g[p], mt, |x, g| gate.grad::<true>(A::madd(za, x, zk), g))
                }
                Some((za, zk, gate)) => {
                    blocked_grad_sums(&self.x[p.clone()], &self.g[p], mt, |x, g| gate.grad::<false>(A::madd(za, x, zk), g))
                }
            };
            gx += a;
            gs += b;
        }
        (gx, gs)
    }
}

/// Channel `ch`'s gate of `gated` in f32, for the AVX2 sums.
#[cfg(target_arch = "x86_64")]
fn z_gate<T: Float>(gated: Gated<'_, T>, ch: usize) -> channel_sums::ZGate {
    let f = |v: T| WithDType::to_f64(v) as f32;
    let gt = gated.gate;
    channel_sums::ZGate { a: f(gated.z[2 * ch]), k: f(gated.z[2 * ch + 1]), lo: f(gt.lo), hi: f(gt.hi), leak: f(gt.leak) }
}

/// What a [`channel_affine`] pass does besides its multiply-adds.
#[derive(Clone, Copy)]
pub(super) enum Through<'a, T> {
    /// Nothing: `a * u + k` or `a * u + b * v + k`.
    Plain,
    /// The forward's activation: `act(a * u + k)`.
    Activation(Gate<T>),
    /// The input gradient's gate: `a * g' + b * v + k`, `u` gated to `g'` by the activation's
    /// derivative at the forward's `z` (computed from `v`, which is `x`).
    Gradient(Gated<'a, T>),
}

/// `out = a_c * u + b_c * v + k_c` (without `v`: `a_c * u + k_c`) over every plane of channels
/// `chans` of `[n, C, plane]` buffers (fused multiply-adds where the CPU has them), through
/// `through`. `coefs` holds `a, b, k` for each channel.
struct ChannelAffine<'a, T> {
    out: SendPtr<T>,
    u: &'a [T],
    v: Option<&'a [T]>,
    coefs: &'a [T],
    through: Through<'a, T>,
    geo: Geo,
    chans: std::ops::Range<usize>,
}

impl<T: Float> SimdKernel for ChannelAffine<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let (n, c, plane) = self.geo;
        // Image by image, so that the planes of a range of channels are read in memory order
        // (with small planes, channel by channel would stride across the whole batch).
        for i in 0..n {
            for ch in self.chans.clone() {
                let (a, b, k) = (self.coefs[3 * ch], self.coefs[3 * ch + 1], self.coefs[3 * ch + 2]);
                let r = (i * c + ch) * plane..(i * c + ch + 1) * plane;
                // SAFETY: (i, ch) planes are disjoint; each channel belongs to one range.
                let o = unsafe { self.out.slice_mut(r.clone()) };
                let u = &self.u[r.clone()];
                match (self.v, self.through) {
                    (None, Through::Activation(gate)) if gate.leaky() => activated::<A, T, true>(o, u, (a, k), gate),
                    (None, Through::Activation(gate)) => activated::<A, T, false>(o, u, (a, k), gate),
                    (None, _) => o.iter_mut().zip(u).for_each(|(o, &u)| *o = A::madd(a, u, k)),
                    (Some(v), Through::Gradient(Gated { z, gate })) => {
                        let zc = (z[2 * ch], z[2 * ch + 1]);
                        if gate.leaky() {
                            gated::<A, T, true>(o, u, &v[r], (a, b, k), zc, gate)
                        } else {
                            gated::<A, T, false>(o, u, &v[r], (a, b, k), zc, gate)
                        }
                    }
                    (Some(v), _) => o.iter_mut().zip(u).zip(&v[r]).for_each(|((o, &u), &v)| *o = A::madd(a, u, A::madd(b, v, k))),
                }
            }
        }
    }
}

/// `o = act(a * u + k)`.
#[inline(always)]
fn activated<A: Madd, T: Float, const LEAKY: bool>(o: &mut [T], u: &[T], (a, k): (T, T), gate: Gate<T>) {
    o.iter_mut().zip(u).for_each(|(o, &u)| *o = gate.out::<LEAKY>(A::madd(a, u, k)))
}

/// `o = a * g' + b * v + k`, `g'` the gradient `u` through the activation at `za * v + zk`.
#[inline(always)]
fn gated<A: Madd, T: Float, const LEAKY: bool>(o: &mut [T], u: &[T], v: &[T], (a, b, k): (T, T, T), (za, zk): (T, T), gate: Gate<T>) {
    o.iter_mut().zip(u).zip(v).for_each(|((o, &u), &v)| *o = A::madd(a, gate.grad::<LEAKY>(A::madd(za, v, zk), u), A::madd(b, v, k)))
}

/// [`ChannelAffine`] into a new buffer, channels in parallel.
pub(super) fn channel_affine<T: Float>(u: &[T], v: Option<&[T]>, coefs: &[T], through: Through<'_, T>, geo: Geo) -> PooledVec<T> {
    let mut out = PooledVec::<T>::uninit(u.len());
    let ptr = SendPtr(out.as_mut_slice().as_mut_ptr());
    parallel_ranges(geo.1, 1, |chans| dispatch(ChannelAffine { out: ptr, u, v, coefs, through, geo, chans }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact two-pass `(mean, biased variance)` per channel, in f64.
    fn reference(x: &[f32], (n, c, plane): Geo) -> Vec<(f64, f64)> {
        (0..c)
            .map(|ch| {
                let vals = || (0..n).flat_map(move |i| x[(i * c + ch) * plane..(i * c + ch + 1) * plane].iter().map(|&v| v as f64));
                let m = (n * plane) as f64;
                let mean = vals().sum::<f64>() / m;
                (mean, vals().map(|v| (v - mean) * (v - mean)).sum::<f64>() / m)
            })
            .collect()
    }

    /// A value in [-1, 1) from an index (a fixed hash, so the data is the same on every run).
    fn noise(i: usize) -> f32 {
        let h = (i as u64 ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// The f32 statistics against f64 on data that punishes `E[x^2] - E[x]^2`: a large offset
    /// with unit noise (the raw second moment is 1e6 times the variance), and a first image far
    /// from the rest (the shift of the one-pass sums at its worst, `(mean - s)^2 ~ n var`).
    #[test]
    fn moments_hold_against_cancellation() {
        // 7x7 planes: masked tails; 5 channels split between threads by the caller's ranges.
        let geo = (64, 5, 49);
        let (n, c, plane) = geo;
        let x: Vec<f32> = (0..n * c * plane)
            .map(|i| {
                let (img, ch) = (i / (c * plane), i / plane % c);
                match ch {
                    0 => 1000.0 + noise(i),
                    1 => -3.0e4 + 0.01 * noise(i),
                    2 if img == 0 => 50.0 + noise(i),
                    2 => -50.0 + noise(i),
                    3 => 0.0,
                    _ => noise(i) * 1e-3,
                }
            })
            .collect();
        let got = channel_moments(&x, geo);
        for (ch, (g, r)) in got.iter().zip(reference(&x, geo)).enumerate() {
            assert!((g.0 - r.0).abs() <= 1e-6 * r.0.abs().max(1e-3), "channel {ch}: mean {} against {}", g.0, r.0);
            assert!((g.1 - r.1).abs() <= 1e-5 * r.1 + 1e-12, "channel {ch}: variance {} against {}", g.1, r.1);
        }
    }
}
