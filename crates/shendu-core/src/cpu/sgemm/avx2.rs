//! AVX2+FMA microkernel: a 16 x 6 tile of C in 12 ymm accumulators (of 16 registers), two ymm
//! loads of packed A and 6 broadcasts of packed B per k step (the classic Haswell shape: it
//! leaves registers for the operands and has 12 independent FMA chains to hide latency).

use std::arch::x86_64::*;

/// Rows of the tile (two ymm vectors).
pub const MR: usize = 16;
/// Columns of the tile.
pub const NR: usize = 6;

/// `C[0..m, 0..n] (+)= alpha · Apanel · Bpanel` for one tile; `add` keeps C's old values. The
/// scaled sums are rounded before the add, as an update `c - lr · g` with `g` in memory would be
/// (and `acc · 1` is `acc`, so alpha 1 is the plain product).
///
/// # Safety
/// AVX2 and FMA must be available; `a` holds `MR * kc` and `b` `NR * kc` packed floats; C must be
/// writable at `c + i*rs + j*cs` for `i < m <= MR`, `j < n <= NR`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)] // one tile: sizes, operands and C's strides
pub unsafe fn kernel(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rs: isize,
    cs: isize,
    m: usize,
    n: usize,
    add: bool,
    alpha: f32,
) {
    // SAFETY: forwarded contract; each arm runs the same tile code with n columns.
    unsafe {
        match n {
            6 => tile::<6>(kc, a, b, c, rs, cs, m, add, alpha),
            5 => tile::<5>(kc, a, b, c, rs, cs, m, add, alpha),
            4 => tile::<4>(kc, a, b, c, rs, cs, m, add, alpha),
            3 => tile::<3>(kc, a, b, c, rs, cs, m, add, alpha),
            2 => tile::<2>(kc, a, b, c, rs, cs, m, add, alpha),
            1 => tile::<1>(kc, a, b, c, rs, cs, m, add, alpha),
            _ => {}
        }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const N: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rs: isize,
    cs: isize,
    m: usize,
    add: bool,
    alpha: f32,
) {
    let mut lo = [_mm256_setzero_ps(); N];
    let mut hi = [_mm256_setzero_ps(); N];
    let (mut a, mut b) = (a, b);
    // SAFETY: reads stay inside the packed panels (kc steps of MR and NR floats).
    unsafe {
        for _ in 0..kc {
            let a0 = _mm256_loadu_ps(a);
            let a1 = _mm256_loadu_ps(a.add(8));
            for j in 0..N {
                let bj = _mm256_broadcast_ss(&*b.add(j));
                lo[j] = _mm256_fmadd_ps(a0, bj, lo[j]);
                hi[j] = _mm256_fmadd_ps(a1, bj, hi[j]);
            }
            a = a.add(MR);
            b = b.add(NR);
        }
    }
    let al = _mm256_set1_ps(alpha);
    if rs == 1 && m == MR {
        for j in 0..N {
            // SAFETY: rows 0..MR of column j are the caller's and contiguous.
            unsafe {
                let col = c.offset(j as isize * cs);
                let (mut v0, mut v1) = (_mm256_mul_ps(lo[j], al), _mm256_mul_ps(hi[j], al));
                if add {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(col));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(col.add(8)));
                }
                _mm256_storeu_ps(col, v0);
                _mm256_storeu_ps(col.add(8), v1);
            }
        }
    } else {
        let mut buf = [0f32; MR];
        for j in 0..N {
            // SAFETY: buf holds MR floats; C is written at rows 0..m of column j only.
            unsafe {
                _mm256_storeu_ps(buf.as_mut_ptr(), lo[j]);
                _mm256_storeu_ps(buf.as_mut_ptr().add(8), hi[j]);
                let col = c.offset(j as isize * cs);
                for (i, &v) in buf.iter().enumerate().take(m) {
                    let p = col.offset(i as isize * rs);
                    *p = if add { *p + v * alpha } else { v * alpha };
                }
            }
        }
    }
}
