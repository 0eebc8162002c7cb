//! 2-D convolution kernels: forward, gradient of the input (which is also the transposed
//! convolution) and gradient of the weight.
//!
//! Paths, chosen per call:
//! - one input channel per group (depthwise, and e.g. a first layer on grey images): the direct
//!   kernels of [`super::depthwise`];
//! - 3x3, stride 1, undilated, at least 16 channels in and out per group: Winograd F(2x2, 3x3)
//!   ([`super::winograd`], [`super::winograd_wgrad`]), 2.25x fewer multiply-adds;
//! - 1x1, stride 1, unpadded: plain gemms on the images, no column matrix; on maps of 8x8 and
//!   smaller, the planes of several images side by side in one gemm (`conv_pointwise`);
//! - other stride-1 convolutions whose output rows are shorter than the input rows (5x5
//!   "valid"): flat column matrices, one contiguous copy per row (`conv_flat`);
//! - everything else: im2col of one band of output rows at a time into a per-thread buffer, then
//!   a gemm (the band stays in L2 between the two).
//!
//! The input gradient of a stride-1 convolution whose output is about as large as its input is
//! computed as the forward convolution of the output gradient with the flipped kernel (so it
//! takes the paths above); strided and shrinking ones use a gemm and col2im.
//!
//! Threads take whole work items (image, group, band of output rows), in chunks from a shared
//! counter, when there are at least as many items as threads: no synchronisation inside an item,
//! measured faster on 2 threads than threading inside the gemms (`threads` in
//! tests/conv_bench.rs). With fewer items the gemms thread. Weight gradients sum per-chunk copies
//! in a fixed order (`conv_threads`).

use crate::cpu::conv_flat::{self, Flat};
use crate::cpu::conv_pointwise;
use crate::cpu::conv_threads::{for_items, sum_over_items, Items};
use crate::cpu::depthwise::{self, DwGeom};
use crate::cpu::elementwise::SendPtr;
use crate::cpu::gemm::{gemm, GemmElem, MatMut, MatRef};
use crate::cpu::gemm_nt::add_a_bt;
use crate::cpu::im2col::{col2im, im2col, ColGeom, PlaneView};
#[cfg(target_arch = "x86_64")]
use crate::cpu::{
    simd::{as_f32, as_f32_mut},
    winograd4, winograd4_wgrad,
};
use crate::cpu::{winograd, winograd_wgrad};
use crate::dtype::Float;
use crate::pool::{PoolElem, PooledVec};

/// Element types with convolution kernels (f32, f64).
pub trait ConvElem: Float + GemmElem + PoolElem {}
impl ConvElem for f32 {}
impl ConvElem for f64 {}

/// The full geometry of a convolution `x [n, cin, h, w] * w [cout, cin/groups, kh, kw] ->
/// [n, cout, oh, ow]` with explicit top/left pads (the bottom/right pads are implied by
/// `oh`/`ow`: positions past the input read zeros).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pl: usize,
    pub groups: usize,
}

/// A strided 4-D input: element `(n, c, y, x)` at `offset + n*s[0] + c*s[1] + y*s[2] + x*s[3]`.
#[derive(Clone, Copy, Debug)]
pub struct View4 {
    pub offset: usize,
    pub strides: [usize; 4],
}

impl View4 {
    pub fn contiguous(dims: [usize; 4]) -> View4 {
        View4 { offset: 0, strides: [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1] }
    }
    fn plane(&self, n: usize, c: usize) -> PlaneView {
        PlaneView {
            base: self.offset + n * self.strides[0] + c * self.strides[1],
            cs: self.strides[1],
            ys: self.strides[2],
            xs: self.strides[3],
        }
    }
}

/// Bytes of column matrix per band: small enough to stay in L2 next to the gemm's packed panels.
const BAND_BYTES: usize = 384 << 10;

impl ConvGeom {
    pub fn cin_g(&self) -> usize {
        self.cin / self.groups
    }
    pub fn cout_g(&self) -> usize {
        self.cout / self.groups
    }
    fn col_geom(&self) -> ColGeom {
        ColGeom {
            c: self.cin_g(),
            h: self.h,
            w: self.w,
            kh: self.kh,
            kw: self.kw,
            sh: self.sh,
            sw: self.sw,
            dh: self.dh,
            dw: self.dw,
            pt: self.pt,
            pl: self.pl,
            oh: self.oh,
            ow: self.ow,
        }
    }
    pub(crate) fn pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pt == 0
            && self.pl == 0
            && self.oh == self.h
            && self.ow == self.w
    }
    fn depthwise(&self) -> Option<DwGeom> {
        (self.cin_g() == 1 && self.groups == self.cin).then_some(DwGeom {
            n: self.n,
            c: self.cin,
            m: self.cout_g(),
            h: self.h,
            w: self.w,
            kh: self.kh,
            kw: self.kw,
            oh: self.oh,
            ow: self.ow,
            sh: self.sh,
            sw: self.sw,
            dh: self.dh,
            dw: self.dw,
            pt: self.pt,
            pl: self.pl,
        })
    }
    /// For stride 1 with pads within the dilated kernel: the convolution that maps the output
    /// gradient to the input gradient (kernel flipped, in/out channels swapped).
    fn flipped(&self) -> Option<ConvGeom> {
        let (eh, ew) = (self.dh * (self.kh - 1), self.dw * (self.kw - 1));
        (self.sh == 1 && self.sw == 1 && self.pt <= eh && self.pl <= ew).then(|| ConvGeom {
            n: self.n,
            cin: self.cout,
            h: self.oh,
            w: self.ow,
            cout: self.cin,
            kh: self.kh,
            kw: self.kw,
            oh: self.h,
            ow: self.w,
            sh: 1,
            sw: 1,
            dh: self.dh,
            dw: self.dw,
            pt: eh - self.pt,
            pl: ew - self.pl,
            groups: self.groups,
        })
    }
    /// Output rows per band.
    fn band_rows<T>(&self) -> usize {
        let per_row = (self.cin_g() * self.kh * self.kw * self.ow * std::mem::size_of::<T>()).max(1);
        (BAND_BYTES / per_row).clamp(1, self.oh.max(1))
    }
    fn bands<T>(&self) -> impl Iterator<Item = (usize, usize)> {
        let (rows, oh) = (self.band_rows::<T>(), self.oh);
        (0..oh.div_ceil(rows)).map(move |b| (b * rows, ((b + 1) * rows).min(oh)))
    }
    fn col_len<T>(&self) -> usize {
        self.cin_g() * self.kh * self.kw * self.band_rows::<T>() * self.ow
    }
}

/// Runs `per_images(images, allow_gemm_threads)` over all images: whole images per thread when
/// there are enough of them, else one after another with threaded gemms.
pub(crate) fn over_images(n: usize, per_images: impl Fn(&mut Items<'_>, bool) + Sync) {
    for_items(n, 1, per_images);
}

/// `out [n, cout, oh, ow]` (contiguous, overwritten) = conv(x, w); `w` contiguous.
pub fn forward<T: ConvElem>(x: &[T], xv: View4, w: &[T], g: &ConvGeom, out: &mut [T]) {
    if g.n == 0 || g.cout == 0 || g.oh == 0 || g.ow == 0 {
        return;
    }
    if g.cin_g() == 0 || g.kh * g.kw == 0 {
        out.fill(<T as Float>::ZERO);
        return;
    }
    if let Some(dg) = g.depthwise() {
        let p = xv.plane(0, 0);
        return depthwise::forward(x, p, xv.strides[0], w, &dg, out);
    }
    if winograd::applies(g) {
        #[cfg(target_arch = "x86_64")]
        if winograd4::applies(g, &xv) {
            if let (Some(x32), Some(w32), Some(o32)) = (as_f32(x), as_f32(w), as_f32_mut(out)) {
                // SAFETY: as_f32 found the CPU's AVX2 and FMA; the slices are this call's.
                return unsafe { winograd4::forward(x32, xv, w32, g, o32) };
            }
        }
        return winograd::forward(x, xv, w, g, out);
    }
    if let Some(f) = Flat::plan(g, &xv) {
        return conv_flat::forward(x, xv, w, g, &f, out);
    }
    if g.pointwise() && conv_pointwise::applies(g, &xv) {
        return conv_pointwise::forward(x, xv, w, g, out);
    }
    if g.pointwise() && conv_pointwise::forward_per_image(x, &xv, w, g, out) {
        return;
    }
    let (cin_g, cout_g, k) = (g.cin_g(), g.cout_g(), g.cin_g() * g.kh * g.kw);
    let ohw = g.oh * g.ow;
    let out_ptr = SendPtr(out.as_mut_ptr());
    let x_ptr = x.as_ptr() as usize;
    let [_, sc, ys, xs] = xv.strides;
    let pointwise = g.pointwise() && ys == g.w * xs;
    let cg = g.col_geom();
    // Work items: (image, group, band of output rows), all independent.
    let bands: Vec<(usize, usize)> = if pointwise { vec![(0, g.oh)] } else { g.bands::<T>().collect() };
    let nb = bands.len();
    for_items(g.n * g.groups * nb, nb, |items, threads| {
        let x_ptr = x_ptr as *const T;
        let mut col = if pointwise { PooledVec::<T>::uninit(0) } else { PooledVec::<T>::uninit(g.col_len::<T>()) };
        for item in items {
            let (n, grp, (y0, y1)) = (item / (g.groups * nb), (item / nb) % g.groups, bands[item % nb]);
            let wg = MatRef { ptr: w[grp * cout_g * k..].as_ptr(), rs: k as isize, cs: 1 };
            // SAFETY: `out` holds n*cout*ohw elements; this writes rows y0..y1 of image n, group grp.
            let dst = unsafe { out_ptr.get().add((n * g.cout + grp * cout_g) * ohw + y0 * g.ow) };
            let plane = xv.plane(n, grp * cin_g);
            let ncols = (y1 - y0) * g.ow;
            let cols = if pointwise {
                // The image itself is the column matrix.
                MatRef { ptr: x_ptr.wrapping_add(plane.base), rs: sc as isize, cs: xs as isize }
            } else {
                let c = &mut col.as_mut_slice()[..k * ncols];
                im2col(x, &plane, &cg, y0, y1, c);
                MatRef { ptr: c.as_ptr(), rs: ncols as isize, cs: 1 }
            };
            // SAFETY: the operands lie inside `w`, `x` (or `col`) and `out`.
            unsafe { gemm(cout_g, ncols, k, MatMut { ptr: dst, rs: ohw as isize, cs: 1 }, false, wg, cols, threads) };
        }
    });
}

/// `w' [cin, cout/groups, kh, kw]` with `w'[g, ci][co][i][j] = w[g, co][ci][kh-1-i][kw-1-j]`.
fn flip_weights<T: ConvElem>(w: &[T], g: &ConvGeom) -> PooledVec<T> {
    let (cin_g, cout_g, taps) = (g.cin_g(), g.cout_g(), g.kh * g.kw);
    let mut out = PooledVec::<T>::uninit(w.len());
    let o = out.as_mut_slice();
    for grp in 0..g.groups {
        for co in 0..cout_g {
            for ci in 0..cin_g {
                let src = &w[((grp * cout_g + co) * cin_g + ci) * taps..][..taps];
                let dst = &mut o[((grp * cin_g + ci) * cout_g + co) * taps..][..taps];
                for (t, d) in dst.iter_mut().enumerate() {
                    *d = src[taps - 1 - t];
                }
            }
        }
    }
    out
}

/// `gx [n, cin, h, w]` (contiguous, overwritten) = the gradient of the input for output
/// gradient `gy [n, cout, oh, ow]` (contiguous): the transposed convolution of `gy` with `w`.
pub fn backward_data<T: ConvElem>(gy: &[T], w: &[T], g: &ConvGeom, gx: &mut [T]) {
    if g.n == 0 || g.cin == 0 || g.h == 0 || g.w == 0 {
        return;
    }
    if g.cout_g() == 0 || g.oh == 0 || g.ow == 0 || g.kh * g.kw == 0 {
        gx.fill(<T as Float>::ZERO);
        return;
    }
    if let Some(dg) = g.depthwise() {
        return depthwise::backward_data(gy, w, &dg, gx);
    }
    if let Some(fg) = g.flipped().filter(|fg| winograd::applies(fg) || 4 * g.h * g.w <= 5 * g.oh * g.ow) {
        // Stride 1: the input gradient is a convolution of gy with the flipped kernel, which
        // takes the forward's fast paths and writes gx once instead of scattering into it. It
        // costs `h*w` column-matrix columns against the gemm + col2im path's `oh*ow`, so an
        // unpadded ("valid") convolution that shrinks its input much (LeNet's 5x5 on 14x14:
        // 196 vs 100) takes the col2im path instead.
        let wf = flip_weights(w, g);
        return forward(gy, View4::contiguous([g.n, g.cout, g.oh, g.ow]), wf.as_slice(), &fg, gx);
    }
    if let Some(f) = Flat::plan(g, &View4::contiguous([g.n, g.cin, g.h, g.w])) {
        return conv_flat::backward_data(gy, w, g, &f, gx);
    }
    let (cin_g, cout_g, k) = (g.cin_g(), g.cout_g(), g.cin_g() * g.kh * g.kw);
    let (ohw, hw) = (g.oh * g.ow, g.h * g.w);
    let gx_ptr = SendPtr(gx.as_mut_ptr());
    let pointwise = g.pointwise();
    let cg = g.col_geom();
    over_images(g.n, |images, threads| {
        let mut col = if pointwise { PooledVec::<T>::uninit(0) } else { PooledVec::<T>::uninit(g.col_len::<T>()) };
        for n in images {
            for grp in 0..g.groups {
                // w_g^T: [k, cout_g] viewed in the row-major [cout_g, k] weight.
                let wt = MatRef { ptr: w[grp * cout_g * k..].as_ptr(), rs: 1, cs: k as isize };
                let gyg = &gy[(n * g.cout + grp * cout_g) * ohw..];
                let base = (n * g.cin + grp * cin_g) * hw;
                if pointwise {
                    // SAFETY: writes image n, group grp of gx.
                    unsafe {
                        let dst = MatMut { ptr: gx_ptr.get().add(base), rs: hw as isize, cs: 1 };
                        gemm(cin_g, hw, cout_g, dst, false, wt, MatRef { ptr: gyg.as_ptr(), rs: ohw as isize, cs: 1 }, threads);
                    }
                    continue;
                }
                // SAFETY: this range owns images r of gx.
                let gxi = unsafe { gx_ptr.slice_mut(base..base + cin_g * hw) };
                gxi.fill(<T as Float>::ZERO);
                for (y0, y1) in g.bands::<T>() {
                    let ncols = (y1 - y0) * g.ow;
                    let c = &mut col.as_mut_slice()[..k * ncols];
                    // SAFETY: `c` holds k*ncols elements; gy rows y0..y1 of the group's channels.
                    unsafe {
                        gemm(
                            k,
                            ncols,
                            cout_g,
                            MatMut { ptr: c.as_mut_ptr(), rs: ncols as isize, cs: 1 },
                            false,
                            wt,
                            MatRef { ptr: gyg.as_ptr().add(y0 * g.ow), rs: ohw as isize, cs: 1 },
                            threads,
                        );
                    }
                    col2im(c, &cg, y0, y1, gxi, 0);
                }
            }
        }
    });
}

/// `gw [cout, cin/groups, kh, kw]` (overwritten) = the gradient of the weight, from the input
/// `x` (strided) and the output gradient `gy` (contiguous).
pub fn backward_weight<T: ConvElem>(x: &[T], xv: View4, gy: &[T], g: &ConvGeom, gw: &mut [T]) {
    gw.fill(<T as Float>::ZERO);
    if g.n == 0 || g.cout == 0 || g.cin_g() == 0 || g.oh == 0 || g.ow == 0 || g.kh * g.kw == 0 {
        return;
    }
    if let Some(dg) = g.depthwise() {
        let p = xv.plane(0, 0);
        return depthwise::backward_weight(x, p, xv.strides[0], gy, &dg, gw);
    }
    if winograd::applies(g) {
        #[cfg(target_arch = "x86_64")]
        if winograd4::applies(g, &xv) {
            if let (Some(x32), Some(gy32), Some(gw32)) = (as_f32(x), as_f32(gy), as_f32_mut(gw)) {
                // SAFETY: as_f32 found the CPU's AVX2 and FMA; the slices are this call's.
                return unsafe { winograd4_wgrad::backward_weight(x32, xv, gy32, g, gw32) };
            }
        }
        return winograd_wgrad::backward_weight(x, xv, gy, g, gw);
    }
    if let Some(f) = Flat::plan(g, &xv) {
        return conv_flat::backward_weight(x, xv, gy, g, &f, gw);
    }
    if g.pointwise() && conv_pointwise::applies(g, &xv) {
        return conv_pointwise::backward_weight(x, xv, gy, g, gw);
    }
    let (cin_g, cout_g, k) = (g.cin_g(), g.cout_g(), g.cin_g() * g.kh * g.kw);
    let ohw = g.oh * g.ow;
    let [_, sc, ys, xs] = xv.strides;
    let pointwise = g.pointwise() && ys == g.w * xs;
    let cg = g.col_geom();
    let bands: Vec<(usize, usize)> = if pointwise { vec![(0, g.oh)] } else { g.bands::<T>().collect() };
    let nb = bands.len();
    sum_over_items(g.n * g.groups * nb, nb, gw, |r, threads, acc| {
        let mut col = if pointwise { PooledVec::<T>::uninit(0) } else { PooledVec::<T>::uninit(g.col_len::<T>()) };
        for item in r {
            let (n, grp, (y0, y1)) = (item / (g.groups * nb), (item / nb) % g.groups, bands[item % nb]);
            let dst = &mut acc[grp * cout_g * k..];
            let gyg = &gy[(n * g.cout + grp * cout_g) * ohw + y0 * g.ow..];
            let plane = xv.plane(n, grp * cin_g);
            let ncols = (y1 - y0) * g.ow;
            // The columns as k rows of ncols values: x_g [cin_g, ohw] read in place, or the
            // column matrix; (rows, row stride, column stride).
            let (cols, ldb, cs) = if pointwise {
                (&x[plane.base..], sc, xs)
            } else {
                let c = &mut col.as_mut_slice()[..k * ncols];
                im2col(x, &plane, &cg, y0, y1, c);
                (&*c, ncols, 1)
            };
            if cs == 1 {
                // gy rows y0..y1 [cout_g, ncols] times colᵀ [ncols, k], into acc's group block.
                add_a_bt(cout_g, k, ncols, gyg, ohw, cols, ldb, dst, k, threads);
                continue;
            }
            let cols_t = MatRef { ptr: cols.as_ptr(), rs: cs as isize, cs: ldb as isize };
            let gm = MatRef { ptr: gyg.as_ptr(), rs: ohw as isize, cs: 1 };
            // SAFETY: gy rows y0..y1 [cout_g, ncols] times x_gᵀ [ncols, cin_g] (strided view,
            // inside `x`), into acc's group block.
            unsafe { gemm(cout_g, k, ncols, MatMut { ptr: dst.as_mut_ptr(), rs: k as isize, cs: 1 }, true, gm, cols_t, threads) };
        }
    });
}
