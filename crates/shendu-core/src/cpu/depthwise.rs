//! Direct depthwise convolution (one input channel per group, `m >= 1` output channels per input
//! channel), forward and both gradients.
//!
//! Each channel plane is first copied into a zero-padded scratch plane, so the hot loops have no
//! bounds tests. For stride 1 they then run over the padded plane as one flat vector: output
//! pixel `(y, x)` sits at flat index `y*wp + x` and tap `(i, j)` reads index `+ i*dh*wp + j*dw`;
//! the `wp - ow` wrapped columns per row are computed and thrown away, which costs less than the
//! scalar tails of 28-wide rows. Strided convolutions run on phase planes
//! (`super::depthwise_strided`).

use std::ops::Range;

use crate::cpu::conv_threads::for_chunks;
use crate::cpu::elementwise::SendPtr;
use crate::cpu::im2col::PlaneView;
use crate::cpu::simd::{dispatch, Madd, SimdKernel};
use crate::cpu::threads;
use crate::cpu::{depthwise_lanes, depthwise_strided};
use crate::dtype::Float;

/// Geometry of a depthwise convolution over a batch.
#[derive(Clone, Copy, Debug)]
pub struct DwGeom {
    pub n: usize,
    /// Input channels (= groups).
    pub c: usize,
    /// Output channels per input channel.
    pub m: usize,
    pub h: usize,
    pub w: usize,
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
}

/// Copies a short row (image rows are tens of elements) with inline vector moves: fixed
/// 8-element chunks and an overlapping last chunk, where `copy_from_slice` would call `memcpy`
/// once per row.
#[inline(always)]
pub(crate) fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    const C: usize = 8;
    let n = dst.len().min(src.len());
    if n < C {
        for (d, &s) in dst[..n].iter_mut().zip(&src[..n]) {
            *d = s;
        }
        return;
    }
    let mut i = 0;
    while i + C <= n {
        dst[i..i + C].copy_from_slice(&src[i..i + C]);
        i += C;
    }
    if i < n {
        dst[n - C..n].copy_from_slice(&src[n - C..n]);
    }
}

/// The rows and columns of an `h x w` plane that land inside an `hp x wp` scratch when the
/// plane's `(0, 0)` is placed at `(top, left)` (negative: the plane's first rows or columns are
/// cropped); empty ranges when none do.
#[inline(always)]
pub(crate) fn inside(top: isize, left: isize, (hp, wp): (usize, usize), (h, w): (usize, usize)) -> (Range<usize>, Range<usize>) {
    let rows = (-top).max(0) as usize..(hp as isize - top).clamp(0, h as isize) as usize;
    let cols = (-left).max(0) as usize..(wp as isize - left).clamp(0, w as isize) as usize;
    (rows, cols)
}

/// A zero-filled scratch plane into which channel planes are copied at a fixed offset.
struct Padded<T> {
    buf: Vec<T>,
    hp: usize,
    wp: usize,
    top: isize,
    left: isize,
}

impl<T: Float> Padded<T> {
    fn new(hp: usize, wp: usize, top: isize, left: isize) -> Self {
        // One extra row of slack: flat loops may read a few elements past the last row.
        Padded { buf: vec![T::ZERO; (hp + 1) * wp], hp, wp, top, left }
    }

    /// Copies an `h x w` plane (element `(y, x)` at `src[base + y*ys + x*xs]`) in; the parts
    /// outside the scratch are cropped. The rest of the scratch keeps its zeros, because every
    /// call writes the same region.
    #[inline(always)]
    fn load(&mut self, src: &[T], base: usize, ys: usize, xs: usize, h: usize, w: usize) {
        let (top, left) = (self.top, self.left);
        let (Range { start: y0, end: y1 }, Range { start: x0, end: x1 }) = inside(top, left, (self.hp, self.wp), (h, w));
        if y0 >= y1 || x0 >= x1 {
            return;
        }
        let n = x1 - x0;
        for y in y0..y1 {
            let d = (y as isize + top) as usize * self.wp + (x0 as isize + left) as usize;
            let s = base + y * ys + x0 * xs;
            let dst = &mut self.buf[d..d + n];
            if xs == 1 {
                copy_short(dst, &src[s..s + n]);
            } else {
                for (k, o) in dst.iter_mut().enumerate() {
                    *o = src[s + k * xs];
                }
            }
        }
    }
}

/// `f[q] (+)= sum_ij k[i][j] * p[q + i*dh*wp + j*dw]` for `q < f.len()`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn flat_taps<T: Float, A: Madd>(p: &[T], wp: usize, k: &[T], kh: usize, kw: usize, dh: usize, dw: usize, f: &mut [T], acc: bool) {
    let l = f.len();
    if kh == 3 && kw == 3 && dh == 1 && dw == 1 {
        let r = |o: usize| &p[o..o + l];
        let (a0, a1, a2) = (r(0), r(1), r(2));
        let (b0, b1, b2) = (r(wp), r(wp + 1), r(wp + 2));
        let (c0, c1, c2) = (r(2 * wp), r(2 * wp + 1), r(2 * wp + 2));
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
        for i in 0..kh {
            for j in 0..kw {
                let o = i * dh * wp + j * dw + q0;
                let (src, kv) = (&p[o..o + B * V], k[i * kw + j]);
                for (b, ab) in a.iter_mut().enumerate() {
                    for (v, x) in ab.iter_mut().enumerate() {
                        *x = A::madd(kv, src[b * V + v], *x);
                    }
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
    for i in 0..kh {
        for j in 0..kw {
            let o = i * dh * wp + j * dw + q0;
            let (src, kv) = (&p[o..o + f.len()], k[i * kw + j]);
            for (d, &s) in f.iter_mut().zip(src) {
                *d = A::madd(kv, s, *d);
            }
        }
    }
}

/// Padded-plane size a forward needs: every window of every output pixel.
pub(crate) fn fwd_extent(g: &DwGeom) -> (usize, usize) {
    ((g.oh - 1) * g.sh + g.dh * (g.kh - 1) + 1, (g.ow - 1) * g.sw + g.dw * (g.kw - 1) + 1)
}

/// `out [n, c*m, oh, ow] = depthwise(x, w [c*m, 1, kh, kw])`; `x` may be strided (`xv` gives the
/// channel-plane view of image 0 and `sn` the image stride).
pub fn forward<T: Float>(x: &[T], xv: PlaneView, sn: usize, w: &[T], g: &DwGeom, out: &mut [T]) {
    if g.oh == 0 || g.ow == 0 {
        return;
    }
    if depthwise_lanes::applies(g) {
        return depthwise_lanes::forward(x, xv, sn, w, g, out);
    }
    let out = SendPtr(out.as_mut_ptr());
    for_chunks(g.n * g.c, 8, |r| dispatch(Fwd { x, xv, sn, w, g, out, r }));
}

struct Fwd<'a, T> {
    x: &'a [T],
    xv: PlaneView,
    sn: usize,
    w: &'a [T],
    g: &'a DwGeom,
    out: SendPtr<T>,
    r: Range<usize>,
}

impl<T: Float> SimdKernel for Fwd<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let Fwd { x, xv, sn, w, g, out, r } = self;
        if g.sh > 1 || g.sw > 1 {
            return depthwise_strided::forward::<T, A>(x, xv, sn, w, g, out, r);
        }
        let plane_out = g.oh * g.ow;
        let (hp, wp) = fwd_extent(g);
        let mut p = Padded::<T>::new(hp, wp, g.pt as isize, g.pl as isize);
        let l = (g.oh - 1) * wp + g.ow;
        let mut f = vec![T::ZERO; l];
        for pc in r {
            let (n, c) = (pc / g.c, pc % g.c);
            p.load(x, xv.base + n * sn + c * xv.cs, xv.ys, xv.xs, g.h, g.w);
            for mi in 0..g.m {
                let oc = c * g.m + mi;
                let k = &w[oc * g.kh * g.kw..(oc + 1) * g.kh * g.kw];
                let o0 = (n * g.c * g.m + oc) * plane_out;
                // SAFETY: each (n, oc) plane is written by exactly one range.
                let o = unsafe { out.slice_mut(o0..o0 + plane_out) };
                flat_taps::<T, A>(&p.buf, wp, k, g.kh, g.kw, g.dh, g.dw, &mut f, false);
                for (y, row) in o.chunks_exact_mut(g.ow).enumerate() {
                    copy_short(row, &f[y * wp..y * wp + g.ow]);
                }
            }
        }
    }
}

/// `gx [n, c, h, w]` (overwritten, contiguous) from `gy [n, c*m, oh, ow]` (contiguous).
pub fn backward_data<T: Float>(gy: &[T], w: &[T], g: &DwGeom, gx: &mut [T]) {
    if g.h * g.w == 0 {
        return;
    }
    if depthwise_lanes::applies(g) {
        return depthwise_lanes::backward_data(gy, w, g, gx);
    }
    let gx = SendPtr(gx.as_mut_ptr());
    for_chunks(g.n * g.c, 8, |r| dispatch(BwdData { gy, w, g, gx, r }));
}

struct BwdData<'a, T> {
    gy: &'a [T],
    w: &'a [T],
    g: &'a DwGeom,
    gx: SendPtr<T>,
    r: Range<usize>,
}

impl<T: Float> SimdKernel for BwdData<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let BwdData { gy, w, g, gx, r } = self;
        let (plane_in, plane_out, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
        if g.sh == 1 && g.sw == 1 {
            // A stride-1 transposed convolution is a correlation of the gradient, padded by
            // d*(k-1) - p (negative: cropped), with the flipped kernel.
            let (eh, ew) = (g.dh * (g.kh - 1), g.dw * (g.kw - 1));
            let (hp, wp) = (g.h + eh, g.w + ew);
            let mut p = Padded::<T>::new(hp, wp, eh as isize - g.pt as isize, ew as isize - g.pl as isize);
            let l = (g.h - 1) * wp + g.w;
            let mut f = vec![T::ZERO; l];
            let mut flipped = vec![T::ZERO; taps];
            for pc in r {
                let (n, c) = (pc / g.c, pc % g.c);
                for mi in 0..g.m {
                    let oc = c * g.m + mi;
                    for (t, v) in flipped.iter_mut().enumerate() {
                        *v = w[oc * taps + taps - 1 - t];
                    }
                    p.load(gy, (n * g.c * g.m + oc) * plane_out, g.ow, 1, g.oh, g.ow);
                    flat_taps::<T, A>(&p.buf, wp, &flipped, g.kh, g.kw, g.dh, g.dw, &mut f, mi > 0);
                }
                // SAFETY: each (n, c) plane is written by exactly one range.
                let o = unsafe { gx.slice_mut(pc * plane_in..(pc + 1) * plane_in) };
                for (y, row) in o.chunks_exact_mut(g.w).enumerate() {
                    copy_short(row, &f[y * wp..y * wp + g.w]);
                }
            }
        } else {
            depthwise_strided::backward_data::<T, A>(gy, w, g, gx, r);
        }
    }
}

/// Lanes of the vector accumulators below (one AVX2 register of f32).
pub(crate) const V: usize = 8;

/// `acc[l] += g[l] * p[l]` for one chunk (after inlining, `acc` lives in a register).
#[inline(always)]
pub(crate) fn fma_chunk<T: Float, A: Madd>(acc: &mut [T; V], g: &[T], p: &[T]) {
    let (g, p) = (&g[..V], &p[..V]);
    for l in 0..V {
        acc[l] = A::madd(g[l], p[l], acc[l]);
    }
}

#[inline(always)]
pub(crate) fn hsum<T: Float>(acc: &[T; V]) -> T {
    acc.iter().fold(T::ZERO, |s, &v| s + v)
}

/// `sum_q a[q] * b[q]` with four independent vector accumulators, so it vectorises without
/// reassociating a single sum.
#[inline(always)]
fn dot<T: Float, A: Madd>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (mut a0, mut a1, mut a2, mut a3) = ([T::ZERO; V], [T::ZERO; V], [T::ZERO; V], [T::ZERO; V]);
    let mut i = 0;
    while i + 4 * V <= n {
        fma_chunk::<T, A>(&mut a0, &a[i..], &b[i..]);
        fma_chunk::<T, A>(&mut a1, &a[i + V..], &b[i + V..]);
        fma_chunk::<T, A>(&mut a2, &a[i + 2 * V..], &b[i + 2 * V..]);
        fma_chunk::<T, A>(&mut a3, &a[i + 3 * V..], &b[i + 3 * V..]);
        i += 4 * V;
    }
    let mut s = hsum(&a0) + hsum(&a1) + hsum(&a2) + hsum(&a3);
    for q in i..n {
        s = A::madd(a[q], b[q], s);
    }
    s
}

/// `out[j] += sum_q g[q] * p[q + j*dw]` for the taps of one kernel row, in one pass over `g`
/// (each load of `g` serves every tap), for rows of up to 7 taps; returns false (doing nothing)
/// for longer rows.
#[inline(always)]
fn dot_row<T: Float, A: Madd>(g: &[T], p: &[T], dw: usize, out: &mut [T]) -> bool {
    match out.len() {
        1 => dot_taps::<T, A, 1>(g, p, dw, out),
        2 => dot_taps::<T, A, 2>(g, p, dw, out),
        3 => dot_taps::<T, A, 3>(g, p, dw, out),
        4 => dot_taps::<T, A, 4>(g, p, dw, out),
        5 => dot_taps::<T, A, 5>(g, p, dw, out),
        6 => dot_taps::<T, A, 6>(g, p, dw, out),
        7 => dot_taps::<T, A, 7>(g, p, dw, out),
        _ => return false,
    }
    true
}

#[inline(always)]
fn dot_taps<T: Float, A: Madd, const K: usize>(g: &[T], p: &[T], dw: usize, out: &mut [T]) {
    let n = g.len();
    let p = &p[..n + (K - 1) * dw];
    let mut a = [[T::ZERO; V]; K];
    let mut i = 0;
    while i + V <= n {
        let gv = &g[i..i + V];
        for (j, aj) in a.iter_mut().enumerate() {
            fma_chunk::<T, A>(aj, gv, &p[i + j * dw..]);
        }
        i += V;
    }
    for (j, (o, aj)) in out.iter_mut().zip(&a).enumerate() {
        let mut s = hsum(aj);
        for q in i..n {
            s = A::madd(g[q], p[q + j * dw], s);
        }
        *o += s;
    }
}

/// The nine dot products of a 3x3 undilated kernel's weight gradient in one pass over `g`:
/// `g` against `p` shifted by `i*wp + j`; each load of `g` serves nine multiply-adds.
#[inline(always)]
fn dot9<T: Float, A: Madd>(g: &[T], p: &[T], wp: usize) -> [T; 9] {
    let n = g.len();
    let z = [T::ZERO; V];
    let (mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7, mut a8) = (z, z, z, z, z, z, z, z, z);
    let (r0, r1, r2) = (p, &p[wp..], &p[2 * wp..]);
    let mut i = 0;
    while i + V <= n {
        let gv = &g[i..];
        fma_chunk::<T, A>(&mut a0, gv, &r0[i..]);
        fma_chunk::<T, A>(&mut a1, gv, &r0[i + 1..]);
        fma_chunk::<T, A>(&mut a2, gv, &r0[i + 2..]);
        fma_chunk::<T, A>(&mut a3, gv, &r1[i..]);
        fma_chunk::<T, A>(&mut a4, gv, &r1[i + 1..]);
        fma_chunk::<T, A>(&mut a5, gv, &r1[i + 2..]);
        fma_chunk::<T, A>(&mut a6, gv, &r2[i..]);
        fma_chunk::<T, A>(&mut a7, gv, &r2[i + 1..]);
        fma_chunk::<T, A>(&mut a8, gv, &r2[i + 2..]);
        i += V;
    }
    let mut out = [hsum(&a0), hsum(&a1), hsum(&a2), hsum(&a3), hsum(&a4), hsum(&a5), hsum(&a6), hsum(&a7), hsum(&a8)];
    for q in i..n {
        for (t, o) in out.iter_mut().enumerate() {
            *o = A::madd(g[q], p[q + (t / 3) * wp + t % 3], *o);
        }
    }
    out
}

/// `gw [c*m, 1, kh, kw]` (overwritten) from `x` (strided, as in [`forward`]) and `gy`
/// (contiguous). Parallel over channels, so each weight is summed by one thread in a fixed order.
pub fn backward_weight<T: Float>(x: &[T], xv: PlaneView, sn: usize, gy: &[T], g: &DwGeom, gw: &mut [T]) {
    gw.fill(T::ZERO);
    if g.oh == 0 || g.ow == 0 {
        return;
    }
    if depthwise_lanes::applies(g) {
        return depthwise_lanes::backward_weight(x, xv, sn, gy, g, gw);
    }
    let t = threads::num_threads();
    if g.c >= t || g.n < 2 {
        let gw = SendPtr(gw.as_mut_ptr());
        for_chunks(g.c, 1, |r| dispatch(BwdWeight { x, xv, sn, gy, g, gw, r, images: 0..g.n }));
        return;
    }
    // Fewer channels than threads (LeNet's first layer has one): split the images instead, each
    // part summing into its own copy of the weights, added up in part order afterwards.
    let parts = t.min(g.n);
    let mut partials: Vec<Vec<T>> = (1..parts).map(|_| vec![T::ZERO; gw.len()]).collect();
    let ptrs: Vec<SendPtr<T>> =
        std::iter::once(SendPtr(gw.as_mut_ptr())).chain(partials.iter_mut().map(|p| SendPtr(p.as_mut_ptr()))).collect();
    threads::parallel_ranges(parts, 1, |pr| {
        for part in pr {
            let images = part * g.n / parts..(part + 1) * g.n / parts;
            dispatch(BwdWeight { x, xv, sn, gy, g, gw: ptrs[part], r: 0..g.c, images });
        }
    });
    for p in &partials {
        for (d, &v) in gw.iter_mut().zip(p) {
            *d += v;
        }
    }
}

struct BwdWeight<'a, T> {
    x: &'a [T],
    xv: PlaneView,
    sn: usize,
    gy: &'a [T],
    g: &'a DwGeom,
    gw: SendPtr<T>,
    r: Range<usize>,
    images: Range<usize>,
}

impl<T: Float> SimdKernel for BwdWeight<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let BwdWeight { x, xv, sn, gy, g, gw, r, images } = self;
        let (plane_out, taps) = (g.oh * g.ow, g.kh * g.kw);
        if g.sh > 1 || g.sw > 1 {
            // SAFETY: each range owns the weights of its channels.
            let gwr = unsafe { gw.slice_mut(r.start * g.m * taps..r.end * g.m * taps) };
            return depthwise_strided::backward_weight::<T, A>(x, xv, sn, gy, g, gwr, r, images);
        }
        let (hp, wp) = fwd_extent(g);
        let mut p = Padded::<T>::new(hp, wp, g.pt as isize, g.pl as isize);
        let mut gp = Padded::<T>::new(g.oh, wp, 0, 0);
        let l = (g.oh - 1) * wp + g.ow;
        // SAFETY: each range owns the weights of its channels.
        let gwr = unsafe { gw.slice_mut(r.start * g.m * taps..r.end * g.m * taps) };
        // Images outer, channels inner: the planes are then read in memory order (the prefetcher
        // streams them), and each weight still sums its images in order.
        for n in images {
            for c in r.clone() {
                let gwc = &mut gwr[(c - r.start) * g.m * taps..(c - r.start + 1) * g.m * taps];
                p.load(x, xv.base + n * sn + c * xv.cs, xv.ys, xv.xs, g.h, g.w);
                for mi in 0..g.m {
                    let oc = c * g.m + mi;
                    let gsrc = (n * g.c * g.m + oc) * plane_out;
                    let kacc = &mut gwc[mi * taps..(mi + 1) * taps];
                    // The gradient laid out at the padded width (zero gap columns) makes
                    // each tap one flat dot product with the shifted input plane.
                    gp.load(gy, gsrc, g.ow, 1, g.oh, g.ow);
                    let gq = &gp.buf[..l];
                    if g.kh == 3 && g.kw == 3 && g.dh == 1 && g.dw == 1 {
                        for (k, v) in kacc.iter_mut().zip(dot9::<T, A>(gq, &p.buf, wp)) {
                            *k += v;
                        }
                        continue;
                    }
                    for i in 0..g.kh {
                        let row = &mut kacc[i * g.kw..(i + 1) * g.kw];
                        let p_row = &p.buf[i * g.dh * wp..];
                        if !dot_row::<T, A>(gq, p_row, g.dw, row) {
                            for (j, kv) in row.iter_mut().enumerate() {
                                *kv += dot::<T, A>(gq, &p_row[j * g.dw..j * g.dw + l]);
                            }
                        }
                    }
                }
            }
        }
    }
}
