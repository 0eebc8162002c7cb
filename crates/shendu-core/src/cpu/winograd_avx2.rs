//! AVX2 f32 kernels for the Winograd data movement: the padded, de-interleaved input copy and
//! the input, output and output-gradient transforms of [`super::winograd`] and
//! [`super::winograd_wgrad`].
//!
//! The portable versions (generic over f32/f64, written on `[T; 8]` arrays) compiled to code
//! that spilled its arrays to the stack and stalled on store forwarding, and the row
//! (de-)interleaving ran one element at a time with a parity branch; together they took a third
//! of W2's forward+backward time. Here every row is moved 16 floats at a time with two shuffles,
//! and each transform keeps its values in registers. The portable code still runs for f64, for
//! CPUs without AVX2+FMA (or with `SHENDU_NO_SIMD`), for strided input rows, and for the
//! transforms of planes narrower than one vector of tiles (`tw < 8`).

use std::arch::x86_64::*;
use std::ops::Range;

use crate::cpu::elementwise::SendPtr;
use crate::cpu::winograd::{chunk_starts, Band};
use crate::pool::PooledVec;

/// Tiles per vector.
const L: usize = 8;

/// The even and odd elements of `s[0..16]`, in order.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn deinterleave(s: &[f32]) -> (__m256, __m256) {
    let s = &s[..16];
    // SAFETY: 16 floats are in bounds.
    unsafe { deinterleave_regs(_mm256_loadu_ps(s.as_ptr()), _mm256_loadu_ps(s.as_ptr().add(8))) }
}

/// The even and odd elements of `s[0..n]` (`n <= 16`), in order, zeros past `n`: a masked load,
/// which reads nothing past `n`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn deinterleave_first(s: &[f32], n: usize) -> (__m256, __m256) {
    let s = &s[..n.min(16)];
    let (m0, m1) = first_lanes(s.len());
    // SAFETY: the masks select lanes below s.len() only, and masked-off lanes are not read.
    unsafe { deinterleave_regs(_mm256_maskload_ps(s.as_ptr(), m0), _mm256_maskload_ps(s.as_ptr().add(8), m1)) }
}

/// Masks of the first `n <= 16` lanes of two vectors.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn first_lanes(n: usize) -> (__m256i, __m256i) {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let n = n as i32;
    (_mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx), _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), idx))
}

/// The even and odd elements of `[v0 v1]`, in order.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn deinterleave_regs(v0: __m256, v1: __m256) -> (__m256, __m256) {
    // Per 128-bit lane: [x0 x2 x8 x10 | x4 x6 x12 x14]; then swap the middle 64-bit pairs.
    let e = _mm256_shuffle_ps::<0x88>(v0, v1);
    let o = _mm256_shuffle_ps::<0xDD>(v0, v1);
    let fix = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(v)));
    (fix(e), fix(o))
}

/// `[a0 b0 a1 b1 ... a7 b7]` as two vectors.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn interleave(a: __m256, b: __m256) -> (__m256, __m256) {
    let lo = _mm256_unpacklo_ps(a, b);
    let hi = _mm256_unpackhi_ps(a, b);
    (_mm256_permute2f128_ps::<0x20>(lo, hi), _mm256_permute2f128_ps::<0x31>(lo, hi))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(d: &mut [f32], v: __m256) {
    let d = &mut d[..L];
    // SAFETY: L floats are in bounds.
    unsafe { _mm256_storeu_ps(d.as_mut_ptr(), v) }
}

/// Where the input planes of one group go in the padded, de-interleaved planes (see
/// `winograd::load_padded`).
#[derive(Clone, Copy)]
pub(crate) struct PadPlanes {
    /// Channels.
    pub c: usize,
    /// Input channel and row strides (columns are contiguous).
    pub sc: usize,
    pub ys: usize,
    /// Input rows and columns copied.
    pub rows: usize,
    pub cols: usize,
    /// Top and left pads.
    pub pt: usize,
    pub pl: usize,
    /// Padded plane height and (even) width.
    pub hp: usize,
    pub wp: usize,
}

/// Copies input row `y` of channel `c` (at `x[c*sc + y*ys..][..cols]`) to padded row `y + pt`,
/// column `k + pl` of plane `c` of `p`, each padded row stored as its `wp/2` even columns then
/// its odd ones: input elements 0, 2, 4... land in one half from index `pl/2`, elements 1, 3,
/// 5... in the other from `(pl+1)/2`. `p` ends with `L` floats of room.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn pad_planes(x: &[f32], r: PadPlanes, p: &mut [f32]) {
    let PadPlanes { c, sc, ys, rows, cols, pt, pl, hp, wp } = r;
    // The narrow rows' whole-vector stores reach up to L floats past the last plane.
    assert!(p.len() >= c * hp * wp + L && rows + pt <= hp);
    let half = wp / 2;
    let (first, second) = if pl.is_multiple_of(2) { (pl / 2, half + pl / 2) } else { (half + pl / 2, pl.div_ceil(2)) };
    for ci in 0..c {
        for y in 0..rows {
            let src = &x[ci * sc + y * ys..][..cols];
            if cols < 16 {
                // One block (small maps): ceil(cols/2) even elements, floor(cols/2) odd, each half
                // stored as a whole vector, the lower address first. The lanes past the values
                // are zeros (masked load) and land on pads or on places written later (this
                // row's other half, later rows), never on values already in place; the planes
                // end with L floats of room. (A masked store cost a fifth of this copy on AMD.)
                let (e, o) = deinterleave_first(src, cols);
                let row = &mut p[(ci * hp + y + pt) * wp..];
                let ((lo, vlo), (hi, vhi)) = if first < second { ((first, e), (second, o)) } else { ((second, o), (first, e)) };
                store(&mut row[lo..], vlo);
                store(&mut row[hi..], vhi);
                continue;
            }
            let dst = &mut p[(ci * hp + y + pt) * wp..][..wp];
            // Blocks of 16 from even offsets (the parity of an element decides its half); the last
            // block is shifted back to end at or one before `cols`, overlapping the previous one.
            let mut s0 = 0;
            while s0 < cols {
                let s = s0.min((cols - 16) & !1);
                let (e, o) = deinterleave(&src[s..]);
                store(&mut dst[first + s / 2..], e);
                store(&mut dst[second + s / 2..], o);
                s0 = s + 16;
                if s0 + 1 >= cols {
                    break;
                }
            }
            for (k, &v) in src.iter().enumerate().skip(s0) {
                let col = k + pl;
                dst[if col.is_multiple_of(2) { col / 2 } else { half + col / 2 }] = v;
            }
        }
    }
}

/// `V[ξ][c][tile] = (B^T d B)[ξ]` for all `tw` tiles of the tile rows `ty` of the padded planes
/// `p` (`c` planes of `hp x wp`, then at least `L` more floats), laid out as `vl` says.
///
/// Rows of fewer than `L` tiles (small maps) take one chunk each, whose lanes past `tw` read on
/// into the next row and are scratch: they are stored too, over the next tile row's first tiles
/// (or past the channel's tiles), which are written after them. So the rows are written in order,
/// and `V` needs `L` floats of room after its last channel.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn input_transform(p: &[f32], hp: usize, wp: usize, c: usize, ty: Range<usize>, tw: usize, v: &mut [f32], vl: Band) {
    assert!(wp == 2 * tw + 2 && hp >= 2 * ty.end + 2 && p.len() >= c * hp * wp + L);
    assert!(vl.rs >= ty.len() * tw && vl.xs >= c * vl.rs + L);
    let stride = vl.xs;
    let v = &mut v[..16 * stride];
    let half = wp / 2;
    let vp = v.as_mut_ptr();
    for ci in 0..c {
        for (bi, y) in ty.clone().enumerate() {
            // Four padded rows, and the L floats after them that a narrow row's scratch lanes read.
            let rows = &p[(ci * hp + 2 * y) * wp..][..4 * wp + L];
            let rp = rows.as_ptr();
            let o = ci * vl.rs + bi * tw;
            for k0 in chunk_starts(tw) {
                // d[r][j] at tiles k0..k0+8: even[k0], odd[k0], even[k0+1], odd[k0+1] of row r.
                // (A macro, not a closure: LLVM kept the closure out of line.)
                // SAFETY: r*wp + half + k0 + 1 + 8 <= 3*wp + half + max(tw, 8) + 1 <= 4*wp + L:
                // inside `rows`.
                macro_rules! d {
                    ($r:expr, $j:expr) => {
                        unsafe { _mm256_loadu_ps(rp.add($r * wp + ($j % 2) * half + k0 + $j / 2)) }
                    };
                }
                for i in 0..4 {
                    // s = B^T d, row i: d0 - d2, d1 + d2, d2 - d1, d1 - d3 (over rows).
                    macro_rules! rows {
                        ($op:ident, $a:expr, $b:expr) => {
                            [$op(d!($a, 0), d!($b, 0)), $op(d!($a, 1), d!($b, 1)), $op(d!($a, 2), d!($b, 2)), $op(d!($a, 3), d!($b, 3))]
                        };
                    }
                    let s: [__m256; 4] = match i {
                        0 => rows!(_mm256_sub_ps, 0, 2),
                        1 => rows!(_mm256_add_ps, 1, 2),
                        2 => rows!(_mm256_sub_ps, 2, 1),
                        _ => rows!(_mm256_sub_ps, 1, 3),
                    };
                    // V = s B, row i: s0 - s2, s1 + s2, s2 - s1, s1 - s3.
                    // SAFETY: ξ = 4i + j < 16 blocks of `stride`, and o + k0 + 8 <= c*rs + L <=
                    // stride (asserted above), so the stores stay inside `v`.
                    unsafe {
                        let q = vp.add(4 * i * stride + o + k0);
                        _mm256_storeu_ps(q, _mm256_sub_ps(s[0], s[2]));
                        _mm256_storeu_ps(q.add(stride), _mm256_add_ps(s[1], s[2]));
                        _mm256_storeu_ps(q.add(2 * stride), _mm256_sub_ps(s[2], s[1]));
                        _mm256_storeu_ps(q.add(3 * stride), _mm256_sub_ps(s[1], s[3]));
                    }
                }
            }
        }
    }
}

/// `out[co][2y + r][2x + s] = (A^T m A)[r][s]` for the tile rows `ty`, clipped to `oh x ow`; `m`
/// is laid out as `ml` says (with `L` floats of room after its last channel: a row of fewer than
/// `L` tiles is read as one chunk), output channel `co` starts at `base + co*oh*ow`.
///
/// # Safety
/// Rows `2*ty.start .. min(2*ty.end, oh)` of the `c` output planes at `base` must be valid for
/// writes and written by no other thread meanwhile.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn output_transform(
    m: &[f32],
    c: usize,
    ty: Range<usize>,
    tw: usize,
    oh: usize,
    ow: usize,
    out: SendPtr<f32>,
    base: usize,
    ml: Band,
) {
    assert!(ow.div_ceil(2) == tw && oh.div_ceil(2) >= ty.end && ml.rs >= ty.len() * tw && ml.xs >= c * ml.rs + L);
    let stride = ml.xs;
    let m = &m[..16 * stride];
    let mp = m.as_ptr();
    let band = 2 * ty.start * ow..(2 * ty.end).min(oh) * ow;
    for co in 0..c {
        if co + 1 < c {
            // The band's rows of each output plane are a short run a plane apart: fetch the next
            // run's lines ahead of the stores (as in `grad_transform`).
            let next = base + (co + 1) * oh * ow;
            for at in band.clone().step_by(16) {
                _mm_prefetch::<_MM_HINT_T0>(out.get().wrapping_add(next + at) as *const i8);
            }
        }
        for (bi, y) in ty.clone().enumerate() {
            let o = co * ml.rs + bi * tw;
            let row0 = base + (co * oh + 2 * y) * ow;
            let nrows = (oh - 2 * y).min(2);
            // SAFETY: rows 2y, 2y+1 (those < oh) of output channel co are this call's.
            let dst = unsafe { out.slice_mut(row0..row0 + nrows * ow) };
            let (d0, d1) = dst.split_at_mut(ow);
            for k0 in chunk_starts(tw) {
                // SAFETY: ξ < 16 blocks of `stride`, o + k0 + 8 <= c*rs + L <= stride (asserted).
                macro_rules! g {
                    ($xi:expr) => {
                        unsafe { _mm256_loadu_ps(mp.add($xi * stride + o + k0)) }
                    };
                }
                // t = A^T m: row 0 = m0 + m1 + m2, row 1 = m1 - m2 - m3 (rows of m), per column.
                macro_rules! t {
                    ($j:expr) => {
                        (
                            _mm256_add_ps(_mm256_add_ps(g!($j), g!(4 + $j)), g!(8 + $j)),
                            _mm256_sub_ps(_mm256_sub_ps(g!(4 + $j), g!(8 + $j)), g!(12 + $j)),
                        )
                    };
                }
                let (c0, c1, c2, c3) = (t!(0), t!(1), t!(2), t!(3));
                let (t0, t1) = ([c0.0, c1.0, c2.0, c3.0], [c0.1, c1.1, c2.1, c3.1]);
                // Y = t A: [t0 + t1 + t2, t1 - t2 - t3] per row.
                let fin =
                    |t: &[__m256; 4]| (_mm256_add_ps(_mm256_add_ps(t[0], t[1]), t[2]), _mm256_sub_ps(_mm256_sub_ps(t[1], t[2]), t[3]));
                let cols = (2 * (k0 + L)).min(ow) - 2 * k0;
                let (y00, y01) = fin(&t0);
                put_row(&mut d0[2 * k0..], cols, interleave(y00, y01));
                if nrows == 2 {
                    let (y10, y11) = fin(&t1);
                    put_row(&mut d1[2 * k0..], cols, interleave(y10, y11));
                }
            }
        }
    }
}

/// Writes the first `cols <= 16` floats of `v`: whole vectors as plain stores, a partial one
/// masked (nothing past `cols` is touched). A masked store is much slower than a plain one on
/// AMD, and an 8x8 map's output rows are one whole vector each.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn put_row(d: &mut [f32], cols: usize, v: (__m256, __m256)) {
    let d = &mut d[..cols];
    // The vector that ends the row, and where it starts.
    let (at, last) = if cols >= L { (L, v.1) } else { (0, v.0) };
    if at == L {
        store(d, v.0);
    }
    let rest = cols - at;
    if rest == L {
        store(&mut d[at..], last);
    } else if rest > 0 {
        // SAFETY: the mask selects the lanes below rest = d.len() - at only.
        unsafe { _mm256_maskstore_ps(d.as_mut_ptr().add(at), first_lanes(rest).0, last) };
    }
}

/// `Z[ξ][c][tile] = (A dY A^T)[ξ]` for the tile rows `ty` of the `c` output-gradient planes `gy`
/// (`oh x ow`, contiguous); positions past `oh x ow` count as zero. `Z` is laid out as `zl`
/// says, `tw = ceil(ow / 2)`; rows of fewer than `L` tiles are written as in [`input_transform`]
/// (whole chunks, in order).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn grad_transform(gy: &[f32], c: usize, oh: usize, ow: usize, ty: Range<usize>, tw: usize, z: &mut [f32], zl: Band) {
    assert!(ow.div_ceil(2) == tw && oh.div_ceil(2) >= ty.end && zl.rs >= ty.len() * tw && zl.xs >= c * zl.rs + L);
    let stride = zl.xs;
    let z = &mut z[..16 * stride];
    let zp = z.as_mut_ptr();
    let zero = _mm256_setzero_ps();
    let rows = (2 * ty.start).min(oh)..(2 * ty.end).min(oh);
    for ci in 0..c {
        let plane = &gy[ci * oh * ow..(ci + 1) * oh * ow];
        if ci + 1 < c {
            // The band's rows of each plane are a short run a plane apart, too short for the
            // hardware prefetcher to pick up before it ends: ask for the next one now.
            let next = &gy[(ci + 1) * oh * ow + rows.start * ow..(ci + 1) * oh * ow + rows.end * ow];
            for line in next.iter().step_by(16) {
                _mm_prefetch::<_MM_HINT_T0>(line as *const f32 as *const i8);
            }
        }
        for (bi, y) in ty.clone().enumerate() {
            let o = ci * zl.rs + bi * tw;
            for k0 in chunk_starts(tw) {
                // Columns 2k0 .. 2k0 + 16 of rows 2y and 2y + 1, de-interleaved into the tiles'
                // left (a) and right (b) columns.
                let row = |r: usize| -> (__m256, __m256) {
                    if 2 * y + r >= oh {
                        return (zero, zero);
                    }
                    let src = &plane[(2 * y + r) * ow..(2 * y + r + 1) * ow];
                    if 2 * k0 + 2 * L <= ow {
                        deinterleave(&src[2 * k0..])
                    } else {
                        deinterleave_first(&src[2 * k0..], ow - 2 * k0)
                    }
                };
                let ((a0, b0), (a1, b1)) = (row(0), row(1));
                // Q = A dY: rows dy0, dy0 + dy1, dy0 - dy1, -dy1; then Z = Q A^T per row:
                // a, a + b, a - b, -b.
                let q = [
                    (a0, b0),
                    (_mm256_add_ps(a0, a1), _mm256_add_ps(b0, b1)),
                    (_mm256_sub_ps(a0, a1), _mm256_sub_ps(b0, b1)),
                    (_mm256_sub_ps(zero, a1), _mm256_sub_ps(zero, b1)),
                ];
                for (r, &(a, b)) in q.iter().enumerate() {
                    let zr = [a, _mm256_add_ps(a, b), _mm256_sub_ps(a, b), _mm256_sub_ps(zero, b)];
                    for (j, &zv) in zr.iter().enumerate() {
                        let at = (r * 4 + j) * stride + o + k0;
                        // SAFETY: ξ < 16 blocks of `stride`, o + k0 + 8 <= c*rs + 8 <= stride
                        // (asserted above).
                        unsafe { _mm256_storeu_ps(zp.add(at), zv) };
                    }
                }
            }
        }
    }
}

/// Output channels per panel of the product's packed weights (its tile: 16 tiles x 6 channels).
const NR: usize = 6;
/// Tiles per panel.
const MR: usize = 16;

/// `blocks` row-major `[cout][cin]` matrices (the `U[ξ]` of every group and ξ) packed as panels
/// of `NR` output channels: block `b`, panel `p` holds `[cin][NR]` (zeros past `cout`).
pub(crate) fn pack_u(u: &[f32], blocks: usize, cout: usize, cin: usize) -> PooledVec<f32> {
    let mut buf = PooledVec::<f32>::filled(packed_u_len(blocks, cout, cin), 0.0);
    let out = buf.as_mut_slice();
    for b in 0..blocks {
        for co in 0..cout {
            for (ci, &val) in u[(b * cout + co) * cin..][..cin].iter().enumerate() {
                out[packed_u_index(b, co, ci, cout, cin)] = val;
            }
        }
    }
    buf
}

/// Floats of [`pack_u`]'s buffer.
pub(crate) fn packed_u_len(blocks: usize, cout: usize, cin: usize) -> usize {
    blocks * cout.div_ceil(NR) * cin * NR
}

/// Where [`pack_u`] puts `U[block][co][ci]`.
#[inline]
pub(crate) fn packed_u_index(block: usize, co: usize, ci: usize, cout: usize, cin: usize) -> usize {
    (block * cout.div_ceil(NR) + co / NR) * cin * NR + ci * NR + co % NR
}

/// `M[co][t] = Σ_ci U[co][ci] · V[ci][t]` for `co < cout` and `t` below `ntiles` rounded up to
/// a multiple of 16: `up` is one block of [`pack_u`], `V` rows are `vrs` apart and `M` rows `mrs`
/// apart. With U packed once per call and V read where the transform wrote it (one panel is
/// 16 floats of each of `cin` rows), nothing is packed per product: the general gemm packed both
/// operands of each of these small products (64 x 112 x 64 in W2) and ran at ~80% of this.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn gemm_uv(cout: usize, cin: usize, ntiles: usize, up: &[f32], v: &[f32], vrs: usize, m: &mut [f32], mrs: usize) {
    if cout == 0 || ntiles == 0 {
        return;
    }
    let ntp = ntiles.next_multiple_of(MR);
    assert!(cin > 0 && ntp <= vrs.min(mrs));
    assert!(up.len() >= cout.div_ceil(NR) * cin * NR && v.len() >= (cin - 1) * vrs + ntp && m.len() >= (cout - 1) * mrs + ntp);
    for q in (0..ntp).step_by(MR) {
        // SAFETY: the asserts above keep every panel inside the operands.
        unsafe { uv_panels(cout, cin, up, v[q..].as_ptr(), vrs, m[q..].as_mut_ptr(), mrs) };
    }
}

/// [`gemm_uv`] for exactly `ncols >= 16` columns, whatever their number: the last panel is moved
/// back to end at `ncols`, recomputing (and rewriting with the same values) up to 15 columns
/// of the one before, so nothing is read or written past a row. For a 1x1 convolution, where
/// `V` is an image's planes and `M` its output planes.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn gemm_uv_cols(cout: usize, cin: usize, ncols: usize, up: &[f32], v: &[f32], vrs: usize, m: &mut [f32], mrs: usize) {
    if cout == 0 {
        return;
    }
    assert!(cin > 0 && ncols >= MR && ncols <= vrs.min(mrs));
    assert!(up.len() >= cout.div_ceil(NR) * cin * NR && v.len() >= (cin - 1) * vrs + ncols && m.len() >= (cout - 1) * mrs + ncols);
    let mut q0 = 0;
    while q0 < ncols {
        let q = q0.min(ncols - MR);
        // SAFETY: columns q..q + 16 <= ncols of every row, inside the operands (asserted).
        unsafe { uv_panels(cout, cin, up, v[q..].as_ptr(), vrs, m[q..].as_mut_ptr(), mrs) };
        q0 = q + MR;
    }
}

/// `M[co][0..16] = Σ_ci U[co][ci] · V[ci][0..16]` for every `co < cout`, panel by panel of `NR`.
///
/// # Safety
/// `up` holds `cout.div_ceil(NR) * cin * NR` floats; `v` is readable at `ci*vrs + 0..16` for
/// `ci < cin`, and `m` writable at `co*mrs + 0..16` for `co < cout`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn uv_panels(cout: usize, cin: usize, up: &[f32], v: *const f32, vrs: usize, m: *mut f32, mrs: usize) {
    for p in 0..cout.div_ceil(NR) {
        let co = p * NR;
        let b = up[p * cin * NR..].as_ptr();
        // SAFETY: the caller's contract; rows co..co + N < cout.
        unsafe {
            let c = m.add(co * mrs);
            match cout - co {
                1 => uv_tile::<1>(cin, v, vrs, b, c, mrs),
                2 => uv_tile::<2>(cin, v, vrs, b, c, mrs),
                3 => uv_tile::<3>(cin, v, vrs, b, c, mrs),
                4 => uv_tile::<4>(cin, v, vrs, b, c, mrs),
                5 => uv_tile::<5>(cin, v, vrs, b, c, mrs),
                _ => uv_tile::<6>(cin, v, vrs, b, c, mrs),
            }
        }
    }
}

/// One 16 x N tile: `M[j][0..16] = Σ_k V[k][0..16] · U[k][j]` for `j < N`, 12 accumulators.
///
/// # Safety
/// `v` readable at `k*vrs + 0..16` and `u` at `k*NR + 0..N` for `k < kc`; `m` writable at
/// `j*mrs + 0..16` for `j < N`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn uv_tile<const N: usize>(kc: usize, v: *const f32, vrs: usize, u: *const f32, m: *mut f32, mrs: usize) {
    let mut lo = [_mm256_setzero_ps(); N];
    let mut hi = [_mm256_setzero_ps(); N];
    let (mut v, mut u) = (v, u);
    // SAFETY: the caller's contract.
    unsafe {
        for _ in 0..kc {
            let a0 = _mm256_loadu_ps(v);
            let a1 = _mm256_loadu_ps(v.add(8));
            for j in 0..N {
                let b = _mm256_broadcast_ss(&*u.add(j));
                lo[j] = _mm256_fmadd_ps(a0, b, lo[j]);
                hi[j] = _mm256_fmadd_ps(a1, b, hi[j]);
            }
            v = v.add(vrs);
            u = u.add(NR);
        }
        for j in 0..N {
            _mm256_storeu_ps(m.add(j * mrs), lo[j]);
            _mm256_storeu_ps(m.add(j * mrs + 8), hi[j]);
        }
    }
}
