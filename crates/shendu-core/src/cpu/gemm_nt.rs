//! `C += A · Bᵀ` in f32 for `A [m, k]` and `B [n, k]` whose rows are contiguous: the shape of
//! a weight gradient, where both operands run along the summed pixels or tiles
//! (`dW[co][ci] = Σ_t dY[co][t] · X[ci][t]`).
//!
//! Neither operand then has a contiguous side to vectorise across, so a broadcast kernel would
//! need one of them transposed; instead this kernel vectorises along `k` itself: a tile of 3
//! rows of A by 4 rows of B keeps 12 accumulators of 8 partial sums each (independent chains
//! enough to cover the multiply-add latency; 2 x 4 ran 16 x 16 x 112 at 66 GFLOP/s against 91),
//! three plus four loads feed twelve multiply-adds, and the lanes are added once per tile, at
//! the end. That reduction costs about as much as two steps of eight, so the kernel pays off
//! from `k` of 32 or so, and only on thin products (see [`pays_off`]): the general gemm packs
//! both operands of each product, which does not pay there. Winograd's weight-gradient products
//! of 16 channels (16 x 16 x 112) ran at 40-55 GFLOP/s through it, 91 here. (Public for the
//! kernel benchmarks only.)

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use crate::cpu::gemm::{gemm, GemmElem, MatMut, MatRef};
use crate::cpu::simd::{as_f32, as_f32_mut};

/// Whether this kernel beats the general gemm on an `m x n x k` product: `k` of at least 32
/// (below, the per-tile reduction dominates) and a side of at most 32. With both sides larger
/// the general gemm's kernels reuse each operand panel across enough of the other to win
/// (1 thread, GFLOP/s, general gemm against this kernel: 16 x 16 x 112 54 / 91, 144 x 24 x 784
/// 53 / 110, 32 x 32 x 64 64 / 83; but 64 x 64 x 64 87 / 82).
pub fn pays_off(m: usize, n: usize, k: usize) -> bool {
    k >= 32 && m.min(n) <= 32
}

/// `c += a · bᵀ` for `a [m, k]` and `b [n, k]` with contiguous rows (`lda`, `ldb` apart) into
/// `c [m, n]` (rows `ldc` apart): this kernel where it [`pays_off`] (f32 on AVX2), the general
/// gemm elsewhere. The one entry for the weight gradients' products.
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_a_bt<T: GemmElem>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &mut [T],
    ldc: usize,
    threads: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(lda >= k && ldb >= k && ldc >= n);
    assert!(a.len() >= (m - 1) * lda + k && b.len() >= (n - 1) * ldb + k && c.len() >= (m - 1) * ldc + n);
    if pays_off(m, n, k) {
        if let (Some(af), Some(bf), Some(cf)) = (as_f32(a), as_f32(b), as_f32_mut(c)) {
            if gemm_nt(m, n, k, af, lda, bf, ldb, cf, ldc) {
                return;
            }
        }
    }
    let (dst, lhs, rhs) = (
        MatMut { ptr: c.as_mut_ptr(), rs: ldc as isize, cs: 1 },
        MatRef { ptr: a.as_ptr(), rs: lda as isize, cs: 1 },
        MatRef { ptr: b.as_ptr(), rs: 1, cs: ldb as isize },
    );
    // SAFETY: the asserts keep the m x k, n x k (read transposed) and m x n operands inside
    // their slices; `c` is borrowed mutably, so it overlaps neither.
    unsafe { gemm(m, n, k, dst, true, lhs, rhs, threads) };
}

/// `c[i*ldc + j] += Σ_t a[i*lda + t] · b[j*ldb + t]` for `i < m`, `j < n`, `t < k`. Returns
/// false, doing nothing, where the CPU lacks AVX2+FMA (or off x86-64).
#[allow(clippy::too_many_arguments)]
pub fn gemm_nt(m: usize, n: usize, k: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], ldc: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::simd::fma_enabled() {
        if m == 0 || n == 0 {
            return true;
        }
        assert!(lda >= k && ldb >= k && ldc >= n);
        assert!(a.len() >= (m - 1) * lda + k && b.len() >= (n - 1) * ldb + k && c.len() >= (m - 1) * ldc + n);
        // SAFETY: the CPU has AVX2 and FMA; the asserts keep every row inside its operand.
        unsafe { gemm_nt_avx2(m, n, k, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr(), ldc) };
        return true;
    }
    let _ = (m, n, k, a, lda, b, ldb, c, ldc);
    false
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_nt_avx2(m: usize, n: usize, k: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize) {
    // The last k % 8 values of each row go in through a masked load.
    let rest = k % 8;
    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for i in (0..m).step_by(3) {
        for j in (0..n).step_by(4) {
            // SAFETY: rows i..i + R of A and j..j + C of B exist (R, C clipped to m, n), and
            // C's tile lies inside c (the caller's asserts).
            unsafe {
                let (ap, bp, cp) = (a.add(i * lda), b.add(j * ldb), c.add(i * ldc + j));
                match (m - i).min(3) * 10 + (n - j).min(4) {
                    34 => tile::<3, 4>(k, mask, ap, lda, bp, ldb, cp, ldc),
                    33 => tile::<3, 3>(k, mask, ap, lda, bp, ldb, cp, ldc),
                    32 => tile::<3, 2>(k, mask, ap, lda, bp, ldb, cp, ldc),
                    31 => tile::<3, 1>(k, mask, ap, lda, bp, ldb, cp, ldc),
                    24 => tile::<2, 4>(k, mask, ap, lda, bp, ldb, cp, ldc),
                    23 => tile::<2, 3>(k, mask, ap, lda, bp, ldb, cp, ldc),
                    22 => tile::<2, 2>(k, mask, ap, lda, bp, ldb, cp, ldc),
                    21 => tile::<2, 1>(k, mask, ap, lda, bp, ldb, cp, ldc),
                    14 => tile::<1, 4>(k, mask, ap, lda, bp, ldb, cp, ldc),
                    13 => tile::<1, 3>(k, mask, ap, lda, bp, ldb, cp, ldc),
                    12 => tile::<1, 2>(k, mask, ap, lda, bp, ldb, cp, ldc),
                    _ => tile::<1, 1>(k, mask, ap, lda, bp, ldb, cp, ldc),
                }
            }
        }
    }
}

/// One `R x C` tile of C: `R * C` accumulators of 8 lanes along `k`, reduced at the end.
///
/// # Safety
/// AVX2+FMA; rows `0..R` of `a` (`lda` apart) and `0..C` of `b` (`ldb` apart) hold `k` floats;
/// `c` is writable at `r*ldc + 0..C` for `r < R`; `mask` selects the first `k % 8` lanes.
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const R: usize, const C: usize>(
    k: usize,
    mask: __m256i,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    // acc[j][r]: row r of A against row j of B.
    let mut acc = [[_mm256_setzero_ps(); R]; C];
    let full = k - k % 8;
    // SAFETY: t + 8 <= full <= k: inside every row; the masked step reads lanes below k only.
    unsafe {
        let mut t = 0;
        while t < full {
            let av: [__m256; R] = std::array::from_fn(|r| _mm256_loadu_ps(a.add(r * lda + t)));
            for (j, col) in acc.iter_mut().enumerate() {
                let bv = _mm256_loadu_ps(b.add(j * ldb + t));
                for (x, &ar) in col.iter_mut().zip(&av) {
                    *x = _mm256_fmadd_ps(ar, bv, *x);
                }
            }
            t += 8;
        }
        if full < k {
            let av: [__m256; R] = std::array::from_fn(|r| _mm256_maskload_ps(a.add(r * lda + full), mask));
            for (j, col) in acc.iter_mut().enumerate() {
                let bv = _mm256_maskload_ps(b.add(j * ldb + full), mask);
                for (x, &ar) in col.iter_mut().zip(&av) {
                    *x = _mm256_fmadd_ps(ar, bv, *x);
                }
            }
        }
        for r in 0..R {
            let cr = c.add(r * ldc);
            if C == 4 {
                // [Σ lanes 0-3 of each of the four | Σ lanes 4-7 of each], then the halves added.
                let h = _mm256_hadd_ps(_mm256_hadd_ps(acc[0][r], acc[1][r]), _mm256_hadd_ps(acc[2][r], acc[3][r]));
                let s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
                _mm_storeu_ps(cr, _mm_add_ps(_mm_loadu_ps(cr), s));
            } else {
                for (j, col) in acc.iter().enumerate() {
                    *cr.add(j) += hsum(col[r]);
                }
            }
        }
    }
}

/// The sum of the 8 lanes, in the order the 4-wide tile adds them.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let h = _mm256_hadd_ps(_mm256_hadd_ps(v, v), v);
    _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against f64 sums, over tile edges (m odd, n not a multiple of 4), `k` below, at and
    /// above the vector width with masked tails, and leading dimensions wider than the rows.
    #[test]
    fn matches_f64_sums() {
        for (m, n, k) in [(1, 1, 1), (2, 4, 8), (3, 5, 13), (16, 16, 112), (7, 6, 33), (5, 9, 200), (8, 7, 40)] {
            let (lda, ldb, ldc) = (k + 3, k + 1, n + 2);
            let a: Vec<f32> = (0..m * lda).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.02).collect();
            let b: Vec<f32> = (0..n * ldb).map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.03).collect();
            let c0: Vec<f32> = (0..m * ldc).map(|i| (i % 7) as f32 - 3.0).collect();
            let mut c = c0.clone();
            if !gemm_nt(m, n, k, &a, lda, &b, ldb, &mut c, ldc) {
                return;
            }
            for i in 0..m {
                for j in 0..ldc {
                    let want = if j < n {
                        c0[i * ldc + j] as f64 + (0..k).map(|t| a[i * lda + t] as f64 * b[j * ldb + t] as f64).sum::<f64>()
                    } else {
                        c0[i * ldc + j] as f64
                    };
                    let got = c[i * ldc + j] as f64;
                    assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "({m},{n},{k}) at ({i},{j}): {got} vs {want}");
                }
            }
        }
    }
}
