//! ResNets for 32x32 inputs: He et al. 2016 §4.2 (ResNet-20/32/44/56/110) and Zagoruyko &
//! Komodakis 2016's pre-activation Wide ResNets (WRN-28-10), named in torchvision's style.

use shendu_nn::{Error, Result};

use super::blocks::{scaled, width_option, Net};
use super::ModelOptions;
use crate::netspec::{Activation, Conv, Layer, NetSpec, Pool};

/// How a CIFAR ResNet's block adds its input when the block halves the size and doubles the
/// channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarShortcut {
    /// The paper's option A, used for its CIFAR results: the input subsampled by 2 and padded
    /// with zero channels, so no parameters (the counts 0.27M for ResNet-20, 0.85M for 56).
    A,
    /// Option B: a 1x1 strided conv and batch norm (`downsample.0`, `downsample.1`).
    B,
}

/// He et al.'s CIFAR ResNet of `depth = 6n + 2` layers: `conv1` 3x3 16, `bn1`, three stages of
/// `n` basic blocks at 16, 32, 64 channels (times `opts.width`) and 32, 16, 8 pixels, global
/// average pool, `fc`. Names follow torchvision (`layer1.0.conv1`, `layer1.0.bn1`, ...).
pub fn cifar_resnet(opts: &ModelOptions, depth: usize, shortcut: CifarShortcut) -> Result<NetSpec> {
    if depth < 8 || !(depth - 2).is_multiple_of(6) {
        return Err(Error::config("cifar_resnet", format!("depth {depth} is not 6n + 2 (20, 32, 44, 56, 110, ...)")));
    }
    let blocks = (depth - 2) / 6;
    let width = width_option("cifar_resnet", opts, 1.0)?;
    let relu = Activation::Relu;
    let mut n = Net::new(opts);
    let base = scaled(16, width);
    n.conv_bn("conv1", "bn1", base, 3, 1, relu);
    let mut inplanes = base;
    for stage in 0..3 {
        let planes = base << stage;
        for b in 0..blocks {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let p = format!("layer{}.{b}", stage + 1);
            let x = n.cur()?;
            n.conv_bn(&format!("{p}.conv1"), &format!("{p}.bn1"), planes, 3, stride, relu);
            let main = n.conv_bn(&format!("{p}.conv2"), &format!("{p}.bn2"), planes, 3, 1, Activation::Linear);
            if stride == 1 && inplanes == planes {
                n.add(x, relu);
            } else if shortcut == CifarShortcut::B {
                n.from(x);
                n.conv_bn(&format!("{p}.downsample.0"), &format!("{p}.downsample.1"), planes, 1, stride, Activation::Linear);
                n.add(main, relu);
            } else {
                option_a(&mut n, x, main, inplanes, planes, stride);
            }
            inplanes = planes;
        }
    }
    n.head("fc", opts.classes);
    Ok(n.finish())
}

/// `relu(main + pad(x[:, :, ::stride, ::stride]))` with zeros padding the channels from
/// `inplanes` to `planes`: the input is added to the first `inplanes` channels of `main` and
/// the rest of `main` passes as it is.
fn option_a(n: &mut Net, x: usize, main: usize, inplanes: usize, planes: usize, stride: usize) {
    n.from(x);
    // A 1x1 max pool at the stride is plain subsampling.
    let sub = n.op(Layer::MaxPool(Pool::new(1, stride).padding(0)));
    n.slice(main, 0, inplanes);
    let head = n.add(sub, Activation::Linear);
    if planes > inplanes {
        let tail = n.slice(main, inplanes, planes);
        n.concat(vec![head, tail]);
    }
    n.act(Activation::Relu);
}

/// A pre-activation Wide ResNet WRN-`depth`-`widen` (Zagoruyko & Komodakis 2016, the code of
/// their CIFAR results): `conv1` 3x3 16, three stages of `(depth - 4) / 6` blocks at
/// `16 * widen`, `32 * widen`, `64 * widen` channels, each block `bn1`-ReLU-`conv1`-`bn2`-ReLU-
/// (dropout)-`conv2` plus its input, through a 1x1 `downsample` conv of the pre-activated input
/// where the shape changes; then `bn`, ReLU, global average pool, `fc`. Convs have no bias.
pub fn wide_resnet_cifar(opts: &ModelOptions, depth: usize, widen: f64, dropout: f64) -> Result<NetSpec> {
    if depth < 10 || !(depth - 4).is_multiple_of(6) {
        return Err(Error::config("wrn", format!("depth {depth} is not 6n + 4 (16, 22, 28, 40, ...)")));
    }
    if !(widen.is_finite() && widen > 0.0 && (0.0..1.0).contains(&dropout)) {
        return Err(Error::config("wrn", format!("widen factor {widen} must be positive and dropout {dropout} in [0, 1)")));
    }
    let blocks = (depth - 4) / 6;
    let relu = Activation::Relu;
    let mut n = Net::new(opts);
    n.conv("conv1", Conv::new(16, 3, 1).pad().no_bias().activation(Activation::Linear));
    let mut inplanes = 16;
    for stage in 0..3 {
        let planes = scaled(16 << stage, widen);
        for b in 0..blocks {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let p = format!("layer{}.{b}", stage + 1);
            let x = n.cur()?;
            n.bn(&format!("{p}.bn1"));
            let pre = n.act(relu);
            n.conv(&format!("{p}.conv1"), Conv::new(planes, 3, stride).pad().no_bias().activation(Activation::Linear));
            n.bn(&format!("{p}.bn2"));
            n.act(relu);
            if dropout > 0.0 {
                n.op(Layer::Dropout { probability: dropout });
            }
            let main = n.conv(&format!("{p}.conv2"), Conv::new(planes, 3, 1).pad().no_bias().activation(Activation::Linear));
            if stride == 1 && inplanes == planes {
                n.add(x, Activation::Linear);
            } else {
                n.from(pre);
                n.conv(&format!("{p}.downsample"), Conv::new(planes, 1, stride).no_bias().activation(Activation::Linear));
                n.add(main, Activation::Linear);
            }
            inplanes = planes;
        }
    }
    n.bn("bn");
    n.act(relu);
    n.head("fc", opts.classes);
    Ok(n.finish())
}
