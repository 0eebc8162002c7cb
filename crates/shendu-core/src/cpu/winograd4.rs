//! Winograd F(4x4, 3x3) for f32 3x3 stride-1 convolutions on CPUs with AVX2+FMA (Lavin & Gray
//! 2016, the points 0, ±1, ±2, ∞): each 4x4 output tile costs 36 multiplies per (input, output)
//! channel pair instead of 144, 4x fewer than direct and 1.78x fewer than F(2x2, 3x3); the
//! transformed input is 2.25x the input instead of 4x. The transforms hold 4s, 5s and 8s (and
//! the weights' 1/6, 1/12, 1/24), so the rounding error grows: against f64, rms 0.9-1.7e-6 of
//! the outputs' rms and at most 7e-6 of the largest output, 5-7x F(2x2, 3x3)'s (tests/
//! winograd4.rs), still far inside what training notices; cuDNN makes the same trade for f32.
//!
//! Same structure as [`super::winograd`]: per image, a zero-padded copy of the input group (plain
//! rows; the transform de-interleaves the tiles' columns in registers), then per band of tile
//! rows the input transform `V[ξ] [cin, tiles]`, 36 products `M[ξ] = U[ξ] · V[ξ]` through the
//! broadcast kernel of `winograd_avx2` on weights packed once per call, and the output
//! transform. The input gradient of a stride-1 convolution is the forward of the flipped
//! kernel, so it takes this path too. f64, other CPUs and maps too small to fill the products'
//! 16-tile panels keep F(2x2, 3x3).

use std::arch::x86_64::*;

use crate::cpu::conv::{ConvGeom, View4};
use crate::cpu::conv_threads::for_items;
use crate::cpu::elementwise::SendPtr;
use crate::cpu::winograd::{self, chunk_starts, Band, L};
use crate::cpu::winograd_avx2::{first_lanes, gemm_uv, packed_u_index, packed_u_len};
use crate::pool::PooledVec;

/// Transformed values per tile.
pub(crate) const XI: usize = 36;

/// Tiles per band: the band's V and M (36 x channels x tiles each) stay near L2.
pub(crate) const BAND_TILES: usize = 64;

/// Floats of room after the padded planes: a chunk of a row narrower than 8 tiles reads 36
/// columns from its start (scratch lanes past the row, see [`input_transform`]).
pub(crate) const ROOM: usize = 40;

/// True when [`forward`] handles this geometry: where F(2x2, 3x3) applies, on an f32-capable
/// CPU, with at least 16 tiles of 4x4 per image (smaller maps leave the products' 16-tile panels
/// mostly empty) and unit input column stride.
pub(crate) fn applies(g: &ConvGeom, xv: &View4) -> bool {
    winograd::applies(g) && xv.strides[3] == 1 && g.oh.div_ceil(4) * g.ow.div_ceil(4) >= 16 && g.ow >= 8
}

/// `U[grp][ξ][co][ci] = (G k G^T)[ξ]`, computed in f64 and rounded once, written straight into
/// the product's packed layout (block `grp*36 + ξ`).
fn transform_weights(w: &[f32], g: &ConvGeom) -> PooledVec<f32> {
    const G: [[f64; 3]; 6] = [
        [0.25, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ];
    let (cin, cout) = (g.cin_g(), g.cout_g());
    let mut u = PooledVec::<f32>::filled(packed_u_len(g.groups * XI, cout, cin), 0.0);
    let us = u.as_mut_slice();
    for grp in 0..g.groups {
        for co in 0..cout {
            for ci in 0..cin {
                let k = &w[((grp * cout + co) * cin + ci) * 9..][..9];
                // t = G k (6 x 3), then U = t G^T (6 x 6).
                let mut t = [[0f64; 3]; 6];
                for (tr, gr) in t.iter_mut().zip(&G) {
                    for (c, tc) in tr.iter_mut().enumerate() {
                        *tc = gr[0] * k[c] as f64 + gr[1] * k[3 + c] as f64 + gr[2] * k[6 + c] as f64;
                    }
                }
                for (r, tr) in t.iter().enumerate() {
                    for (c, gc) in G.iter().enumerate() {
                        let v = tr[0] * gc[0] + tr[1] * gc[1] + tr[2] * gc[2];
                        us[packed_u_index(grp * XI + r * 6 + c, co, ci, cout, cin)] = v as f32;
                    }
                }
            }
        }
    }
    u
}

/// `out [n, cout, oh, ow]` (overwritten) = conv(x, w) for a geometry where [`applies`] holds.
///
/// # Safety
/// The CPU has AVX2 and FMA (`simd::as_f32` found it); the slices are as for `conv::forward`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn forward(x: &[f32], xv: View4, w: &[f32], g: &ConvGeom, out: &mut [f32]) {
    let up = transform_weights(w, g);
    let per = up.len() / (g.groups * XI);
    let (th, tw) = (g.oh.div_ceil(4), g.ow.div_ceil(4));
    let (hp, wp) = (4 * th + 2, 4 * tw + 2);
    let band_rows = (BAND_TILES / tw).clamp(1, th);
    let bands = th.div_ceil(band_rows);
    let (vl, ml) = (Band::new(g.cin_g(), band_rows * tw), Band::new(g.cout_g(), band_rows * tw));
    let last_rows = th - (bands - 1) * band_rows;
    let padded = (band_rows * tw) % 16 != 0 || (last_rows * tw) % 16 != 0;
    let out_len = out.len();
    let out = SendPtr(out.as_mut_ptr());
    for_items(g.n * g.groups * bands, bands, |items, _threads| {
        let mut p = PooledVec::<f32>::filled(g.cin_g() * hp * wp + ROOM, 0.0);
        // Zeroed where a band's tiles end inside a 16-tile panel: the product reads the panel's
        // padding tiles (their results are dropped, but garbage could be NaN or subnormal).
        let mut v = if padded { PooledVec::<f32>::filled(vl.len_for(XI) + L, 0.0) } else { PooledVec::<f32>::uninit(vl.len_for(XI) + L) };
        let mut m = PooledVec::<f32>::uninit(ml.len_for(XI) + L);
        let mut loaded = None;
        for item in items {
            let (n, grp, band) = (item / (g.groups * bands), (item / bands) % g.groups, item % bands);
            if loaded != Some((n, grp)) {
                pad_planes(x, &xv, g, n, grp, hp, wp, p.as_mut_slice());
                loaded = Some((n, grp));
            }
            let (ty0, ty1) = (band * band_rows, ((band + 1) * band_rows).min(th));
            let ntiles = (ty1 - ty0) * tw;
            // SAFETY: AVX2 and FMA (the caller's contract).
            unsafe { input_transform(p.as_slice(), hp, wp, g.cin_g(), ty0..ty1, tw, v.as_mut_slice(), vl) };
            let upg = &up.as_slice()[grp * XI * per..(grp + 1) * XI * per];
            for xi in 0..XI {
                gemm_uv(
                    g.cout_g(),
                    g.cin_g(),
                    ntiles,
                    &upg[xi * per..],
                    &v.as_slice()[xi * vl.xs..],
                    vl.rs,
                    &mut m.as_mut_slice()[xi * ml.xs..],
                    ml.rs,
                );
            }
            let base = (n * g.cout + grp * g.cout_g()) * g.oh * g.ow;
            // SAFETY: the band's output rows of image n, group grp are this item's alone; every
            // store stays below out_len (asserted inside).
            unsafe { output_transform(m.as_slice(), g.cout_g(), ty0..ty1, tw, g.oh, g.ow, out, out_len, base, ml) };
        }
    });
}

/// Copies the group's input planes of image `n` into `p` (`c` planes of `hp x wp`) at offset
/// (pt, pl); the rest of `p` stays zero (the same positions are written for every image).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn pad_planes(x: &[f32], xv: &View4, g: &ConvGeom, n: usize, grp: usize, hp: usize, wp: usize, p: &mut [f32]) {
    let [sn, sc, ys, _] = xv.strides;
    let rows = g.h.min(hp.saturating_sub(g.pt));
    let cols = g.w.min(wp.saturating_sub(g.pl));
    assert!(p.len() >= g.cin_g() * hp * wp + L);
    for c in 0..g.cin_g() {
        let src = xv.offset + n * sn + (grp * g.cin_g() + c) * sc;
        for y in 0..rows {
            let at = (c * hp + y + g.pt) * wp + g.pl;
            let s = &x[src + y * ys..][..cols];
            // SAFETY: AVX2 (the caller's); whole vectors read inside `s` and the last one
            // masked. The stores reach at most L - 1 floats past the row's values, which are
            // zeros (masked lanes) landing on pads or on places written later (the next rows),
            // or on the room after the planes (asserted).
            unsafe { copy_row(s, p[at..].as_mut_ptr()) };
        }
    }
}

/// `d[0..s.len()] = s`, in whole vectors: the last vector's lanes past `s.len()` store zeros
/// (a short row's copy was a `memmove` call, a tenth of the convolution).
///
/// # Safety
/// AVX2; `s.len()` rounded up to a multiple of `L` floats are writable at `d`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn copy_row(s: &[f32], d: *mut f32) {
    // One loop with the masked load inside: a plain copy loop became a `memmove` call, whose
    // overhead on rows of a few dozen floats was a twentieth of the convolution.
    let n = s.len();
    let mut k = 0;
    while k < n {
        // SAFETY: whole vectors read below n, the last one masked to lanes below n; the
        // caller's contract for d.
        unsafe {
            let v =
                if k + L <= n { _mm256_loadu_ps(s.as_ptr().add(k)) } else { _mm256_maskload_ps(s.as_ptr().add(k), first_lanes(n - k).0) };
            _mm256_storeu_ps(d.add(k), v);
        }
        k += L;
    }
}

/// Elements `4i + q` of the 32 floats at `s`, for `q = 0..4` (`i = 0..8` in order): the
/// columns `q` of 8 consecutive tiles that start 4 apart.
///
/// # Safety
/// 32 floats are readable at `s`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn deinterleave4(s: *const f32) -> [__m256; 4] {
    // SAFETY: the caller's contract.
    unsafe { deinterleave4_regs([_mm256_loadu_ps(s), _mm256_loadu_ps(s.add(8)), _mm256_loadu_ps(s.add(16)), _mm256_loadu_ps(s.add(24))]) }
}

/// [`deinterleave4`] of 32 floats held in four vectors.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn deinterleave4_regs([v0, v1, v2, v3]: [__m256; 4]) -> [__m256; 4] {
    let (t0, t1) = (_mm256_unpacklo_ps(v0, v1), _mm256_unpackhi_ps(v0, v1));
    let (t2, t3) = (_mm256_unpacklo_ps(v2, v3), _mm256_unpackhi_ps(v2, v3));
    // Each of these holds one q, its elements in the order 0 4 2 6 1 5 3 7 of i. (No closures
    // here or below: LLVM keeps a closure out of line, without the AVX2 target feature.)
    let order = _mm256_setr_epi32(0, 4, 2, 6, 1, 5, 3, 7);
    [
        _mm256_permutevar8x32_ps(_mm256_unpacklo_ps(t0, t2), order),
        _mm256_permutevar8x32_ps(_mm256_unpackhi_ps(t0, t2), order),
        _mm256_permutevar8x32_ps(_mm256_unpacklo_ps(t1, t3), order),
        _mm256_permutevar8x32_ps(_mm256_unpackhi_ps(t1, t3), order),
    ]
}

/// The inverse of [`deinterleave4`]: 32 floats with element `4i + q` from lane `i` of `c[q]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn interleave4(c: [__m256; 4]) -> [__m256; 4] {
    // The lane order is its own inverse; then undo the two rounds of unpacks.
    let order = _mm256_setr_epi32(0, 4, 2, 6, 1, 5, 3, 7);
    let (u0, u1) = (_mm256_permutevar8x32_ps(c[0], order), _mm256_permutevar8x32_ps(c[1], order));
    let (u2, u3) = (_mm256_permutevar8x32_ps(c[2], order), _mm256_permutevar8x32_ps(c[3], order));
    let (t0, t2) = (_mm256_shuffle_ps::<0x88>(u0, u1), _mm256_shuffle_ps::<0xDD>(u0, u1));
    let (t1, t3) = (_mm256_shuffle_ps::<0x88>(u2, u3), _mm256_shuffle_ps::<0xDD>(u2, u3));
    [
        _mm256_shuffle_ps::<0x88>(t0, t1),
        _mm256_shuffle_ps::<0xDD>(t0, t1),
        _mm256_shuffle_ps::<0x88>(t2, t3),
        _mm256_shuffle_ps::<0xDD>(t2, t3),
    ]
}

/// `B^T d` for one column `d[0..6]` (or `s B` for one row): the rows of Lavin's F(4, 3) input
/// transform, `4d0 - 5d2 + d4`, `-4d1 - 4d2 + d3 + d4`, `4d1 - 4d2 - d3 + d4`,
/// `-2d1 - d2 + 2d3 + d4`, `2d1 - d2 - 2d3 + d4`, `4d1 - 5d3 + d5`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn bt(d: [__m256; 6]) -> [__m256; 6] {
    let (four, five, two) = (_mm256_set1_ps(4.0), _mm256_set1_ps(5.0), _mm256_set1_ps(2.0));
    let a = _mm256_fnmadd_ps(four, d[2], d[4]); // d4 - 4d2
    let b = _mm256_fnmadd_ps(four, d[1], d[3]); // d3 - 4d1
    let c = _mm256_sub_ps(d[4], d[2]);
    let e = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));
    [
        _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4])),
        _mm256_add_ps(a, b),
        _mm256_sub_ps(a, b),
        _mm256_add_ps(c, e),
        _mm256_sub_ps(c, e),
        _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5])),
    ]
}

/// `A^T m` for one column `m[0..6]` (or `t A` for one row): `m0 + m1 + m2 + m3 + m4`,
/// `m1 - m2 + 2(m3 - m4)`, `m1 + m2 + 4(m3 + m4)`, `m1 - m2 + 8(m3 - m4) + m5`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn at(m: [__m256; 6]) -> [__m256; 4] {
    let (s12, d12) = (_mm256_add_ps(m[1], m[2]), _mm256_sub_ps(m[1], m[2]));
    let (s34, d34) = (_mm256_add_ps(m[3], m[4]), _mm256_sub_ps(m[3], m[4]));
    [
        _mm256_add_ps(_mm256_add_ps(m[0], s12), s34),
        _mm256_fmadd_ps(_mm256_set1_ps(2.0), d34, d12),
        _mm256_fmadd_ps(_mm256_set1_ps(4.0), s34, s12),
        _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0), d34, d12), m[5]),
    ]
}

/// `V[ξ][c][tile] = (B^T d B)[ξ]` for all `tw` tiles of the tile rows `ty` of the padded planes
/// `p` (`c` planes of `hp x wp`, then [`ROOM`] floats), laid out as `vl` says.
///
/// A chunk of 8 tiles reads columns `4k0 .. 4k0 + 36` of six padded rows. Rows of fewer than 8
/// tiles take one chunk each, whose lanes past `tw` read on into the next rows and are scratch:
/// they are stored too, over the next tile row's first tiles (or past the channel's tiles),
/// which are written after them, so `V` needs `L` floats of room after its last channel.
#[allow(clippy::too_many_arguments)]
#[allow(clippy::needless_range_loop)] // the loops read columns of blocks held as rows
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn input_transform(
    p: &[f32],
    hp: usize,
    wp: usize,
    c: usize,
    ty: std::ops::Range<usize>,
    tw: usize,
    v: &mut [f32],
    vl: Band,
) {
    assert!(wp == 4 * tw + 2 && hp >= 4 * ty.end + 2 && p.len() >= c * hp * wp + ROOM);
    assert!(vl.rs >= ty.len() * tw && vl.xs >= c * vl.rs && v.len() >= XI * vl.xs + L);
    let vp = v.as_mut_ptr();
    for ci in 0..c {
        for (bi, y) in ty.clone().enumerate() {
            let rows = &p[(ci * hp + 4 * y) * wp..][..5 * wp + 4 * tw.max(L) + 4];
            let rp = rows.as_ptr();
            let o = ci * vl.rs + bi * tw;
            for k0 in chunk_starts(tw) {
                // w = d B, row by row: d[r][j] of tiles k0..k0 + 8 is column 4(k0 + l) + j of
                // row r; columns j < 4 come from the 32 floats at 4k0, 4 and 5 from those at
                // 4k0 + 4.
                let mut w = [[_mm256_setzero_ps(); 6]; 6];
                for (r, wr) in w.iter_mut().enumerate() {
                    // SAFETY: r*wp + 4k0 + 36 <= 5*wp + 4*max(tw, 8) + 4: inside `rows`.
                    let (a, b) = unsafe {
                        let at0 = rp.add(r * wp + 4 * k0);
                        (deinterleave4(at0), deinterleave4(at0.add(4)))
                    };
                    *wr = bt([a[0], a[1], a[2], a[3], b[0], b[1]]);
                }
                // V = B^T w, column by column.
                for j in 0..6 {
                    let col = bt([w[0][j], w[1][j], w[2][j], w[3][j], w[4][j], w[5][j]]);
                    for (i, &val) in col.iter().enumerate() {
                        // SAFETY: ξ = 6i + j < 36 blocks of xs, and o + k0 + 8 <= c*rs + L:
                        // inside `v` (asserted above).
                        unsafe { _mm256_storeu_ps(vp.add((6 * i + j) * vl.xs + o + k0), val) };
                    }
                }
            }
        }
    }
}

/// `out[co][4y + r][4x + s] = (A^T m A)[r][s]` for the tile rows `ty`, clipped to `oh x ow`;
/// output channel `co` starts at `base + co*oh*ow`.
///
/// # Safety
/// AVX2 and FMA; `out` holds `out_len` floats, rows `4*ty.start .. min(4*ty.end, oh)` of the `c`
/// output planes at `base` are the caller's alone.
#[allow(clippy::too_many_arguments)]
#[allow(clippy::needless_range_loop)] // the loops read columns of blocks held as rows
#[target_feature(enable = "avx2,fma")]
unsafe fn output_transform(
    m: &[f32],
    c: usize,
    ty: std::ops::Range<usize>,
    tw: usize,
    oh: usize,
    ow: usize,
    out: SendPtr<f32>,
    out_len: usize,
    base: usize,
    ml: Band,
) {
    assert!(ow.div_ceil(4) == tw && oh.div_ceil(4) >= ty.end && ml.rs >= ty.len() * tw && m.len() >= XI * ml.xs + L);
    assert!(base + c * oh * ow <= out_len);
    let mp = m.as_ptr();
    for co in 0..c {
        for (bi, y) in ty.clone().enumerate() {
            let o = co * ml.rs + bi * tw;
            let nrows = (oh - 4 * y).min(4);
            for k0 in chunk_starts(tw) {
                // t = A^T m, column by column; then Y = t A, row by row.
                let mut t = [[_mm256_setzero_ps(); 4]; 6];
                for (j, tj) in t.iter_mut().enumerate() {
                    let mut col = [_mm256_setzero_ps(); 6];
                    for (i, ci) in col.iter_mut().enumerate() {
                        // SAFETY: ξ < 36 blocks of xs, o + k0 + 8 <= c*rs + L (asserted).
                        *ci = unsafe { _mm256_loadu_ps(mp.add((6 * i + j) * ml.xs + o + k0)) };
                    }
                    *tj = at(col);
                }
                let cols = (4 * (k0 + L)).min(ow) - 4 * k0;
                for r in 0..nrows {
                    let row = interleave4(at([t[0][r], t[1][r], t[2][r], t[3][r], t[4][r], t[5][r]]));
                    let start = base + (co * oh + 4 * y + r) * ow + 4 * k0;
                    // SAFETY: columns 4k0 .. 4k0 + cols < ow of an output row of this call.
                    unsafe { put_row(out.get().add(start), cols, row) };
                }
            }
        }
    }
}

/// Writes the first `cols <= 32` floats of `v`: whole vectors plainly, the partial one masked.
///
/// # Safety
/// `cols` floats are writable at `d`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn put_row(d: *mut f32, cols: usize, v: [__m256; 4]) {
    // The mask test inside the loop, as in `copy_row`: plain stores of the array became a
    // `memmove` call.
    for (i, &vi) in v.iter().enumerate() {
        let k = i * L;
        if k >= cols {
            break;
        }
        // SAFETY: whole vectors below cols, the last one masked to the lanes below cols.
        unsafe {
            if k + L <= cols {
                _mm256_storeu_ps(d.add(k), vi);
            } else {
                _mm256_maskstore_ps(d.add(k), first_lanes(cols - k).0, vi);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave4_undoes_deinterleave4() {
        if !crate::cpu::simd::fma_enabled() {
            return;
        }
        let s: Vec<f32> = (0..32).map(|i| i as f32).collect();
        // SAFETY: AVX2+FMA checked; 32 floats.
        let (phases, back) = unsafe {
            let ph = deinterleave4(s.as_ptr());
            (ph, interleave4(ph))
        };
        let lanes = |v: __m256| {
            let mut o = [0f32; 8];
            // SAFETY: 8 floats.
            unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) };
            o
        };
        for (q, ph) in phases.iter().enumerate() {
            assert_eq!(lanes(*ph), std::array::from_fn::<f32, 8, _>(|i| (4 * i + q) as f32), "phase {q}");
        }
        let flat: Vec<f32> = back.iter().flat_map(|v| lanes(*v)).collect();
        assert_eq!(flat, s);
    }
}
