//! `shendu train --mem-report` and `shendu summary --memory`: where a training run's memory goes.
//!
//! The prediction comes from one probe forward pass at the training batch (zeros in, every
//! side effect undone): each layer's *kept* bytes are the tensor storage still live when it
//! returns, i.e. its output plus whatever its ops saved for backward (the bytes torchinfo calls
//! "forward pass size"). Parameters, gradients and optimizer state follow from the parameter
//! list and the optimizer. How these add up to a peak is the buffer pool's arithmetic, written
//! out in [`MemPlan::predicted_peak`]. The run then measures the pool's peak per step and the
//! process's peak resident set (`VmHWM`), so the prediction is checked on every run.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::Serialize;
use shendu_core::{pool, DType, Tensor};
use shendu_nn::loss::{cross_entropy, CrossEntropyOpts};
use shendu_nn::{tap, Mode, Module, ModuleExt, ParamKind};

use crate::cli::CliResult;

/// One layer's share of a training step's memory, in bytes.
#[derive(Clone, Debug, Serialize)]
pub struct LayerMem {
    /// Dotted path (`features.3`), the prefix of its parameters' names.
    pub path: String,
    /// Layer type (`Conv2d`, `convolutional`, ...).
    pub kind: String,
    /// Output shape at the training batch.
    pub output: Vec<usize>,
    pub params: usize,
    pub grads: usize,
    pub optimizer: usize,
    /// Storage live when the layer returns that it allocated: its output and what its ops keep
    /// for backward.
    pub kept: usize,
}

/// The predicted memory of a training run.
#[derive(Clone, Debug, Serialize)]
pub struct MemPlan {
    pub batch: usize,
    pub eval_batch: usize,
    pub layers: Vec<LayerMem>,
    /// Parameter and buffer bytes.
    pub params: usize,
    /// Gradient bytes (one per trainable parameter).
    pub grads: usize,
    /// Optimizer state bytes (momentum, Adam's moments).
    pub optimizer: usize,
    /// Sum of the layers' kept bytes at the training batch: what the forward pass leaves live
    /// for backward.
    pub activations: usize,
    /// Peak bytes the pool holds (live or kept for reuse) during the probe's training step
    /// beyond the parameters: the activations, then backward's gradient buffers and scratch.
    pub step_held: usize,
    /// The same for one evaluation batch at `eval_batch` (no autograd: each layer's input is
    /// freed once the next layer has its output).
    pub eval_held: usize,
    /// Batches the training loader has in flight (prefetched and in use), in bytes.
    pub train_loader: usize,
    /// The same for the test loader.
    pub eval_loader: usize,
}

/// Bytes of optimizer state per byte of trainable parameters.
pub fn optimizer_state_factor(optimizer: &str, momentum: f64) -> usize {
    match optimizer {
        "adam" | "adamw" => 2,
        "rmsprop" => 1 + usize::from(momentum > 0.0),
        _ => usize::from(momentum > 0.0),
    }
}

impl MemPlan {
    /// Probes `model` on zeros of shape `[batch, input...]`: one training step's forward (each
    /// layer's kept bytes measured as it returns) and backward, and one evaluation forward at
    /// `eval_batch`, each from an empty pool. Gradients are left zero, running statistics and
    /// the random generator as they were, so the run that follows is the one it would have been.
    /// `loader_batches` is how many batches each data loader holds at once.
    pub fn probe(
        model: &dyn Module,
        input: &[usize],
        (batch, eval_batch): (usize, usize),
        optimizer_factor: usize,
        loader_batches: usize,
    ) -> CliResult<MemPlan> {
        let buffers: Vec<(shendu_nn::Param, Tensor)> = model
            .named_params()
            .into_iter()
            .filter(|(_, p)| p.kind() == ParamKind::Buffer)
            .map(|(_, p)| p.value().copy().map(|v| (p, v)))
            .collect::<shendu_core::Result<_>>()?;
        let rng = shendu_core::default_rng_state();
        let step = probe_step(model, input, batch);
        model.zero_grad();
        let eval_held = probe_eval(model, input, eval_batch);
        for (p, v) in &buffers {
            p.set(v)?;
        }
        shendu_core::set_default_rng_state(rng);
        // The probe's buffers (the evaluation's size above all) are not the run's.
        pool::clear();
        let (mut layers, step_held) = step?;
        let eval_held = eval_held?;

        let (mut params, mut grads) = (0, 0);
        for (name, p) in &model.named_params() {
            let bytes = p.shape().elem_count() * p.dtype().size_in_bytes();
            let trainable = p.is_trainable();
            params += bytes;
            grads += if trainable { bytes } else { 0 };
            // A parameter belongs to the layer whose path prefixes its name (the longest such).
            let prefix = |l: &&mut LayerMem| name.starts_with(&format!("{}.", l.path));
            if let Some(l) = layers.iter_mut().filter(prefix).max_by_key(|l| l.path.len()) {
                l.params += bytes;
                if trainable {
                    l.grads += bytes;
                    l.optimizer += bytes * optimizer_factor;
                }
            }
        }
        let activations = layers.iter().map(|l| l.kept).sum();
        // f32 inputs and i64 labels.
        let sample = input.iter().product::<usize>() * 4 + 8;
        Ok(MemPlan {
            batch,
            eval_batch,
            layers,
            params,
            grads,
            optimizer: grads * optimizer_factor,
            activations,
            step_held,
            eval_held,
            train_loader: loader_batches * batch * sample,
            eval_loader: loader_batches * eval_batch * sample,
        })
    }

    /// The predicted peak of tensor memory: parameters, gradients and optimizer state, plus the
    /// larger of a training step's and an evaluation's pool (the trainer empties the pool
    /// between the two phases, whose buffer sizes differ).
    pub fn predicted_peak(&self) -> usize {
        self.params + self.grads + self.optimizer + (self.step_held + self.train_loader).max(self.eval_held + self.eval_loader)
    }
}

/// Runs `phase` from an empty pool with fresh peaks, passing it the bytes live at its start:
/// its result and the pool's peak held bytes (live plus pooled) above those.
fn measure_phase<R>(phase: impl FnOnce(usize) -> CliResult<R>) -> CliResult<(R, usize)> {
    pool::clear();
    pool::reset_peaks();
    let before = pool::stats().live_bytes;
    let r = phase(before)?;
    Ok((r, pool::stats().peak_held_bytes.saturating_sub(before)))
}

/// One training step on zeros: the layer rows with their kept bytes, and the step's pool peak
/// above what was live before it.
fn probe_step(model: &dyn Module, input: &[usize], batch: usize) -> CliResult<(Vec<LayerMem>, usize)> {
    let x = zeros_batch(input, batch)?;
    let labels = Tensor::zeros(batch, DType::I64)?;
    measure_phase(|before| {
        let rows = Rc::new(RefCell::new(Vec::<LayerMem>::new()));
        let last_live = Rc::new(Cell::new(before));
        let (rows_in, last_in) = (rows.clone(), last_live.clone());
        let tap = tap::open();
        tap::set_hook(Some(Box::new(move |rec: &tap::Recorded| {
            let live = pool::stats().live_bytes;
            rows_in.borrow_mut().push(LayerMem {
                path: rec.path.clone(),
                kind: rec.type_name.to_string(),
                output: rec.output.dims().to_vec(),
                params: 0,
                grads: 0,
                optimizer: 0,
                kept: live.saturating_sub(last_in.get()),
            });
            last_in.set(live);
        })));
        let logits = model.forward(&x, Mode::Train);
        tap::set_hook(None);
        // The tap's copies of the outputs would outlive the graph: let them go before backward.
        drop(tap::take());
        drop(tap);
        let loss = cross_entropy(&logits?, &labels, &CrossEntropyOpts::default())?;
        loss.backward()?;
        drop(loss);
        let rows = rows.borrow().clone();
        Ok(rows)
    })
}

/// One evaluation batch on zeros (forward and loss, no autograd): its pool peak.
fn probe_eval(model: &dyn Module, input: &[usize], eval_batch: usize) -> CliResult<usize> {
    let _no_grad = shendu_core::no_grad();
    let x = zeros_batch(input, eval_batch)?;
    let labels = Tensor::zeros(eval_batch, DType::I64)?;
    let ((), held) = measure_phase(|_| {
        let logits = model.forward(&x, Mode::Eval)?;
        let loss = cross_entropy(&logits, &labels, &CrossEntropyOpts::default())?;
        drop((logits, loss));
        Ok(())
    })?;
    Ok(held)
}

fn zeros_batch(input: &[usize], batch: usize) -> CliResult<Tensor> {
    let mut dims = vec![batch];
    dims.extend_from_slice(input);
    Ok(Tensor::zeros(dims.as_slice(), DType::F32)?)
}

/// The process's resident set now and at its highest, in bytes (Linux `/proc/self/status`;
/// `None` elsewhere).
pub fn rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// What a run measured, next to its [`MemPlan`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct MemMeasured {
    /// Highest tensor storage in use during a training step.
    pub step_peak_live: usize,
    /// Highest tensor storage in use or kept by the pool during a training step.
    pub step_peak_held: usize,
    /// The same during evaluation.
    pub eval_peak_held: usize,
    /// sgemm's per-thread packing buffers at the end of the run (outside the pool).
    pub kernel_scratch: usize,
    /// Highest resident set of the run (`VmHWM`; 0 where the system does not say).
    pub peak_rss: u64,
    /// Resident set at the end with the pool emptied, less the tensors still live (the
    /// parameters): program code, threads, the dataset, the allocator's own. The fixed
    /// runtime overhead the prediction leaves out.
    pub fixed_overhead: u64,
}

impl MemMeasured {
    /// Call after a training step, begun with `pool::reset_peaks()`.
    pub fn end_step(&mut self) {
        let s = pool::stats();
        self.step_peak_live = self.step_peak_live.max(s.peak_live_bytes);
        self.step_peak_held = self.step_peak_held.max(s.peak_held_bytes);
    }

    /// Call after an evaluation, begun with `pool::reset_peaks()`.
    pub fn end_eval(&mut self) {
        self.eval_peak_held = self.eval_peak_held.max(pool::stats().peak_held_bytes);
    }

    /// Call at the end of the run, after the pool has been emptied.
    pub fn finish(&mut self) {
        pool::clear();
        let s = pool::stats();
        self.kernel_scratch = s.scratch_bytes;
        if let Some((now, peak)) = rss() {
            self.peak_rss = peak;
            self.fixed_overhead = now.saturating_sub(s.live_bytes as u64);
        }
    }

    /// The peak resident set less the fixed overhead: what the prediction should match.
    pub fn model_peak(&self) -> u64 {
        self.peak_rss.saturating_sub(self.fixed_overhead)
    }
}

/// Bytes as `12.3 MiB`, `45.6 KiB` or `789 B`.
pub fn human(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    match u {
        0 => format!("{v:.0} B"),
        _ => format!("{v:.1} {}", UNITS[u]),
    }
}

/// The per-layer table and the prediction's arithmetic.
pub fn render_plan(plan: &MemPlan, title: &str) -> String {
    let h = |b: usize| human(b as f64);
    let mut out = format!("memory: {title}, batch {} (evaluation batch {})\n", plan.batch, plan.eval_batch);
    out += &format!(
        "{:<24} {:<16} {:<20} {:>10} {:>10} {:>10} {:>12}\n",
        "layer", "type", "output", "params", "grads", "optimizer", "activations"
    );
    for l in &plan.layers {
        out += &format!(
            "{:<24} {:<16} {:<20} {:>10} {:>10} {:>10} {:>12}\n",
            l.path,
            l.kind,
            format!("{:?}", l.output),
            h(l.params),
            h(l.grads),
            h(l.optimizer),
            h(l.kept)
        );
    }
    out += &format!("{:<62} {:>10} {:>10} {:>10} {:>12}\n", "total", h(plan.params), h(plan.grads), h(plan.optimizer), h(plan.activations));
    out += &format!(
        "predicted peak: parameters {} + gradients {} + optimizer {} + max(training step {} + loader {}, evaluation {} + loader {}) = {}\n",
        h(plan.params),
        h(plan.grads),
        h(plan.optimizer),
        h(plan.step_held),
        h(plan.train_loader),
        h(plan.eval_held),
        h(plan.eval_loader),
        h(plan.predicted_peak())
    );
    out += "  (activations: what each layer leaves live for backward; a step adds backward's gradient buffers to them)\n";
    out
}

/// The measured side and how far the prediction was from it.
pub fn render_measured(plan: &MemPlan, m: &MemMeasured) -> String {
    let h = |b: f64| human(b);
    let mut out = format!(
        "measured: pool peak per training step {} ({} in use), per evaluation {}; sgemm scratch {}\n",
        h(m.step_peak_held as f64),
        h(m.step_peak_live as f64),
        h(m.eval_peak_held as f64),
        h(m.kernel_scratch as f64)
    );
    if m.peak_rss == 0 {
        out += "peak resident set: not available on this system\n";
        return out;
    }
    let predicted = plan.predicted_peak() as f64;
    let actual = m.model_peak() as f64;
    out += &format!(
        "peak resident set {} - fixed runtime overhead {} (resident with no tensors: program, threads, dataset) = {}; predicted {} ({:+.1}%)\n",
        h(m.peak_rss as f64),
        h(m.fixed_overhead as f64),
        h(actual),
        h(predicted),
        100.0 * (predicted - actual) / actual.max(1.0)
    );
    out
}

/// The `"memory"` object of `train --json`.
pub fn to_json(plan: &MemPlan, m: &MemMeasured) -> serde_json::Value {
    serde_json::json!({
        "predicted_peak_bytes": plan.predicted_peak(),
        "params_bytes": plan.params,
        "grads_bytes": plan.grads,
        "optimizer_bytes": plan.optimizer,
        "activation_bytes": plan.activations,
        "step_bytes": plan.step_held,
        "eval_bytes": plan.eval_held,
        "measured": m,
        "model_peak_rss_bytes": m.model_peak(),
        "layers": plan.layers,
    })
}
