//! AVX-512 microkernel: a 32 x 12 tile of C in 24 zmm accumulators (of 32 registers), two zmm
//! loads of packed A and 12 broadcasts of packed B per k step, so FMAs outnumber loads 24 : 14
//! and the two FMA pipes stay fed. Partial tiles run the same loop with fewer columns (a const
//! generic) and masked loads/stores for fewer rows.

use std::arch::x86_64::*;

/// Rows of the tile (two zmm vectors).
pub const MR: usize = 32;
/// Columns of the tile.
pub const NR: usize = 12;

/// How far ahead (in floats) to prefetch the A panel streaming in from L2: 8 k steps.
const PREFETCH_A: usize = 8 * MR;

/// How many k steps before the end of a tile its C columns are prefetched.
const C_AHEAD: usize = 48;

/// `C[0..m, 0..n] (+)= alpha · Apanel · Bpanel` for one tile; `add` keeps C's old values. The
/// scaled sums are rounded before the add, as an update `c - lr · g` with `g` in memory would be
/// (and `acc · 1` is `acc`, so alpha 1 is the plain product).
///
/// # Safety
/// AVX-512F must be available; `a` holds `MR * kc` and `b` `NR * kc` packed floats (`a` 64-byte
/// aligned); C must be writable at `c + i*rs + j*cs` for `i < m <= MR`, `j < n <= NR`.
#[target_feature(enable = "avx512f")]
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
            12 => tile::<12>(kc, a, b, c, rs, cs, m, add, alpha),
            11 => tile::<11>(kc, a, b, c, rs, cs, m, add, alpha),
            10 => tile::<10>(kc, a, b, c, rs, cs, m, add, alpha),
            9 => tile::<9>(kc, a, b, c, rs, cs, m, add, alpha),
            8 => tile::<8>(kc, a, b, c, rs, cs, m, add, alpha),
            7 => tile::<7>(kc, a, b, c, rs, cs, m, add, alpha),
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
#[target_feature(enable = "avx512f")]
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
    let mut lo = [_mm512_setzero_ps(); N];
    let mut hi = [_mm512_setzero_ps(); N];
    let (mut a, mut b) = (a, b);
    // SAFETY: reads stay inside the packed panels (kc steps of MR and NR floats); `a` is aligned;
    // prefetches never fault.
    unsafe {
        for step in 0..kc {
            if rs == 1 && step + C_AHEAD == kc.max(C_AHEAD) {
                // Fetch the C tile for the read-modify-write at the end.
                for j in 0..N {
                    let col = c.offset(j as isize * cs);
                    _mm_prefetch::<_MM_HINT_T0>(col as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(col.add(MR - 1) as *const i8);
                }
            }
            _mm_prefetch::<_MM_HINT_T0>(a.add(PREFETCH_A) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(a.add(PREFETCH_A + 16) as *const i8);
            let a0 = _mm512_load_ps(a);
            let a1 = _mm512_load_ps(a.add(16));
            for j in 0..N {
                let bj = _mm512_set1_ps(*b.add(j));
                lo[j] = _mm512_fmadd_ps(a0, bj, lo[j]);
                hi[j] = _mm512_fmadd_ps(a1, bj, hi[j]);
            }
            a = a.add(MR);
            b = b.add(NR);
        }
    }
    let al = _mm512_set1_ps(alpha);
    if rs == 1 {
        // Columns of C are contiguous: masked vector read-modify-write (full masks when m == MR).
        let m0: __mmask16 = if m >= 16 { 0xffff } else { (1u32 << m) as u16 - 1 };
        let m1: __mmask16 = if m >= MR {
            0xffff
        } else if m > 16 {
            (1u32 << (m - 16)) as u16 - 1
        } else {
            0
        };
        for j in 0..N {
            // SAFETY: the masks cover exactly rows 0..m of column j, which the caller owns.
            unsafe {
                let col = c.offset(j as isize * cs);
                let (mut v0, mut v1) = (_mm512_mul_ps(lo[j], al), _mm512_mul_ps(hi[j], al));
                if add {
                    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, col));
                    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, col.add(16)));
                }
                _mm512_mask_storeu_ps(col, m0, v0);
                _mm512_mask_storeu_ps(col.add(16), m1, v1);
            }
        }
    } else {
        let mut buf = [0f32; MR];
        for j in 0..N {
            // SAFETY: buf holds MR floats; C is written at rows 0..m of column j only.
            unsafe {
                _mm512_storeu_ps(buf.as_mut_ptr(), lo[j]);
                _mm512_storeu_ps(buf.as_mut_ptr().add(16), hi[j]);
                let col = c.offset(j as isize * cs);
                for (i, &v) in buf.iter().enumerate().take(m) {
                    let p = col.offset(i as isize * rs);
                    *p = if add { *p + v * alpha } else { v * alpha };
                }
            }
        }
    }
}
