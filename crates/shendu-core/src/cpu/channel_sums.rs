//! AVX2 f32 sums over the planes of each channel of an `[N, C, plane]` buffer: batch norm's
//! reductions (mean, squared deviation, the gradient's two sums, gated by the fused
//! activation).
//!
//! The portable loops in `ops::batch_norm` (8 lanes of a generic `T`, blocks summed in f64)
//! compiled to scalar `movss`/`mulss` code for the two-accumulator gradient sums and to one
//! 4-wide SSE chain for the others, so batch norm's reductions ran at 12-20 GB/s, and batch
//! norm was a third of a MobileNet training step. Here each plane is summed in four 8-lane
//! accumulators (independent add chains), flushed to f64 every [`BLOCK`] values, so the
//! accuracy stays that of short f32 sums added in f64.
//!
//! The buffers are walked in memory order, image by image and within an image channel by
//! channel, with each channel's sums kept apart. Walking one channel at a time instead reads
//! one short plane per image, a whole image apart, which the hardware prefetchers do not follow:
//! at batch 64 and 96 to 320 channels, batch norm's parameter-gradient op ran 1.1x (7x7 planes)
//! to 1.9x (4x4) slower that way, and 2x (14x14) with a ReLU6 gate, even with the next plane
//! prefetched by hand.

use std::arch::x86_64::*;

use crate::cpu::simd::fma_enabled;

/// Values summed in f32 lanes before the partial sums are added in f64 (16 adds per lane).
const BLOCK: usize = 256;

/// An activation's gate on the gradient (see `ops::batch_norm::activation`): `g` passes where
/// `lo < z < hi`, becomes `leak * g` where `z <= lo` (or `z` is NaN) and 0 where `z >= hi`, with
/// `z = a * x + k` the activation's input, recomputed from `x` with one fused multiply-add.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ZGate {
    pub a: f32,
    pub k: f32,
    pub lo: f32,
    pub hi: f32,
    pub leak: f32,
}

impl ZGate {
    /// `g` gated at `z = a * x + k`, eight lanes (without a leak: one multiply-add, two
    /// compares and two ands).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn apply8<const LEAKY: bool>(self, x: __m256, g: __m256) -> __m256 {
        let z = _mm256_fmadd_ps(_mm256_set1_ps(self.a), x, _mm256_set1_ps(self.k));
        let above = _mm256_cmp_ps::<_CMP_GT_OQ>(z, _mm256_set1_ps(self.lo));
        let inside = _mm256_and_ps(above, _mm256_cmp_ps::<_CMP_LT_OQ>(z, _mm256_set1_ps(self.hi)));
        if !LEAKY {
            return _mm256_and_ps(inside, g);
        }
        let leaked = _mm256_andnot_ps(above, _mm256_mul_ps(g, _mm256_set1_ps(self.leak)));
        _mm256_or_ps(_mm256_and_ps(inside, g), leaked)
    }
}

/// Adds the 8 lanes of `v` to the f64 accumulator `acc` (4 lanes).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn flush(acc: __m256d, v: __m256) -> __m256d {
    let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v));
    _mm256_add_pd(acc, _mm256_add_pd(lo, hi))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256d) -> f64 {
    let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
    _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
}

/// The gradient's treatment in [`Acc::add`]: as it is, gated without a leak, or gated with one.
const NO_GATE: u8 = 0;
const GATE: u8 = 1;
const LEAKY_GATE: u8 = 2;

/// The running sums of one channel: two pairs of 8-lane f32 accumulators (independent add
/// chains), flushed to the f64 lanes `t0, t1` every [`BLOCK`] values or so. Short planes (a 4x4
/// map is 16 values) share one block rather than each paying a flush. (Four chains per sum
/// measured slower: 4x4 planes' statistics 123 -> 181 us.)
#[derive(Clone, Copy)]
struct Acc {
    a0: __m256,
    a1: __m256,
    b0: __m256,
    b1: __m256,
    t0: __m256d,
    t1: __m256d,
    /// Values in the f32 accumulators since they were last flushed.
    pending: usize,
}

impl Acc {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn new() -> Acc {
        let (z, zd) = (_mm256_setzero_ps(), _mm256_setzero_pd());
        Acc { a0: z, a1: z, b0: z, b1: z, t0: zd, t1: zd, pending: 0 }
    }

    /// Adds the `len` values at `base`: without `g`, to `(sum(x - mean), sum((x - mean)^2))`;
    /// with `g`, to `(sum(g * (x - mean)), sum(g))`, `g` gated first unless `GATED` is
    /// [`NO_GATE`]. (Both plain sums cost nothing next to the loads; summing deviations rather
    /// than `x` keeps a large offset out of the f32 blocks.) The last
    /// values short of 8 go in through a masked load (a scalar tail cost a third of the
    /// statistics of 14x14 planes: 196 = 12 x 16 + 4).
    ///
    /// # Safety
    /// `base + len` values lie inside the buffers; the CPU has AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn add<const GATED: u8>(&mut self, x: *const f32, g: Option<*const f32>, base: usize, len: usize, mean: f32, gate: ZGate) {
        // SAFETY: forwarded contract.
        unsafe {
            match g {
                None => self.add_planes::<GATED, false>(x, x, base, len, mean, gate),
                Some(g) => self.add_planes::<GATED, true>(x, g, base, len, mean, gate),
            }
        }
    }

    /// [`Acc::add`] with the presence of `g` a constant, so that the loops hold no branch on it.
    ///
    /// # Safety
    /// As for [`Acc::add`] (`g` is read only when `WITH_G`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn add_planes<const GATED: u8, const WITH_G: bool>(
        &mut self,
        x: *const f32,
        g: *const f32,
        base: usize,
        len: usize,
        mean: f32,
        gate: ZGate,
    ) {
        let Acc { mut a0, mut a1, mut b0, mut b1, mut t0, mut t1, mut pending } = *self;
        let m = _mm256_set1_ps(mean);
        let zero = _mm256_setzero_ps();
        // Eight values from `k` into the chains (a, b); `keep` selects the lanes inside the
        // plane (the others load as 0 and are kept out of the deviation).
        let step = |a: &mut __m256, b: &mut __m256, k: usize, keep: Option<__m256i>| {
            // SAFETY: the lanes read lie inside the plane (the caller's contract), a masked
            // load reads none of the others.
            let load = |p: *const f32| unsafe {
                match keep {
                    None => _mm256_loadu_ps(p.add(base + k)),
                    Some(mask) => _mm256_maskload_ps(p.add(base + k), mask),
                }
            };
            let v = load(x);
            if WITH_G {
                // A masked lane has x = g = 0, so the gated g is 0 too and adds nothing.
                let mut gv = load(g);
                match GATED {
                    GATE => gv = gate.apply8::<false>(v, gv),
                    LEAKY_GATE => gv = gate.apply8::<true>(v, gv),
                    _ => {}
                }
                *a = _mm256_fmadd_ps(gv, _mm256_sub_ps(v, m), *a);
                *b = _mm256_add_ps(*b, gv);
            } else {
                let mut d = _mm256_sub_ps(v, m);
                if let Some(mask) = keep {
                    d = _mm256_and_ps(d, _mm256_castsi256_ps(mask));
                }
                *a = _mm256_add_ps(*a, d);
                *b = _mm256_fmadd_ps(d, d, *b);
            }
        };
        let mut k = 0;
        while k + 16 <= len {
            step(&mut a0, &mut b0, k, None);
            step(&mut a1, &mut b1, k + 8, None);
            k += 16;
            pending += 16;
            if pending >= BLOCK {
                (t0, t1) = (flush(t0, _mm256_add_ps(a0, a1)), flush(t1, _mm256_add_ps(b0, b1)));
                (a0, a1, b0, b1, pending) = (zero, zero, zero, zero, 0);
            }
        }
        // At most 15 values more before the next flush: still a short f32 sum.
        pending += len - k;
        if k + 8 <= len {
            step(&mut a0, &mut b0, k, None);
            k += 8;
        }
        if k < len {
            let keep = _mm256_cmpgt_epi32(_mm256_set1_epi32((len - k) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            step(&mut a1, &mut b1, k, Some(keep));
        }
        *self = Acc { a0, a1, b0, b1, t0, t1, pending };
    }

    /// The two sums.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn finish(self) -> (f64, f64) {
        let (t0, t1) = (flush(self.t0, _mm256_add_ps(self.a0, self.a1)), flush(self.t1, _mm256_add_ps(self.b0, self.b1)));
        (hsum(t0), hsum(t1))
    }
}

/// A gate that passes everything (for the sums without one).
const OPEN: ZGate = ZGate { a: 1.0, k: 0.0, lo: f32::NEG_INFINITY, hi: f32::INFINITY, leak: 0.0 };

/// What [`sums_in_order`] sums: the channels `chans` of `[n, C, len]` buffers `x` and, for the
/// gradient's sums, `g`, with `means` and `gates` given per channel of `chans`.
pub(crate) struct ChannelSums<'a> {
    pub x: &'a [f32],
    pub g: Option<&'a [f32]>,
    /// `(n, C, len)`.
    pub geo: (usize, usize, usize),
    pub chans: std::ops::Range<usize>,
    pub means: &'a [f32],
    pub gates: Option<&'a [ZGate]>,
}

/// The sums of [`Acc::add`] for each channel of `s.chans`: without `g`, `(sum(x - mean),
/// sum((x - mean)^2))`; with `g`, `(sum(g' * (x - mean)), sum(g'))`, `g'` being `g` through the
/// channel's gate if any. The buffers are walked in memory order (see the module docs). Every
/// channel sees the same operations in the same order as it would summed alone, so the sums do
/// not depend on how the channels are split between threads.
///
/// Returns false (and leaves `out` alone) where the CPU lacks AVX2+FMA or the sizes disagree.
pub(crate) fn sums_in_order(s: &ChannelSums<'_>, out: &mut [(f64, f64)]) -> bool {
    let (n, c, len) = s.geo;
    let total = n * c * len;
    let ok = fma_enabled()
        && s.chans.end <= c
        && s.x.len() >= total
        && s.g.is_none_or(|g| g.len() >= total)
        && s.means.len() == s.chans.len()
        && out.len() == s.chans.len()
        && s.gates.is_none_or(|gs| s.g.is_some() && gs.len() == s.chans.len());
    if ok {
        // SAFETY: the buffers hold n * c * len values and the CPU has AVX2 and FMA (checked).
        unsafe { sums_in_order_avx(s, out) };
    }
    ok
}

#[target_feature(enable = "avx2,fma")]
unsafe fn sums_in_order_avx(s: &ChannelSums<'_>, out: &mut [(f64, f64)]) {
    let (_, c, len) = s.geo;
    let mut accs = vec![Acc::new(); s.chans.len()];
    let (xp, gp) = (s.x.as_ptr(), s.g.map(|g| g.as_ptr()));
    for i in 0..s.geo.0 {
        for (j, acc) in accs.iter_mut().enumerate() {
            let base = (i * c + s.chans.start + j) * len;
            let mean = s.means[j];
            // SAFETY: base + len <= n * c * len <= the buffers' lengths (checked by the caller).
            unsafe {
                match s.gates.map(|gs| gs[j]) {
                    None => acc.add::<NO_GATE>(xp, gp, base, len, mean, OPEN),
                    Some(gate) if gate.leak == 0.0 => acc.add::<GATE>(xp, gp, base, len, mean, gate),
                    Some(gate) => acc.add::<LEAKY_GATE>(xp, gp, base, len, mean, gate),
                }
            }
        }
    }
    for (o, acc) in out.iter_mut().zip(accs) {
        *o = acc.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `g` through the gate as `ZGate::apply8` gates it, one value: the same f32 `z`, so the
    /// reference takes the same side of every threshold.
    fn gated(gate: Option<ZGate>, x: f32, g: f32) -> f64 {
        let Some(gt) = gate else { return g as f64 };
        let z = gt.a.mul_add(x, gt.k);
        let out = if z > gt.lo && z < gt.hi {
            g
        } else if z > gt.lo {
            0.0
        } else {
            g * gt.leak
        };
        out as f64
    }

    #[test]
    fn sums_match_f64_loops() {
        if !crate::cpu::simd::fma_enabled() {
            return;
        }
        // Plane lengths around the vector width, the block and odd tails; subranges of channels.
        for (n, c, len) in [(3, 2, 1), (2, 3, 7), (4, 2, 16), (2, 2, 49), (3, 3, 196), (1, 2, 300), (2, 1, 1000)] {
            let total = n * c * len;
            let x: Vec<f32> = (0..total).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013 + 2.0).collect();
            let g: Vec<f32> = (0..total).map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.021).collect();
            let relu6 = ZGate { a: 1.5, k: -2.9, lo: 0.0, hi: 0.6, leak: 0.0 };
            let leaky = ZGate { a: -0.8, k: 1.7, lo: 0.0, hi: f32::INFINITY, leak: 0.1 };
            for chans in [0..c, c - 1..c] {
                let means: Vec<f32> = chans.clone().map(|ch| 1.9 + 0.1 * ch as f32).collect();
                let idx = |ch: usize| (0..n).flat_map(move |i| (0..len).map(move |k| (i * c + ch) * len + k));
                let close = |a: f64, b: f64, what: &str| {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what} ({n},{c},{len}) {chans:?}: {a} vs {b}")
                };
                let mut out = vec![(0.0, 0.0); chans.len()];
                let plain = ChannelSums { x: &x, g: None, geo: (n, c, len), chans: chans.clone(), means: &means, gates: None };
                assert!(sums_in_order(&plain, &mut out));
                for (j, ch) in chans.clone().enumerate() {
                    let mean = means[j] as f64;
                    close(out[j].0, idx(ch).map(|i| x[i] as f64 - mean).sum(), "sum of deviations");
                    close(out[j].1, idx(ch).map(|i| (x[i] as f64 - mean).powi(2)).sum(), "squared deviation");
                }
                for gate in [None, Some(relu6), Some(leaky)] {
                    let gates = gate.map(|z| vec![z; chans.len()]);
                    let grad = ChannelSums { g: Some(&g), gates: gates.as_deref(), chans: chans.clone(), ..plain };
                    assert!(sums_in_order(&grad, &mut out));
                    for (j, ch) in chans.clone().enumerate() {
                        let mean = means[j] as f64;
                        let gx: f64 = idx(ch).map(|i| gated(gate, x[i], g[i]) * (x[i] as f64 - mean)).sum();
                        close(out[j].0, gx, &format!("sum g*(x-mean), gate {gate:?}"));
                        close(out[j].1, idx(ch).map(|i| gated(gate, x[i], g[i])).sum(), &format!("sum g, gate {gate:?}"));
                    }
                }
            }
        }
    }

    #[test]
    fn mismatched_sizes_are_refused() {
        let x = vec![1.0f32; 10];
        let mut out = vec![(0.0, 0.0); 2];
        let fits = || ChannelSums { x: &x, g: None, geo: (1, 3, 2), chans: 0..2, means: &[0.0; 2], gates: None };
        // 2 x 3 x 2 = 12 values do not fit in 10.
        assert!(!sums_in_order(&ChannelSums { geo: (2, 3, 2), ..fits() }, &mut out));
        // channels past c, and a gate without a gradient
        assert!(!sums_in_order(&ChannelSums { chans: 2..4, ..fits() }, &mut out));
        let z = ZGate { a: 1.0, k: 0.0, lo: 0.0, hi: 6.0, leak: 0.0 };
        assert!(!sums_in_order(&ChannelSums { gates: Some(&[z; 2]), ..fits() }, &mut out));
        assert_eq!(sums_in_order(&fits(), &mut out), crate::cpu::simd::fma_enabled());
    }
}
