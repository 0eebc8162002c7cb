//! `shendu train`: trains a zoo model on MNIST (the embedded subset by default).

use std::path::PathBuf;

use clap::Args;

use super::train_settings::TrainSettings;
use super::{CliError, CliResult};
use crate::train::{self, checkpoint::Checkpoint, TrainConfig, TrainOptions};

/// Flags of `shendu train`. Unset flags take the defaults below, or, with `--resume`, the values
/// the checkpoint was trained with.
#[derive(Args, Debug, Default)]
pub struct TrainArgs {
    #[command(flatten)]
    pub settings: TrainSettings,
    /// Stop when the test accuracy has not improved for N epochs (0 = never) [default: 0].
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,
    /// Output directory for last.safetensors, best.safetensors, metrics.jsonl and chart.png
    /// [default: runs/MODEL, or the checkpoint's directory with --resume].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run saved in this checkpoint (bit-identical to an uninterrupted run).
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// No progress bar or epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// End by printing one JSON object with the final figures on stdout.
    #[arg(long)]
    pub json: bool,
    /// Stop at the first NaN or infinity in forward or backward: name the op, the layer path and
    /// the step, print its inputs' statistics and save them with the layer's parameters to
    /// OUT/numerics-dump.safetensors (read it with `shendu weights inspect`). Slower.
    #[arg(long)]
    pub check_numerics: bool,
    /// Every N steps, log per-layer activation and gradient statistics and the update/weight
    /// ratio into metrics.jsonl ("kind": "stats" lines); draw them with `shendu plot stats`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub log_stats: usize,
    /// Predict the run's memory per layer (parameters, gradients, optimizer state, activations
    /// at the batch) from one probe training step on zeros, measure the buffer pool's peak per
    /// step and the peak resident set, and print both at the end (--json: a "memory" object).
    #[arg(long)]
    pub mem_report: bool,
}

impl TrainArgs {
    /// The run's configuration: flags over `base` (the defaults, or the resumed checkpoint's).
    pub fn config(&self, base: TrainConfig) -> TrainConfig {
        let mut c = self.settings.apply(base);
        if let Some(p) = self.patience {
            c.patience = p;
        }
        c
    }
}

/// Trains as the flags say.
pub fn run(args: TrainArgs) -> CliResult<()> {
    args.settings.set_threads();
    let base = match &args.resume {
        Some(path) => {
            let ck = Checkpoint::load(path)?;
            let raw: String = ck.meta(path, "config")?;
            serde_json::from_str(&raw)
                .map_err(|e| CliError::bad(format!("{}: metadata 'config' is not a training configuration: {e}", path.display())))?
        }
        None => args.settings.base()?,
    };
    if args.resume.is_some() && args.settings.cfg.is_some() {
        return Err(CliError::bad("--cfg: a resumed run rebuilds the network its checkpoint was trained with; drop --cfg"));
    }
    let config = args.config(base);
    let out = match (&args.out, &args.resume) {
        (Some(dir), _) => dir.clone(),
        (None, Some(path)) => path.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")),
        (None, None) => PathBuf::from("runs").join(&config.model),
    };
    let summary = train::train(&TrainOptions {
        config,
        out,
        resume: args.resume.clone(),
        quiet: args.quiet,
        check_numerics: args.check_numerics,
        log_stats: args.log_stats,
        mem_report: args.mem_report,
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&summary).map_err(|e| CliError::internal(e.to_string()))?);
    } else {
        println!(
            "{}: test accuracy {:.2}% (best {:.2}% at epoch {}), {} epochs in {:.1}s",
            summary.model,
            100.0 * summary.test_accuracy,
            100.0 * summary.best_test_accuracy,
            summary.best_epoch,
            summary.epochs,
            summary.seconds
        );
    }
    Ok(())
}
