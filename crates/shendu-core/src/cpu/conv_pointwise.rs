//! 1x1 convolutions on small feature maps (MobileNet's 7x7 and 4x4 stages), several images per
//! product.
//!
//! A 1x1 convolution of one image is the product `w [cout, cin] · x [cin, h*w]`. With a 4x4 map
//! that product is 16 columns wide: too thin for the packed kernel, and the weight gradient's
//! per-image product `gy · xᵀ` has a depth of 16, so it reads and writes the whole
//! `[cout, cin]` accumulator for 16 multiply-adds per element. Here the planes of several
//! images are copied side by side (`[cin, images*h*w]`), so one product covers them all: the
//! forward's output is 64x wider and the weight gradient's depth 64x larger for a batch of 64.
//! The copies cost one pass over the operands; the products then run in the packed kernel.
//! (The input gradient of a stride-1 1x1 convolution is a 1x1 forward with the transposed
//! weight, so it takes this path too.)
//!
//! Larger f32 maps on AVX2 run one image per product through the broadcast kernel of the
//! Winograd products (`winograd_avx2::gemm_uv_cols`): the weights are packed once per call and
//! each image's planes are read where they lie. The general gemm packed both operands of every
//! per-image product, and at ShuffleNet's sizes (196 to 784 columns, 24 to 232 channels) below
//! its packed kernel's threshold it ran the `gemm` crate.

use crate::cpu::conv::{ConvElem, ConvGeom, View4};
use crate::cpu::conv_threads::{for_items, sum_over_items};
use crate::cpu::depthwise::copy_short;
use crate::cpu::elementwise::SendPtr;
use crate::cpu::gemm::{gemm, MatMut, MatRef};
use crate::cpu::threads;
use crate::pool::PooledVec;

/// Maps of at most this many pixels take this path (7x7 and smaller); larger maps already make
/// products wide enough one image at a time.
const MAX_PLANE: usize = 64;

/// Bytes of side-by-side planes per product: the images of one product are as many as fit.
const CHUNK_BYTES: usize = 512 << 10;

/// Whether a pointwise convolution (the caller checked 1x1, stride 1, no padding) takes this
/// path: small maps, and each input plane contiguous.
pub(crate) fn applies(g: &ConvGeom, xv: &View4) -> bool {
    let [_, _, ys, xs] = xv.strides;
    g.oh * g.ow <= MAX_PLANE && xs == 1 && ys == g.w
}

/// Input channels above which the per-image path is not taken: one 16-column panel of the image
/// (`cin` rows of 64 bytes) should stay in L1 while every output channel passes over it.
const PER_IMAGE_MAX_CIN: usize = 384;

/// Runs the 1x1 convolution one image per product through the broadcast kernel where it applies
/// (f32 on AVX2, maps too large for [`applies`] but of at least 16 pixels, contiguous planes,
/// up to [`PER_IMAGE_MAX_CIN`] input channels); returns false, doing nothing, elsewhere.
pub(crate) fn forward_per_image<T: ConvElem>(x: &[T], xv: &View4, w: &[T], g: &ConvGeom, out: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let [sn, sc, ys, xs] = xv.strides;
        let (cin_g, cout_g, hw) = (g.cin_g(), g.cout_g(), g.oh * g.ow);
        // With fewer images than threads the general gemm threads each product instead.
        let enough_items = g.n * g.groups >= threads::num_threads();
        if xs != 1 || ys != g.w || hw <= MAX_PLANE || cin_g > PER_IMAGE_MAX_CIN || sc < hw || !enough_items {
            return false;
        }
        let (Some(x), Some(w)) = (crate::cpu::simd::as_f32(x), crate::cpu::simd::as_f32(w)) else {
            return false;
        };
        let up = crate::cpu::winograd_avx2::pack_u(w, g.groups, cout_g, cin_g);
        let per_group = up.len() / g.groups;
        let out = SendPtr(out.as_mut_ptr() as *mut f32);
        for_items(g.n * g.groups, 1, |items, _| {
            for item in items {
                let (n, grp) = (item / g.groups, item % g.groups);
                let v = &x[xv.offset + n * sn + grp * cin_g * sc..];
                let base = (n * g.cout + grp * cout_g) * hw;
                // SAFETY: the (image, group) output planes are this item's alone and lie inside
                // `out` (n * cout * hw values).
                let m = unsafe { out.slice_mut(base..base + cout_g * hw) };
                let upg = &up.as_slice()[grp * per_group..(grp + 1) * per_group];
                // SAFETY: as_f32 found AVX2 and FMA.
                unsafe { crate::cpu::winograd_avx2::gemm_uv_cols(cout_g, cin_g, hw, upg, v, sc, m, hw) };
            }
        });
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, xv, w, g, out);
        false
    }
}

/// Images per product for `channels` planes of `hw` values each, and the number of products: as
/// many images as fit in [`CHUNK_BYTES`], then the products made a multiple of the thread count
/// (where the batch allows), so they split evenly over the threads (5 products on 2 threads
/// would leave one thread idle for a fifth of the layer).
fn chunking<T>(channels: usize, hw: usize, n: usize) -> (usize, usize) {
    let n = n.max(1);
    let fit = (CHUNK_BYTES / (channels * hw * std::mem::size_of::<T>()).max(1)).clamp(1, n);
    let t = threads::num_threads();
    let chunks = n.div_ceil(fit).next_multiple_of(t).min(n);
    let per = n.div_ceil(chunks);
    (per, n.div_ceil(per))
}

/// Copies channels `c0..c0 + channels` of images `images` into `dst` as `[channels, images*hw]`:
/// image j's plane of channel c at `c * cols + j * hw`.
fn gather<T: Copy>(
    src: &[T],
    base: impl Fn(usize, usize) -> usize,
    images: std::ops::Range<usize>,
    channels: usize,
    hw: usize,
    dst: &mut [T],
) {
    let cols = images.len() * hw;
    for (j, n) in images.enumerate() {
        for c in 0..channels {
            let s = base(n, c);
            copy_short(&mut dst[c * cols + j * hw..c * cols + (j + 1) * hw], &src[s..s + hw]);
        }
    }
}

/// `out [n, cout, h, w]` (contiguous, overwritten) = the 1x1 convolution of `x` by `w`.
pub(crate) fn forward<T: ConvElem>(x: &[T], xv: View4, w: &[T], g: &ConvGeom, out: &mut [T]) {
    let (cin_g, cout_g, hw) = (g.cin_g(), g.cout_g(), g.oh * g.ow);
    let (per, chunks) = chunking::<T>(cin_g.max(cout_g), hw, g.n);
    let [sn, sc, ..] = xv.strides;
    let out_ptr = SendPtr(out.as_mut_ptr());
    let out_len = out.len();
    for_items(chunks * g.groups, 1, |items, threads| {
        let mut xs = PooledVec::<T>::uninit(cin_g * per * hw);
        let mut ys = PooledVec::<T>::uninit(cout_g * per * hw);
        for item in items {
            let (chunk, grp) = (item / g.groups, item % g.groups);
            let images = chunk * per..((chunk + 1) * per).min(g.n);
            let cols = images.len() * hw;
            let xs = &mut xs.as_mut_slice()[..cin_g * cols];
            gather(x, |n, c| xv.offset + n * sn + (grp * cin_g + c) * sc, images.clone(), cin_g, hw, xs);
            let ys = &mut ys.as_mut_slice()[..cout_g * cols];
            let wg = MatRef { ptr: w[grp * cout_g * cin_g..].as_ptr(), rs: cin_g as isize, cs: 1 };
            let xm = MatRef { ptr: xs.as_ptr(), rs: cols as isize, cs: 1 };
            // SAFETY: `ys` holds cout_g x cols, `wg` cout_g x cin_g inside `w`, `xm` cin_g x cols.
            unsafe { gemm(cout_g, cols, cin_g, MatMut { ptr: ys.as_mut_ptr(), rs: cols as isize, cs: 1 }, false, wg, xm, threads) };
            for (j, n) in images.enumerate() {
                for co in 0..cout_g {
                    let d = (n * g.cout + grp * cout_g + co) * hw;
                    debug_assert!(d + hw <= out_len);
                    // SAFETY: the (image, channel) planes of this chunk and group are this
                    // item's alone, and lie inside `out` (n*cout*hw values).
                    let dst = unsafe { out_ptr.slice_mut(d..d + hw) };
                    copy_short(dst, &ys[co * cols + j * hw..co * cols + (j + 1) * hw]);
                }
            }
        }
    });
}

/// `gw [cout, cin/groups, 1, 1]` (overwritten) = the weight gradient of the 1x1 convolution,
/// from `x` and the contiguous output gradient `gy`.
pub(crate) fn backward_weight<T: ConvElem>(x: &[T], xv: View4, gy: &[T], g: &ConvGeom, gw: &mut [T]) {
    let (cin_g, cout_g, hw) = (g.cin_g(), g.cout_g(), g.oh * g.ow);
    let (per, chunks) = chunking::<T>(cin_g.max(cout_g), hw, g.n);
    let [sn, sc, ..] = xv.strides;
    // Items are (group, chunk), chunks inner, summed per range of items and the ranges added in
    // order (a group's chunks may fall in different ranges: they are what the threads split).
    sum_over_items(g.groups * chunks, 1, gw, |r, threads, acc| {
        let mut xs = PooledVec::<T>::uninit(cin_g * per * hw);
        let mut gs = PooledVec::<T>::uninit(cout_g * per * hw);
        for item in r {
            let (grp, chunk) = (item / chunks, item % chunks);
            let images = chunk * per..((chunk + 1) * per).min(g.n);
            let cols = images.len() * hw;
            let xs = &mut xs.as_mut_slice()[..cin_g * cols];
            gather(x, |n, c| xv.offset + n * sn + (grp * cin_g + c) * sc, images.clone(), cin_g, hw, xs);
            let gs = &mut gs.as_mut_slice()[..cout_g * cols];
            gather(gy, |n, c| (n * g.cout + grp * cout_g + c) * hw, images, cout_g, hw, gs);
            let dst = MatMut { ptr: acc[grp * cout_g * cin_g..].as_mut_ptr(), rs: cin_g as isize, cs: 1 };
            let gm = MatRef { ptr: gs.as_ptr(), rs: cols as isize, cs: 1 };
            let xt = MatRef { ptr: xs.as_ptr(), rs: 1, cs: cols as isize };
            // SAFETY: gm is cout_g x cols, xt (x transposed) cols x cin_g, dst the group's block.
            unsafe { gemm(cout_g, cin_g, cols, dst, true, gm, xt, threads) };
        }
    });
}
