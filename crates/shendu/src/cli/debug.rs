//! `shendu debug`: the interactive training debugger (see [`crate::debug`]).

use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::PathBuf;

use clap::Args;

use super::{CliError, CliResult};
use crate::debug::{repl, Debugger, Input, Session};
use crate::train::TrainConfig;

/// Flags of `shendu debug`: the network and training settings of `shendu train` that matter for
/// stepping through a run, and where the commands come from.
#[derive(Args, Debug, Default)]
pub struct DebugArgs {
    /// Model from the zoo: lenet or mlp [default: lenet].
    #[arg(long, value_name = "NAME", conflicts_with = "cfg")]
    pub model: Option<String>,
    /// Debug the training of the network a Darknet .cfg describes (its [net] batch,
    /// learning_rate, momentum and decay apply unless the flags below override them).
    #[arg(long, value_name = "FILE")]
    pub cfg: Option<PathBuf>,
    /// Directory with the four MNIST files [default: the subset built into shendu].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Samples per batch [default: 64].
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Base learning rate [default: 0.05].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Learning-rate schedule, as `shendu train --schedule` (constant, cosine, step:..., ...)
    /// [default: cosine, or the cfg's policy].
    #[arg(long, value_name = "SPEC")]
    pub schedule: Option<String>,
    /// The epochs the schedule spans, as `shendu train --epochs` (the session itself runs as
    /// many steps as asked) [default: 8].
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// sgd, adam, adamw or rmsprop [default: sgd].
    #[arg(long, value_name = "NAME")]
    pub optimizer: Option<String>,
    /// Momentum of SGD and RMSProp [default: 0.9].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// L2 weight decay [default: 0].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Clip the global gradient norm to X (0 = off) [default: 0].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub clip_norm: Option<f64>,
    /// Train on the first N training samples only (0 = all) [default: 0].
    #[arg(long, value_name = "N")]
    pub limit_train: Option<usize>,
    /// Seed of weights and shuffling [default: 0].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Worker threads for the kernels [default: SHENDU_NUM_THREADS, else all cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Read the commands from FILE, one a line, echoing each (a pipe on stdin works too);
    /// the session ends at the end of the file.
    #[arg(long, value_name = "FILE")]
    pub commands: Option<PathBuf>,
}

impl DebugArgs {
    /// The run's configuration: flags over `base`, as `shendu train` would take them.
    pub fn config(&self, base: TrainConfig) -> TrainConfig {
        let mut c = base;
        macro_rules! over {
            ($($f:ident),*) => { $(if let Some(v) = &self.$f { c.$f = v.clone(); })* };
        }
        over!(model, epochs, batch, lr, schedule, optimizer, momentum, weight_decay, clip_norm, limit_train, seed);
        if self.data.is_some() {
            c.data = self.data.clone();
        }
        c
    }
}

/// Starts the debugger as the flags say.
pub fn run(args: DebugArgs) -> CliResult<()> {
    if let Some(t) = args.threads {
        shendu_core::set_num_threads(t as usize);
    }
    let base = match &args.cfg {
        Some(path) => super::train::cfg_base(path)?,
        None => TrainConfig::default(),
    };
    // Open the commands first: a wrong path should not wait for the model to build.
    let input = match &args.commands {
        Some(path) => {
            let file = File::open(path).map_err(|e| CliError::bad(format!("--commands {}: {e}", path.display())))?;
            Input::Script(Box::new(BufReader::new(file)))
        }
        None if std::io::stdin().is_terminal() => Input::terminal()?,
        None => Input::Script(Box::new(std::io::stdin().lock())),
    };
    let session = Session::new(args.config(base))?;
    repl(&mut Debugger::new(session), input)
}
