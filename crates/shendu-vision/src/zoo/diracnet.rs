//! DiracNets (Zagoruyko & Komodakis 2017): plain deep networks without skip connections whose
//! convs are parametrised as `diag(a)·I + diag(b)·W/‖W‖`, the identity folded into the weight.

use shendu_nn::{Error, Result};

use super::blocks::{scaled, Net};
use super::ModelOptions;
use crate::netspec::{Activation, Conv, NetSpec};

/// The ImageNet DiracNet of `depth` 18 or 34: `conv` 7x7/2 with `bn` and ReLU, 3x3/2 max pool,
/// four groups of 3x3 dirac convs (each with BN and ReLU; 4, 4, 4, 4 convs for depth 18 and
/// 6, 8, 12, 6 for 34, at 64, 128, 256, 512 channels times `width`) with a 2x2/2 max pool
/// between groups, global average pool, `fc`. Parameters: `group0.block0.conv.weight`,
/// `.alpha`, `.beta` and `group0.block0.bn.*`.
///
/// The paper's ImageNet models use NCReLU, concatenating `relu(x)` and `-relu(-x)`, which
/// doubles every conv's input; this is the ReLU form (the authors' "v2" models), which keeps
/// every dirac conv's filters at least its input channels, as the identity term needs.
pub fn diracnet(opts: &ModelOptions, depth: usize, width: f64) -> Result<NetSpec> {
    let convs: [usize; 4] = match depth {
        18 => [4, 4, 4, 4],
        34 => [6, 8, 12, 6],
        _ => return Err(Error::config("diracnet", format!("depth {depth} is not available; choose 18 or 34"))),
    };
    if !(width.is_finite() && width > 0.0) {
        return Err(Error::config("diracnet", format!("width {width} must be a positive number")));
    }
    let relu = Activation::Relu;
    let mut n = Net::new(opts);
    let stem = scaled(64, width);
    n.conv_bn("conv", "bn", stem, 7, 2, relu);
    n.max_pool(3, 2, 1);
    for (g, &count) in convs.iter().enumerate() {
        if g > 0 {
            n.max_pool(2, 2, 0);
        }
        let c = scaled(64 << g, width).max(stem);
        for b in 0..count {
            let p = format!("group{g}.block{b}");
            n.conv_bn_with(&format!("{p}.conv"), &format!("{p}.bn"), Conv::new(c, 3, 1).pad().dirac().activation(relu));
        }
    }
    n.head("fc", opts.classes);
    Ok(n.finish())
}
