//! The few moves every zoo constructor makes, so each model file reads as its architecture:
//! a conv with its batch norm under torchvision's names, a route back to an earlier layer, a
//! residual sum, the pooled classifier head.

use shendu_nn::{Error, Result};

use super::ModelOptions;
use crate::netspec::{Activation, Connected, Conv, Layer, LayerSpec, NetOptions, NetSpec, Pool, Route, Shortcut};

/// A `NetSpec` under construction, with the index of the layer whose output is "the current
/// activation" always at hand.
pub(crate) struct Net {
    pub spec: NetSpec,
    /// What the next layer reads: `None` before the first layer (the network input).
    cur: Option<usize>,
}

impl Net {
    pub fn new(opts: &ModelOptions) -> Net {
        let (h, w) = opts.input_hw;
        Net { spec: NetSpec::new(NetOptions::input(opts.in_channels, h, w)), cur: None }
    }

    /// The layer whose output the next layer reads. Blocks call this for their input; every
    /// model starts with a stem layer, so a block never needs the raw network input.
    pub fn cur(&self) -> Result<usize> {
        self.cur.ok_or_else(|| Error::config("zoo", "a block needs an earlier layer as its input"))
    }

    /// Appends a layer (unnamed layers get their index as name: they have no parameters).
    pub fn push(&mut self, layer: LayerSpec) -> usize {
        let i = self.spec.push(layer);
        self.cur = Some(i);
        i
    }

    /// A layer without parameters.
    pub fn op(&mut self, layer: Layer) -> usize {
        self.push(LayerSpec::new(layer))
    }

    /// A conv whose parameters are `<name>.weight` (and `<name>.bias` if it has one).
    pub fn conv(&mut self, name: &str, conv: Conv) -> usize {
        self.push(LayerSpec::new(Layer::Conv(conv)).named(name))
    }

    /// A bias-free conv followed by a batch norm named `bn` and `act`: torchvision's
    /// `conv -> BatchNorm2d -> activation` triple, padded to keep the size at stride 1.
    pub fn conv_bn(&mut self, name: &str, bn: &str, filters: usize, size: usize, stride: usize, act: Activation) -> usize {
        self.conv_bn_with(name, bn, Conv::new(filters, size, stride).pad().activation(act))
    }

    /// [`Net::conv_bn`] for a conv configured by the caller (groups, dilation, dirac).
    pub fn conv_bn_with(&mut self, name: &str, bn: &str, conv: Conv) -> usize {
        self.push(LayerSpec::new(Layer::Conv(conv.bn().no_bias())).named(name).bn_named(bn))
    }

    /// A standalone batch norm named `name` (pre-activation networks).
    pub fn bn(&mut self, name: &str) -> usize {
        self.push(LayerSpec::new(Layer::BatchNorm).named(name))
    }

    pub fn act(&mut self, a: Activation) -> usize {
        self.op(Layer::Activation(a))
    }

    /// Makes layer `i` the current activation, with a route unless it already is.
    pub fn from(&mut self, i: usize) -> usize {
        if self.cur == Some(i) {
            return i;
        }
        self.op(Layer::Route(Route::concat(vec![i])))
    }

    /// Channel concatenation of `layers`, in order.
    pub fn concat(&mut self, layers: Vec<usize>) -> usize {
        self.op(Layer::Route(Route::concat(layers)))
    }

    /// Channels `start..end` of the concatenation of `layers`.
    pub fn concat_slice(&mut self, layers: Vec<usize>, start: usize, end: usize) -> usize {
        self.op(Layer::Route(Route { slice: Some((start, end)), ..Route::concat(layers) }))
    }

    /// Channels `start..end` of layer `i`.
    pub fn slice(&mut self, i: usize, start: usize, end: usize) -> usize {
        self.op(Layer::Route(Route::slice(i, start, end)))
    }

    /// The current activation plus layer `from`, then `act`.
    pub fn add(&mut self, from: usize, act: Activation) -> usize {
        self.op(Layer::Shortcut(Shortcut::add(from, act)))
    }

    /// PyTorch's `MaxPool2d(size, stride, padding)` (Darknet counts padding in total).
    pub fn max_pool(&mut self, size: usize, stride: usize, padding: usize) -> usize {
        self.op(Layer::MaxPool(Pool::new(size, stride).padding(2 * padding)))
    }

    /// PyTorch's `AvgPool2d(size, stride, padding)`; padded cells are left out of the mean
    /// (Darknet's `local_avgpool`; PyTorch counts them by default, which differs at borders).
    pub fn avg_pool(&mut self, size: usize, stride: usize, padding: usize) -> usize {
        self.op(Layer::LocalAvgPool(Pool::new(size, stride).padding(2 * padding)))
    }

    /// Global average pooling, then a fully connected layer to `classes` named `fc`.
    pub fn head(&mut self, fc: &str, classes: usize) -> usize {
        self.op(Layer::AvgPool);
        self.fc(fc, classes, Activation::Linear)
    }

    /// A fully connected layer named `name` on the flattened current activation.
    pub fn fc(&mut self, name: &str, outputs: usize, act: Activation) -> usize {
        self.push(LayerSpec::new(Layer::Connected(Connected::new(outputs).activation(act))).named(name))
    }

    pub fn finish(self) -> NetSpec {
        self.spec
    }
}

/// torchvision's `_make_divisible`: `v` rounded to the nearest multiple of `divisor`, never
/// below `divisor` nor more than 10% below `v`.
pub(crate) fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = (((v + d / 2.0) as usize) / divisor * divisor).max(divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// `opts.depth` when it is one of `allowed`, the default when unset, else an error naming
/// the model and the choices.
pub(crate) fn depth_option(model: &str, opts: &ModelOptions, default: usize, allowed: &[usize]) -> Result<usize> {
    let d = opts.depth.unwrap_or(default);
    if allowed.contains(&d) {
        return Ok(d);
    }
    let list: Vec<String> = allowed.iter().map(|d| d.to_string()).collect();
    Err(Error::config(model, format!("depth {d} is not available; choose one of {}", list.join(", "))))
}

/// `opts.width` (default `default`), which must be positive and finite.
pub(crate) fn width_option(model: &str, opts: &ModelOptions, default: f64) -> Result<f64> {
    let w = opts.width.unwrap_or(default);
    if w.is_finite() && w > 0.0 {
        Ok(w)
    } else {
        Err(Error::config(model, format!("width {w} must be a positive number")))
    }
}

/// An error unless `opts` leaves the options the model has no use for unset.
pub(crate) fn no_options(model: &str, opts: &ModelOptions, width: bool, depth: bool) -> Result<()> {
    if !width && opts.width.is_some() {
        return Err(Error::config(model, "this model has no width option"));
    }
    if !depth && opts.depth.is_some() {
        return Err(Error::config(model, "this model has no depth option"));
    }
    Ok(())
}

/// `base * width` rounded, at least 1: scaled channel counts.
pub(crate) fn scaled(base: usize, width: f64) -> usize {
    ((base as f64 * width).round() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_divisible_matches_torchvision() {
        // Values from torchvision's mobilenet_v2 at width 1.0, 0.5 and 0.35.
        assert_eq!(make_divisible(32.0, 8), 32);
        assert_eq!(make_divisible(16.0 * 0.5, 8), 8);
        assert_eq!(make_divisible(24.0 * 0.5, 8), 16);
        assert_eq!(make_divisible(320.0 * 0.35, 8), 112);
        assert_eq!(make_divisible(1280.0, 8), 1280);
        assert_eq!(make_divisible(96.0 * 0.35, 8), 32);
    }
}
