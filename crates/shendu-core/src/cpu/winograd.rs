//! Winograd F(2x2, 3x3) for 3x3, stride-1, undilated convolutions with enough channels (f32
//! maps of at least 16 tiles of 4x4 take F(4x4, 3x3) in `winograd4` instead): each
//! 2x2 output tile costs 16 multiplies per (input, output) channel pair instead of 36, so the
//! gemm work drops 2.25x; the transforms are additions. The transform matrices hold only 0, ±1
//! and ±1/2, so the rounding error stays that of direct summation: on W2-sized f32 data the rms
//! error against f64 was 3.1e-7 relative for the output (im2col: 3.5e-7), and similar for both
//! gradients.
//!
//! Per image: the input group is copied into a zero-padded scratch (so transforms need no bounds
//! tests), then for each band of tile rows: input transform `V[ξ] [cin, tiles]`, 16 products
//! `M[ξ] = U[ξ] [cout, cin] · V[ξ]`, output transform into the result. For f32 on CPUs with
//! AVX2+FMA the copy, the transforms and the products run the kernels of `winograd_avx2` (the
//! products on weights packed once per call, reading V where the transform wrote it); W2's
//! forward went from 14.7 to 11-12 ms on one thread with them. Maps whose tile rows are narrower
//! than a vector (up to 14 columns: ResNet's 8x8 stage, 7x7) run one vector per tile row with
//! scratch lanes (see `winograd_avx2::input_transform`); the portable transforms gather such
//! tiles lane by lane.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cpu::conv::{ConvElem, ConvGeom, View4};
use crate::cpu::conv_threads::for_items;
use crate::cpu::elementwise::SendPtr;
use crate::cpu::gemm::{gemm, MatMut, MatRef};
use crate::cpu::simd::{dispatch, Madd, SimdKernel};
#[cfg(target_arch = "x86_64")]
use crate::cpu::winograd_avx2;
use crate::dtype::Float;
use crate::pool::PooledVec;

/// Tiles per band: V and M of one band (16 x channels x tiles each) stay in L2.
pub(crate) const BAND_TILES: usize = 112;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Switches the Winograd path on or off (off: those convolutions take im2col + gemm), e.g. to
/// compare the two.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// True when [`forward`] handles this geometry (and is worth it).
pub fn applies(g: &ConvGeom) -> bool {
    ENABLED.load(Ordering::Relaxed)
        && g.kh == 3
        && g.kw == 3
        && g.sh == 1
        && g.sw == 1
        && g.dh == 1
        && g.dw == 1
        && g.cin_g() >= 16
        && g.cout_g() >= 16
        && g.oh >= 2
        && g.ow >= 2
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

/// Where the transformed values of one band live: value `(ξ, channel, tile)` at
/// `ξ*xs + channel*rs + tile`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Band {
    /// Between channels: the band's tiles rounded up to whole 16-tile panels (the AVX2 product
    /// reads V in panels; the padding tiles are never read back).
    pub rs: usize,
    /// Between the ξ blocks (16 for F(2x2), 36 for F(4x4) in `winograd4`): one cache line more
    /// than the channels need, so that the streams a transform writes (or reads) do not fall
    /// into the same L1 sets, as they do at a stride of a multiple of 4 KiB (W2: 64 x 112 floats).
    pub xs: usize,
}

impl Band {
    pub(crate) fn new(channels: usize, max_tiles: usize) -> Band {
        let rs = max_tiles.next_multiple_of(16);
        Band { rs, xs: channels * rs + 16 }
    }
    /// Floats of F(2x2)'s 16 blocks.
    pub(crate) fn len(&self) -> usize {
        self.len_for(16)
    }
    /// Floats of `blocks` blocks.
    pub(crate) fn len_for(&self, blocks: usize) -> usize {
        blocks * self.xs
    }
}

/// `U` of [`transform_weights`] packed for the AVX2 product, when it runs (f32 with AVX2+FMA).
fn packed_weights<T: ConvElem>(u: &[T], g: &ConvGeom) -> Option<PooledVec<f32>> {
    #[cfg(target_arch = "x86_64")]
    if let Some(u) = crate::cpu::simd::as_f32(u) {
        return Some(winograd_avx2::pack_u(u, g.groups * 16, g.cout_g(), g.cin_g()));
    }
    let _ = (u, g);
    None
}

/// `M[ξ] = U[ξ] · V[ξ]` for the 16 ξ of one band of `ntiles` tiles: `u` is the group's
/// `[16][cout][cin]`, `up` (if any) the group's part of [`packed_weights`].
#[allow(clippy::too_many_arguments)]
fn products<T: ConvElem>(
    g: &ConvGeom,
    u: &[T],
    up: Option<&[f32]>,
    v: &[T],
    vl: Band,
    m: &mut [T],
    ml: Band,
    ntiles: usize,
    threads: bool,
) {
    let (cin, cout) = (g.cin_g(), g.cout_g());
    #[cfg(target_arch = "x86_64")]
    if let (Some(up), Some(v), Some(m)) = (up, crate::cpu::simd::as_f32(v), crate::cpu::simd::as_f32_mut(m)) {
        let per = up.len() / 16;
        for xi in 0..16 {
            // SAFETY: up is Some only when as_f32 found AVX2+FMA.
            unsafe { winograd_avx2::gemm_uv(cout, cin, ntiles, &up[xi * per..], &v[xi * vl.xs..], vl.rs, &mut m[xi * ml.xs..], ml.rs) };
        }
        return;
    }
    let _ = up;
    for xi in 0..16 {
        let mx = &mut m[xi * ml.xs..];
        assert!(mx.len() >= (cout - 1) * ml.rs + ntiles && v[xi * vl.xs..].len() >= (cin - 1) * vl.rs + ntiles);
        // SAFETY: M[ξ] (cout x ntiles, rows ml.rs apart), U[ξ] (cout x cin) and V[ξ] (cin x
        // ntiles, rows vl.rs apart) lie inside `m`, `u` and `v` (checked above).
        unsafe {
            gemm(
                cout,
                ntiles,
                cin,
                MatMut { ptr: mx.as_mut_ptr(), rs: ml.rs as isize, cs: 1 },
                false,
                MatRef { ptr: u[xi * cout * cin..].as_ptr(), rs: cin as isize, cs: 1 },
                MatRef { ptr: v[xi * vl.xs..].as_ptr(), rs: vl.rs as isize, cs: 1 },
                threads,
            );
        }
    }
}

/// `out [n, cout, oh, ow]` (overwritten) = conv(x, w) for a geometry where [`applies`] holds.
pub fn forward<T: ConvElem>(x: &[T], xv: View4, w: &[T], g: &ConvGeom, out: &mut [T]) {
    let u = transform_weights(w, g);
    let up = packed_weights(u.as_slice(), g);
    let (th, tw) = (g.oh.div_ceil(2), g.ow.div_ceil(2));
    let out = SendPtr(out.as_mut_ptr());
    let band_rows = (BAND_TILES / tw).clamp(1, th);
    let bands = th.div_ceil(band_rows);
    let (vl, ml) = (Band::new(g.cin_g(), band_rows * tw), Band::new(g.cout_g(), band_rows * tw));
    for_items(g.n * g.groups * bands, bands, |items, threads| {
        let (hp, wp) = (2 * th + 2, 2 * tw + 2);
        // L floats more: the AVX2 transform's scratch lanes of a narrow row read past the planes.
        let mut p = PooledVec::<T>::filled(g.cin_g() * hp * wp + L, <T as Float>::ZERO);
        // Zeroed: the product reads the padding tiles of the last 16-tile panel.
        let mut v = PooledVec::<T>::filled(vl.len(), <T as Float>::ZERO);
        let mut m = PooledVec::<T>::uninit(ml.len());
        let mut loaded = None;
        for item in items {
            let (n, grp, band) = (item / (g.groups * bands), (item / bands) % g.groups, item % bands);
            if loaded != Some((n, grp)) {
                load_padded(x, &xv, g, n, grp, hp, wp, p.as_mut_slice());
                loaded = Some((n, grp));
            }
            let ug = &u.as_slice()[grp * 16 * g.cout_g() * g.cin_g()..];
            let upg = up.as_ref().map(|up| &up.as_slice()[grp * up.len() / g.groups..(grp + 1) * up.len() / g.groups]);
            let (ty0, ty1) = (band * band_rows, ((band + 1) * band_rows).min(th));
            let ntiles = (ty1 - ty0) * tw;
            input_transform(p.as_slice(), hp, wp, g.cin_g(), ty0..ty1, tw, v.as_mut_slice(), vl);
            products(g, ug, upg, v.as_slice(), vl, m.as_mut_slice(), ml, ntiles, threads);
            let base = (n * g.cout + grp * g.cout_g()) * g.oh * g.ow;
            output_transform(m.as_slice(), g.cout_g(), ty0..ty1, tw, g.oh, g.ow, out, base, ml);
        }
    });
}

static ITEM_THREADS: AtomicBool = AtomicBool::new(true);

/// Chooses how convolutions use several threads: whole work items per thread (the default,
/// measured faster: no synchronisation inside an item), or one item at a time with threaded
/// gemms. For benchmarks.
pub fn set_item_threads(on: bool) {
    ITEM_THREADS.store(on, Ordering::Relaxed);
}

pub(crate) fn item_threads() -> bool {
    ITEM_THREADS.load(Ordering::Relaxed)
}

/// Copies the group's input planes of image `n` into `p` (`c` planes of `hp` rows) at offset
/// (pt, pl), each padded row stored de-interleaved: its `wp/2` even columns, then its odd ones,
/// so that the transforms read tiles (which start at even columns) with contiguous loads. The
/// rest of `p` stays zero (the same positions are written for every image).
#[allow(clippy::too_many_arguments)]
pub(crate) fn load_padded<T: ConvElem>(x: &[T], xv: &View4, g: &ConvGeom, n: usize, grp: usize, hp: usize, wp: usize, p: &mut [T]) {
    let [sn, sc, ys, xs] = xv.strides;
    let rows = g.h.min(hp.saturating_sub(g.pt));
    let cols = g.w.min(wp.saturating_sub(g.pl));
    #[cfg(target_arch = "x86_64")]
    if xs == 1 {
        if let (Some(x), Some(p)) = (crate::cpu::simd::as_f32(x), crate::cpu::simd::as_f32_mut(p)) {
            let (c, pt, pl) = (g.cin_g(), g.pt, g.pl);
            let r = winograd_avx2::PadPlanes { c, sc, ys, rows, cols, pt, pl, hp, wp };
            // SAFETY: as_f32 checked that the CPU has AVX2 and FMA.
            return unsafe { winograd_avx2::pad_planes(&x[xv.offset + n * sn + grp * c * sc..], r, p) };
        }
    }
    let half = wp / 2;
    for c in 0..g.cin_g() {
        let src = xv.offset + n * sn + (grp * g.cin_g() + c) * sc;
        let dst = &mut p[c * hp * wp..(c + 1) * hp * wp];
        for y in 0..rows {
            let (even, odd) = dst[(y + g.pt) * wp..(y + g.pt + 1) * wp].split_at_mut(half);
            let s = &x[src + y * ys..];
            for k in 0..cols {
                let col = k + g.pl;
                let v = s[k * xs];
                if col.is_multiple_of(2) {
                    even[col / 2] = v;
                } else {
                    odd[col / 2] = v;
                }
            }
        }
    }
}

/// [`InputTransform`], through the AVX2 kernel where it applies (f32; `p` ends with `L` floats of
/// room).
#[allow(clippy::too_many_arguments)]
pub(crate) fn input_transform<T: ConvElem>(p: &[T], hp: usize, wp: usize, c: usize, ty: Range<usize>, tw: usize, v: &mut [T], vl: Band) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(p), Some(v)) = (crate::cpu::simd::as_f32(p), crate::cpu::simd::as_f32_mut(v)) {
        // SAFETY: as_f32 checked that the CPU has AVX2 and FMA.
        return unsafe { winograd_avx2::input_transform(p, hp, wp, c, ty, tw, v, vl) };
    }
    dispatch(InputTransform { p, hp, wp, c, ty, tw, v, vl });
}

/// [`OutputTransform`], through the AVX2 kernel where it applies.
#[allow(clippy::too_many_arguments)]
fn output_transform<T: ConvElem>(
    m: &[T],
    c: usize,
    ty: Range<usize>,
    tw: usize,
    oh: usize,
    ow: usize,
    out: SendPtr<T>,
    base: usize,
    ml: Band,
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(m) = crate::cpu::simd::as_f32(m) {
        // SAFETY: T is f32 (as_f32 checked it, and that the CPU has AVX2 and FMA); the caller
        // owns the band's output rows.
        return unsafe { winograd_avx2::output_transform(m, c, ty, tw, oh, ow, SendPtr(out.get() as *mut f32), base, ml) };
    }
    dispatch(OutputTransform { m, c, ty, tw, oh, ow, out, base, ml });
}

/// Lanes per chunk of tiles: one AVX2 vector of f32.
pub(crate) const L: usize = 8;

#[inline(always)]
pub(crate) fn lanes<T: Copy>(f: impl FnMut(usize) -> T) -> [T; L] {
    std::array::from_fn(f)
}

/// Starts of the chunks of `L` tiles that cover `n >= 1` tiles: 0, L, 2L, ..., the last one
/// shifted back to end at `n` (it recomputes a few tiles rather than running a scalar tail); a
/// single chunk at 0 when `n < L`, whose lanes past `n` are scratch.
pub(crate) fn chunk_starts(n: usize) -> impl Iterator<Item = usize> {
    let last = n.saturating_sub(L);
    (0..n.div_ceil(L)).map(move |i| (i * L).min(last))
}

/// The positions of the tiles `k0..k0 + L` of a band of tile rows `ty`, `tw` tiles wide, read
/// one tile row after another (the narrow path, `tw < L`): `(tile row, tile column)` per lane.
/// Lanes past the band's last tile repeat it, so they read real input.
#[inline(always)]
pub(crate) fn narrow_tiles(ty: &Range<usize>, tw: usize, k0: usize) -> [(usize, usize); L] {
    let last = ty.len() * tw - 1;
    lanes(|l| {
        let t = (k0 + l).min(last);
        (ty.start + t / tw, t % tw)
    })
}

/// The 16 transformed values `V = B^T d B` of L tiles, where `d(r, j)` gives row `r`, column
/// `j` of the tiles' 4x4 input.
#[inline(always)]
fn input_tiles<T: ConvElem>(d: impl Fn(usize, usize) -> [T; L]) -> [[T; L]; 16] {
    let sub = |a: [T; L], b: [T; L]| lanes(|l| a[l] - b[l]);
    let add = |a: [T; L], b: [T; L]| lanes(|l| a[l] + b[l]);
    let mut v = [[<T as Float>::ZERO; L]; 16];
    // s = B^T d, column j: [d0 - d2, d1 + d2, d2 - d1, d1 - d3] over rows
    for j in 0..4 {
        let (x0, x1, x2, x3) = (d(0, j), d(1, j), d(2, j), d(3, j));
        let s = [sub(x0, x2), add(x1, x2), sub(x2, x1), sub(x1, x3)];
        // stash s[r][j] in v temporarily (row r, column j)
        for r in 0..4 {
            v[r * 4 + j] = s[r];
        }
    }
    // V = s B, row r: [s0 - s2, s1 + s2, s2 - s1, s1 - s3]
    for r in 0..4 {
        let (s0, s1, s2, s3) = (v[r * 4], v[r * 4 + 1], v[r * 4 + 2], v[r * 4 + 3]);
        v[r * 4] = sub(s0, s2);
        v[r * 4 + 1] = add(s1, s2);
        v[r * 4 + 2] = sub(s2, s1);
        v[r * 4 + 3] = sub(s1, s3);
    }
    v
}

/// `V[ξ][c][tile] = (B^T d B)[ξ]` for the tiles of tile rows `ty` (all `tw` columns).
pub(crate) struct InputTransform<'a, T> {
    pub p: &'a [T],
    pub hp: usize,
    pub wp: usize,
    pub c: usize,
    pub ty: Range<usize>,
    pub tw: usize,
    pub v: &'a mut [T],
    pub vl: Band,
}

impl<T: ConvElem> SimdKernel for InputTransform<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let InputTransform { p, hp, wp, c, ty, tw, v, vl } = self;
        let stride = vl.xs;
        let half = wp / 2;
        if tw < L {
            // Too narrow for a chunk per tile row: chunks run over the band's tile rows together
            // and each lane gathers its own tile. Whole chunks are stored (k0 + L <= vl.rs).
            for k0 in chunk_starts(ty.len() * tw) {
                let at = narrow_tiles(&ty, tw, k0).map(|(y, x)| 2 * y * wp + x);
                for ci in 0..c {
                    let plane = &p[ci * hp * wp..(ci + 1) * hp * wp];
                    // d[r][j] at tile (y, x): padded row 2y + r, column 2x + j (de-interleaved)
                    let t = input_tiles(|r, j| lanes(|l| plane[at[l] + r * wp + (j % 2) * half + j / 2]));
                    for (xi, tv) in t.iter().enumerate() {
                        let o = xi * stride + ci * vl.rs + k0;
                        v[o..o + L].copy_from_slice(tv);
                    }
                }
            }
            return;
        }
        for ci in 0..c {
            let plane = &p[ci * hp * wp..(ci + 1) * hp * wp];
            for (bi, y) in ty.clone().enumerate() {
                let row = |r: usize| plane[(2 * y + r) * wp..(2 * y + r + 1) * wp].split_at(half);
                let rows = [row(0), row(1), row(2), row(3)];
                let o = ci * vl.rs + bi * tw;
                for k0 in chunk_starts(tw) {
                    // d[r][j] for tile k0 + l: even[k0 + l], odd[k0 + l], even[k0 + l + 1], ...
                    let t = input_tiles(|r, j| {
                        let (e, od) = rows[r];
                        let s = &(if j % 2 == 0 { e } else { od })[k0 + j / 2..][..L];
                        lanes(|l| s[l])
                    });
                    for (xi, tv) in t.iter().enumerate() {
                        v[xi * stride + o + k0..xi * stride + o + k0 + L].copy_from_slice(tv);
                    }
                }
            }
        }
    }
}

/// `Y = A^T m A` for the tiles `k..k+L` of the 16 streams `ms`: `[y00, y01, y10, y11]`.
#[inline(always)]
fn output_tiles<T: ConvElem>(ms: &[&[T]; 16], k: usize) -> [[T; L]; 4] {
    let g = |xi: usize| -> [T; L] {
        let s = &ms[xi][k..k + L];
        lanes(|l| s[l])
    };
    // t = A^T m: row 0 = m0 + m1 + m2, row 1 = m1 - m2 - m3 (rows of m), per column j
    let mut t0 = [[<T as Float>::ZERO; L]; 4];
    let mut t1 = [[<T as Float>::ZERO; L]; 4];
    for j in 0..4 {
        let (a, b, c, d) = (g(j), g(4 + j), g(8 + j), g(12 + j));
        t0[j] = lanes(|l| a[l] + b[l] + c[l]);
        t1[j] = lanes(|l| b[l] - c[l] - d[l]);
    }
    let fin = |t: &[[T; L]; 4]| (lanes(|l| t[0][l] + t[1][l] + t[2][l]), lanes(|l| t[1][l] - t[2][l] - t[3][l]));
    let (y00, y01) = fin(&t0);
    let (y10, y11) = fin(&t1);
    [y00, y01, y10, y11]
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
    ml: Band,
}

impl<T: ConvElem> SimdKernel for OutputTransform<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let OutputTransform { m, c, ty, tw, oh, ow, out, base, ml } = self;
        let stride = ml.xs;
        if tw < L {
            // As the input transform's narrow path: chunks over the band's tile rows, each lane
            // storing its own tile; lanes past the band's last tile are not stored (the product
            // computed only the band's tiles).
            let rows = 2 * ty.start..(2 * ty.end).min(oh);
            let n = ty.len() * tw;
            for k0 in chunk_starts(n) {
                let at = narrow_tiles(&ty, tw, k0).map(|(y, x)| (2 * y - rows.start, 2 * x));
                for co in 0..c {
                    let ms: [&[T]; 16] = std::array::from_fn(|xi| &m[xi * stride + co * ml.rs + k0..][..L]);
                    let y4 = output_tiles(&ms, 0);
                    let row0 = base + (co * oh + rows.start) * ow;
                    // SAFETY: the band's rows of output channel co belong to this call.
                    let dst = unsafe { out.slice_mut(row0..row0 + rows.len() * ow) };
                    for (l, &(y, x)) in at.iter().enumerate().take(n - k0) {
                        for (q, yq) in y4.iter().enumerate() {
                            let (r, s) = (q / 2, q % 2);
                            if y + r < rows.len() && x + s < ow {
                                dst[(y + r) * ow + x + s] = yq[l];
                            }
                        }
                    }
                }
            }
            return;
        }
        for co in 0..c {
            for (bi, y) in ty.clone().enumerate() {
                let o = co * ml.rs + bi * tw;
                let row0 = base + (co * oh + 2 * y) * ow;
                let nrows = (oh - 2 * y).min(2);
                // SAFETY: rows 2y, 2y+1 (those < oh) of output channel co belong to this call.
                let dst = unsafe { out.slice_mut(row0..row0 + nrows * ow) };
                let (d0, d1) = dst.split_at_mut(ow);
                let ms: [&[T]; 16] = std::array::from_fn(|xi| &m[xi * stride + o..xi * stride + o + tw]);
                for k0 in chunk_starts(tw) {
                    let [y00, y01, y10, y11] = output_tiles(&ms, k0);
                    // Columns 2*k0 .. 2*k0 + 2L, clipped to ow (only the last tile can be cut).
                    let end = (2 * (k0 + L)).min(ow);
                    if end == 2 * (k0 + L) {
                        let o0 = &mut d0[2 * k0..2 * k0 + 2 * L];
                        for l in 0..L {
                            o0[2 * l] = y00[l];
                            o0[2 * l + 1] = y01[l];
                        }
                        if nrows == 2 {
                            let o1 = &mut d1[2 * k0..2 * k0 + 2 * L];
                            for l in 0..L {
                                o1[2 * l] = y10[l];
                                o1[2 * l + 1] = y11[l];
                            }
                        }
                    } else {
                        for x in 2 * k0..end {
                            let (l, odd) = ((x - 2 * k0) / 2, x % 2 == 1);
                            d0[x] = if odd { y01[l] } else { y00[l] };
                            if nrows == 2 {
                                d1[x] = if odd { y11[l] } else { y10[l] };
                            }
                        }
                    }
                }
            }
        }
    }
}
