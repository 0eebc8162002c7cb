//! Stride-1 depthwise convolutions on small planes (MobileNet's 7x7 and 4x4 stages), eight
//! channels at a time.
//!
//! A 4x4 plane has 16 outputs: the flat per-plane loops of `depthwise` spend more on the padded
//! copy, the loop set-up and (in the weight gradient) nine horizontal sums per plane than on its
//! 144 multiply-adds, and ran at ~7 GFLOP/s. Here the planes of eight channels of one image are
//! interleaved into a zero-padded, pixel-major tile (`[pixel][lane]`, lane = channel), so every
//! multiply-add is a full vector across the eight channels, with the weights regrouped once as
//! `[block][tap][lane]`; the outputs are de-interleaved back into their planes (8x8 AVX
//! transposes for f32). MobileNetV2-28's 480-channel 4x4 layer at batch 64, one thread: forward
//! 1.2 -> ~0.45 ms, both gradients 3.2 -> ~1.15 ms.
//!
//! The input gradient is the same correlation of the padded output gradient with the flipped
//! kernel (as in `depthwise`). The weight gradient keeps each block's `[tap][lane]` sums across
//! the images, in image order, so a weight's sum does not depend on the thread count.

use crate::cpu::conv_threads::for_chunks;
use std::ops::Range;

use crate::cpu::depthwise::{fwd_extent, inside, DwGeom};
use crate::cpu::elementwise::SendPtr;
use crate::cpu::im2col::PlaneView;
#[cfg(target_arch = "x86_64")]
use crate::cpu::simd::{as_f32, as_f32_mut, transpose8};
use crate::cpu::simd::{dispatch, Madd, SimdKernel};
use crate::dtype::Float;

/// Channels per vector.
const L: usize = 8;

/// Planes of at most this many pixels (input and output) take this path: up to 8x8. At 14x14
/// (96 channels, batch 64) this path measured 2x slower than the flat one: the tap loops are
/// fast, but interleaving eight 784-byte planes read from memory stalls on every load, where
/// the flat path streams one plane at a time.
const MAX_PLANE: usize = 64;

/// Whether this path runs the convolution: stride 1, one output channel per input channel, at
/// least one full block of channels and small planes.
pub(crate) fn applies(g: &DwGeom) -> bool {
    g.sh == 1 && g.sw == 1 && g.m == 1 && g.c >= L && g.oh * g.ow <= MAX_PLANE && g.h * g.w <= MAX_PLANE
}

/// The weights `[c, kh*kw]` regrouped as `[block][tap][lane]`, taps reversed when `flip`
/// (lanes past the last channel are zero).
fn lane_weights<T: Float>(w: &[T], c: usize, taps: usize, flip: bool) -> Vec<T> {
    let blocks = c.div_ceil(L);
    let mut out = vec![T::ZERO; blocks * taps * L];
    for ch in 0..c {
        let (b, lane) = (ch / L, ch % L);
        for t in 0..taps {
            let src = if flip { taps - 1 - t } else { t };
            out[(b * taps + t) * L + lane] = w[ch * taps + src];
        }
    }
    out
}

/// A zero-padded, pixel-major tile of up to eight channel planes: pixel `(y, x)` of the padded
/// plane at `(y * wp + x) * L`, one lane per channel. Every load writes the same region, so the
/// border keeps its zeros.
struct LaneTile<T> {
    buf: Vec<T>,
    hp: usize,
    wp: usize,
    top: isize,
    left: isize,
}

impl<T: Float> LaneTile<T> {
    fn new(hp: usize, wp: usize, top: isize, left: isize) -> Self {
        // Slack for the flat loops, which run over whole groups of `U` pixels past the end.
        LaneTile { buf: vec![T::ZERO; (hp * wp + U + wp) * L], hp, wp, top, left }
    }

    /// Interleaves `lanes` planes of `h x w` values in: lane `l`'s element `(y, x)` at
    /// `src[base(l) + y*ys + x*xs]`; the parts outside the tile are cropped.
    #[inline(always)]
    fn load(&mut self, src: &[T], base: impl Fn(usize) -> usize, lanes: usize, (ys, xs): (usize, usize), (h, w): (usize, usize)) {
        let (top, left) = (self.top, self.left);
        let (Range { start: y0, end: y1 }, Range { start: x0, end: x1 }) = inside(top, left, (self.hp, self.wp), (h, w));
        #[cfg(target_arch = "x86_64")]
        if lanes == L && xs == 1 && ys == w && (y0, y1, x0, x1) == (0, h, 0, w) {
            // Eight whole contiguous planes: 8x8 transposes.
            let wp = self.wp;
            if let (Some(tile), Some(src)) = (as_f32_mut(&mut self.buf), as_f32(src)) {
                let planes: [&[f32]; L] = std::array::from_fn(|l| &src[base(l)..base(l) + h * w]);
                // SAFETY: as_f32 returned Some, so the CPU has AVX2; the tile holds the planes
                // uncropped (checked above).
                unsafe { interleave8(planes, w, tile, wp, top as usize, left as usize) };
                return;
            }
        }
        for l in 0..lanes {
            let b = base(l);
            for y in y0..y1 {
                let row = ((y as isize + top) as usize * self.wp) as isize + left;
                for x in x0..x1 {
                    self.buf[(row + x as isize) as usize * L + l] = src[b + y * ys + x * xs];
                }
            }
        }
    }
}

/// Output pixels per group of the flat loops: independent accumulator chains.
const U: usize = 4;

/// Offsets (in pixels of a tile of width `wp`) of the taps of a kernel.
fn tap_offsets(g: &DwGeom, wp: usize) -> Vec<usize> {
    (0..g.kh).flat_map(|i| (0..g.kw).map(move |j| i * g.dh * wp + j * g.dw)).collect()
}

/// `f[q*L + l] (+)= sum_t k[t*L + l] * p[(q + offs[t])*L + l]` over the `K` taps, for the flat
/// pixels `q` of a tile (`q = y*wp + x`; the columns past the output's width are computed and
/// dropped later). `f` holds whole groups of `U` pixels, computed together (independent
/// accumulator chains), the `K` kernel vectors in registers.
#[inline(always)]
fn correlate<T: Float, A: Madd, const K: usize>(p: &[T], k: &[T], offs: &[usize], f: &mut [T], accumulate: bool) {
    let offs: &[usize; K] = offs.try_into().expect("K taps");
    let mut kv = [[T::ZERO; L]; K];
    for (t, v) in kv.iter_mut().enumerate() {
        v.copy_from_slice(&k[t * L..(t + 1) * L]);
    }
    let groups = f.len() / (U * L);
    let reach = offs.iter().max().map_or(0, |&o| (groups * U + o) * L);
    assert!(reach <= p.len(), "tile too small for the flat loops");
    for (gi, fg) in f.chunks_exact_mut(U * L).enumerate() {
        let q0 = gi * U;
        let mut acc = [[T::ZERO; L]; U];
        if accumulate {
            for (u, a) in acc.iter_mut().enumerate() {
                a.copy_from_slice(&fg[u * L..(u + 1) * L]);
            }
        }
        for (kt, &off) in kv.iter().zip(offs) {
            let base = (q0 + off) * L;
            for (u, a) in acc.iter_mut().enumerate() {
                for l in 0..L {
                    // SAFETY: base + u*L + l < (q0 + U + off) * L <= reach <= p.len().
                    let v = unsafe { *p.get_unchecked(base + u * L + l) };
                    a[l] = A::madd(kt[l], v, a[l]);
                }
            }
        }
        for (u, a) in acc.iter().enumerate() {
            fg[u * L..(u + 1) * L].copy_from_slice(a);
        }
    }
}

/// De-interleaves `lanes` planes of `oh x ow` values from the flat tile output `f` (pixel
/// `(y, x)` at `(y*wp + x)*L`) into `out`, lane `l`'s plane starting at `first + l*oh*ow`.
///
/// # Safety
/// The planes must lie inside `out`'s buffer and belong to the caller alone.
#[inline(always)]
unsafe fn store<T: Float>(f: &[T], wp: usize, out: SendPtr<T>, first: usize, lanes: usize, (oh, ow): (usize, usize)) {
    let len = oh * ow;
    #[cfg(target_arch = "x86_64")]
    if lanes == L {
        if let Some(f) = as_f32(f) {
            let out = SendPtr(out.0 as *mut f32);
            // SAFETY: forwarded contract for the planes; T is f32 and the CPU has AVX2 (as_f32
            // returned Some).
            unsafe { deinterleave8(f, wp, ow, std::array::from_fn(|l| out.slice_mut(first + l * len..first + (l + 1) * len))) };
            return;
        }
    }
    for l in 0..lanes {
        // SAFETY: forwarded contract.
        let dst = unsafe { out.slice_mut(first + l * len..first + (l + 1) * len) };
        for (y, row) in dst.chunks_exact_mut(ow).enumerate() {
            for (x, d) in row.iter_mut().enumerate() {
                *d = f[(y * wp + x) * L + l];
            }
        }
    }
}

/// `out [n, c, oh, ow]` = depthwise(x, w) (see `depthwise::forward`; `applies(g)` holds).
pub(crate) fn forward<T: Float>(x: &[T], xv: PlaneView, sn: usize, w: &[T], g: &DwGeom, out: &mut [T]) {
    let taps = g.kh * g.kw;
    let k = lane_weights(w, g.c, taps, false);
    let out = SendPtr(out.as_mut_ptr());
    let blocks = g.c.div_ceil(L);
    for_chunks(g.n * blocks, 4, |r| {
        dispatch(Correlate {
            src: x,
            base: |n, ch| xv.base + n * sn + ch * xv.cs,
            ys: xv.ys,
            xs: xv.xs,
            in_hw: (g.h, g.w),
            pad: (g.pt as isize, g.pl as isize),
            k: &k,
            g,
            out_hw: (g.oh, g.ow),
            out,
            items: r,
        })
    });
}

/// `gx [n, c, h, w]` from `gy [n, c, oh, ow]` (contiguous): the correlation of the output
/// gradient, padded by `d*(k-1) - p` (negative: cropped), with the flipped kernel.
pub(crate) fn backward_data<T: Float>(gy: &[T], w: &[T], g: &DwGeom, gx: &mut [T]) {
    let taps = g.kh * g.kw;
    let k = lane_weights(w, g.c, taps, true);
    let gx = SendPtr(gx.as_mut_ptr());
    let blocks = g.c.div_ceil(L);
    let plane_out = g.oh * g.ow;
    let (eh, ew) = (g.dh * (g.kh - 1), g.dw * (g.kw - 1));
    for_chunks(g.n * blocks, 4, |r| {
        dispatch(Correlate {
            src: gy,
            base: |n, ch| (n * g.c + ch) * plane_out,
            ys: g.ow,
            xs: 1,
            in_hw: (g.oh, g.ow),
            pad: (eh as isize - g.pt as isize, ew as isize - g.pl as isize),
            k: &k,
            g,
            out_hw: (g.h, g.w),
            out: gx,
            items: r,
        })
    });
}

/// Correlates the `[n, block]` items `items`: each block's planes interleaved into a tile
/// (padded by `pad`), correlated with the block's lane weights `k`, stored as contiguous
/// `[n, c, out_hw]` planes.
struct Correlate<'a, T, B> {
    src: &'a [T],
    base: B,
    ys: usize,
    xs: usize,
    in_hw: (usize, usize),
    pad: (isize, isize),
    k: &'a [T],
    g: &'a DwGeom,
    out_hw: (usize, usize),
    out: SendPtr<T>,
    items: std::ops::Range<usize>,
}

impl<T: Float, B: Fn(usize, usize) -> usize> SimdKernel for Correlate<'_, T, B> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let Correlate { src, base, ys, xs, in_hw: (h, w), pad: (top, left), k, g, out_hw: (oh, ow), out, items } = self;
        let (taps, blocks) = (g.kh * g.kw, g.c.div_ceil(L));
        let (hp, wp) = (oh + g.dh * (g.kh - 1), ow + g.dw * (g.kw - 1));
        let offs = tap_offsets(g, wp);
        let mut tile = LaneTile::<T>::new(hp, wp, top, left);
        // The flat outputs, rounded up to whole groups of U pixels.
        let mut f = vec![T::ZERO; ((oh - 1) * wp + ow).next_multiple_of(U) * L];
        for item in items {
            let (n, b) = (item / blocks, item % blocks);
            let (c0, lanes) = (b * L, L.min(g.c - b * L));
            tile.load(src, |l| base(n, c0 + l), lanes, (ys, xs), (h, w));
            let kb = &k[b * taps * L..(b + 1) * taps * L];
            if taps == 9 {
                correlate::<T, A, 9>(&tile.buf, kb, &offs, &mut f, false);
            } else {
                for (t, off) in offs.iter().enumerate() {
                    correlate::<T, A, 1>(&tile.buf, &kb[t * L..(t + 1) * L], std::slice::from_ref(off), &mut f, t > 0);
                }
            }
            // SAFETY: item (n, b) alone writes the planes of channels c0..c0+lanes of image n.
            unsafe { store(&f, wp, out, (n * g.c + c0) * oh * ow, lanes, (oh, ow)) };
        }
    }
}

/// `gw [c, 1, kh, kw]` (overwritten) from `x` (strided, as in `forward`) and `gy` (contiguous).
/// Parallel over blocks of channels; each weight sums its images in order.
pub(crate) fn backward_weight<T: Float>(x: &[T], xv: PlaneView, sn: usize, gy: &[T], g: &DwGeom, gw: &mut [T]) {
    let gw = SendPtr(gw.as_mut_ptr());
    for_chunks(g.c.div_ceil(L), 1, |r| dispatch(WeightGrad { x, xv, sn, gy, g, gw, blocks: r }));
}

struct WeightGrad<'a, T> {
    x: &'a [T],
    xv: PlaneView,
    sn: usize,
    gy: &'a [T],
    g: &'a DwGeom,
    gw: SendPtr<T>,
    blocks: std::ops::Range<usize>,
}

impl<T: Float> SimdKernel for WeightGrad<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let WeightGrad { x, xv, sn, gy, g, gw, blocks } = self;
        let (taps, len) = (g.kh * g.kw, g.oh * g.ow);
        let (hp, wp) = fwd_extent(g);
        let offs = tap_offsets(g, wp);
        let mut tile = LaneTile::<T>::new(hp, wp, g.pt as isize, g.pl as isize);
        // The output gradient interleaved at the tile's width, zeros in the columns past `ow`:
        // then every tap is one flat pass over the pixels.
        let mut gt = LaneTile::<T>::new(g.oh, wp, 0, 0);
        let flat = (g.oh - 1) * wp + g.ow;
        let mut acc = vec![T::ZERO; blocks.len() * taps * L];
        // Images outer, blocks inner: the planes are read in memory order.
        for n in 0..g.n {
            for b in blocks.clone() {
                let (c0, lanes) = (b * L, L.min(g.c - b * L));
                tile.load(x, |l| xv.base + n * sn + (c0 + l) * xv.cs, lanes, (xv.ys, xv.xs), (g.h, g.w));
                gt.load(gy, |l| (n * g.c + c0 + l) * len, lanes, (g.ow, 1), (g.oh, g.ow));
                let a = &mut acc[(b - blocks.start) * taps * L..(b - blocks.start + 1) * taps * L];
                if taps == 9 {
                    tap_sums::<T, A, 9>(&gt.buf[..flat * L], &tile.buf, &offs, a);
                } else {
                    for (t, &off) in offs.iter().enumerate() {
                        tap_sums::<T, A, 1>(&gt.buf[..flat * L], &tile.buf[off * L..], &[0], &mut a[t * L..(t + 1) * L]);
                    }
                }
            }
        }
        for b in blocks.clone() {
            let (c0, lanes) = (b * L, L.min(g.c - b * L));
            let a = &acc[(b - blocks.start) * taps * L..(b - blocks.start + 1) * taps * L];
            // SAFETY: this range of blocks owns the weights of channels c0..c0+lanes.
            let dst = unsafe { gw.slice_mut(c0 * taps..(c0 + lanes) * taps) };
            for l in 0..lanes {
                for t in 0..taps {
                    dst[l * taps + t] = a[t * L + l];
                }
            }
        }
    }
}

/// `a[t*L + l] += sum_q g[q*L + l] * p[(q + offs[t])*L + l]` for `K` taps: each load of the
/// gradient serves every tap, the `K` sums in registers.
#[inline(always)]
fn tap_sums<T: Float, A: Madd, const K: usize>(g: &[T], p: &[T], offs: &[usize], a: &mut [T]) {
    let offs: &[usize; K] = offs.try_into().expect("K taps");
    let mut s = [[T::ZERO; L]; K];
    for (t, st) in s.iter_mut().enumerate() {
        st.copy_from_slice(&a[t * L..(t + 1) * L]);
    }
    let pixels = g.len() / L;
    let reach = offs.iter().max().map_or(0, |&o| (pixels + o) * L);
    assert!(reach <= p.len(), "tile too small for the flat loops");
    for (q, gv) in g.chunks_exact(L).enumerate() {
        for (st, &off) in s.iter_mut().zip(offs) {
            for l in 0..L {
                // SAFETY: (q + off)*L + l < (pixels + off) * L <= reach <= p.len().
                let v = unsafe { *p.get_unchecked((q + off) * L + l) };
                st[l] = A::madd(gv[l], v, st[l]);
            }
        }
    }
    for (t, st) in s.iter().enumerate() {
        a[t * L..(t + 1) * L].copy_from_slice(st);
    }
}

/// The tile offset of pixel `p = y*w + x` of a plane placed at `(top, left)` in a tile of width
/// `wp`, walked in order (no division per pixel).
#[cfg(target_arch = "x86_64")]
struct Walk {
    w: usize,
    wp: usize,
    x: usize,
    row: usize,
}

#[cfg(target_arch = "x86_64")]
impl Walk {
    fn new(w: usize, wp: usize, top: usize, left: usize) -> Walk {
        Walk { w, wp, x: 0, row: top * wp + left }
    }

    #[inline(always)]
    fn pixel(&self) -> usize {
        (self.row + self.x) * L
    }

    #[inline(always)]
    fn advance(&mut self) {
        self.x += 1;
        if self.x == self.w {
            self.x = 0;
            self.row += self.wp;
        }
    }
}

/// [`LaneTile::load`] of eight whole contiguous f32 planes of width `w`: pixel `p` of every
/// plane goes to the tile's pixel `(p / w + top, p % w + left)`, eight pixels per transpose.
///
/// # Safety
/// The CPU must support AVX; the tile must hold every pixel of the planes at that offset.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn interleave8(planes: [&[f32]; L], w: usize, tile: &mut [f32], wp: usize, top: usize, left: usize) {
    use std::arch::x86_64::*;
    // (No closures or array maps here: they would not inherit this function's AVX and would
    // pass every vector through memory.)
    let len = planes[0].len();
    let full = len / L * L;
    let mut at = Walk::new(w, wp, top, left);
    let mut rows = [_mm256_setzero_ps(); L];
    for p0 in (0..full).step_by(L) {
        for (r, pl) in rows.iter_mut().zip(&planes) {
            // SAFETY: bounds-checked slice; AVX is the caller's to check.
            *r = unsafe { _mm256_loadu_ps(pl[p0..p0 + L].as_ptr()) };
        }
        // SAFETY: AVX is the caller's to check.
        let cols = unsafe { transpose8(rows) };
        for c in &cols {
            // SAFETY: bounds-checked slice.
            unsafe { _mm256_storeu_ps(tile[at.pixel()..at.pixel() + L].as_mut_ptr(), *c) };
            at.advance();
        }
    }
    for p in full..len {
        let d = at.pixel();
        for (l, pl) in planes.iter().enumerate() {
            tile[d + l] = pl[p];
        }
        at.advance();
    }
}

/// The inverse for the output: plane `l` of `planes` (`oh x ow`, contiguous) takes lane `l` of
/// the flat tile output `f`, whose pixel `(y, x)` sits at `(y*wp + x)*L`.
///
/// # Safety
/// The CPU must support AVX; `f` must hold every output pixel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn deinterleave8(f: &[f32], wp: usize, ow: usize, planes: [&mut [f32]; L]) {
    use std::arch::x86_64::*;
    let len = planes[0].len();
    let full = len / L * L;
    let mut planes = planes;
    let mut at = Walk::new(ow, wp, 0, 0);
    let mut px = [_mm256_setzero_ps(); L];
    for p0 in (0..full).step_by(L) {
        for v in px.iter_mut() {
            // SAFETY: bounds-checked slice; AVX is the caller's to check.
            *v = unsafe { _mm256_loadu_ps(f[at.pixel()..at.pixel() + L].as_ptr()) };
            at.advance();
        }
        // SAFETY: AVX is the caller's to check.
        let rows = unsafe { transpose8(px) };
        for (pl, r) in planes.iter_mut().zip(&rows) {
            // SAFETY: bounds-checked slice.
            unsafe { _mm256_storeu_ps(pl[p0..p0 + L].as_mut_ptr(), *r) };
        }
    }
    for p in full..len {
        let s = at.pixel();
        for (l, pl) in planes.iter_mut().enumerate() {
            pl[p] = f[s + l];
        }
        at.advance();
    }
}
