//! Packing of operand blocks into the panel order the microkernels stream: A into `MR`-row
//! panels (`MR` consecutive rows per k step) and B into `NR`-column panels (`NR` consecutive
//! columns per k step), zero-padded at the edges so kernels never branch on partial panels.

/// A 64-byte aligned chunk, so that panels start on cache lines and vector loads never split one.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Line([f32; 16]);

/// A reusable, cache-line aligned f32 buffer. Its bytes count as the pool's kernel scratch.
#[derive(Default)]
pub struct AlignedBuf(Vec<Line>);

impl AlignedBuf {
    /// A pointer to at least `len` floats (contents unspecified), growing the buffer if needed.
    pub fn reserve(&mut self, len: usize) -> *mut f32 {
        let lines = len.div_ceil(16);
        if self.0.len() < lines {
            crate::pool::scratch_released(std::mem::size_of_val(self.0.as_slice()));
            self.0 = vec![Line([0.0; 16]); lines];
            crate::pool::scratch_grown(std::mem::size_of_val(self.0.as_slice()));
        }
        self.0.as_mut_ptr().cast()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        crate::pool::scratch_released(std::mem::size_of_val(self.0.as_slice()));
    }
}

/// Packs rows `0..mc` and columns `0..kc` of `a` (strides `rs`, `cs`) into `ceil(mc / MR)` panels
/// of `MR * kc` floats each: panel `i` holds `a[i*MR + r, p]` at `p*MR + r`.
///
/// # Safety
/// `a` must be readable at every `(r, p)` in range; `dst` must hold `ceil(mc/MR) * MR * kc` floats.
pub unsafe fn pack_a<const MR: usize>(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, dst: *mut f32) {
    let full = mc / MR * MR;
    if rs == 1 && full > 0 {
        // Columns of A are contiguous: walk each column once across all full panels, so the
        // source streams sequentially instead of hopping a column stride per MR floats.
        // SAFETY: columns 0..kc, rows 0..full are inside A; panel writes stay in the first
        // full / MR panels.
        unsafe {
            if MR.is_multiple_of(8) && has_avx() {
                #[cfg(target_arch = "x86_64")]
                copy_columns_avx::<MR>(full, kc, a, cs, dst);
            } else {
                for p in 0..kc {
                    let col = a.offset(p as isize * cs);
                    for i0 in (0..full).step_by(MR) {
                        std::ptr::copy_nonoverlapping(col.add(i0), dst.add(i0 * kc + p * MR), MR);
                    }
                }
            }
        }
        if full < mc {
            // SAFETY: the remaining rows with the panel after the full ones.
            unsafe { pack_a::<MR>(mc - full, kc, a.add(full), rs, cs, dst.add(full * kc)) };
        }
        return;
    }
    let mut panel = dst;
    for i0 in (0..mc).step_by(MR) {
        let rows = MR.min(mc - i0);
        // SAFETY (whole block): indices stay within the caller's promised ranges; panel writes
        // stay within its MR * kc floats.
        unsafe {
            let base = a.offset(i0 as isize * rs);
            if rows == MR && rs == 1 {
                for p in 0..kc {
                    std::ptr::copy_nonoverlapping(base.offset(p as isize * cs), panel.add(p * MR), MR);
                }
            } else if rows == MR && cs == 1 && MR.is_multiple_of(8) && has_avx() {
                // Rows run along k: a transpose, in 8 x 8 register blocks.
                #[cfg(target_arch = "x86_64")]
                transpose_panel_avx::<MR>(kc, base, rs, panel);
            } else if rows == MR && cs == 1 {
                // Rows run along k: a transpose. Done in slabs of K_SLAB columns so that the
                // slab's MR x K_SLAB destination stays in L1 while every row streams through it
                // (a whole-row sweep would stride MR floats across the full kc panel per row).
                const K_SLAB: usize = 16;
                for p0 in (0..kc).step_by(K_SLAB) {
                    let p1 = (p0 + K_SLAB).min(kc);
                    for r in 0..MR {
                        let row = base.offset(r as isize * rs);
                        for p in p0..p1 {
                            *panel.add(p * MR + r) = *row.add(p);
                        }
                    }
                }
            } else {
                for p in 0..kc {
                    let col = base.offset(p as isize * cs);
                    let out = panel.add(p * MR);
                    for r in 0..rows {
                        *out.add(r) = *col.offset(r as isize * rs);
                    }
                    for r in rows..MR {
                        *out.add(r) = 0.0;
                    }
                }
            }
            panel = panel.add(MR * kc);
        }
    }
}

/// The full panels of [`pack_a`] from contiguous columns, in 8-float vectors (the plain copy
/// compiled to 16-byte moves). Each column's rows are streamed in order while the next columns'
/// are prefetched: the source is usually a whole operand's first touch since it was written.
///
/// # Safety
/// AVX must be available; rows `0..full` (a multiple of MR) of columns `0..kc` readable; `dst`
/// holds `full * kc` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn copy_columns_avx<const MR: usize>(full: usize, kc: usize, a: *const f32, cs: isize, dst: *mut f32) {
    use std::arch::x86_64::*;
    /// Columns ahead to prefetch.
    const AHEAD: usize = 2;
    for p in 0..kc {
        // SAFETY (whole block): the caller's contract; prefetches never fault.
        unsafe {
            let col = a.offset(p as isize * cs);
            if p + AHEAD < kc {
                let next = a.offset((p + AHEAD) as isize * cs);
                for i in (0..full).step_by(16) {
                    _mm_prefetch::<_MM_HINT_T0>(next.add(i) as *const i8);
                }
            }
            for i0 in (0..full).step_by(MR) {
                let out = dst.add(i0 * kc + p * MR);
                for v in (0..MR).step_by(8) {
                    _mm256_storeu_ps(out.add(v), _mm256_loadu_ps(col.add(i0 + v)));
                }
            }
        }
    }
}

/// Whether the AVX packing paths run (never off x86-64, where they are not compiled).
fn has_avx() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One full A panel from rows that run along k (`a[r, p]` at `base + r*rs + p`): panel
/// element `p*MR + r`. Whole 8 x 8 blocks go through registers; the last `kc % 8` columns are
/// copied one by one. The scalar slab loop this replaces ran at ~1 float per cycle and, for a
/// Linear layer's weight (packed transposed on every call), cost a tenth of an MLP step.
///
/// # Safety
/// AVX must be available (checked by the caller); rows `0..MR`, columns `0..kc` readable; the
/// panel holds `MR * kc` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_panel_avx<const MR: usize>(kc: usize, base: *const f32, rs: isize, panel: *mut f32) {
    use std::arch::x86_64::*;
    let full = kc / 8 * 8;
    for r0 in (0..MR).step_by(8) {
        // SAFETY (whole block): rows r0..r0+8 < MR and columns p0..p0+8 <= kc are readable;
        // stores land at p*MR + r0..r0+8 for p < kc, inside the panel.
        unsafe {
            let row = |r: usize| base.offset((r0 + r) as isize * rs);
            let rows = [row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7)];
            for p0 in (0..full).step_by(8) {
                let cols = crate::cpu::simd::transpose8(rows.map(|r| _mm256_loadu_ps(r.add(p0))));
                for (j, c) in cols.into_iter().enumerate() {
                    _mm256_storeu_ps(panel.add((p0 + j) * MR + r0), c);
                }
            }
            for p in full..kc {
                for (r, src) in rows.iter().enumerate() {
                    *panel.add(p * MR + r0 + r) = *src.add(p);
                }
            }
        }
    }
}

/// Packs rows `0..kc` and columns `j0..j1` of `b` (strides `rs`, `cs`) into panels of `NR * kc`
/// floats: the panel of columns `j..j+NR` holds `b[p, j + c]` at `p*NR + c`. `dst` points at the
/// panel of column `j0` (which must be a multiple of `NR`, as `j1` is unless it is the last).
///
/// # Safety
/// `b` must be readable at every `(p, j)` in range; `dst` must hold the panels of `j0..j1`.
pub unsafe fn pack_b<const NR: usize>(kc: usize, j0: usize, j1: usize, b: *const f32, rs: isize, cs: isize, dst: *mut f32) {
    let mut panel = dst;
    for j in (j0..j1).step_by(NR) {
        let cols = NR.min(j1 - j);
        // SAFETY (whole block): indices stay within the caller's promised ranges; panel writes
        // stay within its NR * kc floats.
        unsafe {
            let base = b.offset(j as isize * cs);
            if cols == NR && cs == 1 {
                for p in 0..kc {
                    std::ptr::copy_nonoverlapping(base.offset(p as isize * rs), panel.add(p * NR), NR);
                }
            } else if cols == NR && rs == 1 && NR.is_multiple_of(4) && has_avx() {
                // Columns run along k: a transpose, in register blocks.
                #[cfg(target_arch = "x86_64")]
                transpose_b_panel_avx::<NR>(kc, base, cs, panel);
            } else if cols == NR && rs == 1 {
                // Columns run along k: gather one row of the panel at a time from NR streams,
                // so every store is a contiguous NR-float row.
                let mut cols = [base; NR];
                for (c, col) in cols.iter_mut().enumerate() {
                    *col = base.offset(c as isize * cs);
                }
                for p in 0..kc {
                    let out = panel.add(p * NR);
                    for (c, col) in cols.iter().enumerate() {
                        *out.add(c) = *col.add(p);
                    }
                }
            } else {
                for p in 0..kc {
                    let row = base.offset(p as isize * rs);
                    let out = panel.add(p * NR);
                    for c in 0..cols {
                        *out.add(c) = *row.offset(c as isize * cs);
                    }
                    for c in cols..NR {
                        *out.add(c) = 0.0;
                    }
                }
            }
            panel = panel.add(NR * kc);
        }
    }
}

/// One full B panel from columns that run along k (`b[p, c]` at `base + c*cs + p`): panel
/// element `p*NR + c`. Columns go in groups of 8 (an 8 x 8 register transpose) and then of 4
/// (two 4 x 4 transposes per 8 k steps), so NR must be a multiple of 4; the last `kc % 8` steps
/// are copied one by one. The gather this replaces read one float of each of NR column streams per k step;
/// at a column stride of a multiple of 4 KiB all NR streams share one L1 set, so nearly every
/// load missed L1, and packing the activations of a Linear layer cost ~7% of its product.
///
/// # Safety
/// AVX must be available (checked by the caller); columns `0..NR`, rows `0..kc` readable; the
/// panel holds `NR * kc` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_b_panel_avx<const NR: usize>(kc: usize, base: *const f32, cs: isize, panel: *mut f32) {
    use std::arch::x86_64::*;
    debug_assert!(NR.is_multiple_of(4), "the caller checks NR % 4 == 0");
    let full = kc / 8 * 8;
    let col = |c: usize| base.offset(c as isize * cs);
    let mut c0 = 0;
    // SAFETY (whole block): columns c0.. < NR and rows p0..p0+8 <= kc are readable; stores land
    // at p*NR + c for p < kc, c < NR, inside the panel.
    unsafe {
        while c0 + 8 <= NR {
            let cols: [*const f32; 8] = std::array::from_fn(|c| col(c0 + c));
            for p0 in (0..full).step_by(8) {
                let rows = crate::cpu::simd::transpose8(cols.map(|c| _mm256_loadu_ps(c.add(p0))));
                for (j, r) in rows.into_iter().enumerate() {
                    _mm256_storeu_ps(panel.add((p0 + j) * NR + c0), r);
                }
            }
            c0 += 8;
        }
        while c0 + 4 <= NR {
            let cols: [*const f32; 4] = std::array::from_fn(|c| col(c0 + c));
            for p0 in (0..full).step_by(8) {
                let [x0, x1, x2, x3] = cols.map(|c| _mm256_loadu_ps(c.add(p0)));
                let (t0, t1) = (_mm256_unpacklo_ps(x0, x1), _mm256_unpackhi_ps(x0, x1));
                let (t2, t3) = (_mm256_unpacklo_ps(x2, x3), _mm256_unpackhi_ps(x2, x3));
                // Lane halves: steps p0 + j (low) and p0 + 4 + j (high) of the 4 columns.
                let steps = [
                    _mm256_shuffle_ps::<0x44>(t0, t2),
                    _mm256_shuffle_ps::<0xEE>(t0, t2),
                    _mm256_shuffle_ps::<0x44>(t1, t3),
                    _mm256_shuffle_ps::<0xEE>(t1, t3),
                ];
                for (j, s) in steps.into_iter().enumerate() {
                    _mm_storeu_ps(panel.add((p0 + j) * NR + c0), _mm256_castps256_ps128(s));
                    _mm_storeu_ps(panel.add((p0 + 4 + j) * NR + c0), _mm256_extractf128_ps::<1>(s));
                }
            }
            c0 += 4;
        }
        for p in full..kc {
            for c in 0..NR {
                *panel.add(p * NR + c) = *col(c).add(p);
            }
        }
    }
}
