//! `shendu debug`: the interactive training debugger (see [`crate::debug`]).

use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::PathBuf;

use clap::Args;

use super::train_settings::TrainSettings;
use super::{CliError, CliResult};
use crate::debug::{repl, Debugger, Input, Session};

/// Flags of `shendu debug`: the network and training settings of `shendu train` that matter for
/// stepping through a run, and where the commands come from.
// The help of the shared flags whose meaning differs here is `shendu debug`'s own.
#[derive(Args, Debug, Default)]
#[command(
    mut_arg("model", |a| a.help("Model from the zoo: lenet or mlp [default: lenet]")),
    mut_arg("cfg", |a| a.help(
        "Debug the training of the network a Darknet .cfg describes (its [net] batch, learning_rate, momentum and decay \
         apply unless the flags below override them)"
    )),
    mut_arg("data", |a| a.help("Directory with the four MNIST files [default: the subset built into shendu]")),
    mut_arg("schedule", |a| a.help(
        "Learning-rate schedule, as `shendu train --schedule` (constant, cosine, step:..., ...) [default: cosine, or the cfg's policy]"
    )),
    mut_arg("epochs", |a| a.help(
        "The epochs the schedule spans, as `shendu train --epochs` (the session itself runs as many steps as asked) [default: 8]"
    )),
    mut_arg("weight_decay", |a| a.help("L2 weight decay [default: 0]")),
    mut_arg("seed", |a| a.help("Seed of weights and shuffling [default: 0]")),
)]
pub struct DebugArgs {
    #[command(flatten)]
    pub settings: TrainSettings,
    /// Read the commands from FILE, one a line, echoing each (a pipe on stdin works too);
    /// the session ends at the end of the file.
    #[arg(long, value_name = "FILE")]
    pub commands: Option<PathBuf>,
}

/// Starts the debugger as the flags say.
pub fn run(args: DebugArgs) -> CliResult<()> {
    args.settings.set_threads();
    let base = args.settings.base()?;
    // Open the commands first: a wrong path should not wait for the model to build.
    let input = match &args.commands {
        Some(path) => {
            let file = File::open(path).map_err(|e| CliError::bad(format!("--commands {}: {e}", path.display())))?;
            Input::Script(Box::new(BufReader::new(file)))
        }
        None if std::io::stdin().is_terminal() => Input::terminal()?,
        None => Input::Script(Box::new(std::io::stdin().lock())),
    };
    let session = Session::new(args.settings.apply(base))?;
    repl(&mut Debugger::new(session), input)
}
