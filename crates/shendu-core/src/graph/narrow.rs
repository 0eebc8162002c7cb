//! Small and narrow matrix products of the graph executor (`out[m x n] (+)= a · b`), where the
//! gemm crate's per-call packing buffers and packing itself cost more than the arithmetic.
//!
//! Every output element accumulates over `p` in order with fused multiply-adds from zero, then
//! is added to the output when accumulating, as the gemm crate's kernels do: graph and eager
//! results agree to the bit at these sizes, whichever kernel below runs.

use super::kernels::par_ranges;
use crate::cpu::elementwise::SendPtr;
use crate::dtype::Float;

/// Output columns up to which f32 products with contiguous `b` rows run the AVX2 kernel (two
/// 8-lane registers per output row).
pub(crate) const NARROW_MAX: usize = 16;

/// A strided operand: pointer to element (0, 0), row stride, column stride (in elements).
pub(crate) type Operand<T> = (*const T, usize, usize);

/// Products with at least this many multiply-adds split their rows over the thread pool (as
/// `cpu::gemm` does).
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// [`small_matmul`] with the rows of large products split over threads (each output element is
/// still one thread's sum, in order, so the bits do not depend on the split).
///
/// # Safety
/// As for [`small_matmul`].
pub(crate) unsafe fn small_matmul_par<T: Float>(m: usize, n: usize, k: usize, out: *mut T, accumulate: bool, a: Operand<T>, b: Operand<T>) {
    if m * n * k < PARALLEL_MIN_MACS {
        return small_matmul(m, n, k, out, accumulate, a, b);
    }
    let (o, ap, bp) = (SendPtr(out), SendPtr(a.0 as *mut T), SendPtr(b.0 as *mut T));
    par_ranges(m, (PARALLEL_MIN_MACS / 2 / (n * k).max(1)).max(1), |r| {
        let a = (ap.get().add(r.start * a.1) as *const T, a.1, a.2);
        small_matmul(r.len(), n, k, o.get().add(r.start * n), accumulate, a, (bp.get() as *const T, b.1, b.2));
    });
}

/// `out[m x n] (+)= a · b` (`out` contiguous, `b` with contiguous rows or columns).
///
/// # Safety
/// The operands must describe valid memory for their shapes (`a`: m x k, `b`: k x n), and `out`
/// must be valid for `m * n` writes and not overlap them.
pub(crate) unsafe fn small_matmul<T: Float>(m: usize, n: usize, k: usize, out: *mut T, accumulate: bool, a: Operand<T>, b: Operand<T>) {
    #[cfg(target_arch = "x86_64")]
    {
        let f32_narrow = std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && b.2 == 1 && (1..=NARROW_MAX).contains(&n);
        // `fma_enabled` (AVX2 and FMA, unless switched off to test the fallback).
        if f32_narrow && crate::cpu::simd::fma_enabled() {
            let f = |x: Operand<T>| (x.0 as *const f32, x.1, x.2);
            // SAFETY: T is f32 (checked), the features are present (checked), the caller's
            // contract covers the memory.
            return narrow_f32_avx2(m, n, k, out as *mut f32, accumulate, f(a), f(b));
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return small_matmul_fma(m, n, k, out, accumulate, a, b);
        }
    }
    small_matmul_body(m, n, k, out, accumulate, a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn small_matmul_fma<T: Float>(m: usize, n: usize, k: usize, out: *mut T, accumulate: bool, a: Operand<T>, b: Operand<T>) {
    small_matmul_body(m, n, k, out, accumulate, a, b)
}

/// The portable kernel: `b` with contiguous rows (axpy of `a[i, p] * b[p, :]` into each output
/// row, in a register-sized buffer when narrow) or contiguous columns (a dot product per output).
#[inline(always)]
pub(crate) unsafe fn small_matmul_body<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    out: *mut T,
    accumulate: bool,
    a: Operand<T>,
    b: Operand<T>,
) {
    let (ap, ars, acs) = a;
    let (bp, brs, bcs) = b;
    let mut acc = [T::ZERO; NARROW_MAX];
    for i in 0..m {
        let row = std::slice::from_raw_parts_mut(out.add(i * n), n);
        if bcs == 1 && n <= NARROW_MAX {
            acc[..n].fill(T::ZERO);
            for p in 0..k {
                let x = *ap.add(i * ars + p * acs);
                let brow = std::slice::from_raw_parts(bp.add(p * brs), n);
                acc[..n].iter_mut().zip(brow).for_each(|(c, &y)| *c = x.mul_add(y, *c));
            }
            if accumulate {
                row.iter_mut().zip(&acc[..n]).for_each(|(o, &c)| *o += c);
            } else {
                row.copy_from_slice(&acc[..n]);
            }
        } else if bcs == 1 {
            if accumulate {
                // Rare (a bias-fused small product): sum into the output directly.
                for p in 0..k {
                    let x = *ap.add(i * ars + p * acs);
                    let brow = std::slice::from_raw_parts(bp.add(p * brs), n);
                    row.iter_mut().zip(brow).for_each(|(c, &y)| *c = x.mul_add(y, *c));
                }
                continue;
            }
            row.fill(T::ZERO);
            for p in 0..k {
                let x = *ap.add(i * ars + p * acs);
                let brow = std::slice::from_raw_parts(bp.add(p * brs), n);
                row.iter_mut().zip(brow).for_each(|(c, &y)| *c = x.mul_add(y, *c));
            }
        } else {
            for (j, o) in row.iter_mut().enumerate() {
                let col = std::slice::from_raw_parts(bp.add(j * bcs), k);
                let mut t = T::ZERO;
                for (p, &y) in col.iter().enumerate() {
                    t = (*ap.add(i * ars + p * acs)).mul_add(y, t);
                }
                *o = if accumulate { *o + t } else { t };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// f32, `b` rows contiguous, `1 <= n <= 16`: each output row lives in one or two registers, and
/// a block of rows shares every load of a `b` row. A row-strided `a` (a plain matrix) and a
/// column-strided one (a transposed view) both cost one broadcast load per multiply-add row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn narrow_f32_avx2(m: usize, n: usize, k: usize, out: *mut f32, accumulate: bool, a: Operand<f32>, b: Operand<f32>) {
    // Lanes of the last register that hold columns: lane l is on when l < rem.
    let rem = n - 8 * ((n - 1) / 8);
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem as i32), lanes);
    let mut i = 0;
    if n > 8 {
        while i + 6 <= m {
            rows::<6, 2>(i, n, k, out, accumulate, a, b, mask);
            i += 6;
        }
        while i < m {
            rows::<1, 2>(i, n, k, out, accumulate, a, b, mask);
            i += 1;
        }
    } else {
        while i + 12 <= m {
            rows::<12, 1>(i, n, k, out, accumulate, a, b, mask);
            i += 12;
        }
        while i < m {
            rows::<1, 1>(i, n, k, out, accumulate, a, b, mask);
            i += 1;
        }
    }
}

/// Output rows `i0 .. i0 + R`, `V` registers per row (the last one masked).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn rows<const R: usize, const V: usize>(
    i0: usize,
    n: usize,
    k: usize,
    out: *mut f32,
    accumulate: bool,
    a: Operand<f32>,
    b: Operand<f32>,
    mask: __m256i,
) {
    let (ap, ars, acs) = a;
    let (bp, brs, _) = b;
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    let arow = ap.add(i0 * ars);
    for p in 0..k {
        let brow = bp.add(p * brs);
        let mut bv = [_mm256_setzero_ps(); V];
        for (v, r) in bv.iter_mut().enumerate() {
            *r = if v + 1 == V { _mm256_maskload_ps(brow.add(8 * v), mask) } else { _mm256_loadu_ps(brow.add(8 * v)) };
        }
        let ac = arow.add(p * acs);
        for (r, accr) in acc.iter_mut().enumerate() {
            let x = _mm256_broadcast_ss(&*ac.add(r * ars));
            for (c, &y) in accr.iter_mut().zip(&bv) {
                *c = _mm256_fmadd_ps(x, y, *c);
            }
        }
    }
    for (r, accr) in acc.iter().enumerate() {
        let orow = out.add((i0 + r) * n);
        for (v, &c) in accr.iter().enumerate() {
            let o = orow.add(8 * v);
            if v + 1 == V {
                let c = if accumulate { _mm256_add_ps(_mm256_maskload_ps(o, mask), c) } else { c };
                _mm256_maskstore_ps(o, mask, c);
            } else {
                let c = if accumulate { _mm256_add_ps(_mm256_loadu_ps(o), c) } else { c };
                _mm256_storeu_ps(o, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Every kernel choice gives the portable kernel's bits, for plain and transposed `a`,
    /// with and without accumulation, over the narrow widths and ragged row counts.
    #[test]
    fn narrow_kernels_match_the_portable_one_bitwise() {
        let mut seed = 7;
        for n in 1..=NARROW_MAX {
            for &(m, k) in &[(0, 3), (1, 1), (5, 7), (13, 0), (13, 33), (25, 64), (6, 2)] {
                let a: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
                let b: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed)).collect();
                let init: Vec<f32> = (0..m * n).map(|_| lcg(&mut seed)).collect();
                // a as an m x k matrix, and as the transposed view of a k x m one.
                let at: Vec<f32> = (0..m * k).map(|j| a[(j % m) * k + j / m]).collect();
                for (av, ars, acs) in [(&a, k, 1), (&at, 1, m)] {
                    for accumulate in [false, true] {
                        let (mut want, mut got) = (init.clone(), init.clone());
                        let ao = (av.as_ptr(), ars, acs);
                        let bo = (b.as_ptr(), n, 1);
                        // SAFETY: the buffers have the sizes the shapes need.
                        unsafe {
                            // mul_add is fused with or without the FMA feature (a library call
                            // without it), so the portable kernel's bits do not depend on it.
                            small_matmul_body(m, n, k, want.as_mut_ptr(), accumulate, ao, bo);
                            small_matmul(m, n, k, got.as_mut_ptr(), accumulate, ao, bo);
                        }
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "m {m} n {n} k {k} a strides ({ars}, {acs}) accumulate {accumulate}");
                    }
                }
            }
        }
    }

    /// The portable kernel against a plain f64 product (all three `b` cases).
    #[test]
    fn portable_kernel_computes_the_product() {
        let mut seed = 3;
        for &(m, n, k) in &[(4, 3, 5), (3, 16, 9), (2, 20, 7), (5, 1, 0)] {
            let a: Vec<f64> = (0..m * k).map(|_| lcg(&mut seed) as f64).collect();
            let b: Vec<f64> = (0..k * n).map(|_| lcg(&mut seed) as f64).collect();
            let bt: Vec<f64> = (0..k * n).map(|j| b[(j % k) * n + j / k]).collect();
            let want: Vec<f64> = (0..m * n).map(|j| (0..k).map(|p| a[(j / n) * k + p] * b[p * n + j % n]).sum::<f64>() + 1.0).collect();
            for (bv, brs, bcs) in [(&b, n, 1), (&bt, 1, k)] {
                let mut got = vec![1.0; m * n];
                // SAFETY: the buffers have the sizes the shapes need.
                unsafe { small_matmul_body(m, n, k, got.as_mut_ptr(), true, (a.as_ptr(), k, 1), (bv.as_ptr(), brs, bcs)) };
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-12, "m {m} n {n} k {k}: {g} vs {w}");
                }
            }
        }
    }
}
