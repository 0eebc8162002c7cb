//! The model zoo: each model a constructor with options returning its [`NetSpec`], [`spec`] to
//! pick one by name, and [`build`] (what `shendu train --model NAME` calls).
//!
//! Where torchvision has the model, the spec's parameters are torchvision's, name for name and
//! shape for shape in state-dict order, so its weights load strictly (`tests/zoo.rs` holds every
//! such model to torchvision's `state_dict()`); the others follow their reference code's names
//! (timm for DPN, Megvii's for ShuffleNet v1) or torchvision's style.

mod blocks;
mod cifar_resnet;
mod densenet;
mod diracnet;
mod dpn;
mod lenet;
mod mlp;
mod mobilenet;
mod resnet;
mod shufflenet;

pub use cifar_resnet::{cifar_resnet, wide_resnet_cifar, CifarShortcut};
pub use densenet::{densenet, DenseNetConfig, DenseStem};
pub use diracnet::diracnet;
pub use dpn::{dpn, DpnConfig, DpnStem};
pub use lenet::{lenet5, lenet5_spec};
pub use mlp::{mlp, mlp_spec};
pub use mobilenet::{mobilenet_v1, mobilenet_v2, InvertedResidualStage, MobileNetV2Config};
pub use resnet::{resnet, resnet_by_depth, resnext50_32x4d, wide_resnet50_2, Block, ResNetConfig};
pub use shufflenet::{shufflenet_v1, shufflenet_v2, ShuffleNetV2Config};

use shendu_core::DType;

use crate::netspec::NetSpec;
use shendu_nn::{Error, Module, Result};

use blocks::{depth_option, no_options, width_option};

/// What every zoo constructor takes: the input it will see, the classes it predicts, and the
/// two knobs most families have.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelOptions {
    /// Input channels (1 for MNIST).
    pub in_channels: usize,
    /// Input height and width.
    pub input_hw: (usize, usize),
    pub classes: usize,
    pub dtype: DType,
    /// The width multiplier (MobileNet's alpha, a Wide ResNet's widening factor, ShuffleNet's
    /// 0.5x ... 2x); `None`: what the model's name implies. Models without one reject it.
    pub width: Option<f64>,
    /// The depth in layers (ResNet-18 ... 152, CIFAR ResNet 6n + 2, ...); `None`: what the
    /// model's name implies. Models without one reject it.
    pub depth: Option<usize>,
}

impl ModelOptions {
    /// 1x28x28 inputs, 10 classes, f32.
    pub fn mnist() -> ModelOptions {
        ModelOptions { in_channels: 1, input_hw: (28, 28), classes: 10, dtype: DType::F32, width: None, depth: None }
    }

    /// 3x32x32 inputs, 10 classes, f32 (CIFAR-10).
    pub fn cifar10() -> ModelOptions {
        ModelOptions { in_channels: 3, input_hw: (32, 32), ..ModelOptions::mnist() }
    }

    /// 3x224x224 inputs, 1000 classes, f32 (ImageNet).
    pub fn imagenet() -> ModelOptions {
        ModelOptions { in_channels: 3, input_hw: (224, 224), classes: 1000, ..ModelOptions::mnist() }
    }

    /// The input and classes the model called `name` was designed for: MNIST's for LeNet, the
    /// MLP and the `_mnist` models, CIFAR-10's for the CIFAR models, ImageNet's for the rest.
    pub fn for_model(name: &str) -> Result<ModelOptions> {
        let name = canonical(name)?;
        Ok(if matches!(name, "lenet" | "mlp") || name.ends_with("_mnist") {
            ModelOptions::mnist()
        } else if matches!(name, "resnet20" | "resnet56" | "wrn28_10" | "densenet_bc100" | "dpn26_cifar") {
            ModelOptions::cifar10()
        } else {
            ModelOptions::imagenet()
        })
    }
}

/// The zoo's model names with a one-line description each.
pub const MODELS: &[(&str, &str)] = &[
    ("lenet", "LeNet-5: conv 6@5x5 (pad 2), pool, conv 16@5x5, pool, fc 120, fc 84, fc classes (ReLU)"),
    ("mlp", "MLP: flatten, fc 512, ReLU, fc 512, ReLU, fc classes"),
    ("resnet18", "ResNet-18 (torchvision): basic blocks 2-2-2-2, 224x224"),
    ("resnet34", "ResNet-34 (torchvision): basic blocks 3-4-6-3, 224x224"),
    ("resnet50", "ResNet-50 v1.5 (torchvision): bottlenecks 3-4-6-3, stride in the 3x3, 224x224"),
    ("resnet101", "ResNet-101 v1.5 (torchvision): bottlenecks 3-4-23-3, 224x224"),
    ("resnext50_32x4d", "ResNeXt-50 32x4d (torchvision): ResNet-50 with 32-group 3x3 convs, 224x224"),
    ("wide_resnet50_2", "Wide ResNet-50-2 (torchvision): ResNet-50 with twice as wide bottlenecks, 224x224"),
    ("resnet20", "CIFAR ResNet-20 (He et al. 2016): 3x3 basic blocks at 16/32/64 channels, option A shortcuts, 32x32"),
    ("resnet56", "CIFAR ResNet-56 (He et al. 2016): as ResNet-20 with 9 blocks per stage, 32x32"),
    ("wrn28_10", "WRN-28-10 (Zagoruyko & Komodakis): pre-activation, 4 blocks per stage at 160/320/640, 32x32"),
    ("densenet121", "DenseNet-121 (torchvision): growth 32, dense blocks 6-12-24-16, 224x224"),
    ("densenet_bc100", "DenseNet-BC-100 k=12 (Huang et al.) for CIFAR: 3 blocks of 16 bottleneck layers, 32x32"),
    ("mobilenet_v1", "MobileNet v1 (Howard et al.): 13 depthwise-separable blocks, width 1.0, 224x224"),
    ("mobilenet_v2", "MobileNet v2 (torchvision): 17 inverted residuals, width 1.0, 224x224"),
    ("mobilenet_v2_mnist", "MobileNet v2 for 28x28: width 0.5, stem stride 1, 3 downsamplings (28-14-7-4), last conv 512"),
    ("shufflenet_v1", "ShuffleNet v1 1.0x g=3 (Megvii's layout): units 4-8-4 at 240/480/960, 224x224"),
    ("shufflenet_v2_x0_5", "ShuffleNet v2 0.5x (torchvision): units 4-8-4 at 48/96/192, 224x224"),
    ("shufflenet_v2_x1_0", "ShuffleNet v2 1.0x (torchvision): units 4-8-4 at 116/232/464, 224x224"),
    ("shufflenet_v2_mnist", "ShuffleNet v2 0.5x for 28x28: stem stride 1, no max pool (28-14-7-4), conv5 512"),
    ("dpn92", "DPN-92 (Chen et al.; Cadene/timm names): dual-path blocks 3-4-20-3, 224x224"),
    ("dpn26_cifar", "DPN-26 for CIFAR: dual-path blocks 2-2-2-2 at half DPN-92's widths, 3x3 stem, 32x32"),
    ("diracnet18", "DiracNet-18 (Zagoruyko & Komodakis): 16 dirac 3x3 convs, no skip connections, 224x224"),
];

/// The table name an alias stands for, or an error listing the known names.
fn canonical(name: &str) -> Result<&str> {
    let name = match name {
        "lenet5" | "lenet-5" => "lenet",
        "resnet_cifar" | "cifar_resnet" => "resnet20",
        "wrn" | "wide_resnet" => "wrn28_10",
        "densenet_bc" => "densenet_bc100",
        "dpn_cifar" => "dpn26_cifar",
        "diracnet" => "diracnet18",
        n => n,
    };
    match MODELS.iter().find(|(n, _)| *n == name) {
        Some((n, _)) => Ok(n),
        None => {
            let known: Vec<&str> = MODELS.iter().map(|(n, _)| *n).collect();
            Err(Error::config("--model", format!("unknown model '{name}'; known models: {}", known.join(", "))))
        }
    }
}

/// Builds the model called `name`; an unknown name is an error listing the known ones.
pub fn build(name: &str, opts: &ModelOptions) -> Result<Box<dyn Module>> {
    Ok(match name {
        // The two models W4/W5 of BENCH.md time, kept as plain Sequentials (same parameter
        // names as their specs, so checkpoints load either way).
        "lenet" | "lenet5" | "lenet-5" => Box::new(lenet5(opts)?),
        "mlp" => Box::new(mlp(opts, &[512, 512])?),
        _ => {
            let mut net = spec(name, opts)?.build(opts.dtype)?;
            // Classifiers are trained on logits; the loss applies the softmax.
            net.set_logits_output(true);
            Box::new(net)
        }
    })
}

/// The `NetSpec` of the model called `name` (what `shendu summary --model NAME` prints and what
/// the builder turns into a network); an unknown name is an error listing the known ones.
/// `opts.depth` and `opts.width`, when set, replace what the name implies (`resnet18` at depth
/// 50 is `resnet50`); a model without that knob rejects it.
pub fn spec(name: &str, opts: &ModelOptions) -> Result<NetSpec> {
    let name = canonical(name)?;
    let spec = match name {
        "lenet" => lenet5_spec(opts)?,
        "mlp" => mlp_spec(opts, &[512, 512])?,
        "resnet18" => resnet_by_depth(opts, 18)?,
        "resnet34" => resnet_by_depth(opts, 34)?,
        "resnet50" => resnet_by_depth(opts, 50)?,
        "resnet101" => resnet_by_depth(opts, 101)?,
        "resnext50_32x4d" => {
            no_options(name, opts, false, false)?;
            resnext50_32x4d(opts)?
        }
        "wide_resnet50_2" => {
            no_options(name, opts, false, false)?;
            wide_resnet50_2(opts)?
        }
        "resnet20" | "resnet56" => {
            let depth = opts.depth.unwrap_or(if name == "resnet20" { 20 } else { 56 });
            cifar_resnet(opts, depth, CifarShortcut::A)?
        }
        "wrn28_10" => wide_resnet_cifar(opts, opts.depth.unwrap_or(28), width_option(name, opts, 10.0)?, 0.0)?,
        "densenet121" => {
            no_options(name, opts, false, true)?;
            let blocks = match depth_option(name, opts, 121, &[121, 169, 201])? {
                169 => vec![6, 12, 32, 32],
                201 => vec![6, 12, 48, 32],
                _ => vec![6, 12, 24, 16],
            };
            densenet(opts, &DenseNetConfig { blocks, ..DenseNetConfig::densenet121() })?
        }
        "densenet_bc100" => {
            let growth = blocks::scaled(12, width_option(name, opts, 1.0)?);
            densenet(opts, &DenseNetConfig::bc_cifar(opts.depth.unwrap_or(100), growth)?)?
        }
        "mobilenet_v1" => {
            no_options(name, opts, true, false)?;
            mobilenet_v1(opts, width_option(name, opts, 1.0)?)?
        }
        "mobilenet_v2" | "mobilenet_v2_mnist" => {
            no_options(name, opts, true, false)?;
            let mut cfg = if name == "mobilenet_v2" { MobileNetV2Config::imagenet(1.0) } else { MobileNetV2Config::mnist() };
            cfg.width = width_option(name, opts, cfg.width)?;
            mobilenet_v2(opts, &cfg)?
        }
        "shufflenet_v1" => {
            no_options(name, opts, true, false)?;
            shufflenet_v1(opts, 3, width_option(name, opts, 1.0)?)?
        }
        "shufflenet_v2_x0_5" | "shufflenet_v2_x1_0" => {
            no_options(name, opts, true, false)?;
            let default = if name == "shufflenet_v2_x0_5" { 0.5 } else { 1.0 };
            shufflenet_v2(opts, &ShuffleNetV2Config::imagenet(width_option(name, opts, default)?)?)?
        }
        "shufflenet_v2_mnist" => {
            no_options(name, opts, false, false)?;
            shufflenet_v2(opts, &ShuffleNetV2Config::mnist())?
        }
        "dpn92" | "dpn26_cifar" => {
            no_options(name, opts, false, false)?;
            dpn(opts, &if name == "dpn92" { DpnConfig::dpn92() } else { DpnConfig::cifar() })?
        }
        "diracnet18" => diracnet(opts, depth_option(name, opts, 18, &[18, 34])?, width_option(name, opts, 1.0)?)?,
        _ => return Err(Error::config("--model", format!("model '{name}' has no NetSpec"))),
    };
    Ok(spec)
}
