//! `shendu train`: trains a zoo model on MNIST (the embedded subset by default).

use clap::Args;

use super::{CliError, CliResult};

/// Flags of `shendu train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Model from the zoo.
    #[arg(long, default_value = "lenet")]
    pub model: String,
}

/// Trains as the flags say.
pub fn run(args: TrainArgs) -> CliResult<()> {
    Err(CliError::internal(format!("train {} is not wired yet", args.model)))
}
