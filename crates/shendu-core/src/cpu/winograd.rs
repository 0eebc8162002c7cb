//! Winograd F(2x2, 3x3) for 3x3, stride-1, undilated convolutions with enough channels: each
//! 2x2 output tile costs 16 multiplies per (input, output) channel pair instead of 36, so the
//! gemm work drops 2.25x; the transforms are additions. Errors grow by a small constant factor
//! over direct summation (the transform matrices hold only 0, ±1 and ±1/2).
//!
//! Per image: the input group is copied into a zero-padded scratch (so transforms need no bounds
//! tests), then for each band of tile rows: input transform `V[ξ] [cin, tiles]`, 16 gemms
//! `M[ξ] = U[ξ] [cout, cin] · V[ξ]`, output transform into the result.

use std::ops::Range;

use crate::cpu::conv::{ConvElem, ConvGeom, View4};
use crate::cpu::elementwise::SendPtr;
use crate::cpu::gemm::{gemm, MatMut, MatRef};
use crate::cpu::simd::{dispatch, Madd, SimdKernel};
use crate::cpu::threads;
use crate::dtype::Float;
use crate::pool::PooledVec;

/// Tiles per band: V and M of one band (16 x channels x tiles each) stay in L2.
const BAND_TILES: usize = 112;

/// True when [`forward`] handles this geometry (and is worth it).
pub fn applies(g: &ConvGeom) -> bool {
    g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.cin_g() >= 16 && g.cout_g() >= 16 && g.oh >= 2 && g.ow >= 2
}

/// `U[ξ][co][ci] = (G g G^T)[ξ]` for every (co, ci) of every group: `[groups][16][cout_g][cin_g]`.
fn transform_weights<T: ConvElem>(w: &[T], g: &ConvGeom) -> PooledVec<T> {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let mut u = PooledVec::<T>::uninit(g.groups * 16 * cout_g * cin_g);
    let us = u.as_mut_slice();
    let half = T::from_f64(0.5);
    for grp in 0..g.groups {
        for co in 0..cout_g {
            for ci in 0..cin_g {
                let k = &w[((grp * cout_g + co) * cin_g + ci) * 9..][..9];
                // rows of G k: [k0, (k0+k1+k2)/2, (k0-k1+k2)/2, k2] per column
                let mut t = [[<T as Float>::ZERO; 3]; 4];
                for c in 0..3 {
                    let (a, b, d) = (k[c], k[3 + c], k[6 + c]);
                    t[0][c] = a;
                    t[1][c] = (a + b + d) * half;
                    t[2][c] = (a - b + d) * half;
                    t[3][c] = d;
                }
                for (r, tr) in t.iter().enumerate() {
                    let v = [tr[0], (tr[0] + tr[1] + tr[2]) * half, (tr[0] - tr[1] + tr[2]) * half, tr[2]];
                    for (c, &vc) in v.iter().enumerate() {
                        us[((grp * 16 + r * 4 + c) * cout_g + co) * cin_g + ci] = vc;
                    }
                }
            }
        }
    }
    u
}

/// `out [n, cout, oh, ow]` (overwritten) = conv(x, w) for a geometry where [`applies`] holds.
pub fn forward<T: ConvElem>(x: &[T], xv: View4, w: &[T], g: &ConvGeom, out: &mut [T]) {
    let u = transform_weights(w, g);
    let (th, tw) = (g.oh.div_ceil(2), g.ow.div_ceil(2));
    let out = SendPtr(out.as_mut_ptr());
    let t = threads::num_threads();
    let run = |r: Range<usize>, threads: bool| {
        let band_rows = (BAND_TILES / tw).clamp(1, th);
        let (hp, wp) = (2 * th + 2, 2 * tw + 2);
        let mut p = PooledVec::<T>::filled(g.cin_g() * hp * wp, <T as Float>::ZERO);
        let mut v = PooledVec::<T>::uninit(16 * g.cin_g() * band_rows * tw);
        let mut m = PooledVec::<T>::uninit(16 * g.cout_g() * band_rows * tw);
        for n in r {
            for grp in 0..g.groups {
                load_padded(x, &xv, g, n, grp, hp, wp, p.as_mut_slice());
                let ug = &u.as_slice()[grp * 16 * g.cout_g() * g.cin_g()..];
                for ty0 in (0..th).step_by(band_rows) {
                    let ty1 = (ty0 + band_rows).min(th);
                    let ntiles = (ty1 - ty0) * tw;
                    dispatch(InputTransform { p: p.as_slice(), hp, wp, c: g.cin_g(), ty: ty0..ty1, tw, v: v.as_mut_slice() });
                    for xi in 0..16 {
                        // SAFETY: M[ξ] is cout_g x ntiles inside `m`, U[ξ] and V[ξ] likewise.
                        unsafe {
                            gemm(
                                g.cout_g(),
                                ntiles,
                                g.cin_g(),
                                MatMut { ptr: m.as_mut_slice()[xi * g.cout_g() * ntiles..].as_mut_ptr(), rs: ntiles as isize, cs: 1 },
                                false,
                                MatRef { ptr: ug[xi * g.cout_g() * g.cin_g()..].as_ptr(), rs: g.cin_g() as isize, cs: 1 },
                                MatRef { ptr: v.as_slice()[xi * g.cin_g() * ntiles..].as_ptr(), rs: ntiles as isize, cs: 1 },
                                threads,
                            );
                        }
                    }
                    let base = (n * g.cout + grp * g.cout_g()) * g.oh * g.ow;
                    dispatch(OutputTransform { m: m.as_slice(), c: g.cout_g(), ty: ty0..ty1, tw, oh: g.oh, ow: g.ow, out, base });
                }
            }
        }
    };
    if t > 1 && g.n >= t {
        threads::parallel_ranges(g.n, 1, |r| run(r, false));
    } else {
        run(0..g.n, true);
    }
}

/// Copies the group's input planes of image `n` into `p` (`c` planes of `hp x wp`) at offset
/// (pt, pl); the rest of `p` stays zero (the same region is written for every image).
#[allow(clippy::too_many_arguments)]
fn load_padded<T: ConvElem>(x: &[T], xv: &View4, g: &ConvGeom, n: usize, grp: usize, hp: usize, wp: usize, p: &mut [T]) {
    let [sn, sc, ys, xs] = xv.strides;
    let rows = g.h.min(hp.saturating_sub(g.pt));
    let cols = g.w.min(wp.saturating_sub(g.pl));
    for c in 0..g.cin_g() {
        let src = xv.offset + n * sn + (grp * g.cin_g() + c) * sc;
        let dst = &mut p[c * hp * wp..(c + 1) * hp * wp];
        for y in 0..rows {
            let d = &mut dst[(y + g.pt) * wp + g.pl..][..cols];
            let s = src + y * ys;
            if xs == 1 {
                d.copy_from_slice(&x[s..s + cols]);
            } else {
                for (k, o) in d.iter_mut().enumerate() {
                    *o = x[s + k * xs];
                }
            }
        }
    }
}

/// `V[ξ][c][tile] = (B^T d B)[ξ]` for the tiles of tile rows `ty` (all `tw` columns).
struct InputTransform<'a, T> {
    p: &'a [T],
    hp: usize,
    wp: usize,
    c: usize,
    ty: Range<usize>,
    tw: usize,
    v: &'a mut [T],
}

impl<T: ConvElem> SimdKernel for InputTransform<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let InputTransform { p, hp, wp, c, ty, tw, v } = self;
        let ntiles = ty.len() * tw;
        let stride = c * ntiles;
        for ci in 0..c {
            let plane = &p[ci * hp * wp..(ci + 1) * hp * wp];
            for (bi, y) in ty.clone().enumerate() {
                let row = |r: usize| &plane[(2 * y + r) * wp..(2 * y + r) * wp + 2 * tw + 2];
                let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
                let o = ci * ntiles + bi * tw;
                // 16 output streams, contiguous along the tile index.
                let (v0, rest) = v.split_at_mut(stride);
                let (v1, rest) = rest.split_at_mut(stride);
                let (v2, rest) = rest.split_at_mut(stride);
                let (v3, rest) = rest.split_at_mut(stride);
                let (v4, rest) = rest.split_at_mut(stride);
                let (v5, rest) = rest.split_at_mut(stride);
                let (v6, rest) = rest.split_at_mut(stride);
                let (v7, rest) = rest.split_at_mut(stride);
                let (v8, rest) = rest.split_at_mut(stride);
                let (v9, rest) = rest.split_at_mut(stride);
                let (v10, rest) = rest.split_at_mut(stride);
                let (v11, rest) = rest.split_at_mut(stride);
                let (v12, rest) = rest.split_at_mut(stride);
                let (v13, rest) = rest.split_at_mut(stride);
                let (v14, v15) = rest.split_at_mut(stride);
                let vs: [&mut [T]; 16] = [
                    &mut v0[o..o + tw],
                    &mut v1[o..o + tw],
                    &mut v2[o..o + tw],
                    &mut v3[o..o + tw],
                    &mut v4[o..o + tw],
                    &mut v5[o..o + tw],
                    &mut v6[o..o + tw],
                    &mut v7[o..o + tw],
                    &mut v8[o..o + tw],
                    &mut v9[o..o + tw],
                    &mut v10[o..o + tw],
                    &mut v11[o..o + tw],
                    &mut v12[o..o + tw],
                    &mut v13[o..o + tw],
                    &mut v14[o..o + tw],
                    &mut v15[o..o + tw],
                ];
                let [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15] = vs;
                for k in 0..tw {
                    let d = |r: &[T], j: usize| r[2 * k + j];
                    // s = B^T d, one column j at a time
                    let s = |j: usize| {
                        let (x0, x1, x2, x3) = (d(r0, j), d(r1, j), d(r2, j), d(r3, j));
                        [x0 - x2, x1 + x2, x2 - x1, x1 - x3]
                    };
                    let (c0, c1, c2, c3) = (s(0), s(1), s(2), s(3));
                    // V = s B, row r: [c0 - c2, c1 + c2, c2 - c1, c1 - c3]
                    a0[k] = c0[0] - c2[0];
                    a1[k] = c1[0] + c2[0];
                    a2[k] = c2[0] - c1[0];
                    a3[k] = c1[0] - c3[0];
                    a4[k] = c0[1] - c2[1];
                    a5[k] = c1[1] + c2[1];
                    a6[k] = c2[1] - c1[1];
                    a7[k] = c1[1] - c3[1];
                    a8[k] = c0[2] - c2[2];
                    a9[k] = c1[2] + c2[2];
                    a10[k] = c2[2] - c1[2];
                    a11[k] = c1[2] - c3[2];
                    a12[k] = c0[3] - c2[3];
                    a13[k] = c1[3] + c2[3];
                    a14[k] = c2[3] - c1[3];
                    a15[k] = c1[3] - c3[3];
                }
            }
        }
    }
}

/// `out[co][2y + r][2x + s] = (A^T m A)[r][s]` for the band's tiles, clipped to `oh x ow`.
struct OutputTransform<'a, T> {
    m: &'a [T],
    c: usize,
    ty: Range<usize>,
    tw: usize,
    oh: usize,
    ow: usize,
    out: SendPtr<T>,
    base: usize,
}

impl<T: ConvElem> SimdKernel for OutputTransform<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let OutputTransform { m, c, ty, tw, oh, ow, out, base } = self;
        let ntiles = ty.len() * tw;
        let stride = c * ntiles;
        let full = ow / 2;
        for co in 0..c {
            for (bi, y) in ty.clone().enumerate() {
                let o = co * ntiles + bi * tw;
                let ms: [&[T]; 16] = std::array::from_fn(|xi| &m[xi * stride + o..xi * stride + o + tw]);
                let row0 = base + (co * oh + 2 * y) * ow;
                // SAFETY: rows 2y and 2y+1 (when < oh) of output channel co belong to this call.
                let out0 = unsafe { out.slice_mut(row0..row0 + ow) };
                let two_rows = 2 * y + 1 < oh;
                let mut out1 = if two_rows { Some(unsafe { out.slice_mut(row0 + ow..row0 + 2 * ow) }) } else { None };
                let tile = |k: usize| {
                    let g = |xi: usize| ms[xi][k];
                    // t = A^T m: 2 x 4
                    let t0: [T; 4] = std::array::from_fn(|j| g(j) + g(4 + j) + g(8 + j));
                    let t1: [T; 4] = std::array::from_fn(|j| g(4 + j) - g(8 + j) - g(12 + j));
                    [[t0[0] + t0[1] + t0[2], t0[1] - t0[2] - t0[3]], [t1[0] + t1[1] + t1[2], t1[1] - t1[2] - t1[3]]]
                };
                match out1.as_deref_mut() {
                    Some(o1) => {
                        let (o0, o1) = (&mut out0[..2 * full], &mut o1[..]);
                        for k in 0..full {
                            let y = tile(k);
                            o0[2 * k] = y[0][0];
                            o0[2 * k + 1] = y[0][1];
                            o1[2 * k] = y[1][0];
                            o1[2 * k + 1] = y[1][1];
                        }
                        if full < tw {
                            let y = tile(full);
                            out0[2 * full] = y[0][0];
                            o1[2 * full] = y[1][0];
                        }
                    }
                    None => {
                        for k in 0..tw {
                            let y = tile(k);
                            out0[2 * k] = y[0][0];
                            if 2 * k + 1 < ow {
                                out0[2 * k + 1] = y[0][1];
                            }
                        }
                    }
                }
            }
        }
    }
}
