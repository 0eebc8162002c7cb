//! MobileNet v1 (Howard et al. 2017) and v2 (Sandler et al. 2018, as torchvision builds it and
//! under its names), with a 28x28 v2 for MNIST.

use shendu_nn::{Error, Result};

use super::blocks::{make_divisible, Net};
use super::ModelOptions;
use crate::netspec::{Activation, Conv, Layer, NetSpec};

/// MobileNet v1 at width multiplier `width` (the paper's alpha): a 3x3/2 conv to 32, thirteen
/// depthwise-separable blocks (3x3 depthwise conv, BN, ReLU, 1x1 conv, BN, ReLU), global
/// average pool, `fc`. Names: `features.0.0` / `features.0.1` (conv, BN), then per block
/// `features.i.0` / `.1` (depthwise) and `features.i.3` / `.4` (pointwise), in the layout of
/// torchvision's v2.
pub fn mobilenet_v1(opts: &ModelOptions, width: f64) -> Result<NetSpec> {
    if !(width.is_finite() && width > 0.0) {
        return Err(Error::config("mobilenet_v1", format!("width {width} must be a positive number")));
    }
    // (output channels, stride) of each depthwise-separable block (the paper's Table 1).
    const BLOCKS: [(usize, usize); 13] =
        [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)];
    let relu = Activation::Relu;
    let mut n = Net::new(opts);
    let mut c = make_divisible(32.0 * width, 8);
    n.conv_bn("features.0.0", "features.0.1", c, 3, 2, relu);
    for (i, &(out, stride)) in BLOCKS.iter().enumerate() {
        let p = format!("features.{}", i + 1);
        n.conv_bn_with(&format!("{p}.0"), &format!("{p}.1"), Conv::new(c, 3, stride).pad().groups(c).activation(relu));
        c = make_divisible(out as f64 * width, 8);
        n.conv_bn(&format!("{p}.3"), &format!("{p}.4"), c, 1, 1, relu);
    }
    n.head("fc", opts.classes);
    Ok(n.finish())
}

/// One stage of MobileNet v2's inverted residuals: expansion `t`, output channels `c` (before
/// the width multiplier), `n` blocks, the first at stride `s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvertedResidualStage {
    pub t: usize,
    pub c: usize,
    pub n: usize,
    pub s: usize,
}

const fn stage(t: usize, c: usize, n: usize, s: usize) -> InvertedResidualStage {
    InvertedResidualStage { t, c, n, s }
}

/// A MobileNet v2's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct MobileNetV2Config {
    /// torchvision's `width_mult`.
    pub width: f64,
    /// Stride of the first 3x3 conv.
    pub stem_stride: usize,
    pub stages: Vec<InvertedResidualStage>,
    /// Channels of the last 1x1 conv (scaled by `width` when `width > 1`, as torchvision does).
    pub last_channel: usize,
    /// Dropout before the classifier.
    pub dropout: f64,
}

impl MobileNetV2Config {
    /// torchvision's `mobilenet_v2(width_mult=width)` for 224x224 inputs (32x downsampling).
    pub fn imagenet(width: f64) -> MobileNetV2Config {
        MobileNetV2Config {
            width,
            stem_stride: 2,
            stages: vec![
                stage(1, 16, 1, 1),
                stage(6, 24, 2, 2),
                stage(6, 32, 3, 2),
                stage(6, 64, 4, 2),
                stage(6, 96, 3, 1),
                stage(6, 160, 3, 2),
                stage(6, 320, 1, 1),
            ],
            last_channel: 1280,
            dropout: 0.2,
        }
    }

    /// For 28x28 MNIST digits: torchvision's seven stages at width 0.5, the stem at stride 1
    /// and the 160-channel stage at stride 1, so only three stages downsample (28, 14, 7, 4).
    /// At 32x (ImageNet's factor) a 28x28 digit would shrink to one pixel by the fourth stage;
    /// here the last eleven blocks still see a 4x4 map. Width 0.5 and a 512-channel last conv
    /// (1280 would add 2 MMACs) keep it at 11 MMACs per image and 0.57M parameters, so an epoch
    /// of MNIST takes minutes on two cores. Its PyTorch twin (`tests/reference/torch_zoo.py`)
    /// reaches 99.25% test accuracy after 2 epochs of SGD (`train_mnist_torch.py`).
    pub fn mnist() -> MobileNetV2Config {
        let mut cfg = MobileNetV2Config::imagenet(0.5);
        cfg.stem_stride = 1;
        cfg.stages[5].s = 1;
        cfg.last_channel = 512;
        cfg
    }
}

/// A torchvision MobileNet v2: `features.0` (3x3 conv, BN, ReLU6), inverted residual blocks
/// `features.1` ... (1x1 expand with BN and ReLU6 unless `t = 1`, 3x3 depthwise with BN and
/// ReLU6, 1x1 linear projection with BN, plus the input when the shape is kept), the last 1x1
/// conv with BN and ReLU6, global average pool, dropout, `classifier.1`.
pub fn mobilenet_v2(opts: &ModelOptions, cfg: &MobileNetV2Config) -> Result<NetSpec> {
    if !(cfg.width.is_finite() && cfg.width > 0.0) || cfg.stem_stride == 0 || cfg.stages.iter().any(|s| s.t == 0 || s.s == 0) {
        return Err(Error::config("mobilenet_v2", "width, the stem stride and every stage's t and s must be positive"));
    }
    let relu6 = Activation::Relu6;
    let linear = Activation::Linear;
    let mut n = Net::new(opts);
    let mut input = make_divisible(32.0 * cfg.width, 8);
    let last = make_divisible(cfg.last_channel as f64 * cfg.width.max(1.0), 8);
    n.conv_bn("features.0.0", "features.0.1", input, 3, cfg.stem_stride, relu6);
    let mut f = 1;
    for st in &cfg.stages {
        let out = make_divisible(st.c as f64 * cfg.width, 8);
        for i in 0..st.n {
            let stride = if i == 0 { st.s } else { 1 };
            let p = format!("features.{f}.conv");
            let x = n.cur()?;
            let hidden = input * st.t;
            let mut j = 0;
            if st.t != 1 {
                n.conv_bn(&format!("{p}.0.0"), &format!("{p}.0.1"), hidden, 1, 1, relu6);
                j = 1;
            }
            let dw = Conv::new(hidden, 3, stride).pad().groups(hidden).activation(relu6);
            n.conv_bn_with(&format!("{p}.{j}.0"), &format!("{p}.{j}.1"), dw);
            n.conv_bn(&format!("{p}.{}", j + 1), &format!("{p}.{}", j + 2), out, 1, 1, linear);
            if stride == 1 && input == out {
                n.add(x, linear);
            }
            input = out;
            f += 1;
        }
    }
    n.conv_bn(&format!("features.{f}.0"), &format!("features.{f}.1"), last, 1, 1, relu6);
    n.op(Layer::AvgPool);
    if cfg.dropout > 0.0 {
        n.op(Layer::Dropout { probability: cfg.dropout });
    }
    n.fc("classifier.1", opts.classes, linear);
    Ok(n.finish())
}
