//! LeNet-5 as BENCH.md's W5 defines it (LeCun et al. 1998 with ReLU and max pooling, the form
//! PyTorch tutorials use).

use shendu_core::Padding;
use shendu_nn::layers::{Conv2dConfig, Flatten, Linear, MaxPool2d, Relu};
use shendu_nn::{Error, Result, Sequential};

use super::blocks::{no_options, Net};
use super::ModelOptions;
use crate::netspec::{Activation, Conv, NetSpec};

/// `features` (conv 6@5x5 pad 2, ReLU, max pool 2, conv 16@5x5, ReLU, max pool 2), `flatten`,
/// `classifier` (fc 120, ReLU, fc 84, ReLU, fc classes). Parameter names:
/// `features.0.weight`, `features.3.weight`, `classifier.0.weight`, `classifier.2.weight`,
/// `classifier.4.weight` (and their biases).
pub fn lenet5(opts: &ModelOptions) -> Result<Sequential> {
    let (h, w) = opts.input_hw;
    // 5x5 "same" conv, pool /2, 5x5 valid conv, pool /2.
    let side = |s: usize| (s / 2).checked_sub(4).map(|v| v / 2).filter(|v| *v > 0);
    let (Some(fh), Some(fw)) = (side(h), side(w)) else {
        return Err(Error::config("lenet", format!("input {h}x{w} is too small: LeNet-5 needs at least 12x12")));
    };
    let dt = opts.dtype;
    let features = Sequential::new()
        .push(Conv2dConfig::new(opts.in_channels, 6, 5).padding(Padding::Explicit { top: 2, bottom: 2, left: 2, right: 2 }).build(dt)?)
        .push(Relu)
        .push(MaxPool2d::new(2))
        .push(Conv2dConfig::new(6, 16, 5).build(dt)?)
        .push(Relu)
        .push(MaxPool2d::new(2));
    let classifier = Sequential::new()
        .push(Linear::new(16 * fh * fw, 120, dt)?)
        .push(Relu)
        .push(Linear::new(120, 84, dt)?)
        .push(Relu)
        .push(Linear::new(84, opts.classes, dt)?);
    Ok(Sequential::new().push_named("features", features).push_named("flatten", Flatten::new()).push_named("classifier", classifier))
}

/// LeNet-5 as a [`NetSpec`], layer for layer the network [`lenet5`] builds and with the same
/// parameter names (a layer's name is its place in `features` / `classifier`).
pub fn lenet5_spec(opts: &ModelOptions) -> Result<NetSpec> {
    no_options("lenet", opts, false, false)?;
    let relu = Activation::Relu;
    let mut n = Net::new(opts);
    n.conv("features.0", Conv::new(6, 5, 1).padding(2).activation(relu));
    n.max_pool(2, 2, 0);
    n.conv("features.3", Conv::new(16, 5, 1).activation(relu));
    n.max_pool(2, 2, 0);
    n.fc("classifier.0", 120, relu);
    n.fc("classifier.2", 84, relu);
    n.fc("classifier.4", opts.classes, Activation::Linear);
    Ok(n.finish())
}
