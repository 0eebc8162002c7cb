//! What a training run is: every choice `shendu train` makes, saved in each checkpoint so that
//! `--resume` continues the same run.

use serde::{Deserialize, Serialize};
use shendu_nn::optim::{Adam, AdamConfig, AdamW, AdamWConfig, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig};
use shendu_nn::schedule::Schedule;
use shendu_nn::Param;

use crate::cli::{CliError, CliResult};

/// The optimizers `--optimizer` names.
pub const OPTIMIZERS: &[&str] = &["sgd", "adam", "adamw", "rmsprop"];

/// A training run's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Zoo model name (`lenet`, `mlp`), or the cfg file's stem with `cfg`.
    pub model: String,
    /// A Darknet cfg file to train instead of a zoo model (`--cfg`).
    #[serde(default)]
    pub cfg: Option<String>,
    /// Directory with the four MNIST files; `None` = the embedded subset.
    pub data: Option<String>,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    /// `sgd`, `adam`, `adamw` or `rmsprop`.
    pub optimizer: String,
    /// SGD/RMSProp momentum (Adam's beta1 is its own).
    pub momentum: f64,
    pub weight_decay: f64,
    /// A [`Schedule::parse`] string (`constant`, `cosine:warmup=100`, `step:size=2,gamma=0.1`);
    /// its steps are optimizer steps.
    pub schedule: String,
    pub seed: u64,
    /// Clip the gradient norm to this (0 = off).
    pub clip_norm: f64,
    /// Stop when the test accuracy has not improved for this many epochs (0 = never).
    pub patience: usize,
    /// Train on only the first N training samples (0 = all); for quick runs and tests.
    pub limit_train: usize,
}

impl Default for TrainConfig {
    /// LeNet-5 on the embedded subset: 8 epochs of SGD with momentum, about 98% test accuracy.
    fn default() -> TrainConfig {
        TrainConfig {
            model: "lenet".into(),
            cfg: None,
            data: None,
            epochs: 8,
            batch: 64,
            lr: 0.05,
            optimizer: "sgd".into(),
            momentum: 0.9,
            weight_decay: 0.0,
            schedule: "cosine".into(),
            seed: 0,
            clip_norm: 0.0,
            patience: 0,
            limit_train: 0,
        }
    }
}

impl TrainConfig {
    /// Checks every value, naming the flag that is wrong.
    pub fn validate(&self) -> CliResult<()> {
        let bad = |flag: &str, msg: String| Err(CliError::bad(format!("{flag}: {msg}")));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("--lr", format!("learning rate must be a positive number, got {}", self.lr));
        }
        if self.epochs == 0 {
            return bad("--epochs", "must be at least 1".into());
        }
        if self.batch == 0 {
            return bad("--batch", "must be at least 1".into());
        }
        if !OPTIMIZERS.contains(&self.optimizer.as_str()) {
            return bad("--optimizer", format!("unknown optimizer '{}'; choose one of {}", self.optimizer, OPTIMIZERS.join(", ")));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("--momentum", format!("must be in [0, 1), got {}", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("--weight-decay", format!("must be zero or positive, got {}", self.weight_decay));
        }
        if !(self.clip_norm.is_finite() && self.clip_norm >= 0.0) {
            return bad("--clip-norm", format!("must be zero (off) or positive, got {}", self.clip_norm));
        }
        self.schedule(1)?;
        if self.cfg.is_none() && !shendu_vision::zoo::MODELS.iter().any(|(n, _)| *n == self.model) {
            let known: Vec<&str> = shendu_vision::zoo::MODELS.iter().map(|(n, _)| *n).collect();
            return bad("--model", format!("unknown model '{}'; known models: {}", self.model, known.join(", ")));
        }
        Ok(())
    }

    /// The learning-rate schedule over `total_steps` optimizer steps.
    pub fn schedule(&self, total_steps: usize) -> CliResult<Schedule> {
        Schedule::parse_with_total(&self.schedule, Some(total_steps)).map_err(|e| CliError::bad(format!("--schedule: {e}")))
    }

    /// The optimizer over `params`.
    pub fn build_optimizer(&self, params: Vec<(String, Param)>) -> CliResult<Box<dyn Optimizer>> {
        let (lr, wd) = (self.lr, self.weight_decay);
        Ok(match self.optimizer.as_str() {
            "sgd" => Box::new(Sgd::new(params, SgdConfig { lr, momentum: self.momentum, weight_decay: wd, ..SgdConfig::default() })?),
            "adam" => Box::new(Adam::new(params, AdamConfig { lr, weight_decay: wd, ..AdamConfig::default() })?),
            "adamw" => Box::new(AdamW::new(params, AdamWConfig { lr, weight_decay: wd, ..AdamWConfig::default() })?),
            "rmsprop" => {
                Box::new(RmsProp::new(params, RmsPropConfig { lr, momentum: self.momentum, weight_decay: wd, ..RmsPropConfig::default() })?)
            }
            other => {
                return Err(CliError::bad(format!("--optimizer: unknown optimizer '{other}'; choose one of {}", OPTIMIZERS.join(", "))))
            }
        })
    }
}
