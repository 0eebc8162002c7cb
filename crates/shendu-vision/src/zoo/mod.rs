//! The model zoo: each model a constructor with options, and [`build`] to pick one by name (what
//! `shendu train --model NAME` calls).

mod lenet;
mod mlp;

pub use lenet::lenet5;
pub use mlp::mlp;

use shendu_core::DType;

use crate::netspec::NetSpec;
use shendu_nn::{Error, Module, Result};

/// What every zoo constructor takes: the input it will see and the classes it predicts.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelOptions {
    /// Input channels (1 for MNIST).
    pub in_channels: usize,
    /// Input height and width.
    pub input_hw: (usize, usize),
    pub classes: usize,
    pub dtype: DType,
}

impl ModelOptions {
    /// 1x28x28 inputs, 10 classes, f32.
    pub fn mnist() -> ModelOptions {
        ModelOptions { in_channels: 1, input_hw: (28, 28), classes: 10, dtype: DType::F32 }
    }
}

/// The zoo's model names with a one-line description each.
pub const MODELS: &[(&str, &str)] = &[
    ("lenet", "LeNet-5: conv 6@5x5 (pad 2), pool, conv 16@5x5, pool, fc 120, fc 84, fc classes (ReLU)"),
    ("mlp", "MLP: flatten, fc 512, ReLU, fc 512, ReLU, fc classes"),
];

/// Builds the model called `name`; an unknown name is an error listing the known ones.
pub fn build(name: &str, opts: &ModelOptions) -> Result<Box<dyn Module>> {
    Ok(match name {
        "lenet" | "lenet5" | "lenet-5" => Box::new(lenet5(opts)?),
        "mlp" => Box::new(mlp(opts, &[512, 512])?),
        _ => {
            let known: Vec<&str> = MODELS.iter().map(|(n, _)| *n).collect();
            return Err(Error::config("--model", format!("unknown model '{name}'; known models: {}", known.join(", "))));
        }
    })
}

/// The `NetSpec` of the model called `name` (what `shendu summary --model NAME` prints and what
/// the builder turns into a network); an unknown name is an error listing the known ones.
pub fn spec(name: &str, opts: &ModelOptions) -> Result<NetSpec> {
    let _ = opts;
    let known: Vec<&str> = MODELS.iter().map(|(n, _)| *n).collect();
    Err(Error::config("--model", format!("no NetSpec for model '{name}' yet; known models: {}", known.join(", "))))
}
