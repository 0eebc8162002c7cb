//! The training loop: data, model, optimizer, epochs with evaluation, and after each epoch the
//! metrics line, the chart and the checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use shendu_core::Tensor;
use shendu_data::{DataLoader, Dataset, Mnist, Normalize, Split, Subset, MNIST_MEAN, MNIST_STD};
use shendu_nn::loss::{cross_entropy, CrossEntropyOpts};
use shendu_nn::optim::Optimizer;
use shendu_nn::{clip, Mode, Module, ModuleExt};
use shendu_vision::zoo::ModelOptions;

use super::checkpoint::{self, Checkpoint, FORMAT};
use super::layer_stats::StatsProbe;
use super::mem_report::{self, MemMeasured, MemPlan};
use super::metrics::{EpochRecord, MetricsLog};
use super::model;
use super::numerics_report;
use super::progress::EpochProgress;
use super::{chart, TrainConfig};
use crate::cli::eval::evaluate;
use crate::cli::{CliError, CliResult};

/// Batches each data loader prepares ahead on its worker threads.
const PREFETCH: usize = 2;

/// How to run: the configuration plus where outputs go.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub config: TrainConfig,
    /// Directory for `last.safetensors`, `best.safetensors`, `metrics.jsonl`, `chart.png`.
    pub out: PathBuf,
    /// Continue from this checkpoint.
    pub resume: Option<PathBuf>,
    /// No progress bar or per-epoch lines (the summary is still returned).
    pub quiet: bool,
    /// Stop at the first NaN or infinity in forward or backward, report the op and layer and
    /// write a dump (`--check-numerics`).
    pub check_numerics: bool,
    /// Log per-layer statistics every this many steps (0: never; `--log-stats`).
    pub log_stats: usize,
    /// Predict and measure the run's memory, and print both at the end (`--mem-report`).
    pub mem_report: bool,
}

/// What a finished run reports (`--json` prints it).
#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    pub model: String,
    pub parameters: usize,
    pub epochs: usize,
    pub steps: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub best_test_accuracy: f64,
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub seconds: f64,
    pub checkpoint: PathBuf,
    pub best_checkpoint: PathBuf,
    pub metrics_log: PathBuf,
    pub chart: PathBuf,
    /// `--mem-report`'s prediction and measurements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<serde_json::Value>,
}

/// Where a resumed run picks up.
struct Start {
    epoch: usize,
    step: usize,
    best: (f64, usize),
}

/// Trains as `opts` says, printing progress to stderr unless quiet.
pub fn train(opts: &TrainOptions) -> CliResult<TrainSummary> {
    let cfg = &opts.config;
    cfg.validate()?;
    // Everything that can fail on bad input happens before the output directory is touched.
    let (train_set, test_set) = load_data(cfg)?;
    let model_opts = model_options(train_set.as_ref())?;
    let mut mem = opts.mem_report.then(MemMeasured::default);
    shendu_core::manual_seed(cfg.seed);
    let built = model::build(cfg, &model_opts)?;
    let model = built.module;
    let netspec_cfg = built.spec.as_ref().map(shendu_vision::darknet::to_cfg);
    let mut optimizer = cfg.build_optimizer(model.trainable_params())?;
    let normalize = Arc::new(Normalize { mean: vec![MNIST_MEAN], std: vec![MNIST_STD] });
    let train_loader = DataLoader::new(train_set, cfg.batch)?.shuffle(true).seed(cfg.seed).prefetch(PREFETCH).transform(normalize.clone());
    let test_loader = DataLoader::new(test_set, cfg.batch.max(256))?.prefetch(PREFETCH).transform(normalize);
    let steps_per_epoch = train_loader.len_batches();
    let mem_plan = match mem {
        Some(_) => {
            let input = [model_opts.in_channels, model_opts.input_hw.0, model_opts.input_hw.1];
            let factor = mem_report::optimizer_state_factor(&cfg.optimizer, cfg.momentum);
            Some(MemPlan::probe(model.as_ref(), &input, (cfg.batch, test_loader.batch_size()), factor, PREFETCH + 1)?)
        }
        None => None,
    };
    let schedule = cfg.schedule(cfg.epochs * steps_per_epoch)?;
    let start = match &opts.resume {
        Some(path) => restore(path, model.as_ref(), optimizer.as_mut())?,
        None => Start { epoch: 0, step: 0, best: (f64::NEG_INFINITY, 0) },
    };
    if start.epoch >= cfg.epochs {
        return Err(CliError::bad(format!(
            "--epochs: the checkpoint has already run {} epochs; ask for more than that to resume",
            start.epoch
        )));
    }

    std::fs::create_dir_all(&opts.out).map_err(|e| CliError::bad(format!("--out {}: cannot create: {e}", opts.out.display())))?;
    let paths = OutPaths::new(&opts.out);
    let (log, mut records) = MetricsLog::open(&paths.metrics, opts.resume.is_none(), start.epoch)?;
    let say = |line: String| {
        if !opts.quiet {
            eprintln!("{line}");
        }
    };
    say(format!(
        "shendu train: {} ({} parameters), {} train / {} test samples, batch {}, {} {} lr {}, {} epochs, {} thread(s)",
        cfg.model,
        model.param_count(),
        train_loader.dataset().len(),
        test_loader.dataset().len(),
        cfg.batch,
        cfg.optimizer,
        cfg.schedule,
        cfg.lr,
        cfg.epochs,
        shendu_core::num_threads()
    ));

    if opts.check_numerics {
        shendu_core::numerics::enable();
    }
    let began = Instant::now();
    let (mut step, mut best, mut stopped_early) = (start.step, start.best, false);
    for epoch in start.epoch..cfg.epochs {
        let t0 = Instant::now();
        let mut progress = EpochProgress::new(epoch, cfg.epochs, steps_per_epoch, opts.quiet);
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0.0f64, 0usize);
        let mut lr = cfg.lr;
        for (k, batch) in train_loader.epoch(epoch).enumerate() {
            let batch = batch?;
            lr = schedule.lr_at(cfg.lr, step);
            optimizer.set_lr(lr);
            let probe = match opts.log_stats > 0 && step % opts.log_stats == 0 {
                true => Some(StatsProbe::begin(model.as_ref())?),
                false => None,
            };
            if mem.is_some() {
                shendu_core::pool::reset_peaks();
            }
            let (loss, acc) = match train_step(model.as_ref(), optimizer.as_mut(), &batch.inputs, &batch.targets, cfg.clip_norm) {
                Ok(v) => v,
                Err(e) => {
                    progress.finish();
                    let at = numerics_report::At { epoch: epoch + 1, step: step + 1 };
                    return Err(match shendu_core::numerics::take_failure() {
                        Some(failure) if opts.check_numerics => numerics_report::report(&failure, model.as_ref(), &at, &opts.out),
                        _ => e,
                    });
                }
            };
            if let Some(m) = &mut mem {
                m.end_step();
            }
            if !loss.is_finite() {
                return Err(CliError::internal(format!(
                    "training diverged: loss is {loss} at epoch {} step {} (lr {lr}); try a lower --lr, or --check-numerics to find the first op and layer that made it",
                    epoch + 1,
                    step + 1
                )));
            }
            if let Some(probe) = probe {
                log.append_line(&probe.finish(model.as_ref(), epoch + 1, step + 1)?)?;
            }
            let n = batch.len();
            loss_sum += loss * n as f64;
            correct += acc * n as f64;
            seen += n;
            step += 1;
            progress.update(k + 1, seen, loss_sum / seen as f64, correct / seen as f64, opts.quiet);
        }
        progress.finish();
        let seconds = t0.elapsed().as_secs_f64();
        // The pool keeps buffers by length and evaluation runs at another batch size, so the two
        // phases share no buffers: free each phase's before the other, making the run's peak the
        // larger of the two rather than their sum. Costs one re-allocation per epoch.
        shendu_core::pool::clear();
        if mem.is_some() {
            shendu_core::pool::reset_peaks();
        }
        let eval = evaluate(model.as_ref(), &test_loader, model_opts.classes)?;
        shendu_core::pool::clear();
        if let Some(m) = &mut mem {
            m.end_eval();
        }
        let (test_loss, test_accuracy) = (eval.mean_loss(), eval.accuracy());
        let record = EpochRecord {
            epoch: epoch + 1,
            step,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct / seen.max(1) as f64,
            test_loss,
            test_accuracy,
            seconds,
            samples_per_second: seen as f64 / seconds.max(1e-9),
        };
        say(format!(
            "epoch {}/{}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% | {:.1}s, {:.0} samples/s",
            record.epoch,
            cfg.epochs,
            record.train_loss,
            100.0 * record.train_accuracy,
            record.test_loss,
            100.0 * record.test_accuracy,
            seconds,
            record.samples_per_second
        ));
        log.append(&record)?;
        records.push(record);
        chart::draw(&paths.chart, &format!("shendu train: {}", cfg.model), &records)?;
        let improved = test_accuracy > best.0;
        if improved {
            best = (test_accuracy, epoch + 1);
        }
        let mut meta = metadata(cfg, &model_opts, epoch + 1, step, test_accuracy, best)?;
        if let Some(text) = &netspec_cfg {
            meta.insert("netspec_cfg".into(), text.clone());
        }
        checkpoint::save(&paths.last, model.as_ref(), &optimizer.state(), &meta)?;
        if improved {
            checkpoint::save(&paths.best, model.as_ref(), &optimizer.state(), &meta)?;
        }
        if cfg.patience > 0 && epoch + 1 - best.1 >= cfg.patience && epoch + 1 < cfg.epochs {
            say(format!(
                "early stop: no better test accuracy for {} epochs (best {:.2}% at epoch {})",
                cfg.patience,
                100.0 * best.0,
                best.1
            ));
            stopped_early = true;
            break;
        }
    }
    let last = records.last().cloned().ok_or_else(|| CliError::internal("no epoch was run"))?;
    let memory = match (&mut mem, &mem_plan) {
        (Some(m), Some(plan)) => {
            m.finish();
            eprint!("{}{}", mem_report::render_plan(plan, &cfg.model), mem_report::render_measured(plan, m));
            Some(mem_report::to_json(plan, m))
        }
        _ => None,
    };
    say(format!(
        "saved {} (best: {}), log {}, chart {}",
        paths.last.display(),
        paths.best.display(),
        paths.metrics.display(),
        paths.chart.display()
    ));
    Ok(TrainSummary {
        model: cfg.model.clone(),
        parameters: model.param_count(),
        epochs: last.epoch,
        steps: step,
        train_loss: last.train_loss,
        train_accuracy: last.train_accuracy,
        test_loss: last.test_loss,
        test_accuracy: last.test_accuracy,
        best_test_accuracy: best.0,
        best_epoch: best.1,
        stopped_early,
        seconds: began.elapsed().as_secs_f64(),
        checkpoint: paths.last,
        best_checkpoint: paths.best,
        metrics_log: paths.metrics,
        chart: paths.chart,
        memory,
    })
}

/// One optimizer step on a batch; returns the batch's loss and accuracy.
pub fn train_step(
    model: &dyn Module,
    optimizer: &mut dyn Optimizer,
    inputs: &Tensor,
    targets: &Tensor,
    clip_norm: f64,
) -> CliResult<(f64, f64)> {
    optimizer.zero_grad();
    let logits = model.forward(inputs, Mode::Train)?;
    let loss = cross_entropy(&logits, targets, &CrossEntropyOpts::default())?;
    loss.backward()?;
    if clip_norm > 0.0 {
        clip::clip_grad_norm(&model.trainable_params(), clip_norm, 2.0)?;
    }
    optimizer.step()?;
    let acc = shendu_nn::loss::accuracy(&logits.detach(), targets)?;
    Ok((loss.to_f64()?, acc))
}

/// The training and test sets `cfg` names (the embedded subset without `--data`), the training
/// set cut to `--limit-train`.
pub(crate) fn load_data(cfg: &TrainConfig) -> CliResult<(Arc<dyn Dataset>, Arc<dyn Dataset>)> {
    let (train, test): (Arc<dyn Dataset>, Arc<dyn Dataset>) = match &cfg.data {
        Some(dir) => (Arc::new(Mnist::load(dir, Split::Train)?), Arc::new(Mnist::load(dir, Split::Test)?)),
        None => (Arc::new(Mnist::embedded(Split::Train)?), Arc::new(Mnist::embedded(Split::Test)?)),
    };
    if cfg.limit_train > 0 && cfg.limit_train < train.len() {
        let limited: Arc<dyn Dataset> = Arc::new(Subset::new(train, (0..cfg.limit_train).collect())?);
        return Ok((limited, test));
    }
    Ok((train, test))
}

/// Model options (channels, image size, classes) that fit `data`'s samples.
pub(crate) fn model_options(data: &dyn Dataset) -> CliResult<ModelOptions> {
    match data.input_shape()[..] {
        [c, h, w] => Ok(ModelOptions { in_channels: c, input_hw: (h, w), classes: data.num_classes(), ..ModelOptions::mnist() }),
        ref other => Err(CliError::bad(format!("--data: samples of shape {other:?} are not images (C x H x W)"))),
    }
}

fn metadata(
    cfg: &TrainConfig,
    m: &ModelOptions,
    epoch: usize,
    step: usize,
    test_accuracy: f64,
    best: (f64, usize),
) -> CliResult<BTreeMap<String, String>> {
    let rng = shendu_core::default_rng_state().map(|v| v.to_string()).join(",");
    let config = serde_json::to_string(cfg).map_err(|e| CliError::internal(e.to_string()))?;
    Ok(BTreeMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("model".into(), cfg.model.clone()),
        ("classes".into(), m.classes.to_string()),
        ("input".into(), format!("{}x{}x{}", m.in_channels, m.input_hw.0, m.input_hw.1)),
        ("normalize".into(), format!("{MNIST_MEAN},{MNIST_STD}")),
        ("epoch".into(), epoch.to_string()),
        ("step".into(), step.to_string()),
        ("rng_state".into(), rng),
        ("config".into(), config),
        ("test_accuracy".into(), test_accuracy.to_string()),
        ("best_test_accuracy".into(), best.0.to_string()),
        ("best_epoch".into(), best.1.to_string()),
    ]))
}

/// Loads model, optimizer and generator state from a checkpoint.
fn restore(path: &Path, model: &dyn Module, optimizer: &mut dyn Optimizer) -> CliResult<Start> {
    let ck = Checkpoint::load(path)?;
    if ck.metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(CliError::bad(format!("{}: not a shendu training checkpoint (no format={FORMAT} in its metadata)", path.display())));
    }
    shendu_nn::state::load_state_dict(model, &ck.model, true).map_err(|e| CliError::bad(format!("{}: {e}", path.display())))?;
    optimizer.load_state(&ck.optimizer).map_err(|e| CliError::bad(format!("{}: optimizer state: {e}", path.display())))?;
    let rng: Vec<u64> = ck.meta::<String>(path, "rng_state")?.split(',').filter_map(|v| v.parse().ok()).collect();
    let rng: [u64; 4] =
        rng.try_into().map_err(|_| CliError::bad(format!("{}: metadata 'rng_state' is not four numbers", path.display())))?;
    shendu_core::set_default_rng_state(rng);
    Ok(Start {
        epoch: ck.meta(path, "epoch")?,
        step: ck.meta(path, "step")?,
        best: (ck.meta(path, "best_test_accuracy")?, ck.meta(path, "best_epoch")?),
    })
}

/// The files a run writes.
struct OutPaths {
    last: PathBuf,
    best: PathBuf,
    metrics: PathBuf,
    chart: PathBuf,
}

impl OutPaths {
    fn new(dir: &Path) -> OutPaths {
        OutPaths {
            last: dir.join("last.safetensors"),
            best: dir.join("best.safetensors"),
            metrics: dir.join("metrics.jsonl"),
            chart: dir.join("chart.png"),
        }
    }
}
