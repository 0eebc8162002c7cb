//! Strided depthwise convolution (MobileNet's downsampling layers) on phase planes.
//!
//! A stride-2 tap reads every other input column, which does not vectorise (the direct loops it
//! replaces ran at 2-4 GFLOP/s). Each padded input plane is split instead into `sh*sw` phase
//! planes (rows `a + sh*y`, columns `b + sw*x`): tap `(i, j)` then reads one phase plane shifted
//! by `(i*dh / sh, j*dw / sw)`, with unit stride, and the loops are the flat ones of the
//! stride-1 kernels (`super::depthwise`): output pixel `(y, x)` at `y*wq + x`, the wrapped
//! columns computed and thrown away. The input gradient adds each tap's share into the phase
//! planes the same way and interleaves them back.

use std::ops::Range;

use crate::cpu::depthwise::{copy_short, fma_chunk, fwd_extent, hsum, inside, DwGeom, V};
use crate::cpu::elementwise::SendPtr;
use crate::cpu::im2col::PlaneView;
use crate::cpu::simd::Madd;
use crate::dtype::Float;

/// Where one phase's columns of a source row go: the first source column that lands in the
/// phase, how many do, and their offset in the phase plane's row.
type ColumnSplit = (usize, usize, usize);

/// A zero-filled scratch into which channel planes are copied at a fixed offset, as `sh*sw`
/// phase planes of `hq x wq`: padded element `(y, x)` is stored in phase `(y % sh, x % sw)` at
/// `(y / sh, x / sw)`.
struct Phases<T> {
    buf: Vec<T>,
    /// [`Phases::load`]'s column split for strided scratches, kept between loads: for the
    /// first column and width it was made for, per phase (first column, count, offset).
    cols: Option<((usize, usize), Vec<ColumnSplit>)>,
    sh: usize,
    sw: usize,
    hq: usize,
    wq: usize,
    top: isize,
    left: isize,
}

impl<T: Float> Phases<T> {
    fn new(hp: usize, wp: usize, sh: usize, sw: usize, top: isize, left: isize) -> Self {
        let (hq, wq) = (hp.div_ceil(sh), wp.div_ceil(sw));
        // One extra row per phase and a vector of slack: flat loops may read a little past the
        // last row.
        Phases { buf: vec![T::ZERO; sh * sw * (hq + 1) * wq + V], cols: None, sh, sw, hq, wq, top, left }
    }

    /// Values per phase plane.
    fn phase_len(&self) -> usize {
        (self.hq + 1) * self.wq
    }

    /// Where padded element `(y, x)` is stored.
    fn offset(&self, y: usize, x: usize) -> usize {
        ((y % self.sh) * self.sw + x % self.sw) * self.phase_len() + (y / self.sh) * self.wq + x / self.sw
    }

    /// Copies an `h x w` plane (element `(y, x)` at `src[base + y*ys + x*xs]`) in; the parts
    /// outside the scratch are cropped. The rest of the scratch keeps its zeros, because every
    /// call writes the same region.
    #[inline(always)]
    fn load(&mut self, src: &[T], base: usize, ys: usize, xs: usize, h: usize, w: usize) {
        let (top, left) = (self.top, self.left);
        let extent = (self.hq * self.sh, self.wq * self.sw);
        let (Range { start: y0, end: y1 }, Range { start: x0, end: x1 }) = inside(top, left, extent, (h, w));
        if y0 >= y1 || x0 >= x1 {
            return;
        }
        let n = x1 - x0;
        let (sh, sw, wq, plen) = (self.sh, self.sw, self.wq, self.phase_len());
        let px = (x0 as isize + left) as usize;
        // Per phase b of a row: the first source column k0 that lands in it, how many do, and
        // where they go in the phase plane's row (the same for every row and every load).
        if sw > 1 && self.cols.as_ref().is_none_or(|c| c.0 != (px, n)) {
            let cols = (0..sw)
                .map(|b| {
                    let k0 = (b + sw - px % sw) % sw;
                    (k0, n.saturating_sub(k0).div_ceil(sw), b * plen + (px + k0) / sw)
                })
                .collect();
            self.cols = Some(((px, n), cols));
        }
        let cols: &[(usize, usize, usize)] = self.cols.as_ref().map_or(&[], |c| &c.1);
        let py0 = (y0 as isize + top) as usize;
        let (mut ry, mut qy) = (py0 % sh, py0 / sh);
        for y in y0..y1 {
            let s = base + y * ys + x0 * xs;
            let row = ry * sw * plen + qy * wq;
            if sw == 1 {
                let dst = &mut self.buf[row + px..row + px + n];
                if xs == 1 {
                    copy_short(dst, &src[s..s + n]);
                } else {
                    for (k, o) in dst.iter_mut().enumerate() {
                        *o = src[s + k * xs];
                    }
                }
            } else if sw == 2 && xs == 1 && n >= 2 {
                // Pairs of columns split into the two phases (vectorises to shuffles).
                let (first, second) = if cols[0].0 == 0 { (cols[0], cols[1]) } else { (cols[1], cols[0]) };
                let (lo, hi) = self.buf.split_at_mut(row + first.2.max(second.2));
                let (a, b) =
                    if first.2 < second.2 { (&mut lo[row + first.2..], &mut hi[..]) } else { (&mut hi[..], &mut lo[row + second.2..]) };
                let pairs = src[s..s + n].chunks_exact(2);
                if let Some(&last) = pairs.remainder().first() {
                    a[n / 2] = last;
                }
                for ((pa, pb), pair) in a.iter_mut().zip(b.iter_mut()).zip(pairs) {
                    (*pa, *pb) = (pair[0], pair[1]);
                }
            } else {
                // Every sw-th column goes to one phase: a strided read, a contiguous write.
                for &(k0, count, at) in cols {
                    if count == 0 {
                        continue;
                    }
                    let from = src[s + k0 * xs..].iter().step_by(sw * xs);
                    for (o, &v) in self.buf[row + at..row + at + count].iter_mut().zip(from) {
                        *o = v;
                    }
                }
            }
            ry += 1;
            if ry == sh {
                (ry, qy) = (0, qy + 1);
            }
        }
    }

    /// Copies the `h x w` window at `(top, left)` of the padded plane out into `dst` (rows of
    /// `w`): the inverse of [`Phases::load`].
    fn unload(&self, dst: &mut [T], h: usize, w: usize, top: usize, left: usize) {
        let (sh, sw, wq, plen) = (self.sh, self.sw, self.wq, self.phase_len());
        for (y, row) in dst.chunks_exact_mut(w).take(h).enumerate() {
            let py = y + top;
            let base = (py % sh) * sw * plen + (py / sh) * wq;
            if sw == 1 {
                copy_short(row, &self.buf[base + left..base + left + w]);
                continue;
            }
            if sw == 2 && w >= 2 {
                // Columns x and x + 1 come from the two phases, in step (a pair at a time).
                let at = |x: usize| base + ((left + x) % 2) * plen + (left + x) / 2;
                let (pa, pb) = (&self.buf[at(0)..], &self.buf[at(1)..]);
                let mut pairs = row.chunks_exact_mut(2);
                for ((pair, &a), &b) in (&mut pairs).zip(pa).zip(pb) {
                    (pair[0], pair[1]) = (a, b);
                }
                if let Some(last) = pairs.into_remainder().first_mut() {
                    *last = pa[w / 2];
                }
                continue;
            }
            // Columns k0, k0 + sw, ... lie side by side in one phase plane.
            for k0 in 0..sw.min(w) {
                let at = base + ((left + k0) % sw) * plen + (left + k0) / sw;
                for (o, &v) in row[k0..].iter_mut().step_by(sw).zip(&self.buf[at..]) {
                    *o = v;
                }
            }
        }
    }

    /// The offset of every tap of a `kh x kw` kernel dilated by `(dh, dw)`, in (i, j) order:
    /// output pixel `(y, x)` of a flat loop at `y*wq + x` reads tap `t` at `+ offsets[t]`.
    fn tap_offsets(&self, kh: usize, kw: usize, dh: usize, dw: usize) -> Vec<usize> {
        (0..kh * kw).map(|t| self.offset((t / kw) * dh, (t % kw) * dw)).collect()
    }
}

/// `f[q] (+)= sum_t k[t] * p[q + offs[t]]` for `q < f.len()`: `depthwise`'s stride-1 loop with
/// the taps' offsets given (they cross phase planes). Stride 1 keeps its own copy with the
/// offsets derived from the row width: run through this one, its forward measured 9-14%
/// slower on MobileNet's 4x4 to 14x14 layers (alternating runs, minimum of six).
#[inline(always)]
fn flat_taps<T: Float, A: Madd>(p: &[T], offs: &[usize], k: &[T], f: &mut [T], acc: bool) {
    let l = f.len();
    if offs.len() == 9 {
        let r = |t: usize| &p[offs[t]..offs[t] + l];
        let (a0, a1, a2) = (r(0), r(1), r(2));
        let (b0, b1, b2) = (r(3), r(4), r(5));
        let (c0, c1, c2) = (r(6), r(7), r(8));
        let kk: [T; 9] = [k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8]];
        for q in 0..l {
            let mut s = if acc { f[q] } else { T::ZERO };
            s = A::madd(kk[0], a0[q], s);
            s = A::madd(kk[1], a1[q], s);
            s = A::madd(kk[2], a2[q], s);
            s = A::madd(kk[3], b0[q], s);
            s = A::madd(kk[4], b1[q], s);
            s = A::madd(kk[5], b2[q], s);
            s = A::madd(kk[6], c0[q], s);
            s = A::madd(kk[7], c1[q], s);
            s = A::madd(kk[8], c2[q], s);
            f[q] = s;
        }
        return;
    }
    // Blocks of B*V outputs stay in registers across all taps (one load per multiply-add, not
    // a load and a store of `f` as well), B independent accumulator chains to cover the FMA
    // latency; each output still sums its taps in (i, j) order.
    const B: usize = 8;
    let mut q0 = 0;
    while q0 + B * V <= l {
        let mut a = [[T::ZERO; V]; B];
        if acc {
            for (b, ab) in a.iter_mut().enumerate() {
                ab.copy_from_slice(&f[q0 + b * V..q0 + (b + 1) * V]);
            }
        }
        for (&off, &kv) in offs.iter().zip(k) {
            let src = &p[off + q0..off + q0 + B * V];
            for (b, ab) in a.iter_mut().enumerate() {
                for (v, x) in ab.iter_mut().enumerate() {
                    *x = A::madd(kv, src[b * V + v], *x);
                }
            }
        }
        for (b, ab) in a.iter().enumerate() {
            f[q0 + b * V..q0 + (b + 1) * V].copy_from_slice(ab);
        }
        q0 += B * V;
    }
    let f = &mut f[q0..];
    if !acc {
        f.fill(T::ZERO);
    }
    for (&off, &kv) in offs.iter().zip(k) {
        let src = &p[off + q0..off + q0 + f.len()];
        for (d, &s) in f.iter_mut().zip(src) {
            *d = A::madd(kv, s, *d);
        }
    }
}

/// `out[t] += sum_q g[q] * p[q + offs[t]]` for up to nine taps in one pass over `g` (each load
/// of `g` serves every tap).
#[inline(always)]
fn dot_taps<T: Float, A: Madd, const K: usize>(g: &[T], p: &[T], offs: &[usize], out: &mut [T]) {
    let n = g.len();
    let src: [&[T]; K] = std::array::from_fn(|t| &p[offs[t]..offs[t] + n]);
    let mut a = [[T::ZERO; V]; K];
    let mut i = 0;
    while i + V <= n {
        let gv = &g[i..i + V];
        for (at, st) in a.iter_mut().zip(&src) {
            fma_chunk::<T, A>(at, gv, &st[i..]);
        }
        i += V;
    }
    for ((o, at), st) in out.iter_mut().zip(&a).zip(&src) {
        let mut s = hsum(at);
        for q in i..n {
            s = A::madd(g[q], st[q], s);
        }
        *o += s;
    }
}

/// [`dot_taps`] for any number of taps, nine at a time.
#[inline(always)]
fn dot_many<T: Float, A: Madd>(g: &[T], p: &[T], offs: &[usize], out: &mut [T]) {
    for (o, c) in out.chunks_mut(9).zip(offs.chunks(9)) {
        match c.len() {
            9 => dot_taps::<T, A, 9>(g, p, c, o),
            8 => dot_taps::<T, A, 8>(g, p, c, o),
            7 => dot_taps::<T, A, 7>(g, p, c, o),
            6 => dot_taps::<T, A, 6>(g, p, c, o),
            5 => dot_taps::<T, A, 5>(g, p, c, o),
            4 => dot_taps::<T, A, 4>(g, p, c, o),
            3 => dot_taps::<T, A, 3>(g, p, c, o),
            2 => dot_taps::<T, A, 2>(g, p, c, o),
            _ => dot_taps::<T, A, 1>(g, p, c, o),
        }
    }
}

/// Output planes `r` (flat `n*c + c` indices) of the strided forward.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<T: Float, A: Madd>(
    x: &[T],
    xv: PlaneView,
    sn: usize,
    w: &[T],
    g: &DwGeom,
    out: SendPtr<T>,
    r: std::ops::Range<usize>,
) {
    let plane_out = g.oh * g.ow;
    let (hp, wp) = fwd_extent(g);
    let mut p = Phases::<T>::new(hp, wp, g.sh, g.sw, g.pt as isize, g.pl as isize);
    let offs = p.tap_offsets(g.kh, g.kw, g.dh, g.dw);
    let wq = p.wq;
    let mut f = vec![T::ZERO; (g.oh - 1) * wq + g.ow];
    for pc in r {
        let (n, c) = (pc / g.c, pc % g.c);
        p.load(x, xv.base + n * sn + c * xv.cs, xv.ys, xv.xs, g.h, g.w);
        for mi in 0..g.m {
            let oc = c * g.m + mi;
            let k = &w[oc * g.kh * g.kw..(oc + 1) * g.kh * g.kw];
            let o0 = (n * g.c * g.m + oc) * plane_out;
            // SAFETY: each (n, oc) plane is written by exactly one range.
            let o = unsafe { out.slice_mut(o0..o0 + plane_out) };
            flat_taps::<T, A>(&p.buf, &offs, k, &mut f, false);
            for (y, row) in o.chunks_exact_mut(g.ow).enumerate() {
                copy_short(row, &f[y * wq..y * wq + g.ow]);
            }
        }
    }
}

/// Input planes `r` of the strided input gradient (`gx` contiguous, overwritten).
#[inline(always)]
pub(crate) fn backward_data<T: Float, A: Madd>(gy: &[T], w: &[T], g: &DwGeom, gx: SendPtr<T>, r: std::ops::Range<usize>) {
    let (plane_in, plane_out, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    let (hp, wp) = fwd_extent(g);
    let (hp, wp) = (hp.max(g.h + g.pt), wp.max(g.w + g.pl));
    let mut acc = Phases::<T>::new(hp, wp, g.sh, g.sw, 0, 0);
    let offs = acc.tap_offsets(g.kh, g.kw, g.dh, g.dw);
    // The gradient laid out at the phase planes' width (zero gap columns).
    let mut gp = Phases::<T>::new(g.oh, acc.wq, 1, 1, 0, 0);
    let l = (g.oh - 1) * acc.wq + g.ow;
    for pc in r {
        let (n, c) = (pc / g.c, pc % g.c);
        acc.buf.fill(T::ZERO);
        for mi in 0..g.m {
            let oc = c * g.m + mi;
            gp.load(gy, (n * g.c * g.m + oc) * plane_out, g.ow, 1, g.oh, g.ow);
            for (&off, &kv) in offs.iter().zip(&w[oc * taps..(oc + 1) * taps]) {
                for (a, &gv) in acc.buf[off..off + l].iter_mut().zip(&gp.buf[..l]) {
                    *a = A::madd(kv, gv, *a);
                }
            }
        }
        // SAFETY: each (n, c) plane is written by exactly one range.
        let o = unsafe { gx.slice_mut(pc * plane_in..(pc + 1) * plane_in) };
        acc.unload(o, g.h, g.w, g.pt, g.pl);
    }
}

/// The strided weight gradient of channels `r` over `images`, added into `gw` (the weights of
/// those channels, `[r.len() * m, kh*kw]`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_weight<T: Float, A: Madd>(
    x: &[T],
    xv: PlaneView,
    sn: usize,
    gy: &[T],
    g: &DwGeom,
    gw: &mut [T],
    r: std::ops::Range<usize>,
    images: std::ops::Range<usize>,
) {
    let (plane_out, taps) = (g.oh * g.ow, g.kh * g.kw);
    let (hp, wp) = fwd_extent(g);
    let mut p = Phases::<T>::new(hp, wp, g.sh, g.sw, g.pt as isize, g.pl as isize);
    let offs = p.tap_offsets(g.kh, g.kw, g.dh, g.dw);
    // The gradient at the phase planes' width: each tap is one flat dot product.
    let mut gp = Phases::<T>::new(g.oh, p.wq, 1, 1, 0, 0);
    let l = (g.oh - 1) * p.wq + g.ow;
    for n in images {
        for c in r.clone() {
            let gwc = &mut gw[(c - r.start) * g.m * taps..(c - r.start + 1) * g.m * taps];
            p.load(x, xv.base + n * sn + c * xv.cs, xv.ys, xv.xs, g.h, g.w);
            for mi in 0..g.m {
                let oc = c * g.m + mi;
                gp.load(gy, (n * g.c * g.m + oc) * plane_out, g.ow, 1, g.oh, g.ow);
                dot_many::<T, A>(&gp.buf[..l], &p.buf, &offs, &mut gwc[mi * taps..(mi + 1) * taps]);
            }
        }
    }
}
