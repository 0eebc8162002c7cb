//! The flags `shendu train` and `shendu debug` share: which network, which data, and how to train
//! it. Both flatten [`TrainSettings`] into their own flags.

use std::path::{Path, PathBuf};

use clap::Args;

use super::CliResult;
use crate::train::TrainConfig;

/// The network, data and optimisation flags of a training run. Unset flags keep the base
/// configuration's values (the defaults, a cfg's `[net]` options or a resumed checkpoint's).
#[derive(Args, Debug, Default)]
pub struct TrainSettings {
    /// Model from the zoo: lenet (LeNet-5) or mlp (784-512-512-10) [default: lenet].
    #[arg(long, value_name = "NAME", conflicts_with = "cfg")]
    pub model: Option<String>,
    /// Train the network a Darknet .cfg describes; its [net] batch, learning_rate, momentum,
    /// decay, policy, burn_in, power and max_batches apply unless the flags below override them.
    #[arg(long, value_name = "FILE")]
    pub cfg: Option<PathBuf>,
    /// Directory with the four MNIST files (train-images-idx3-ubyte etc., plain or .gz)
    /// [default: the 6,000/1,000-image subset built into shendu].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Total number of epochs (with --resume: the epoch to stop after) [default: 8].
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Samples per batch [default: 64].
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Base learning rate [default: 0.05].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// sgd, adam, adamw or rmsprop [default: sgd].
    #[arg(long, value_name = "NAME")]
    pub optimizer: Option<String>,
    /// Momentum of SGD and RMSProp [default: 0.9].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// L2 weight decay (decoupled for adamw) [default: 0].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule over optimizer steps: constant, cosine[:warmup=N,min_lr=X],
    /// step:size=N,gamma=X, multistep:milestones=A|B,gamma=X, exp:gamma=X, poly[:power=X]
    /// [default: cosine].
    #[arg(long, value_name = "SPEC")]
    pub schedule: Option<String>,
    /// Clip the global gradient norm to X (0 = off) [default: 0].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub clip_norm: Option<f64>,
    /// Train on the first N training samples only (0 = all) [default: 0].
    #[arg(long, value_name = "N")]
    pub limit_train: Option<usize>,
    /// Seed of weights, shuffling and dropout [default: 0].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Worker threads for the kernels [default: SHENDU_NUM_THREADS, else all cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
}

impl TrainSettings {
    /// The flags over `base`.
    pub fn apply(&self, base: TrainConfig) -> TrainConfig {
        let mut c = base;
        macro_rules! over {
            ($($f:ident),*) => { $(if let Some(v) = &self.$f { c.$f = v.clone(); })* };
        }
        over!(model, epochs, batch, lr, optimizer, momentum, weight_decay, schedule, clip_norm, limit_train, seed);
        if self.data.is_some() {
            c.data = self.data.clone();
        }
        c
    }

    /// The configuration the flags start from: `--cfg`'s, else the defaults.
    pub fn base(&self) -> CliResult<TrainConfig> {
        match &self.cfg {
            Some(path) => cfg_base(path),
            None => Ok(TrainConfig::default()),
        }
    }

    /// Sizes the kernels' thread pool as `--threads` says (left alone without it).
    pub fn set_threads(&self) {
        if let Some(t) = self.threads {
            shendu_core::set_num_threads(t as usize);
        }
    }
}

/// The defaults of a run of the Darknet cfg at `path`: its `[net]` training options, the model
/// named after the file.
fn cfg_base(path: &Path) -> CliResult<TrainConfig> {
    let spec = crate::train::model::read_spec(path)?;
    let mut base = TrainConfig::default();
    crate::train::model::apply_net_options(&mut base, &spec);
    base.cfg = Some(path.display().to_string());
    base.model = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "cfg".into());
    Ok(base)
}
