//! DenseNets (Huang et al. 2017) as torchvision builds them, and the CIFAR DenseNet-BC of the
//! paper, under torchvision's names (`features.denseblock1.denselayer1.norm1`, ...).
//!
//! A dense layer is pre-activation: batch norm, ReLU, 1x1 conv to `bn_size * growth`, batch
//! norm, ReLU, 3x3 conv to `growth`, reading the concatenation of its block's input and every
//! earlier layer's output. In the spec each layer starts with a route that concatenates those.

use shendu_nn::{Error, Result};

use super::blocks::Net;
use super::ModelOptions;
use crate::netspec::{Activation, Conv, NetSpec};

/// How the network starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseStem {
    /// torchvision's `conv0` 7x7/2, `norm0`, ReLU, 3x3/2 max pool (224x224 inputs).
    ImageNet,
    /// The paper's CIFAR stem: `conv0` 3x3 only (the first dense layer normalises).
    Cifar,
}

/// A DenseNet's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseNetConfig {
    /// Channels each dense layer adds (`k`).
    pub growth: usize,
    /// Dense layers per block.
    pub blocks: Vec<usize>,
    /// Channels out of the stem.
    pub init_features: usize,
    /// The bottleneck's width in multiples of `growth` (4: the "B" of DenseNet-BC).
    pub bn_size: usize,
    /// A transition keeps `floor(channels * compression)` channels (0.5: the "C").
    pub compression: f64,
    pub stem: DenseStem,
}

impl DenseNetConfig {
    /// torchvision's DenseNet-121: k = 32, blocks 6, 12, 24, 16, 64 stem channels.
    pub fn densenet121() -> DenseNetConfig {
        DenseNetConfig {
            growth: 32,
            blocks: vec![6, 12, 24, 16],
            init_features: 64,
            bn_size: 4,
            compression: 0.5,
            stem: DenseStem::ImageNet,
        }
    }

    /// DenseNet-BC for CIFAR of `depth` layers (100 in the paper) and growth `k` (12): three
    /// blocks of `(depth - 4) / 6` bottleneck layers, `2k` stem channels.
    pub fn bc_cifar(depth: usize, growth: usize) -> Result<DenseNetConfig> {
        if depth < 10 || !(depth - 4).is_multiple_of(6) {
            return Err(Error::config("densenet_bc", format!("depth {depth} is not 6n + 4 (40, 100, 190, 250, ...)")));
        }
        let n = (depth - 4) / 6;
        Ok(DenseNetConfig { growth, blocks: vec![n; 3], init_features: 2 * growth, bn_size: 4, compression: 0.5, stem: DenseStem::Cifar })
    }
}

/// A DenseNet: stem, dense blocks with transitions (`norm`, ReLU, 1x1 `conv`, 2x2/2 average
/// pool) between them, `features.norm5`, ReLU, global average pool, `classifier`.
pub fn densenet(opts: &ModelOptions, cfg: &DenseNetConfig) -> Result<NetSpec> {
    if cfg.growth == 0
        || cfg.bn_size == 0
        || cfg.init_features == 0
        || cfg.blocks.is_empty()
        || !(cfg.compression > 0.0 && cfg.compression <= 1.0)
    {
        return Err(Error::config("densenet", "growth, bn_size, init_features and blocks must be positive and compression in (0, 1]"));
    }
    let relu = Activation::Relu;
    let linear = Activation::Linear;
    let mut n = Net::new(opts);
    match cfg.stem {
        DenseStem::ImageNet => {
            n.conv_bn("features.conv0", "features.norm0", cfg.init_features, 7, 2, relu);
            n.max_pool(3, 2, 1);
        }
        DenseStem::Cifar => {
            n.conv("features.conv0", Conv::new(cfg.init_features, 3, 1).pad().no_bias().activation(linear));
        }
    }
    let mut channels = cfg.init_features;
    for (b, &layers) in cfg.blocks.iter().enumerate() {
        let input = n.cur()?;
        let mut parts = vec![input];
        for l in 0..layers {
            let p = format!("features.denseblock{}.denselayer{}", b + 1, l + 1);
            if l > 0 {
                n.concat(parts.clone());
            }
            n.bn(&format!("{p}.norm1"));
            n.act(relu);
            n.conv(&format!("{p}.conv1"), Conv::new(cfg.bn_size * cfg.growth, 1, 1).no_bias().activation(linear));
            n.bn(&format!("{p}.norm2"));
            n.act(relu);
            parts.push(n.conv(&format!("{p}.conv2"), Conv::new(cfg.growth, 3, 1).pad().no_bias().activation(linear)));
        }
        if layers > 0 {
            n.concat(parts);
        }
        channels += layers * cfg.growth;
        if b + 1 < cfg.blocks.len() {
            let p = format!("features.transition{}", b + 1);
            channels = (channels as f64 * cfg.compression) as usize;
            n.bn(&format!("{p}.norm"));
            n.act(relu);
            n.conv(&format!("{p}.conv"), Conv::new(channels.max(1), 1, 1).no_bias().activation(linear));
            n.avg_pool(2, 2, 0);
        }
    }
    n.bn("features.norm5");
    n.act(relu);
    n.head("classifier", opts.classes);
    Ok(n.finish())
}
