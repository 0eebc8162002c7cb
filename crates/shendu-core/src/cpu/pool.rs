//! Pooling and upsampling kernels over contiguous `[planes, h, w]` data (planes = N*C).
//!
//! Every op is described by per-dimension tables (one entry per output row / column: which input
//! rows / columns it reads and with what weight), so the kernels are the same loops for max,
//! average, adaptive-average pooling and nearest / bilinear upsampling, forward and adjoint.

use crate::cpu::elementwise::SendPtr;
use crate::cpu::simd::{dispatch, Madd, SimdKernel};
use crate::cpu::threads;
use crate::cpu::winograd::L;
use crate::dtype::Float;

/// The valid taps of one output position along one dimension: inputs `start + t*step` for
/// `t < count`, and the length the average divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Win {
    pub start: usize,
    pub count: usize,
    pub step: usize,
    pub div: usize,
}

/// Windows of a pool along one dimension (PyTorch's rule): output `o` covers
/// `o*stride - pad_begin + t*dilation` for `t < k`, clipped to the input. `div` is the window
/// length clipped to the padded input (`count_include_pad`) or to the input.
#[allow(clippy::too_many_arguments)]
pub fn pool_windows(
    n_out: usize,
    size: usize,
    k: usize,
    stride: usize,
    dil: usize,
    pad_begin: usize,
    pad_end: usize,
    include_pad: bool,
) -> Vec<Win> {
    // i128: strides, dilations and pads up to usize::MAX stay exact.
    let (size_i, dil_i) = (size as i128, dil as i128);
    (0..n_out)
        .map(|o| {
            let first = o as i128 * stride as i128 - pad_begin as i128;
            // taps t with 0 <= first + t*dil < size
            let t0 = if first >= 0 { 0 } else { ((-first) as u128).div_ceil(dil as u128).min(k as u128) as usize };
            let t1 = if first >= size_i { 0 } else { ((size_i - first) as u128).div_ceil(dil as u128).min(k as u128) as usize };
            let (t0, t1) = (t0.min(k), t1.max(t0.min(k)));
            let start = (first + t0 as i128 * dil_i).clamp(0, size_i) as usize;
            let count = t1 - t0;
            let padded_end = (first + dil_i * (k as i128 - 1) + 1).min(size_i + pad_end as i128);
            let div = if include_pad { (padded_end - first).max(0) as usize } else { count };
            Win { start, count, step: dil, div }
        })
        .collect()
}

/// Windows of an adaptive average pool: `floor(o*in/out) .. ceil((o+1)*in/out)`.
pub fn adaptive_windows(n_out: usize, size: usize) -> Vec<Win> {
    (0..n_out)
        .map(|o| {
            let start = o * size / n_out;
            let end = ((o + 1) * size).div_ceil(n_out);
            Win { start, count: end - start, step: 1, div: end - start }
        })
        .collect()
}

fn for_planes(planes: usize, per_plane: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    let min = (1usize << 15).div_ceil(per_plane.max(1)).max(1);
    threads::parallel_ranges(planes, min, f);
}

/// Flat index (within the plane) of the first maximum of the window; NaN wins, as in PyTorch.
#[inline(always)]
fn argmax<T: Float>(p: &[T], w: usize, wy: &Win, wx: &Win) -> Option<usize> {
    if wy.count == 0 || wx.count == 0 {
        return None;
    }
    let mut best_i = wy.start * w + wx.start;
    let mut best = T::neg_infinity();
    for ty in 0..wy.count {
        let row = (wy.start + ty * wy.step) * w;
        for tx in 0..wx.count {
            let i = row + wx.start + tx * wx.step;
            let v = p[i];
            if v > best || v.is_nan() {
                best = v;
                best_i = i;
            }
        }
    }
    Some(best_i)
}

/// What a max-pool kernel writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxMode {
    /// The maxima (`-inf` for a window that holds no input).
    Forward,
    /// `src` at each window's argmax.
    Gather,
    /// `src` (shaped like the output) added at each window's argmax into an input-shaped result.
    Scatter,
}

/// Max pooling of `x [planes, h, w]` with windows `wy`, `wx`; `src` is the second input of
/// `Gather` / `Scatter` (ignored by `Forward`). `out` is overwritten.
#[allow(clippy::too_many_arguments)]
pub fn max_pool<T: Float>(x: &[T], src: &[T], planes: usize, h: usize, w: usize, wy: &[Win], wx: &[Win], mode: MaxMode, out: &mut [T]) {
    let (oh, ow) = (wy.len(), wx.len());
    let (pin, pout) = (h * w, oh * ow);
    let out_ptr = SendPtr(out.as_mut_ptr());
    if let (Some(sy), Some(sx)) = (pairs_stride(wy), pairs_stride(wx)) {
        for_planes(planes, pin + pout, |r| {
            for pl in r {
                let xp = &x[pl * pin..(pl + 1) * pin];
                let (lo, hi) = if mode == MaxMode::Scatter { (pl * pin, (pl + 1) * pin) } else { (pl * pout, (pl + 1) * pout) };
                // SAFETY: each plane is written by one range.
                let o = unsafe { out_ptr.slice_mut(lo..hi) };
                let s = match mode {
                    MaxMode::Forward => xp,
                    MaxMode::Gather => &src[pl * pin..(pl + 1) * pin],
                    MaxMode::Scatter => &src[pl * pout..(pl + 1) * pout],
                };
                dispatch(Pairs { x: xp, s, w, oh, ow, sy, sx, mode, o });
            }
        });
        return;
    }
    max_pool_windows(x, src, planes, h, w, wy, wx, mode, out);
}

/// [`max_pool`] for any windows.
#[allow(clippy::too_many_arguments)]
fn max_pool_windows<T: Float>(x: &[T], src: &[T], planes: usize, h: usize, w: usize, wy: &[Win], wx: &[Win], mode: MaxMode, out: &mut [T]) {
    let (oh, ow) = (wy.len(), wx.len());
    let (pin, pout) = (h * w, oh * ow);
    let out_ptr = SendPtr(out.as_mut_ptr());
    for_planes(planes, pin + pout, |r| {
        for pl in r {
            let xp = &x[pl * pin..(pl + 1) * pin];
            if mode == MaxMode::Scatter {
                // SAFETY: each plane is written by one range.
                let o = unsafe { out_ptr.slice_mut(pl * pin..(pl + 1) * pin) };
                o.fill(T::ZERO);
                let g = &src[pl * pout..(pl + 1) * pout];
                for (y, wyy) in wy.iter().enumerate() {
                    for (xx, wxx) in wx.iter().enumerate() {
                        if let Some(i) = argmax(xp, w, wyy, wxx) {
                            o[i] += g[y * ow + xx];
                        }
                    }
                }
                continue;
            }
            // SAFETY: as above.
            let o = unsafe { out_ptr.slice_mut(pl * pout..(pl + 1) * pout) };
            let s = if mode == MaxMode::Gather { &src[pl * pin..(pl + 1) * pin] } else { xp };
            for (y, wyy) in wy.iter().enumerate() {
                for (xx, wxx) in wx.iter().enumerate() {
                    o[y * ow + xx] = match argmax(xp, w, wyy, wxx) {
                        Some(i) => s[i],
                        None if mode == MaxMode::Forward => T::neg_infinity(),
                        None => T::ZERO,
                    };
                }
            }
        }
    });
}

/// `Some(stride)` when every window is the full, undilated pair `o*stride, o*stride + 1` (the
/// common 2x2 pool), which [`Pairs`] runs without per-window bookkeeping.
fn pairs_stride(wins: &[Win]) -> Option<usize> {
    let s = wins.get(1).map_or(2, |w| w.start);
    let ok = s > 0 && wins.iter().enumerate().all(|(o, w)| w.count == 2 && w.step == 1 && w.start == o * s);
    ok.then_some(s)
}

/// One plane of [`max_pool`] with 2x2 windows at strides `sy`, `sx`, none clipped: `x` is the
/// plane, `s` the plane of the second input (or `x`), `o` the output plane.
struct Pairs<'a, T> {
    x: &'a [T],
    s: &'a [T],
    w: usize,
    oh: usize,
    ow: usize,
    sy: usize,
    sx: usize,
    mode: MaxMode,
    o: &'a mut [T],
}

/// The four taps of windows `x0..x0 + L` of one output row (`r0`, `r1`: its two input rows);
/// lanes past the row's last window `ow - 1` repeat it.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // four lane arrays filled side by side
fn load_taps<T: Float>(r0: &[T], r1: &[T], x0: usize, ow: usize, sx: usize) -> [[T; L]; 4] {
    let mut v = [[T::ZERO; L]; 4];
    if sx == 2 && x0 + L <= ow {
        // Whole 2L-element pieces with constant lane indices: vector loads and shuffles.
        let (p0, p1) = (&r0[2 * x0..2 * x0 + 2 * L], &r1[2 * x0..2 * x0 + 2 * L]);
        for l in 0..L {
            v[0][l] = p0[2 * l];
            v[1][l] = p0[2 * l + 1];
            v[2][l] = p1[2 * l];
            v[3][l] = p1[2 * l + 1];
        }
        return v;
    }
    for l in 0..L {
        let c = (x0 + l).min(ow - 1) * sx;
        v[0][l] = r0[c];
        v[1][l] = r0[c + 1];
        v[2][l] = r1[c];
        v[3][l] = r1[c + 1];
    }
    v
}

/// `dst[..n] = src[..n]`: a whole array as one fixed-size copy, a partial one element by
/// element (a variable-length `copy_from_slice` calls `memmove`, a tenth of the pool's time).
#[inline(always)]
fn store<T: Copy, const N: usize>(dst: &mut [T], src: &[T; N], n: usize) {
    if n == N {
        dst[..N].copy_from_slice(src);
    } else {
        for (d, &s) in dst[..n].iter_mut().zip(src) {
            *d = s;
        }
    }
}

/// The first maximum of `L` 2x2 windows as [`argmax`] scans them (a NaN wins, a later NaN over
/// an earlier one): the values and the tap indices (0..4, carried in `T`). Written as selects
/// over lane arrays, which LLVM turns into vector compares and blends: the scalar loop got
/// branches, unpredictable on real data, at ~50 cycles per window.
#[inline(always)]
fn max4_lanes<T: Float>(v: &[[T; L]; 4]) -> ([T; L], [T; L]) {
    let (mut best, mut bi) = (v[0], [T::ZERO; L]);
    for (t, x) in v.iter().enumerate().skip(1) {
        let i = T::from_f64(t as f64);
        for l in 0..L {
            let c = (x[l] > best[l]) | x[l].is_nan();
            best[l] = if c { x[l] } else { best[l] };
            bi[l] = if c { i } else { bi[l] };
        }
    }
    (best, bi)
}

impl<T: Float> SimdKernel for Pairs<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let Pairs { x, s, w, oh, ow, sy, sx, mode, o } = self;
        if ow == 0 {
            return;
        }
        // Windows side by side (stride 2) are disjoint and cover whole rows of 2*ow inputs:
        // the scatter then writes every input once, with no read-modify-write.
        let disjoint = sx == 2 && sy == 2;
        if mode == MaxMode::Scatter && !(disjoint && w == 2 * ow && x.len() == 2 * oh * w) {
            o.fill(T::ZERO);
        }
        let span = (ow - 1) * sx + 2;
        let (zero, one, two) = (T::ZERO, T::ONE, T::from_f64(2.0));
        // L windows at a time; the last chunk of a row stores only its valid lanes.
        for y in 0..oh {
            let (b0, b1) = (y * sy * w, (y * sy + 1) * w);
            let (r0, r1) = (&x[b0..b0 + span], &x[b1..b1 + span]);
            match mode {
                MaxMode::Forward => {
                    let orow = &mut o[y * ow..(y + 1) * ow];
                    for x0 in (0..ow).step_by(L) {
                        let (best, _) = max4_lanes(&load_taps(r0, r1, x0, ow, sx));
                        let n = L.min(ow - x0);
                        store(&mut orow[x0..], &best, n);
                    }
                }
                MaxMode::Gather => {
                    let (s0, s1) = (&s[b0..b0 + span], &s[b1..b1 + span]);
                    let orow = &mut o[y * ow..(y + 1) * ow];
                    for x0 in (0..ow).step_by(L) {
                        let (_, i) = max4_lanes(&load_taps(r0, r1, x0, ow, sx));
                        let sv = load_taps(s0, s1, x0, ow, sx);
                        let mut v = [zero; L];
                        for l in 0..L {
                            let top = if i[l] == zero { sv[0][l] } else { sv[1][l] };
                            let bottom = if i[l] == two { sv[2][l] } else { sv[3][l] };
                            v[l] = if i[l] < two { top } else { bottom };
                        }
                        let n = L.min(ow - x0);
                        store(&mut orow[x0..], &v, n);
                    }
                }
                MaxMode::Scatter if disjoint => {
                    let g = &s[y * ow..(y + 1) * ow];
                    let (o0, o1) = o.split_at_mut(b1);
                    let (o0, o1) = (&mut o0[b0..b0 + span], &mut o1[..span]);
                    for x0 in (0..ow).step_by(L) {
                        let (_, i) = max4_lanes(&load_taps(r0, r1, x0, ow, sx));
                        let (mut top, mut bottom) = ([zero; 2 * L], [zero; 2 * L]);
                        for l in 0..L {
                            let gv = g[(x0 + l).min(ow - 1)];
                            top[2 * l] = if i[l] == zero { gv } else { zero };
                            top[2 * l + 1] = if i[l] == one { gv } else { zero };
                            bottom[2 * l] = if i[l] == two { gv } else { zero };
                            bottom[2 * l + 1] = if i[l] > two { gv } else { zero };
                        }
                        let n = 2 * L.min(ow - x0);
                        store(&mut o0[2 * x0..], &top, n);
                        store(&mut o1[2 * x0..], &bottom, n);
                    }
                }
                MaxMode::Scatter => {
                    let g = &s[y * ow..(y + 1) * ow];
                    for x0 in (0..ow).step_by(L) {
                        let (_, i) = max4_lanes(&load_taps(r0, r1, x0, ow, sx));
                        for l in 0..L.min(ow - x0) {
                            let c = (x0 + l) * sx;
                            let col = if i[l] == zero || i[l] == two { c } else { c + 1 };
                            let k = if i[l] < two { b0 + col } else { b1 + col };
                            o[k] += g[x0 + l];
                        }
                    }
                }
            }
        }
    }
}

/// Average pooling (window sum / (div_y * div_x)) of `x [planes, h, w]`; `out` is overwritten.
pub fn avg_pool<T: Float>(x: &[T], planes: usize, h: usize, w: usize, wy: &[Win], wx: &[Win], out: &mut [T]) {
    let (oh, ow) = (wy.len(), wx.len());
    let (pin, pout) = (h * w, oh * ow);
    let out_ptr = SendPtr(out.as_mut_ptr());
    for_planes(planes, pin + pout, |r| {
        for pl in r {
            let xp = &x[pl * pin..(pl + 1) * pin];
            // SAFETY: each plane is written by one range.
            let o = unsafe { out_ptr.slice_mut(pl * pout..(pl + 1) * pout) };
            for (y, wyy) in wy.iter().enumerate() {
                for (xx, wxx) in wx.iter().enumerate() {
                    let mut s = T::ZERO;
                    for ty in 0..wyy.count {
                        let row = &xp[(wyy.start + ty * wyy.step) * w..];
                        for tx in 0..wxx.count {
                            s += row[wxx.start + tx * wxx.step];
                        }
                    }
                    let div = wyy.div * wxx.div;
                    o[y * ow + xx] = if div == 0 { T::ZERO } else { s / T::from_f64(div as f64) };
                }
            }
        }
    });
}

/// The adjoint of [`avg_pool`]: `gx [planes, h, w]` (overwritten) from `gy [planes, oh, ow]`.
pub fn avg_pool_backward<T: Float>(gy: &[T], planes: usize, h: usize, w: usize, wy: &[Win], wx: &[Win], gx: &mut [T]) {
    let (oh, ow) = (wy.len(), wx.len());
    let (pin, pout) = (h * w, oh * ow);
    let gx_ptr = SendPtr(gx.as_mut_ptr());
    for_planes(planes, pin + pout, |r| {
        for pl in r {
            let g = &gy[pl * pout..(pl + 1) * pout];
            // SAFETY: each plane is written by one range.
            let o = unsafe { gx_ptr.slice_mut(pl * pin..(pl + 1) * pin) };
            o.fill(T::ZERO);
            for (y, wyy) in wy.iter().enumerate() {
                for (xx, wxx) in wx.iter().enumerate() {
                    let div = wyy.div * wxx.div;
                    if div == 0 {
                        continue;
                    }
                    let v = g[y * ow + xx] / T::from_f64(div as f64);
                    for ty in 0..wyy.count {
                        let row = (wyy.start + ty * wyy.step) * w;
                        for tx in 0..wxx.count {
                            o[row + wxx.start + tx * wxx.step] += v;
                        }
                    }
                }
            }
        }
    });
}

/// One output position of a linear interpolation along one dimension:
/// `w0 * in[i0] + w1 * in[i1]` (nearest: `i1 = i0`, `w0 = 1`, `w1 = 0`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lerp {
    pub i0: usize,
    pub i1: usize,
    pub w0: f64,
    pub w1: f64,
}

/// PyTorch's `upsample_nearest` source index: `min(floor(o * (in/out)), in - 1)`, computed in
/// f32 like PyTorch (so sizes whose ratio is not exact in binary pick the same pixels).
pub fn nearest_table(n_out: usize, size: usize) -> Vec<Lerp> {
    let scale = size as f32 / n_out as f32;
    (0..n_out)
        .map(|o| {
            let i = if n_out == size {
                o
            } else if n_out == 2 * size {
                o >> 1
            } else {
                ((o as f32 * scale).floor() as usize).min(size.saturating_sub(1))
            };
            Lerp { i0: i, i1: i, w0: 1.0, w1: 0.0 }
        })
        .collect()
}

/// PyTorch's bilinear source coordinates. `align_corners`: `o * (in-1)/(out-1)`; else
/// `(o + 0.5) * in/out - 0.5` clamped at 0. `T` is the arithmetic type (PyTorch uses the
/// tensor's: f32 for f32, f64 for f64).
pub fn linear_table<T: Float>(n_out: usize, size: usize, align_corners: bool) -> Vec<Lerp> {
    let scale: T = if align_corners {
        if n_out > 1 {
            T::from_f64((size as f64 - 1.0) / (n_out as f64 - 1.0))
        } else {
            T::ZERO
        }
    } else {
        T::from_f64(size as f64) / T::from_f64(n_out as f64)
    };
    (0..n_out)
        .map(|o| {
            let of = T::from_f64(o as f64);
            let src = if align_corners {
                scale * of
            } else {
                let s = scale * (of + T::from_f64(0.5)) - T::from_f64(0.5);
                if s < T::ZERO {
                    T::ZERO
                } else {
                    s
                }
            };
            let i0 = (src.to_f64() as usize).min(size - 1);
            let i1 = if i0 < size - 1 { i0 + 1 } else { i0 };
            let l1 = src - T::from_f64(i0 as f64);
            let l0 = T::ONE - l1;
            Lerp { i0, i1, w0: l0.to_f64(), w1: l1.to_f64() }
        })
        .collect()
}

/// Separable interpolation of `x [planes, h, w]` to `[planes, ty.len(), tx.len()]`; `nearest`
/// copies `in[i0]` (no multiplication, so infinities stay infinities).
#[allow(clippy::too_many_arguments)]
pub fn interpolate<T: Float>(x: &[T], planes: usize, h: usize, w: usize, ty: &[Lerp], tx: &[Lerp], nearest: bool, out: &mut [T]) {
    let (oh, ow) = (ty.len(), tx.len());
    let (pin, pout) = (h * w, oh * ow);
    let out_ptr = SendPtr(out.as_mut_ptr());
    let c = |v: f64| T::from_f64(v);
    for_planes(planes, pin + pout, |r| {
        for pl in r {
            let xp = &x[pl * pin..(pl + 1) * pin];
            // SAFETY: each plane is written by one range.
            let o = unsafe { out_ptr.slice_mut(pl * pout..(pl + 1) * pout) };
            for (y, ly) in ty.iter().enumerate() {
                let (r0, r1) = (&xp[ly.i0 * w..(ly.i0 + 1) * w], &xp[ly.i1 * w..(ly.i1 + 1) * w]);
                if nearest {
                    for (o, lx) in o[y * ow..(y + 1) * ow].iter_mut().zip(tx) {
                        *o = r0[lx.i0];
                    }
                    continue;
                }
                let (wy0, wy1) = (c(ly.w0), c(ly.w1));
                for (xx, lx) in tx.iter().enumerate() {
                    let (wx0, wx1) = (c(lx.w0), c(lx.w1));
                    o[y * ow + xx] = wy0 * (wx0 * r0[lx.i0] + wx1 * r0[lx.i1]) + wy1 * (wx0 * r1[lx.i0] + wx1 * r1[lx.i1]);
                }
            }
        }
    });
}

/// The adjoint of [`interpolate`]: `gx [planes, h, w]` (overwritten) from `gy`.
#[allow(clippy::too_many_arguments)]
pub fn interpolate_backward<T: Float>(gy: &[T], planes: usize, h: usize, w: usize, ty: &[Lerp], tx: &[Lerp], nearest: bool, gx: &mut [T]) {
    let (oh, ow) = (ty.len(), tx.len());
    let (pin, pout) = (h * w, oh * ow);
    let gx_ptr = SendPtr(gx.as_mut_ptr());
    let c = |v: f64| T::from_f64(v);
    for_planes(planes, pin + pout, |r| {
        for pl in r {
            let g = &gy[pl * pout..(pl + 1) * pout];
            // SAFETY: each plane is written by one range.
            let o = unsafe { gx_ptr.slice_mut(pl * pin..(pl + 1) * pin) };
            o.fill(T::ZERO);
            for (y, ly) in ty.iter().enumerate() {
                let (wy0, wy1) = (c(ly.w0), c(ly.w1));
                for (xx, lx) in tx.iter().enumerate() {
                    let v = g[y * ow + xx];
                    if nearest {
                        o[ly.i0 * w + lx.i0] += v;
                        continue;
                    }
                    let (wx0, wx1) = (c(lx.w0), c(lx.w1));
                    o[ly.i0 * w + lx.i0] += wy0 * wx0 * v;
                    o[ly.i0 * w + lx.i1] += wy0 * wx1 * v;
                    o[ly.i1 * w + lx.i0] += wy1 * wx0 * v;
                    o[ly.i1 * w + lx.i1] += wy1 * wx1 * v;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_windows_follow_pytorch() {
        // k=3, s=2, p=1 on 5: windows [-1,2) [1,4) [3,6) -> clipped [0,2) [1,4) [3,5)
        let w = pool_windows(3, 5, 3, 2, 1, 1, 1, true);
        assert_eq!(w.iter().map(|w| (w.start, w.count, w.div)).collect::<Vec<_>>(), vec![(0, 2, 3), (1, 3, 3), (3, 2, 3)]);
        let w = pool_windows(3, 5, 3, 2, 1, 1, 1, false);
        assert_eq!(w.iter().map(|w| w.div).collect::<Vec<_>>(), vec![2, 3, 2]);
        // ceil mode: k=2, s=2 on 5 gives 3 windows, the last one short even counting pads
        let w = pool_windows(3, 5, 2, 2, 1, 0, 0, true);
        assert_eq!(w[2], Win { start: 4, count: 1, step: 1, div: 1 });
        // dilation 2, k=2, pad 1 on 4: taps at -1, 1 | 1, 3
        let w = pool_windows(2, 4, 2, 2, 2, 1, 1, false);
        assert_eq!((w[0].start, w[0].count, w[1].start, w[1].count), (1, 1, 1, 2));
    }

    #[test]
    fn adaptive_windows_overlap_like_pytorch() {
        let w = adaptive_windows(3, 5);
        assert_eq!(w.iter().map(|w| (w.start, w.start + w.count)).collect::<Vec<_>>(), vec![(0, 2), (1, 4), (3, 5)]);
        let w = adaptive_windows(4, 2);
        assert_eq!(w.iter().map(|w| (w.start, w.start + w.count)).collect::<Vec<_>>(), vec![(0, 1), (0, 1), (1, 2), (1, 2)]);
    }

    #[test]
    fn interpolation_tables() {
        assert_eq!(nearest_table(5, 2).iter().map(|l| l.i0).collect::<Vec<_>>(), vec![0, 0, 0, 1, 1]);
        assert_eq!(nearest_table(3, 7).iter().map(|l| l.i0).collect::<Vec<_>>(), vec![0, 2, 4]);
        let t = linear_table::<f64>(4, 2, false);
        // src = (o + .5)/2 - .5: -0.25 -> 0, 0.25, 0.75, 1.25 -> i0 = 1 (last), lambda .25
        assert_eq!(t.iter().map(|l| (l.i0, l.i1)).collect::<Vec<_>>(), vec![(0, 1), (0, 1), (0, 1), (1, 1)]);
        assert_eq!(t.iter().map(|l| l.w1).collect::<Vec<_>>(), vec![0.0, 0.25, 0.75, 0.25]);
        let t = linear_table::<f64>(3, 2, true);
        assert_eq!(t.iter().map(|l| l.w1).collect::<Vec<_>>(), vec![0.0, 0.5, 0.0]);
        assert_eq!(t[2].i0, 1);
    }

    /// The 2x2 fast path against the general window loop: values with ties, NaNs and -inf,
    /// odd sizes (a dropped last row/column), strides 1 and 2, all three modes.
    #[test]
    fn pairs_fast_path_matches_windows() {
        let specials = [f32::NAN, f32::NEG_INFINITY, 1.0, 1.0, -2.0, f32::INFINITY];
        for (h, w, s) in [(4, 4, 2), (5, 7, 2), (6, 5, 1), (2, 2, 2), (3, 9, 3), (28, 28, 2), (5, 37, 2), (4, 21, 1), (3, 40, 3)] {
            let planes = 3;
            let x: Vec<f32> =
                (0..planes * h * w).map(|i| if i % 5 == 0 { specials[(i / 5) % specials.len()] } else { ((i * 7) % 4) as f32 }).collect();
            let (oh, ow) = ((h - 2) / s + 1, (w - 2) / s + 1);
            let wy = pool_windows(oh, h, 2, s, 1, 0, 0, false);
            let wx = pool_windows(ow, w, 2, s, 1, 0, 0, false);
            assert!(pairs_stride(&wy).is_some() && pairs_stride(&wx) == Some(s));
            let gy: Vec<f32> = (0..planes * oh * ow).map(|i| i as f32 + 0.5).collect();
            let gx: Vec<f32> = (0..planes * h * w).map(|i| i as f32 - 0.25).collect();
            for (mode, src, len) in [
                (MaxMode::Forward, &x, planes * oh * ow),
                (MaxMode::Gather, &gx, planes * oh * ow),
                (MaxMode::Scatter, &gy, planes * h * w),
            ] {
                let (mut fast, mut slow) = (vec![7.0f32; len], vec![7.0f32; len]);
                max_pool(&x, src, planes, h, w, &wy, &wx, mode, &mut fast);
                max_pool_windows(&x, src, planes, h, w, &wy, &wx, mode, &mut slow);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&slow), "{h}x{w} stride {s} {mode:?}");
            }
        }
        // Clipped (ceil-mode / padded) windows take the general path.
        assert_eq!(pairs_stride(&pool_windows(3, 5, 2, 2, 1, 0, 0, false)), None);
    }
}
