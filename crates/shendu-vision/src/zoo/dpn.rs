//! Dual Path Networks (Chen et al. 2017) in the form and under the names of the widely used
//! PyTorch port (Cadene's `pretrainedmodels`, also timm's): pre-activation BN-ReLU-conv units,
//! `features.conv2_1.c1x1_a.bn`, ..., `features.conv5_bn_ac.bn`, `classifier`.
//!
//! A block carries two paths: a residual path of `bw` channels (summed) and a dense path that
//! grows by `inc` channels per block (concatenated). Its last 1x1 conv outputs `bw + inc`
//! channels, split with route slices: the first `bw` are added to the residual path, the rest
//! appended to the dense path. The first block of a stage projects its input to `bw + 2 inc`
//! channels with a 1x1 conv (strided in stages 3 to 5), split the same way into the two paths.

use shendu_nn::{Error, Result};

use super::blocks::Net;
use super::ModelOptions;
use crate::netspec::{Activation, Conv, Layer, NetSpec};

/// How the network starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpnStem {
    /// `features.conv1_1`: 7x7/2 conv, BN, ReLU, 3x3/2 max pool (224x224 inputs).
    ImageNet,
    /// 3x3/1 conv, BN, ReLU and no pool (32x32 inputs).
    Cifar,
}

/// A DPN's shape (the arguments of the port's `DPN` class).
#[derive(Clone, Debug, PartialEq)]
pub struct DpnConfig {
    pub init_features: usize,
    pub stem: DpnStem,
    /// The 3x3 convs' width in the first stage (doubling per stage).
    pub k_r: usize,
    /// Groups of the 3x3 convs.
    pub groups: usize,
    /// Blocks per stage.
    pub k_sec: [usize; 4],
    /// Dense-path growth per block, per stage.
    pub inc_sec: [usize; 4],
    /// The residual path is `64 * bw_factor` channels in the first stage, doubling per stage
    /// (4, or 1 for the "small" DPN-68).
    pub bw_factor: usize,
}

impl DpnConfig {
    /// DPN-92: 64 stem channels, k_r 96, 32 groups, 3, 4, 20, 3 blocks, growth 16, 32, 24, 128.
    pub fn dpn92() -> DpnConfig {
        DpnConfig {
            init_features: 64,
            stem: DpnStem::ImageNet,
            k_r: 96,
            groups: 32,
            k_sec: [3, 4, 20, 3],
            inc_sec: [16, 32, 24, 128],
            bw_factor: 4,
        }
    }

    /// A DPN-26 for 32x32 inputs: DPN-92's stage widths halved with two blocks per stage
    /// (4 stages x 2 blocks x 3 convs + 2), the 3x3 stem of CIFAR networks, stages at 32, 16,
    /// 8 and 4 pixels.
    pub fn cifar() -> DpnConfig {
        DpnConfig {
            init_features: 32,
            stem: DpnStem::Cifar,
            k_r: 48,
            groups: 16,
            k_sec: [2, 2, 2, 2],
            inc_sec: [8, 16, 12, 64],
            bw_factor: 2,
        }
    }
}

/// A DPN: stem, four stages of dual-path blocks, `features.conv5_bn_ac` (BN, ReLU on the
/// joined paths), global average pool, `classifier` (a 1x1 conv with bias, as in the port).
pub fn dpn(opts: &ModelOptions, cfg: &DpnConfig) -> Result<NetSpec> {
    if cfg.init_features == 0 || cfg.k_r == 0 || cfg.groups == 0 || cfg.bw_factor == 0 || cfg.k_sec.contains(&0) {
        return Err(Error::config("dpn", "init_features, k_r, groups, bw_factor and every stage's block count must be positive"));
    }
    let relu = Activation::Relu;
    let linear = Activation::Linear;
    let mut n = Net::new(opts);
    match cfg.stem {
        DpnStem::ImageNet => {
            n.conv_bn("features.conv1_1.conv", "features.conv1_1.bn", cfg.init_features, 7, 2, relu);
            n.max_pool(3, 2, 1);
        }
        DpnStem::Cifar => {
            n.conv_bn("features.conv1_1.conv", "features.conv1_1.bn", cfg.init_features, 3, 1, relu);
        }
    }
    // BN, ReLU, conv: the port's `BnActConv2d`, named `<p>.bn` and `<p>.conv`.
    let unit = |n: &mut Net, p: &str, conv: Conv| {
        n.bn(&format!("{p}.bn"));
        n.act(relu);
        n.conv(&format!("{p}.conv"), conv.no_bias().activation(linear))
    };
    // (residual path, dense path) of the last block; `None` before the first.
    let mut paths: Option<(usize, usize)> = None;
    for s in 0..4 {
        let bw = (64 << s) * cfg.bw_factor;
        let r = cfg.k_r << s;
        let inc = cfg.inc_sec[s];
        for b in 0..cfg.k_sec[s] {
            let p = format!("features.conv{}_{}", s + 2, b + 1);
            let x_in = match paths {
                Some((resid, dense)) => n.concat(vec![resid, dense]),
                None => n.cur()?,
            };
            let proj = if b == 0 {
                let stride = if s == 0 { 1 } else { 2 };
                let which = if stride == 1 { "c1x1_w_s1" } else { "c1x1_w_s2" };
                Some((unit(&mut n, &format!("{p}.{which}"), Conv::new(bw + 2 * inc, 1, stride)), stride))
            } else {
                None
            };
            n.from(x_in);
            let stride = proj.map_or(1, |(_, s)| s);
            unit(&mut n, &format!("{p}.c1x1_a"), Conv::new(r, 1, 1));
            unit(&mut n, &format!("{p}.c3x3_b"), Conv::new(r, 3, stride).pad().groups(cfg.groups));
            let out = unit(&mut n, &format!("{p}.c1x1_c"), Conv::new(bw + inc, 1, 1));
            let (s1, s2) = match (proj, paths) {
                (Some((w, _)), _) => (n.slice(w, 0, bw), None),
                (None, Some((resid, dense))) => (resid, Some(dense)),
                (None, None) => return Err(Error::config("dpn", "the first block must project")),
            };
            n.slice(out, 0, bw);
            let resid = n.add(s1, linear);
            let out2 = n.slice(out, bw, bw + inc);
            let dense = match (proj, s2) {
                // The projection's last 2 inc channels, then the block's inc new ones.
                (Some((w, _)), _) => n.concat_slice(vec![w, out2], bw, bw + 3 * inc),
                (None, Some(dense)) => n.concat(vec![dense, out2]),
                (None, None) => return Err(Error::config("dpn", "the first block must project")),
            };
            paths = Some((resid, dense));
        }
    }
    if let Some((resid, dense)) = paths {
        n.concat(vec![resid, dense]);
    }
    n.bn("features.conv5_bn_ac.bn");
    n.act(relu);
    n.op(Layer::AvgPool);
    n.conv("classifier", Conv::new(opts.classes, 1, 1).activation(linear));
    Ok(n.finish())
}
