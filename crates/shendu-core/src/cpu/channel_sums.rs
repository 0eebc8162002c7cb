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
    /// The scalar form of [`ZGate::apply8`], for the tails.
    #[inline(always)]
    fn apply<const LEAKY: bool>(self, x: f32, g: f32) -> f32 {
        let z = self.a.mul_add(x, self.k);
        if z > self.lo {
            if z < self.hi {
                g
            } else {
                0.0
            }
        } else if LEAKY {
            g * self.leak
        } else {
            0.0
        }
    }

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
/// chains), flushed to the f64 lanes `t0, t1` every [`BLOCK`] values, and f64 scalars for the
/// planes' tails. Short planes (a 4x4 map is 16 values) share one block rather than each paying
/// a flush. (Four chains per sum measured slower: 4x4 planes' statistics 123 -> 181 us.)
#[derive(Clone, Copy)]
struct Acc {
    a0: __m256,
    a1: __m256,
    b0: __m256,
    b1: __m256,
    t0: __m256d,
    t1: __m256d,
    s0: f64,
    s1: f64,
    /// Values in the f32 accumulators since they were last flushed.
    pending: usize,
}

impl Acc {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn new() -> Acc {
        let (z, zd) = (_mm256_setzero_ps(), _mm256_setzero_pd());
        Acc { a0: z, a1: z, b0: z, b1: z, t0: zd, t1: zd, s0: 0.0, s1: 0.0, pending: 0 }
    }

    /// Adds the `len` values at `base`: without `g`, to `(sum(x), sum((x - mean)^2))`; with
    /// `g`, to `(sum(g * (x - mean)), sum(g))`, `g` gated first unless `GATED` is [`NO_GATE`].
    /// (A plain sum computes the deviation too: it costs nothing next to the loads.)
    ///
    /// # Safety
    /// `base + len` values lie inside the buffers; the CPU has AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn add<const GATED: u8>(&mut self, x: *const f32, g: Option<*const f32>, base: usize, len: usize, mean: f32, gate: ZGate) {
        let Acc { mut a0, mut a1, mut b0, mut b1, mut t0, mut t1, mut s0, mut s1, mut pending } = *self;
        let m = _mm256_set1_ps(mean);
        let zero = _mm256_setzero_ps();
        let mut k = 0;
        // SAFETY (loads): base + len <= the buffers' length (the caller's contract).
        unsafe {
            match g {
                None => {
                    while k + 16 <= len {
                        let (v0, v1) = (_mm256_loadu_ps(x.add(base + k)), _mm256_loadu_ps(x.add(base + k + 8)));
                        a0 = _mm256_add_ps(a0, v0);
                        a1 = _mm256_add_ps(a1, v1);
                        let (d0, d1) = (_mm256_sub_ps(v0, m), _mm256_sub_ps(v1, m));
                        b0 = _mm256_fmadd_ps(d0, d0, b0);
                        b1 = _mm256_fmadd_ps(d1, d1, b1);
                        k += 16;
                        pending += 16;
                        if pending >= BLOCK {
                            (t0, t1) = (flush(t0, _mm256_add_ps(a0, a1)), flush(t1, _mm256_add_ps(b0, b1)));
                            (a0, a1, b0, b1, pending) = (zero, zero, zero, zero, 0);
                        }
                    }
                    for k in k..len {
                        let v = *x.add(base + k);
                        let d = (v - mean) as f64;
                        s0 += v as f64;
                        s1 += d * d;
                    }
                }
                Some(g) => {
                    while k + 16 <= len {
                        let (v0, v1) = (_mm256_loadu_ps(x.add(base + k)), _mm256_loadu_ps(x.add(base + k + 8)));
                        let (mut g0, mut g1) = (_mm256_loadu_ps(g.add(base + k)), _mm256_loadu_ps(g.add(base + k + 8)));
                        match GATED {
                            GATE => (g0, g1) = (gate.apply8::<false>(v0, g0), gate.apply8::<false>(v1, g1)),
                            LEAKY_GATE => (g0, g1) = (gate.apply8::<true>(v0, g0), gate.apply8::<true>(v1, g1)),
                            _ => {}
                        }
                        a0 = _mm256_fmadd_ps(g0, _mm256_sub_ps(v0, m), a0);
                        a1 = _mm256_fmadd_ps(g1, _mm256_sub_ps(v1, m), a1);
                        b0 = _mm256_add_ps(b0, g0);
                        b1 = _mm256_add_ps(b1, g1);
                        k += 16;
                        pending += 16;
                        if pending >= BLOCK {
                            (t0, t1) = (flush(t0, _mm256_add_ps(a0, a1)), flush(t1, _mm256_add_ps(b0, b1)));
                            (a0, a1, b0, b1, pending) = (zero, zero, zero, zero, 0);
                        }
                    }
                    for k in k..len {
                        let (v, mut gv) = (*x.add(base + k), *g.add(base + k));
                        match GATED {
                            GATE => gv = gate.apply::<false>(v, gv),
                            LEAKY_GATE => gv = gate.apply::<true>(v, gv),
                            _ => {}
                        }
                        s0 += (gv * (v - mean)) as f64;
                        s1 += gv as f64;
                    }
                }
            }
        }
        *self = Acc { a0, a1, b0, b1, t0, t1, s0, s1, pending };
    }

    /// The two sums.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn finish(self) -> (f64, f64) {
        let (t0, t1) = (flush(self.t0, _mm256_add_ps(self.a0, self.a1)), flush(self.t1, _mm256_add_ps(self.b0, self.b1)));
        (hsum(t0) + self.s0, hsum(t1) + self.s1)
    }
}

/// A gate that passes everything (for the sums without one).
const OPEN: ZGate = ZGate { a: 1.0, k: 0.0, lo: f32::NEG_INFINITY, hi: f32::INFINITY, leak: 0.0 };

/// The sums of [`Acc::add`] for each channel of `chans` of `[n, C, len]` buffers (`means` and
/// `gates` per channel of `chans`): without `g`, `(sum(x), sum((x - mean)^2))`; with `g`,
/// `(sum(g' * (x - mean)), sum(g'))`, `g'` being `g` through the channel's gate if any. The
/// buffers are walked in memory order (see the module docs). Every channel sees the
/// same operations in the same order as it would summed alone, so the sums do not depend on
/// how the channels are split between threads.
///
/// Returns false (and leaves `out` alone) where the CPU lacks AVX2+FMA or the sizes disagree.
pub(crate) fn sums_in_order(
    x: &[f32],
    g: Option<&[f32]>,
    (n, c, len): (usize, usize, usize),
    chans: std::ops::Range<usize>,
    means: &[f32],
    gates: Option<&[ZGate]>,
    out: &mut [(f64, f64)],
) -> bool {
    let total = n * c * len;
    let ok = fma_enabled()
        && chans.end <= c
        && x.len() >= total
        && g.is_none_or(|g| g.len() >= total)
        && means.len() == chans.len()
        && out.len() == chans.len()
        && gates.is_none_or(|gs| g.is_some() && gs.len() == chans.len());
    if ok {
        // SAFETY: the buffers hold n * c * len values and the CPU has AVX2 and FMA (checked).
        unsafe { sums_in_order_avx(x, g, (n, c, len), chans, means, gates, out) };
    }
    ok
}

#[target_feature(enable = "avx2,fma")]
unsafe fn sums_in_order_avx(
    x: &[f32],
    g: Option<&[f32]>,
    (n, c, len): (usize, usize, usize),
    chans: std::ops::Range<usize>,
    means: &[f32],
    gates: Option<&[ZGate]>,
    out: &mut [(f64, f64)],
) {
    let mut accs = vec![Acc::new(); chans.len()];
    let (xp, gp) = (x.as_ptr(), g.map(|g| g.as_ptr()));
    for i in 0..n {
        for (j, acc) in accs.iter_mut().enumerate() {
            let base = (i * c + chans.start + j) * len;
            // SAFETY: base + len <= n * c * len <= the buffers' lengths (checked by the caller).
            unsafe {
                match gates.map(|gs| gs[j]) {
                    None => acc.add::<NO_GATE>(xp, gp, base, len, means[j], OPEN),
                    Some(gate) if gate.leak == 0.0 => acc.add::<GATE>(xp, gp, base, len, means[j], gate),
                    Some(gate) => acc.add::<LEAKY_GATE>(xp, gp, base, len, means[j], gate),
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

    /// A gate that the f64 reference applies as `ZGate::apply` does, on the same f32 `z`.
    fn gated(gate: Option<ZGate>, x: f32, g: f32) -> f64 {
        match gate {
            None => g as f64,
            Some(z) if z.leak == 0.0 => z.apply::<false>(x, g) as f64,
            Some(z) => z.apply::<true>(x, g) as f64,
        }
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
                assert!(sums_in_order(&x, None, (n, c, len), chans.clone(), &means, None, &mut out));
                for (j, ch) in chans.clone().enumerate() {
                    let mean = means[j] as f64;
                    close(out[j].0, idx(ch).map(|i| x[i] as f64).sum(), "sum");
                    close(out[j].1, idx(ch).map(|i| (x[i] as f64 - mean).powi(2)).sum(), "squared deviation");
                }
                for gate in [None, Some(relu6), Some(leaky)] {
                    let gates = gate.map(|z| vec![z; chans.len()]);
                    assert!(sums_in_order(&x, Some(&g), (n, c, len), chans.clone(), &means, gates.as_deref(), &mut out));
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
        // 2 x 3 x 2 = 12 values do not fit in 10.
        assert!(!sums_in_order(&x, None, (2, 3, 2), 0..2, &[0.0; 2], None, &mut out));
        // channels past c, and a gate without a gradient
        assert!(!sums_in_order(&x, None, (1, 3, 2), 2..4, &[0.0; 2], None, &mut out));
        let z = ZGate { a: 1.0, k: 0.0, lo: 0.0, hi: 6.0, leak: 0.0 };
        assert!(!sums_in_order(&x, None, (1, 3, 2), 0..2, &[0.0; 2], Some(&[z; 2]), &mut out));
        assert_eq!(sums_in_order(&x, None, (1, 3, 2), 0..2, &[0.0; 2], None, &mut out), crate::cpu::simd::fma_enabled());
    }
}
