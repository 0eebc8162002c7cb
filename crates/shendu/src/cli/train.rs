//! `shendu train`: trains a zoo model on MNIST (the embedded subset by default).

use std::path::PathBuf;

use clap::Args;

use super::{CliError, CliResult};
use crate::train::{self, checkpoint::Checkpoint, TrainConfig, TrainOptions};

/// Flags of `shendu train`. Unset flags take the defaults below, or, with `--resume`, the values
/// the checkpoint was trained with.
#[derive(Args, Debug, Default)]
pub struct TrainArgs {
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
    /// Stop when the test accuracy has not improved for N epochs (0 = never) [default: 0].
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,
    /// Train on the first N training samples only (0 = all) [default: 0].
    #[arg(long, value_name = "N")]
    pub limit_train: Option<usize>,
    /// Seed of weights, shuffling and dropout [default: 0].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Worker threads for the kernels [default: SHENDU_NUM_THREADS, else all cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
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
    /// at the batch) from a probe forward pass, measure the buffer pool's peak per step and the
    /// peak resident set, and print both at the end (with --json: a "memory" object).
    #[arg(long)]
    pub mem_report: bool,
}

impl TrainArgs {
    /// The run's configuration: flags over `base` (the defaults, or the resumed checkpoint's).
    pub fn config(&self, base: TrainConfig) -> TrainConfig {
        let mut c = base;
        macro_rules! over {
            ($($f:ident),*) => { $(if let Some(v) = &self.$f { c.$f = v.clone(); })* };
        }
        over!(model, epochs, batch, lr, optimizer, momentum, weight_decay, schedule, clip_norm, patience, limit_train, seed);
        if self.data.is_some() {
            c.data = self.data.clone();
        }
        c
    }
}

/// The defaults of a run of the Darknet cfg at `path`: its `[net]` training options, the model
/// named after the file.
pub(crate) fn cfg_base(path: &std::path::Path) -> CliResult<TrainConfig> {
    let spec = crate::train::model::read_spec(path)?;
    let mut base = TrainConfig::default();
    crate::train::model::apply_net_options(&mut base, &spec);
    base.cfg = Some(path.display().to_string());
    base.model = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "cfg".into());
    Ok(base)
}

/// Trains as the flags say.
pub fn run(args: TrainArgs) -> CliResult<()> {
    if let Some(t) = args.threads {
        shendu_core::set_num_threads(t as usize);
    }
    let base = match &args.resume {
        Some(path) => {
            let ck = Checkpoint::load(path)?;
            let raw: String = ck.meta(path, "config")?;
            serde_json::from_str(&raw)
                .map_err(|e| CliError::bad(format!("{}: metadata 'config' is not a training configuration: {e}", path.display())))?
        }
        None => match &args.cfg {
            Some(path) => cfg_base(path)?,
            None => TrainConfig::default(),
        },
    };
    if args.resume.is_some() && args.cfg.is_some() {
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
