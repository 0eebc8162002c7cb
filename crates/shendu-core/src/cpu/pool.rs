//! Pooling and upsampling kernels over contiguous `[planes, h, w]` data (planes = N*C).
//!
//! Every op is described by per-dimension tables (one entry per output row / column: which input
//! rows / columns it reads and with what weight), so the kernels are the same loops for max,
//! average, adaptive-average pooling and nearest / bilinear upsampling, forward and adjoint.

use crate::cpu::elementwise::SendPtr;
use crate::cpu::threads;
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
}
