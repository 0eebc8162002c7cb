//! The layers without weights of their own, each as Darknet (AlexeyAB's fork) computes it, built
//! of shendu's differentiable ops so that gradients need no code here.

use shendu_core::{with_default_rng, Padding, Tensor};
use shendu_nn::{Error, Mode, Result};

use crate::netspec::{
    Activation, Crop, Layer, LayerShapes, Pool, Region, Reorg, Route, Shortcut, ShortcutWeights, WeightsNormalization, Yolo,
};

/// Darknet's activation functions. Leaky has slope 0.1; selu uses Darknet's rounded constants
/// 1.0507 and 1.6732; gelu is Darknet's tanh approximation `0.5x(1 + tanh(0.797885x +
/// 0.035677x³))`; hard_mish is `x` above 0, `x²/2 + x` down to -2, then 0.
pub(super) fn activate(a: Activation, x: &Tensor) -> Result<Tensor> {
    Ok(match a {
        Activation::Logistic => x.sigmoid()?,
        Activation::Relu => x.relu()?,
        Activation::Relu6 => x.relu6()?,
        Activation::Leaky => x.leaky_relu(0.1)?,
        Activation::Linear => x.clone(),
        Activation::Tanh => x.tanh()?,
        Activation::Elu => x.elu(1.0)?,
        Activation::Selu => x.elu(1.6732)?.mul_scalar(1.0507)?,
        Activation::Swish => x.silu()?,
        Activation::Mish => x.mish()?,
        // x * clamp(x + 2, 0, 2) / 2 is all three pieces at once.
        Activation::HardMish => x.mul(&x.affine(1.0, 2.0)?.clamp(0.0, 2.0)?)?.mul_scalar(0.5)?,
        Activation::Gelu => {
            let inner = x.mul_scalar(0.797885)?.add(&x.sqr()?.mul(x)?.mul_scalar(0.035677)?)?;
            x.mul(&inner.tanh()?.add_scalar(1.0)?)?.mul_scalar(0.5)?
        }
    })
}

/// Every layer that reads only its predecessor and has no parameters.
pub(super) fn stateless(layer: &Layer, x: &Tensor, shapes: &LayerShapes, mode: Mode, extra: &[(String, String)]) -> Result<Tensor> {
    Ok(match layer {
        Layer::MaxPool(p) => x.max_pool2d((p.size, p.size), (p.stride_y, p.stride_x), darknet_pool_padding(p), (1, 1), false)?,
        // Only in-bounds cells count (AlexeyAB's `forward_local_avgpool_layer`).
        Layer::LocalAvgPool(p) => x.avg_pool2d((p.size, p.size), (p.stride_y, p.stride_x), darknet_pool_padding(p), false, false)?,
        Layer::AvgPool => x.global_avg_pool2d()?,
        Layer::Upsample { stride, scale } => upsample(x, *stride, *scale)?,
        Layer::Softmax { groups, temperature } => softmax(x, *groups, *temperature)?,
        Layer::Cost { .. } => x.clone(),
        Layer::Crop(c) => crop(x, c, mode, extra)?,
        Layer::Reorg(r) => reorg(x, r)?,
        Layer::Yolo(y) => yolo(x, y)?,
        Layer::Region(r) => region(x, r)?,
        Layer::ChannelShuffle { groups } => {
            let [n, c, h, w] = dims4(x)?;
            x.reshape(&[n, *groups, c / groups, h, w])?.transpose(1, 2)?.reshape(&[n, c, h, w])?
        }
        Layer::Activation(a) => activate(*a, x)?,
        other => {
            return Err(Error::layer(
                other.section(),
                format!("has no parameters built for it (input {}, output {}): a bug in the builder", shapes.input, shapes.output),
            ))
        }
    })
}

fn dims4(x: &Tensor) -> Result<[usize; 4]> {
    match *x.dims() {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::layer("Network", format!("activation {} is not [N, C, H, W]", x.shape()))),
    }
}

/// Darknet's pool padding: `padding` cells in total, `padding / 2` before and the rest after.
fn darknet_pool_padding(p: &Pool) -> Padding {
    let (before, after) = (p.padding / 2, p.padding - p.padding / 2);
    Padding::explicit(before, after, before, after)
}

/// Nearest-neighbour upsampling by `stride` times `scale`; a negative stride sums each
/// `|stride| x |stride|` block instead (AlexeyAB's reverse upsample), times `scale`.
fn upsample(x: &Tensor, stride: isize, scale: f64) -> Result<Tensor> {
    let [_, _, h, w] = dims4(x)?;
    let s = stride.unsigned_abs();
    let y = if stride > 0 {
        x.upsample_nearest2d((h * s, w * s))?
    } else {
        x.avg_pool2d((s, s), (s, s), Padding::Valid, false, true)?.mul_scalar((s * s) as f64)?
    };
    Ok(if scale != 1.0 { y.mul_scalar(scale)? } else { y })
}

/// Darknet's softmax: each image's `C*H*W` values, split into `groups` contiguous runs, each
/// run a softmax of `x / temperature`.
fn softmax(x: &Tensor, groups: usize, temperature: f64) -> Result<Tensor> {
    let [n, c, h, w] = dims4(x)?;
    let t = if temperature != 1.0 { x.mul_scalar(1.0 / temperature)? } else { x.clone() };
    Ok(t.reshape(&[n, groups, c * h * w / groups])?.softmax(2)?.reshape(&[n, c, h, w])?)
}

/// Darknet's crop layer: in eval the centred window; in training a random window (and a random
/// horizontal flip with `flip`), the same for the whole batch. Values map `v -> 2v - 1` unless
/// the section sets `noadjust=1`.
fn crop(x: &Tensor, c: &Crop, mode: Mode, extra: &[(String, String)]) -> Result<Tensor> {
    let [_, _, h, w] = dims4(x)?;
    let (dh, dw, flip) = if mode.is_train() {
        with_default_rng(|rng| {
            let dh = rng.below((h - c.crop_height + 1) as u64) as usize;
            let dw = rng.below((w - c.crop_width + 1) as u64) as usize;
            (dh, dw, c.flip && rng.bernoulli(0.5))
        })
    } else {
        ((h - c.crop_height) / 2, (w - c.crop_width) / 2, false)
    };
    let mut y = x.narrow(2, dh, c.crop_height)?.narrow(3, dw, c.crop_width)?;
    if flip {
        let idx: Vec<i64> = (0..c.crop_width as i64).rev().collect();
        y = y.index_select(3, &Tensor::from_vec(idx, c.crop_width)?)?;
    }
    let noadjust = extra.iter().any(|(k, v)| k == "noadjust" && v.trim() != "0");
    Ok(if noadjust { y } else { y.affine(2.0, -1.0)? })
}

/// Darknet's `[reorg]` (`reorg_cpu` with `forward = 0`, the layout YOLOv2's weights were trained
/// with): the input's memory read as `C/s² x Hs x Ws` and regrouped into `C x H x W` order,
/// then seen as `Cs² x H/s x W/s`. `reverse` is the inverse.
fn reorg(x: &Tensor, r: &Reorg) -> Result<Tensor> {
    let [n, c, h, w] = dims4(x)?;
    let s = r.stride;
    if r.reverse {
        let oc = c / (s * s);
        return Ok(x.reshape(&[n, s, s, oc, h, w])?.permute(&[0, 3, 4, 1, 5, 2])?.reshape(&[n, oc, h * s, w * s])?);
    }
    let oc = c / (s * s);
    // out[k][j][i] = x'[k % oc][j*s + (k/oc)/s][i*s + (k/oc)%s] with x' the input seen as
    // oc x Hs x Ws: the block offset (dy, dx) becomes the slowest channel index.
    let y = x.reshape(&[n, oc, h, s, w, s])?.permute(&[0, 3, 5, 1, 2, 4])?;
    Ok(y.reshape(&[n, c * s * s, h / s, w / s])?)
}

/// `[yolo]`: per anchor, logistic on x and y (then `scale_x_y * v - (scale_x_y - 1) / 2`), w and
/// h as they are, logistic on objectness and class scores.
fn yolo(x: &Tensor, y: &Yolo) -> Result<Tensor> {
    let [n, c, h, w] = dims4(x)?;
    let a = y.mask.len();
    let t = x.reshape(&[n, a, c / a.max(1), h, w])?;
    let mut xy = t.narrow(2, 0, 2)?.sigmoid()?;
    if y.scale_x_y != 1.0 {
        xy = xy.affine(y.scale_x_y, -0.5 * (y.scale_x_y - 1.0))?;
    }
    let wh = t.narrow(2, 2, 2)?;
    let rest = t.narrow(2, 4, c / a.max(1) - 4)?.sigmoid()?;
    Ok(Tensor::cat(&[&xy, &wh, &rest], 2)?.reshape(&[n, c, h, w])?)
}

/// `[region]` (pjreddie's layout, one plane per value as `[yolo]`): logistic on x, y and
/// objectness, the other coordinates as they are, softmax over the classes when `softmax`.
fn region(x: &Tensor, r: &Region) -> Result<Tensor> {
    let [n, c, h, w] = dims4(x)?;
    let per = c / r.num.max(1);
    let t = x.reshape(&[n, r.num, per, h, w])?;
    let xy = t.narrow(2, 0, 2)?.sigmoid()?;
    let coords = t.narrow(2, 2, r.coords - 2)?;
    let obj = t.narrow(2, r.coords, 1)?.sigmoid()?;
    let mut classes = t.narrow(2, r.coords + 1, r.classes)?;
    if r.softmax {
        classes = classes.softmax(2)?;
    }
    Ok(Tensor::cat(&[&xy, &coords, &obj, &classes], 2)?.reshape(&[n, c, h, w])?)
}

/// `[route]`: group `group_id` of each input's channels, concatenated, then the `slice`.
pub(super) fn route(ins: &[Tensor], r: &Route) -> Result<Tensor> {
    let parts: Vec<Tensor> = ins
        .iter()
        .map(|t| {
            let c = dims4(t)?[1] / r.groups;
            Ok(if r.groups > 1 { t.narrow(1, r.group_id * c, c)? } else { t.clone() })
        })
        .collect::<Result<_>>()?;
    let y = if parts.len() == 1 { parts[0].clone() } else { Tensor::cat(&parts.iter().collect::<Vec<_>>(), 1)? };
    Ok(match r.slice {
        Some((start, end)) => y.narrow(1, start, end - start)?,
        None => y,
    })
}

/// `[shortcut]`: the previous output plus the `from` outputs, each times its weight when
/// weighted (AlexeyAB's `shortcut_multilayer_cpu`: weights normalised by relu or softmax with
/// 0.0001 added to the sum), then the activation.
pub(super) fn shortcut(prev: &Tensor, from: &[Tensor], s: &Shortcut, weights: Option<&Tensor>) -> Result<Tensor> {
    let inputs: Vec<&Tensor> = std::iter::once(prev).chain(from.iter()).collect();
    let sum = match (s.weights, weights) {
        (ShortcutWeights::None, _) | (_, None) => {
            let mut acc = prev.clone();
            for f in from {
                acc = acc.add(f)?;
            }
            acc
        }
        (ShortcutWeights::PerFeature { normalization } | ShortcutWeights::PerChannel { normalization }, Some(w)) => {
            let per_channel = matches!(s.weights, ShortcutWeights::PerChannel { .. });
            let w = normalize_weights(w, normalization)?;
            let c = dims4(prev)?[1];
            let mut acc: Option<Tensor> = None;
            for (k, t) in inputs.iter().enumerate() {
                let wk = w.narrow(0, k, 1)?;
                let wk = if per_channel { wk.reshape(&[1, c, 1, 1])? } else { wk.reshape(&[1, 1, 1, 1])? };
                let term = t.mul(&wk)?;
                acc = Some(match acc {
                    Some(a) => a.add(&term)?,
                    None => term,
                });
            }
            acc.unwrap_or_else(|| prev.clone())
        }
    };
    activate(s.activation, &sum)
}

/// Normalises shortcut weights over the inputs (dim 0).
fn normalize_weights(w: &Tensor, how: WeightsNormalization) -> Result<Tensor> {
    const EPS: f64 = 0.0001;
    Ok(match how {
        WeightsNormalization::None => w.clone(),
        WeightsNormalization::Relu => {
            let r = w.relu()?;
            r.div(&r.sum(&[0], true)?.add_scalar(EPS)?)?
        }
        WeightsNormalization::Softmax => {
            let max = w.detach().max(&[0], true)?;
            let e = w.sub(&max)?.exp()?;
            e.div(&e.sum(&[0], true)?.add_scalar(EPS)?)?
        }
    })
}

/// `[scale_channels]`: layer `from`'s output times the previous `C x 1 x 1` output, per channel,
/// then the activation.
pub(super) fn scale_channels(target: &Tensor, scales: &Tensor, activation: Activation) -> Result<Tensor> {
    activate(activation, &target.mul(scales)?)
}
