//! Stride-1 convolutions whose output rows are shorter than their input rows (LeNet's 5x5
//! "valid" convolution: 14x14 -> 10x10), on "flat" column matrices.
//!
//! The (zero-padded) input plane is read as one flat vector of `wp`-wide rows, `wp = ow +
//! dw*(kw-1)`: output pixel `(y, x)` sits at flat index `y*wp + x` and kernel tap `(i, j)`
//! reads index `+ i*dh*wp + j*dw`, so every column-matrix row is one contiguous copy of the
//! plane (the `wp - ow` wrapped columns per row are computed and thrown away). The general
//! im2col instead copies `oh` short rows per matrix row; for LeNet's shapes that cost more than
//! the gemm itself. Used where the wasted columns stay below half the useful ones.

use crate::cpu::conv::{ConvElem, ConvGeom, View4};
use crate::cpu::elementwise::SendPtr;
use crate::cpu::gemm::{gemm, MatMut, MatRef};
use crate::dtype::Float;
use crate::pool::PooledVec;

/// The flat layout of one convolution.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flat {
    /// Padded plane height and width.
    hp: usize,
    wp: usize,
    /// The input planes are already the padded planes (no padding, rows of width `wp`, `x`
    /// contiguous along rows): read in place.
    direct: bool,
}

impl Flat {
    /// The layout when it applies: stride 1, not pointwise, output rows shorter than the input
    /// rows (when they are as long, im2col's own flat copy wastes nothing), and at most
    /// `wp <= 1.5 ow` (the thrown-away columns cost gemm work). `xv`: the input's view.
    pub(crate) fn plan(g: &ConvGeom, xv: &View4) -> Option<Flat> {
        if g.sh != 1 || g.sw != 1 || g.kh * g.kw <= 1 || g.ow == g.w || g.ow == 0 || g.oh == 0 {
            return None;
        }
        let wp = g.ow + g.dw * (g.kw - 1);
        let hp = g.oh + g.dh * (g.kh - 1);
        if 2 * wp > 3 * g.ow {
            return None;
        }
        let [_, _, ys, xs] = xv.strides;
        let direct = g.pt == 0 && g.pl == 0 && wp == g.w && hp <= g.h && xs == 1 && ys == g.w;
        Some(Flat { hp, wp, direct })
    }

    /// Flat columns of output rows `y0..y1`.
    fn cols(&self, g: &ConvGeom, y0: usize, y1: usize) -> usize {
        (y1 - y0 - 1) * self.wp + g.ow
    }

    /// Output-row bands whose column matrix stays near `BAND` bytes.
    fn bands<T>(&self, g: &ConvGeom) -> Vec<(usize, usize)> {
        const BAND: usize = 384 << 10;
        let per_row = (g.cin_g() * g.kh * g.kw * self.wp * std::mem::size_of::<T>()).max(1);
        let rows = (BAND / per_row).clamp(1, g.oh);
        (0..g.oh.div_ceil(rows)).map(|b| (b * rows, ((b + 1) * rows).min(g.oh))).collect()
    }

    fn plane_len(&self) -> usize {
        self.hp * self.wp
    }

    /// Copies the group's input planes of image `n` into `p` (`cin_g` planes of `hp x wp`) at
    /// offset (pt, pl); the rest of `p` keeps its zeros (every call writes the same region).
    fn load<T: ConvElem>(&self, x: &[T], xv: &View4, g: &ConvGeom, n: usize, grp: usize, p: &mut [T]) {
        let [sn, sc, ys, xs] = xv.strides;
        let rows = g.h.min(self.hp.saturating_sub(g.pt));
        let cols = g.w.min(self.wp.saturating_sub(g.pl));
        for c in 0..g.cin_g() {
            let src = xv.offset + n * sn + (grp * g.cin_g() + c) * sc;
            let plane = &mut p[c * self.plane_len()..(c + 1) * self.plane_len()];
            for iy in 0..rows {
                let d = &mut plane[(iy + g.pt) * self.wp + g.pl..][..cols];
                let s0 = src + iy * ys;
                if xs == 1 {
                    d.copy_from_slice(&x[s0..s0 + cols]);
                } else {
                    for (k, o) in d.iter_mut().enumerate() {
                        *o = x[s0 + k * xs];
                    }
                }
            }
        }
    }

    /// Fills `col` (`k` rows of `cols(y0, y1)`, `ld` apart) from padded planes starting at
    /// `planes[base]`, `cs` apart.
    #[allow(clippy::too_many_arguments)]
    fn im2col<T: ConvElem>(&self, planes: &[T], base: usize, cs: usize, g: &ConvGeom, y0: usize, y1: usize, col: &mut [T], ld: usize) {
        let nc = self.cols(g, y0, y1);
        for c in 0..g.cin_g() {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let r = (c * g.kh + i) * g.kw + j;
                    let s = base + c * cs + (y0 + i * g.dh) * self.wp + j * g.dw;
                    col[r * ld..r * ld + nc].copy_from_slice(&planes[s..s + nc]);
                }
            }
        }
    }

    /// `gf [cout_g, cols(y0, y1)]` (rows `ld` apart): the group's output gradient rows
    /// `y0..y1` at the flat width, zeros in the wrapped columns.
    #[allow(clippy::too_many_arguments)]
    fn spread_gy<T: ConvElem>(&self, gy: &[T], g: &ConvGeom, n: usize, grp: usize, y0: usize, y1: usize, gf: &mut [T], ld: usize) {
        let (nc, ohw, cout_g) = (self.cols(g, y0, y1), g.oh * g.ow, g.cout_g());
        let zero = <T as Float>::ZERO;
        for co in 0..cout_g {
            let src = &gy[(n * g.cout + grp * cout_g + co) * ohw..][..ohw];
            let dst = &mut gf[co * ld..co * ld + nc];
            for y in y0..y1 {
                let d = (y - y0) * self.wp;
                dst[d..d + g.ow].copy_from_slice(&src[y * g.ow..(y + 1) * g.ow]);
                if y + 1 < y1 {
                    dst[d + g.ow..d + self.wp].fill(zero);
                }
            }
        }
    }
}

/// [`crate::cpu::conv::forward`] on flat column matrices: work items (image, group, band).
pub(crate) fn forward<T: ConvElem>(x: &[T], xv: View4, w: &[T], g: &ConvGeom, f: &Flat, out: &mut [T]) {
    let (cout_g, k, ohw) = (g.cout_g(), g.cin_g() * g.kh * g.kw, g.oh * g.ow);
    let bands = f.bands::<T>(g);
    let nb = bands.len();
    let max_cols = f.cols(g, 0, bands[0].1 - bands[0].0);
    let out_ptr = SendPtr(out.as_mut_ptr());
    crate::cpu::conv_threads::for_items(g.n * g.groups * nb, nb, |items, threads| {
        let mut col = PooledVec::<T>::uninit(k * max_cols);
        let mut tmp = PooledVec::<T>::uninit(cout_g * max_cols);
        let mut pad = PooledVec::<T>::filled(if f.direct { 0 } else { g.cin_g() * f.plane_len() }, <T as Float>::ZERO);
        let mut loaded = None;
        for item in items {
            let (n, grp, (y0, y1)) = (item / (g.groups * nb), (item / nb) % g.groups, bands[item % nb]);
            let nc = f.cols(g, y0, y1);
            let c = &mut col.as_mut_slice()[..k * nc];
            if f.direct {
                f.im2col(x, xv.offset + n * xv.strides[0] + grp * g.cin_g() * xv.strides[1], xv.strides[1], g, y0, y1, c, nc);
            } else {
                if loaded != Some((n, grp)) {
                    f.load(x, &xv, g, n, grp, pad.as_mut_slice());
                    loaded = Some((n, grp));
                }
                f.im2col(pad.as_slice(), 0, f.plane_len(), g, y0, y1, c, nc);
            }
            let t = &mut tmp.as_mut_slice()[..cout_g * nc];
            let wg = MatRef { ptr: w[grp * cout_g * k..].as_ptr(), rs: k as isize, cs: 1 };
            // SAFETY: `t` holds cout_g x nc, `c` k x nc, the group's weights cout_g x k.
            unsafe {
                let dst = MatMut { ptr: t.as_mut_ptr(), rs: nc as isize, cs: 1 };
                gemm(cout_g, nc, k, dst, false, wg, MatRef { ptr: c.as_ptr(), rs: nc as isize, cs: 1 }, threads);
            }
            for co in 0..cout_g {
                let o0 = (n * g.cout + grp * cout_g + co) * ohw + y0 * g.ow;
                // SAFETY: rows y0..y1 of output plane (n, grp*cout_g + co), written by this item only.
                let o = unsafe { out_ptr.slice_mut(o0..o0 + (y1 - y0) * g.ow) };
                for (yy, row) in o.chunks_exact_mut(g.ow).enumerate() {
                    row.copy_from_slice(&t[co * nc + yy * f.wp..][..g.ow]);
                }
            }
        }
    });
}

/// [`crate::cpu::conv::backward_weight`] on flat column matrices (`gw` zeroed by the caller).
///
/// One image's product is small (LeNet's second convolution: 16 x 150 x 136), below the packed
/// kernels' threshold and dominated by the call's packing, so consecutive items of a group are
/// laid side by side (`BATCH_BYTES` of columns) and summed by one product over all their columns.
pub(crate) fn backward_weight<T: ConvElem>(x: &[T], xv: View4, gy: &[T], g: &ConvGeom, f: &Flat, gw: &mut [T]) {
    let (cout_g, k) = (g.cout_g(), g.cin_g() * g.kh * g.kw);
    let bands = f.bands::<T>(g);
    let nb = bands.len();
    let max_cols = f.cols(g, 0, bands[0].1 - bands[0].0);
    let per_item = (k * max_cols * std::mem::size_of::<T>()).max(1);
    let batch = (BATCH_BYTES / per_item).clamp(1, g.n * g.groups * nb);
    let ld = batch * max_cols;
    crate::cpu::conv_threads::sum_over_items(g.n * g.groups * nb, nb, gw, |r, threads, acc| {
        let mut col = PooledVec::<T>::uninit(k * ld);
        let mut gf = PooledVec::<T>::uninit(cout_g * ld);
        let mut pad = PooledVec::<T>::filled(if f.direct { 0 } else { g.cin_g() * f.plane_len() }, <T as Float>::ZERO);
        let mut loaded = None;
        // Columns filled so far, their group and item count.
        let (mut used, mut group, mut items) = (0, 0, 0);
        let flush = |used: usize, grp: usize, acc: &mut [T], col: &PooledVec<T>, gf: &PooledVec<T>| {
            if used == 0 {
                return;
            }
            let dst = MatMut { ptr: acc[grp * cout_g * k..].as_mut_ptr(), rs: k as isize, cs: 1 };
            // SAFETY: gf [cout_g, used] (rows ld apart) times col^T [used, k] into the group's
            // block of `acc`.
            unsafe {
                let lhs = MatRef { ptr: gf.as_slice().as_ptr(), rs: ld as isize, cs: 1 };
                gemm(cout_g, k, used, dst, true, lhs, MatRef { ptr: col.as_slice().as_ptr(), rs: 1, cs: ld as isize }, threads);
            }
        };
        for item in r {
            let (n, grp, (y0, y1)) = (item / (g.groups * nb), (item / nb) % g.groups, bands[item % nb]);
            if items == batch || (items > 0 && grp != group) {
                flush(used, group, acc, &col, &gf);
                (used, items) = (0, 0);
            }
            group = grp;
            let nc = f.cols(g, y0, y1);
            let c = &mut col.as_mut_slice()[used..];
            if f.direct {
                f.im2col(x, xv.offset + n * xv.strides[0] + grp * g.cin_g() * xv.strides[1], xv.strides[1], g, y0, y1, c, ld);
            } else {
                if loaded != Some((n, grp)) {
                    f.load(x, &xv, g, n, grp, pad.as_mut_slice());
                    loaded = Some((n, grp));
                }
                f.im2col(pad.as_slice(), 0, f.plane_len(), g, y0, y1, c, ld);
            }
            f.spread_gy(gy, g, n, grp, y0, y1, &mut gf.as_mut_slice()[used..], ld);
            used += nc;
            items += 1;
        }
        flush(used, group, acc, &col, &gf);
    });
}

/// Bytes of column matrix summed per weight-gradient product (a few items' worth; the packed
/// kernels stream it through L2).
const BATCH_BYTES: usize = 512 << 10;

/// [`crate::cpu::conv::backward_data`] on flat column matrices: `col = w^T gf` per band, each
/// row added back to the padded gradient planes as one contiguous run, then cropped into `gx`.
pub(crate) fn backward_data<T: ConvElem>(gy: &[T], w: &[T], g: &ConvGeom, f: &Flat, gx: &mut [T]) {
    let (cin_g, cout_g, k, hw) = (g.cin_g(), g.cout_g(), g.cin_g() * g.kh * g.kw, g.h * g.w);
    let bands = f.bands::<T>(g);
    let max_cols = f.cols(g, 0, bands[0].1 - bands[0].0);
    let gx_ptr = SendPtr(gx.as_mut_ptr());
    let zero = <T as Float>::ZERO;
    crate::cpu::conv::over_images(g.n, |images, threads| {
        let mut col = PooledVec::<T>::uninit(k * max_cols);
        let mut gf = PooledVec::<T>::uninit(cout_g * max_cols);
        let mut pad = PooledVec::<T>::uninit(if f.direct { 0 } else { cin_g * f.plane_len() });
        for n in images {
            for grp in 0..g.groups {
                let base = (n * g.cin + grp * cin_g) * hw;
                // SAFETY: this range owns images r of gx.
                let gxi = unsafe { gx_ptr.slice_mut(base..base + cin_g * hw) };
                // The padded gradient planes: gx itself when the input needs no padding.
                let (planes, cs) = if f.direct { (&mut *gxi, hw) } else { (pad.as_mut_slice(), f.plane_len()) };
                planes.fill(zero);
                for &(y0, y1) in &bands {
                    let nc = f.cols(g, y0, y1);
                    let gfs = &mut gf.as_mut_slice()[..cout_g * nc];
                    f.spread_gy(gy, g, n, grp, y0, y1, gfs, nc);
                    let c = &mut col.as_mut_slice()[..k * nc];
                    let wt = MatRef { ptr: w[grp * cout_g * k..].as_ptr(), rs: 1, cs: k as isize };
                    // SAFETY: w_g^T [k, cout_g] times gf [cout_g, nc] into `c` [k, nc].
                    unsafe {
                        let dst = MatMut { ptr: c.as_mut_ptr(), rs: nc as isize, cs: 1 };
                        gemm(k, nc, cout_g, dst, false, wt, MatRef { ptr: gfs.as_ptr(), rs: nc as isize, cs: 1 }, threads);
                    }
                    for ci in 0..cin_g {
                        for i in 0..g.kh {
                            for j in 0..g.kw {
                                let row = &c[((ci * g.kh + i) * g.kw + j) * nc..][..nc];
                                let s = ci * cs + (y0 + i * g.dh) * f.wp + j * g.dw;
                                for (d, &v) in planes[s..s + nc].iter_mut().zip(row) {
                                    *d += v;
                                }
                            }
                        }
                    }
                }
                if !f.direct {
                    // Crop: input pixel (iy, ix) is padded pixel (iy + pt, ix + pl); pixels
                    // outside the padded plane are read by no output and get 0.
                    gxi.fill(zero);
                    let rows = g.h.min(f.hp.saturating_sub(g.pt));
                    let cols = g.w.min(f.wp.saturating_sub(g.pl));
                    for ci in 0..cin_g {
                        for iy in 0..rows {
                            let s = ci * f.plane_len() + (iy + g.pt) * f.wp + g.pl;
                            gxi[ci * hw + iy * g.w..][..cols].copy_from_slice(&pad.as_slice()[s..s + cols]);
                        }
                    }
                }
            }
        }
    });
}
