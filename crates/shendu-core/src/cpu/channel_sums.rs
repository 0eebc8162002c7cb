//! AVX2 f32 sums over the planes of one channel of an `[N, C, plane]` buffer: batch norm's
//! reductions (mean, squared deviation, the gradient's two sums).
//!
//! The portable loops in `ops::batch_norm` (8 lanes of a generic `T`, blocks summed in f64)
//! compiled to scalar `movss`/`mulss` code for the two-accumulator gradient sums and to one
//! 4-wide SSE chain for the others, so batch norm's reductions ran at 12-20 GB/s, and batch
//! norm was a third of a MobileNet training step. Here each plane is summed in four 8-lane
//! accumulators (independent add chains), flushed to f64 every [`BLOCK`] values, so the
//! accuracy stays that of short f32 sums added in f64.

use std::arch::x86_64::*;

use crate::cpu::simd::fma_enabled;

/// Values summed in f32 lanes before the partial sums are added in f64 (16 adds per lane).
const BLOCK: usize = 256;

/// The planes of one channel: `n` runs of `len` values, `stride` apart, the first at `start`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChannelPlanes {
    pub start: usize,
    pub len: usize,
    pub n: usize,
    pub stride: usize,
}

impl ChannelPlanes {
    /// Whether every plane lies inside a buffer of `total` values.
    fn fits(&self, total: usize) -> bool {
        self.n == 0 || self.start + (self.n - 1) * self.stride + self.len <= total
    }
}

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

/// `sum(x)` over the planes; `None` where the planes do not fit in `x` or the CPU lacks AVX2+FMA.
pub(crate) fn sum(x: &[f32], p: ChannelPlanes) -> Option<f64> {
    // SAFETY: the planes lie inside `x` and the CPU has AVX2+FMA (checked).
    (fma_enabled() && p.fits(x.len())).then(|| unsafe { sums::<NO_GATE>(x.as_ptr(), None, p, 0.0, None).0 })
}

/// `sum((x - mean)^2)` over the planes.
pub(crate) fn squared_deviation(x: &[f32], p: ChannelPlanes, mean: f32) -> Option<f64> {
    // SAFETY: as in `sum`.
    (fma_enabled() && p.fits(x.len())).then(|| unsafe { sums::<NO_GATE>(x.as_ptr(), None, p, mean, None).1 })
}

/// `(sum(g * (x - mean)), sum(g))` over the same planes of `x` and `g`, `g` first gated by
/// `gate` when there is one.
pub(crate) fn grad_sums(x: &[f32], g: &[f32], p: ChannelPlanes, mean: f32, gate: Option<ZGate>) -> Option<(f64, f64)> {
    (fma_enabled() && p.fits(x.len()) && p.fits(g.len())).then(|| {
        // SAFETY: as in `sum`, for both buffers.
        unsafe {
            match gate {
                None => sums::<NO_GATE>(x.as_ptr(), Some(g.as_ptr()), p, mean, None),
                Some(z) if z.leak == 0.0 => sums::<GATE>(x.as_ptr(), Some(g.as_ptr()), p, mean, gate),
                Some(_) => sums::<LEAKY_GATE>(x.as_ptr(), Some(g.as_ptr()), p, mean, gate),
            }
        }
    })
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

/// The shortest plane whose successor [`sums`] prefetches. Measured at batch 64, 1 thread: the
/// 14x14 planes' statistics and gradient sums ran 7-10% faster with it (96 channels: 211 -> 197
/// and 190 -> 168 us); no gain was measurable on 7x7 and 4x4 planes, which stay without.
const PREFETCH_FROM: usize = 128;

/// Prefetches the cache lines of `len` values from `at` (an address inside the buffer, so that
/// computing it is sound; prefetching never faults).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn prefetch_plane(x: *const f32, at: usize, len: usize) {
    let mut k = 0;
    while k < len {
        _mm_prefetch::<_MM_HINT_T0>(x.wrapping_add(at + k) as *const i8);
        k += 16;
    }
}

/// The gradient's treatment in [`sums`]: as it is, gated without a leak, or gated with one.
const NO_GATE: u8 = 0;
const GATE: u8 = 1;
const LEAKY_GATE: u8 = 2;

/// Without `g`: `(sum(x), sum((x - mean)^2))`; with `g`: `(sum(g * (x - mean)), sum(g))`,
/// `g` gated first unless `GATED` is [`NO_GATE`] (then `gate` is `Some`). (A plain sum computes
/// the deviation too: it costs nothing next to the loads.)
///
/// # Safety
/// Every plane of `p` lies inside the buffers; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn sums<const GATED: u8>(x: *const f32, g: Option<*const f32>, p: ChannelPlanes, mean: f32, gate: Option<ZGate>) -> (f64, f64) {
    let gate = gate.unwrap_or(ZGate { a: 1.0, k: 0.0, lo: f32::NEG_INFINITY, hi: f32::INFINITY, leak: 0.0 });
    let m = _mm256_set1_ps(mean);
    let (mut t0, mut t1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let (mut s0, mut s1) = (0.0f64, 0.0f64);
    let zero = _mm256_setzero_ps();
    let (mut a0, mut a1, mut b0, mut b1) = (zero, zero, zero, zero);
    // Values in the f32 accumulators since they were last flushed: short planes (a 4x4 map
    // is 16 values) share one block rather than each paying a flush.
    let mut pending = 0;
    for i in 0..p.n {
        let base = p.start + i * p.stride;
        if i + 1 < p.n && p.len >= PREFETCH_FROM {
            // The next plane lies a whole image away, where the hardware prefetchers do not
            // look: ask for its lines now, so that they arrive while this plane is summed.
            prefetch_plane(x, base + p.stride, p.len);
            if let Some(g) = g {
                prefetch_plane(g, base + p.stride, p.len);
            }
        }
        let mut k = 0;
        // SAFETY (loads): base + len <= the buffer's length (checked by the caller).
        unsafe {
            match g {
                None => {
                    while k + 16 <= p.len {
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
                    for k in k..p.len {
                        let v = *x.add(base + k);
                        let d = (v - mean) as f64;
                        s0 += v as f64;
                        s1 += d * d;
                    }
                }
                Some(g) => {
                    while k + 16 <= p.len {
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
                    for k in k..p.len {
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
    }
    (t0, t1) = (flush(t0, _mm256_add_ps(a0, a1)), flush(t1, _mm256_add_ps(b0, b1)));
    (hsum(t0) + s0, hsum(t1) + s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planes_of(n: usize, c: usize, len: usize, ch: usize) -> ChannelPlanes {
        ChannelPlanes { start: ch * len, len, n, stride: c * len }
    }

    #[test]
    fn sums_match_f64_loops() {
        if !crate::cpu::simd::fma_enabled() {
            return;
        }
        // Plane lengths around the vector width, the block and odd tails.
        for (n, c, len) in [(3, 2, 1), (2, 3, 7), (4, 2, 16), (2, 2, 49), (3, 2, 196), (1, 2, 300), (2, 1, 1000)] {
            let total = n * c * len;
            let x: Vec<f32> = (0..total).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013 + 2.0).collect();
            let g: Vec<f32> = (0..total).map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.021).collect();
            for ch in 0..c {
                let p = planes_of(n, c, len, ch);
                let idx: Vec<usize> = (0..n).flat_map(|i| (0..len).map(move |k| (i * c + ch) * len + k)).collect();
                let mean = 1.9f32;
                let want_sum: f64 = idx.iter().map(|&j| x[j] as f64).sum();
                let want_sq: f64 = idx.iter().map(|&j| (x[j] as f64 - mean as f64).powi(2)).sum();
                let want_gx: f64 = idx.iter().map(|&j| g[j] as f64 * (x[j] as f64 - mean as f64)).sum();
                let want_gs: f64 = idx.iter().map(|&j| g[j] as f64).sum();
                let close = |a: f64, b: f64, what: &str| {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what} ({n},{c},{len}) ch {ch}: {a} vs {b}")
                };
                close(sum(&x, p).unwrap(), want_sum, "sum");
                close(squared_deviation(&x, p, mean).unwrap(), want_sq, "squared deviation");
                let (gx, gs) = grad_sums(&x, &g, p, mean, None).unwrap();
                close(gx, want_gx, "sum g*(x-mean)");
                close(gs, want_gs, "sum g");
            }
        }
    }

    #[test]
    fn planes_outside_the_buffer_are_refused() {
        let x = vec![1.0f32; 10];
        let p = ChannelPlanes { start: 4, len: 4, n: 2, stride: 3 };
        assert!(sum(&x, p).is_none());
        assert_eq!(sum(&x, ChannelPlanes { n: 1, ..p }).is_some(), crate::cpu::simd::fma_enabled());
    }
}
