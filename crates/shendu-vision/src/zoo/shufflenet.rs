//! ShuffleNet v1 (Zhang et al. 2018; the layout and names of Megvii's official PyTorch code)
//! and v2 (Ma et al. 2018, as torchvision builds it and under its names), with a 28x28 v2 for
//! MNIST. Channel splits are routes with `groups=2`, shuffles `[channel_shuffle]` layers.

use shendu_nn::{Error, Result};

use super::blocks::Net;
use super::ModelOptions;
use crate::netspec::{Activation, Conv, Layer, NetSpec, Route};

/// ShuffleNet v1 with `groups` groups (1, 2, 3, 4 or 8) at width `width` (0.5, 1, 1.5 or 2):
/// `first_conv` 3x3/2 (conv, BN, ReLU), 3x3/2 max pool, three stages of 4, 8, 4 units,
/// global average pool, `classifier.0` (no bias).
///
/// A unit: 1x1 group conv to a quarter of the stage's channels (BN, ReLU; ungrouped in the
/// very first unit, whose 24 input channels are too few to split), 3x3 depthwise conv (BN),
/// channel shuffle, 1x1 group conv (BN); stride 1 adds the input and applies ReLU, stride 2
/// concatenates a 3x3/2 average pool of the input with the ReLU of the result (so its conv
/// outputs the stage's channels minus the input's). As in Megvii's code the shuffle follows
/// the depthwise conv (the same function as the paper's order, which would only permute the
/// depthwise filters) and regroups `c` channels as `c / groups` groups of `groups`, so their
/// trained weights load as they are.
pub fn shufflenet_v1(opts: &ModelOptions, groups: usize, width: f64) -> Result<NetSpec> {
    // The paper's Table 1 at width 1; Megvii's tables for other widths are these scaled and
    // rounded to a multiple of 4 * groups (which keeps the bottleneck's groups whole).
    let base = match groups {
        1 => 144,
        2 => 200,
        3 => 240,
        4 => 272,
        8 => 384,
        g => return Err(Error::config("shufflenet_v1", format!("groups {g} is not one of 1, 2, 3, 4, 8"))),
    };
    if !(width.is_finite() && width > 0.0) {
        return Err(Error::config("shufflenet_v1", format!("width {width} must be a positive number")));
    }
    let unit = 4 * groups;
    let c = (((base as f64 * width) / unit as f64).round() as usize).max(1) * unit;
    let stages = [c, 2 * c, 4 * c];
    let stem = match width {
        w if w <= 0.5 && groups == 8 => 16,
        w if w <= 0.5 => 12,
        w if w <= 1.5 => 24,
        _ => 48,
    };
    let relu = Activation::Relu;
    let linear = Activation::Linear;
    let mut n = Net::new(opts);
    n.conv_bn("first_conv.0", "first_conv.1", stem, 3, 2, relu);
    n.max_pool(3, 2, 1);
    let mut input = stem;
    let mut f = 0;
    for (s, &out) in stages.iter().enumerate() {
        let mid = out / 4;
        for u in 0..[4, 8, 4][s] {
            let stride = if u == 0 { 2 } else { 1 };
            let p = format!("features.{f}");
            let x = n.cur()?;
            let outputs = if stride == 2 { out - input } else { out };
            let g1 = if s == 0 && u == 0 { 1 } else { groups };
            n.conv_bn_with(
                &format!("{p}.branch_main_1.0"),
                &format!("{p}.branch_main_1.1"),
                Conv::new(mid, 1, 1).groups(g1).activation(relu),
            );
            let dw = Conv::new(mid, 3, stride).pad().groups(mid).activation(linear);
            n.conv_bn_with(&format!("{p}.branch_main_1.3"), &format!("{p}.branch_main_1.4"), dw);
            if groups > 1 {
                n.op(Layer::ChannelShuffle { groups: mid / groups });
            }
            let pw = Conv::new(outputs, 1, 1).groups(groups).activation(if stride == 2 { relu } else { linear });
            let main = n.conv_bn_with(&format!("{p}.branch_main_2.0"), &format!("{p}.branch_main_2.1"), pw);
            if stride == 1 {
                n.add(x, relu);
            } else {
                n.from(x);
                let proj = n.avg_pool(3, 2, 1);
                n.concat(vec![proj, main]);
            }
            input = out;
            f += 1;
        }
    }
    n.op(Layer::AvgPool);
    let fc = n.fc("classifier.0", opts.classes, linear);
    if let Layer::Connected(c) = &mut n.spec.layers[fc].layer {
        c.bias = false;
    }
    Ok(n.finish())
}

/// A ShuffleNet v2's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ShuffleNetV2Config {
    /// Units per stage (torchvision: 4, 8, 4).
    pub repeats: [usize; 3],
    /// Channels of the stem, the three stages and `conv5`.
    pub channels: [usize; 5],
    /// Stride of the stem conv.
    pub stem_stride: usize,
    /// Whether the 3x3/2 max pool follows the stem.
    pub max_pool: bool,
}

impl ShuffleNetV2Config {
    /// torchvision's `shufflenet_v2_x0_5` ... `x2_0` (width 0.5, 1, 1.5 or 2).
    pub fn imagenet(width: f64) -> Result<ShuffleNetV2Config> {
        const TABLE: [(f64, [usize; 5]); 4] = [
            (0.5, [24, 48, 96, 192, 1024]),
            (1.0, [24, 116, 232, 464, 1024]),
            (1.5, [24, 176, 352, 704, 1024]),
            (2.0, [24, 244, 488, 976, 2048]),
        ];
        let Some(&(_, channels)) = TABLE.iter().find(|(w, _)| (w - width).abs() < 1e-9) else {
            return Err(Error::config("shufflenet_v2", format!("width {width} is not one of 0.5, 1, 1.5, 2")));
        };
        Ok(ShuffleNetV2Config { repeats: [4, 8, 4], channels, stem_stride: 2, max_pool: true })
    }

    /// For 28x28 MNIST digits: the 0.5x network with the stem at stride 1 and no max pool, so
    /// the stages run at 14, 7 and 4 pixels (ImageNet's 32x would leave one pixel), and
    /// `conv5` at 512 channels rather than 1024 (at 4x4 it would be a third of the work).
    /// 7.5 MMACs per image, 0.25M parameters; its PyTorch twin reaches 99.37% test accuracy
    /// after 2 epochs of SGD (`tests/reference/train_mnist_torch.py`).
    pub fn mnist() -> ShuffleNetV2Config {
        ShuffleNetV2Config { repeats: [4, 8, 4], channels: [24, 48, 96, 192, 512], stem_stride: 1, max_pool: false }
    }
}

/// A torchvision ShuffleNet v2: `conv1` (3x3 conv, BN, ReLU), max pool, `stage2` ... `stage4`,
/// `conv5` (1x1, BN, ReLU), global average pool, `fc`.
///
/// A stride-1 unit splits the channels in half, passes the first half through and sends the
/// second through `branch2` (1x1 conv BN ReLU, 3x3 depthwise BN, 1x1 conv BN ReLU); a stride-2
/// unit feeds the whole input to both `branch1` (3x3/2 depthwise BN, 1x1 conv BN ReLU) and
/// `branch2`. The halves are concatenated and shuffled in 2 groups. (No ReLU after a depthwise
/// conv, BN everywhere and the shuffle after every unit are what make it train.)
pub fn shufflenet_v2(opts: &ModelOptions, cfg: &ShuffleNetV2Config) -> Result<NetSpec> {
    if cfg.stem_stride == 0 || cfg.channels.contains(&0) || cfg.channels[1..4].iter().any(|c| !c.is_multiple_of(2)) {
        return Err(Error::config("shufflenet_v2", "the stem stride must be positive and the stage channels even"));
    }
    let relu = Activation::Relu;
    let linear = Activation::Linear;
    let mut n = Net::new(opts);
    n.conv_bn("conv1.0", "conv1.1", cfg.channels[0], 3, cfg.stem_stride, relu);
    if cfg.max_pool {
        n.max_pool(3, 2, 1);
    }
    let mut input = cfg.channels[0];
    for (s, &repeats) in cfg.repeats.iter().enumerate() {
        let out = cfg.channels[s + 1];
        let half = out / 2;
        for u in 0..repeats {
            let p = format!("stage{}.{u}", s + 2);
            let x = n.cur()?;
            let kept = if u == 0 {
                let dw = Conv::new(input, 3, 2).pad().groups(input).activation(linear);
                n.conv_bn_with(&format!("{p}.branch1.0"), &format!("{p}.branch1.1"), dw);
                let b1 = n.conv_bn(&format!("{p}.branch1.2"), &format!("{p}.branch1.3"), half, 1, 1, relu);
                n.from(x);
                b1
            } else {
                let first = n.op(Layer::Route(Route::split(x, 2, 0)));
                n.op(Layer::Route(Route::split(x, 2, 1)));
                first
            };
            let stride = if u == 0 { 2 } else { 1 };
            n.conv_bn(&format!("{p}.branch2.0"), &format!("{p}.branch2.1"), half, 1, 1, relu);
            let dw = Conv::new(half, 3, stride).pad().groups(half).activation(linear);
            n.conv_bn_with(&format!("{p}.branch2.3"), &format!("{p}.branch2.4"), dw);
            let b2 = n.conv_bn(&format!("{p}.branch2.5"), &format!("{p}.branch2.6"), half, 1, 1, relu);
            n.concat(vec![kept, b2]);
            n.op(Layer::ChannelShuffle { groups: 2 });
            input = out;
        }
    }
    n.conv_bn("conv5.0", "conv5.1", cfg.channels[4], 1, 1, relu);
    n.head("fc", opts.classes);
    Ok(n.finish())
}
