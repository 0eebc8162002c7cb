//! ImageNet ResNets as torchvision builds them (v1.5: a bottleneck's stride sits in its 3x3
//! conv), with ResNeXt's grouped and Wide ResNet's widened bottlenecks, under torchvision's
//! parameter names (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`, `fc`).

use shendu_nn::{Error, Result};

use super::blocks::{depth_option, Net};
use super::ModelOptions;
use crate::netspec::{Activation, Conv, NetSpec};

/// The residual unit of a ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Two 3x3 convs (ResNet-18/34).
    Basic,
    /// 1x1 reduce, 3x3 (strided, grouped), 1x1 expand by 4 (ResNet-50 and deeper).
    Bottleneck,
}

/// What distinguishes the members of torchvision's ResNet family.
#[derive(Clone, Debug, PartialEq)]
pub struct ResNetConfig {
    pub block: Block,
    /// Blocks per stage (four stages of 64, 128, 256, 512 planes).
    pub layers: [usize; 4],
    /// Groups of a bottleneck's 3x3 conv (ResNeXt's cardinality).
    pub groups: usize,
    /// torchvision's `width_per_group`: a bottleneck's inner width is
    /// `planes * width_per_group / 64 * groups` (64: ResNet; 4 with 32 groups: ResNeXt-50 32x4d;
    /// 128: Wide ResNet-50-2).
    pub width_per_group: usize,
}

impl ResNetConfig {
    /// ResNet-18, 34, 50, 101 or 152.
    pub fn depth(depth: usize) -> Result<ResNetConfig> {
        let (block, layers) = match depth {
            18 => (Block::Basic, [2, 2, 2, 2]),
            34 => (Block::Basic, [3, 4, 6, 3]),
            50 => (Block::Bottleneck, [3, 4, 6, 3]),
            101 => (Block::Bottleneck, [3, 4, 23, 3]),
            152 => (Block::Bottleneck, [3, 8, 36, 3]),
            _ => return Err(Error::config("resnet", format!("depth {depth} is not available; choose one of 18, 34, 50, 101, 152"))),
        };
        Ok(ResNetConfig { block, layers, groups: 1, width_per_group: 64 })
    }
}

/// A torchvision ResNet: `conv1` 7x7/2, `bn1`, ReLU, 3x3/2 max pool, four stages, global
/// average pool, `fc`. Exactly torchvision's parameters (names, shapes, order) for every
/// `ResNetConfig` torchvision accepts.
pub fn resnet(opts: &ModelOptions, cfg: &ResNetConfig) -> Result<NetSpec> {
    if cfg.block == Block::Basic && (cfg.groups != 1 || cfg.width_per_group != 64) {
        return Err(Error::config("resnet", "basic blocks have no groups or width_per_group (need 1 and 64)"));
    }
    if cfg.groups == 0 || cfg.width_per_group == 0 {
        return Err(Error::config("resnet", "groups and width_per_group must be at least 1"));
    }
    let relu = Activation::Relu;
    let mut n = Net::new(opts);
    n.conv_bn("conv1", "bn1", 64, 7, 2, relu);
    n.max_pool(3, 2, 1);
    let mut inplanes = 64;
    for (stage, &blocks) in cfg.layers.iter().enumerate() {
        let planes = 64 << stage;
        for b in 0..blocks {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let p = format!("layer{}.{b}", stage + 1);
            let x = n.cur()?;
            let out = match cfg.block {
                Block::Basic => {
                    n.conv_bn(&format!("{p}.conv1"), &format!("{p}.bn1"), planes, 3, stride, relu);
                    n.conv_bn(&format!("{p}.conv2"), &format!("{p}.bn2"), planes, 3, 1, Activation::Linear);
                    planes
                }
                Block::Bottleneck => {
                    let width = planes * cfg.width_per_group / 64 * cfg.groups;
                    n.conv_bn(&format!("{p}.conv1"), &format!("{p}.bn1"), width, 1, 1, relu);
                    let c2 = Conv::new(width, 3, stride).pad().groups(cfg.groups).activation(relu);
                    n.conv_bn_with(&format!("{p}.conv2"), &format!("{p}.bn2"), c2);
                    n.conv_bn(&format!("{p}.conv3"), &format!("{p}.bn3"), planes * 4, 1, 1, Activation::Linear);
                    planes * 4
                }
            };
            if stride != 1 || inplanes != out {
                // torchvision registers `downsample` after the main path, so it comes after it
                // here too: the state dict's order is the layer order.
                let main = n.cur()?;
                n.from(x);
                n.conv_bn(&format!("{p}.downsample.0"), &format!("{p}.downsample.1"), out, 1, stride, Activation::Linear);
                n.add(main, relu);
            } else {
                n.add(x, relu);
            }
            inplanes = out;
        }
    }
    n.head("fc", opts.classes);
    Ok(n.finish())
}

/// `resnet18` ... `resnet152` (`opts.depth` picks another depth; `opts.width` scales a
/// bottleneck's inner width: `resnet50` at width 2 is `wide_resnet50_2`).
pub fn resnet_by_depth(opts: &ModelOptions, default_depth: usize) -> Result<NetSpec> {
    let depth = depth_option("resnet", opts, default_depth, &[18, 34, 50, 101, 152])?;
    let mut cfg = ResNetConfig::depth(depth)?;
    if let Some(w) = opts.width {
        if !(w.is_finite() && w > 0.0) {
            return Err(Error::config("resnet", format!("width {w} must be a positive number")));
        }
        cfg.width_per_group = ((64.0 * w).round() as usize).max(1);
    }
    resnet(opts, &cfg)
}

/// ResNeXt-50 32x4d: ResNet-50 with 32 groups of 4 channels per bottleneck at the first stage.
pub fn resnext50_32x4d(opts: &ModelOptions) -> Result<NetSpec> {
    resnet(opts, &ResNetConfig { groups: 32, width_per_group: 4, ..ResNetConfig::depth(50)? })
}

/// Wide ResNet-50-2: ResNet-50 with bottlenecks twice as wide.
pub fn wide_resnet50_2(opts: &ModelOptions) -> Result<NetSpec> {
    resnet(opts, &ResNetConfig { width_per_group: 128, ..ResNetConfig::depth(50)? })
}
