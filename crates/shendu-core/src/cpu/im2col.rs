//! im2col and col2im for one image and one channel group, over a band of output rows, so that a
//! convolution's column matrix never holds more than one tile (it stays in L2 between the copy
//! and the gemm that reads it).
//!
//! Column matrix layout: row `(c*kh + i)*kw + j`, column `(oy - oy0)*ow + ox`, holding the input
//! pixel that kernel tap `(i, j)` of channel `c` sees from output pixel `(oy, ox)`, or 0 in the
//! padding.

/// The per-group geometry the two kernels need.
#[derive(Clone, Copy, Debug)]
pub struct ColGeom {
    /// Channels of the group.
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pl: usize,
    pub oh: usize,
    pub ow: usize,
}

/// Where a channel plane sits in a strided buffer: element `(c, y, x)` at
/// `base + c*cs + y*ys + x*xs`.
#[derive(Clone, Copy, Debug)]
pub struct PlaneView {
    pub base: usize,
    pub cs: usize,
    pub ys: usize,
    pub xs: usize,
}

/// The outputs `o` in `0..n_out` whose input `o*stride + shift - pad` lies in `0..size`, as a
/// range `lo..hi` (empty when none).
#[inline]
pub fn valid_range(n_out: usize, size: usize, stride: usize, shift: usize, pad: usize) -> (usize, usize) {
    let lo = if shift >= pad { 0 } else { (pad - shift).div_ceil(stride) };
    let hi = if size + pad > shift { (size + pad - shift).div_ceil(stride) } else { 0 };
    let lo = lo.min(n_out);
    (lo, hi.clamp(lo, n_out))
}

impl ColGeom {
    /// Rows of the column matrix.
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Stride-1 convolutions whose output rows are as long as the input rows (3x3 pad 1, ...)
    /// on row-contiguous planes: each column-matrix row is then the input plane shifted by a
    /// constant, one flat copy plus a few border fixes.
    fn flat(&self, v: &PlaneView) -> bool {
        self.sh == 1 && self.sw == 1 && v.xs == 1 && v.ys == self.w && self.ow == self.w
    }

    /// Valid output rows `ylo..yhi` of tap row `i` within `oy0..oy1`.
    fn rows(&self, i: usize, oy0: usize, oy1: usize) -> (usize, usize) {
        let (lo, hi) = valid_range(self.oh, self.h, self.sh, i * self.dh, self.pt);
        let lo = lo.clamp(oy0, oy1);
        (lo, hi.clamp(lo, oy1))
    }
}

/// Fills the column matrix `col` (`k` rows of `(oy1 - oy0) * ow` columns) for output rows
/// `oy0..oy1`.
pub fn im2col<T: Copy + Default>(x: &[T], v: &PlaneView, g: &ColGeom, oy0: usize, oy1: usize, col: &mut [T]) {
    let ncols = (oy1 - oy0) * g.ow;
    let zero = T::default();
    let flat = g.flat(v);
    for c in 0..g.c {
        let plane = v.base + c * v.cs;
        for i in 0..g.kh {
            let (ylo, yhi) = g.rows(i, oy0, oy1);
            for j in 0..g.kw {
                let r = (c * g.kh + i) * g.kw + j;
                let dst = &mut col[r * ncols..(r + 1) * ncols];
                dst[..(ylo - oy0) * g.ow].fill(zero);
                dst[(yhi - oy0) * g.ow..].fill(zero);
                if ylo == yhi {
                    continue;
                }
                let (xlo, xhi) = valid_range(g.ow, g.w, g.sw, j * g.dw, g.pl);
                let band = &mut dst[(ylo - oy0) * g.ow..(yhi - oy0) * g.ow];
                if flat {
                    // One shifted copy of rows ylo..yhi; the elements it wraps across row ends
                    // are border columns, zeroed below (and clipped at the plane's ends).
                    let start = ((ylo + i * g.dh - g.pt) * g.w + j * g.dw) as isize - g.pl as isize;
                    let end = start + band.len() as isize;
                    let (s0, e0) = (start.max(0), end.min((g.h * g.w) as isize));
                    // A tap whose columns all fall in the padding may shift the band wholly off
                    // the plane: nothing to copy (the border fill below zeroes every row).
                    if e0 > s0 {
                        let (skip, s0, e0) = ((s0 - start) as usize, s0 as usize, e0 as usize);
                        band[skip..skip + (e0 - s0)].copy_from_slice(&x[plane + s0..plane + e0]);
                    }
                    for row in band.chunks_exact_mut(g.ow) {
                        row[..xlo].fill(zero);
                        row[xhi..].fill(zero);
                    }
                } else {
                    for (y, row) in (ylo..yhi).zip(band.chunks_exact_mut(g.ow)) {
                        row[..xlo].fill(zero);
                        row[xhi..].fill(zero);
                        if xlo == xhi {
                            continue;
                        }
                        let iy = y * g.sh + i * g.dh - g.pt;
                        let src = plane + iy * v.ys + (xlo * g.sw + j * g.dw - g.pl) * v.xs;
                        let step = g.sw * v.xs;
                        let out = &mut row[xlo..xhi];
                        if step == 1 {
                            crate::cpu::depthwise::copy_short(out, &x[src..src + out.len()]);
                        } else {
                            for (k, o) in out.iter_mut().enumerate() {
                                *o = x[src + k * step];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Adds the column matrix back into the image (`gx` holds contiguous `c x h x w` planes from
/// `base`): the adjoint of [`im2col`]. `col` is scratch: its padding entries are overwritten.
pub fn col2im<T: Copy + Default + std::ops::AddAssign>(col: &mut [T], g: &ColGeom, oy0: usize, oy1: usize, gx: &mut [T], base: usize) {
    let ncols = (oy1 - oy0) * g.ow;
    let v = PlaneView { base, cs: g.h * g.w, ys: g.w, xs: 1 };
    let flat = g.flat(&v);
    let zero = T::default();
    for c in 0..g.c {
        let plane = &mut gx[base + c * g.h * g.w..base + (c + 1) * g.h * g.w];
        for i in 0..g.kh {
            let (ylo, yhi) = g.rows(i, oy0, oy1);
            if ylo == yhi {
                continue;
            }
            for j in 0..g.kw {
                let r = (c * g.kh + i) * g.kw + j;
                let band = &mut col[r * ncols + (ylo - oy0) * g.ow..r * ncols + (yhi - oy0) * g.ow];
                let (xlo, xhi) = valid_range(g.ow, g.w, g.sw, j * g.dw, g.pl);
                if flat {
                    for row in band.chunks_exact_mut(g.ow) {
                        row[..xlo].fill(zero);
                        row[xhi..].fill(zero);
                    }
                    let start = ((ylo + i * g.dh - g.pt) * g.w + j * g.dw) as isize - g.pl as isize;
                    let end = start + band.len() as isize;
                    let (s0, e0) = (start.max(0), end.min((g.h * g.w) as isize));
                    // As in im2col: a tap wholly in the padding shifts the band off the plane.
                    if e0 > s0 {
                        let (skip, s0, e0) = ((s0 - start) as usize, s0 as usize, e0 as usize);
                        for (d, &s) in plane[s0..e0].iter_mut().zip(&band[skip..skip + (e0 - s0)]) {
                            *d += s;
                        }
                    }
                } else {
                    if xlo == xhi {
                        continue;
                    }
                    for (y, row) in (ylo..yhi).zip(band.chunks_exact(g.ow)) {
                        let iy = y * g.sh + i * g.dh - g.pt;
                        let start = iy * g.w + xlo * g.sw + j * g.dw - g.pl;
                        let src = &row[xlo..xhi];
                        if g.sw == 1 {
                            for (d, &s) in plane[start..start + src.len()].iter_mut().zip(src) {
                                *d += s;
                            }
                        } else {
                            for (k, &s) in src.iter().enumerate() {
                                plane[start + k * g.sw] += s;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one element at a time.
    fn naive(x: &[f64], g: &ColGeom, oy0: usize, oy1: usize) -> Vec<f64> {
        let ncols = (oy1 - oy0) * g.ow;
        let mut col = vec![0.0; g.k() * ncols];
        for c in 0..g.c {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    for oy in oy0..oy1 {
                        for ox in 0..g.ow {
                            let iy = (oy * g.sh + i * g.dh) as isize - g.pt as isize;
                            let ix = (ox * g.sw + j * g.dw) as isize - g.pl as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                col[((c * g.kh + i) * g.kw + j) * ncols + (oy - oy0) * g.ow + ox] =
                                    x[(c * g.h + iy as usize) * g.w + ix as usize];
                            }
                        }
                    }
                }
            }
        }
        col
    }

    #[test]
    fn im2col_matches_definition_and_col2im_is_its_adjoint() {
        let cases = [
            // c, h, w, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr
            (2, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
            (1, 6, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),
            (2, 7, 6, 2, 4, 1, 1, 1, 1, 0, 1, 1, 2),
            (1, 9, 9, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2),
            (3, 4, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0),
            (1, 5, 5, 5, 5, 1, 1, 1, 1, 4, 4, 4, 4),
            (1, 3, 8, 2, 3, 3, 2, 1, 2, 0, 0, 3, 0),
        ];
        for (c, h, w, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr) in cases {
            let oh = (h + pt + pb - dh * (kh - 1) - 1) / sh + 1;
            let ow = (w + pl + pr - dw * (kw - 1) - 1) / sw + 1;
            let g = ColGeom { c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow };
            let x: Vec<f64> = (0..c * h * w).map(|v| v as f64 + 1.0).collect();
            let v = PlaneView { base: 0, cs: h * w, ys: w, xs: 1 };
            for (oy0, oy1) in [(0, oh), (0, 1), (oh / 2, oh), (1.min(oh), oh)] {
                let expect = naive(&x, &g, oy0, oy1);
                let mut col = vec![f64::NAN; expect.len()];
                im2col(&x, &v, &g, oy0, oy1, &mut col);
                assert_eq!(col, expect, "case {:?} rows {oy0}..{oy1}", [c, h, w, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr]);
                // <im2col(x), r> == <x, col2im(r)>
                let mut r: Vec<f64> = (0..col.len()).map(|v| ((v * 7 + 3) % 11) as f64 - 5.0).collect();
                let lhs: f64 = col.iter().zip(&r).map(|(a, b)| a * b).sum();
                let mut gx = vec![0.0; x.len()];
                col2im(&mut r, &g, oy0, oy1, &mut gx, 0);
                let rhs: f64 = gx.iter().zip(&x).map(|(a, b)| a * b).sum();
                assert!((lhs - rhs).abs() < 1e-9, "adjoint {lhs} vs {rhs}");
            }
        }
    }

    #[test]
    fn valid_ranges() {
        assert_eq!(valid_range(5, 5, 1, 0, 1), (1, 5));
        assert_eq!(valid_range(5, 5, 1, 2, 1), (0, 4));
        assert_eq!(valid_range(3, 5, 2, 0, 1), (1, 3));
        assert_eq!(valid_range(3, 1, 1, 0, 5), (3, 3));
    }
}
