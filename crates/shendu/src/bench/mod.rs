//! `shendu bench`: the workloads of BENCH.md (P0, W1 to W5), timed as the peers time theirs.
//!
//! Results are [`Figure`]s named exactly as BENCH.md names them, so `peers.d/shendu.sh` can put
//! them in the peers' table. GFLOP/s figures also carry their share of the FMA peak measured
//! with the same thread count in the same run.

pub mod conv;
pub mod fma;
pub mod graph_step;
pub mod timing;
pub mod train_step;

use serde::Serialize;
use shendu_core::{DType, Result, Tensor};

/// The sgemm sizes of W1.
pub const SGEMM_SIZES: [usize; 3] = [256, 1024, 2048];

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Thread counts, run one after the other (each applied with `set_num_threads`).
    pub threads: Vec<usize>,
    /// Timed repetitions per figure (the median is reported).
    pub reps: usize,
    /// Workload-name prefixes to run (`W1`, `W2 conv fwd`, `P0`); empty = all.
    pub only: Vec<String>,
    /// After each graph-mode figure, time its steps one by one and print where the time goes.
    pub profile: bool,
}

impl Options {
    /// The [`default_threads`], 7 repetitions, every workload.
    pub fn default_for_machine() -> Options {
        Options { threads: default_threads(), reps: timing::DEFAULT_REPS, only: Vec::new(), profile: false }
    }

    /// Whether the workload named `name` is selected.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| name.starts_with(p.trim()))
    }
}

/// `SHENDU_NUM_THREADS` if set, else `[1, cores]` (`[1]` on a single core; cores as the
/// process's affinity allows).
pub fn default_threads() -> Vec<usize> {
    if let Some(n) = std::env::var("SHENDU_NUM_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n > 0) {
        return vec![n];
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cores > 1 {
        vec![1, cores]
    } else {
        vec![1]
    }
}

/// One reported number.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// BENCH.md's name, e.g. `W2 conv fwd`.
    pub workload: String,
    pub threads: usize,
    pub value: f64,
    /// `GFLOP/s`, `ms` or `samples/s`.
    pub unit: &'static str,
    /// Percent of the FMA peak of this thread count, for figures with a flop rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pct_of_peak: Option<f64>,
    /// Secondary figures in words (time per call, flop rate of a ms figure, ...).
    pub extra: String,
}

/// What [`run`] measured, and what failed.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub figures: Vec<Figure>,
    /// One line per workload that returned an error (the others still ran).
    pub failures: Vec<String>,
}

/// Runs the selected workloads for each thread count, calling `report` as each figure is
/// measured and `note` for workloads that failed (a failure does not stop the others).
pub fn run(opts: &Options, mut report: impl FnMut(&Figure), mut note: impl FnMut(&str)) -> Outcome {
    let mut out = Outcome::default();
    let wants_conv = ["W2 conv fwd", "W2 conv fwd+bwd", "W3 dwconv fwd"].iter().any(|w| opts.wants(w));
    let wants_sgemm = SGEMM_SIZES.iter().any(|n| opts.wants(&format!("W1 sgemm n={n}")));
    let needs_peak = opts.wants("P0 FMA peak") || wants_sgemm || wants_conv;
    for &t in &opts.threads {
        let t = t.max(1);
        let mut record = |name: &str, r: Result<Figure>| match r {
            Ok(f) => {
                report(&f);
                out.figures.push(f);
            }
            Err(e) => {
                let msg = format!("{name} (threads {t}) failed: {e}");
                note(&msg);
                out.failures.push(msg);
            }
        };
        shendu_core::set_num_threads(t);
        let peak = if needs_peak { Some(fma::measure(t, opts.reps)) } else { None };
        let peak_gflops = peak.map(|p| p.gflops);
        if let (Some(p), true) = (peak, opts.wants("P0 FMA peak")) {
            let extra = format!(
                "{:.1} GFLOP/s/core; {}, median of {}{}",
                p.gflops / t as f64,
                p.kernel.describe(),
                opts.reps,
                if p.pinned { ", pinned" } else { "" }
            );
            record("P0 FMA peak", Ok(Figure { pct_of_peak: None, ..rate_figure("P0 FMA peak".into(), t, p.gflops, None, extra) }));
        }
        for n in SGEMM_SIZES {
            let name = format!("W1 sgemm n={n}");
            if opts.wants(&name) {
                record(&name, sgemm(opts.reps, n, t, peak_gflops));
            }
        }
        conv_workloads(opts, t, peak_gflops, &mut record);
        train_workloads(opts, t, &mut record);
    }
    out
}

/// Builds a training-step workload.
type StepBuilder = Box<dyn Fn() -> Result<train_step::TrainStep>>;

/// Builds a graph-mode training step.
type GraphBuilder = fn() -> Result<graph_step::GraphStep>;

/// W4 and W5: samples per second of one whole training step.
fn train_workloads(opts: &Options, t: usize, record: &mut impl FnMut(&str, Result<Figure>)) {
    let zoo = |name: &'static str, batch: usize| -> StepBuilder { Box::new(move || train_step::TrainStep::zoo(name, batch)) };
    let workloads: [(&str, StepBuilder); 5] = [
        ("W4 MLP train", Box::new(train_step::TrainStep::mlp)),
        ("W5 LeNet train", Box::new(train_step::TrainStep::lenet)),
        ("Z1 ResNet-20 train", zoo("resnet20", 32)),
        ("Z2 MobileNetV2-28 train", zoo("mobilenet_v2_mnist", 64)),
        ("Z3 ShuffleNetV2-28 train", zoo("shufflenet_v2_mnist", 64)),
    ];
    for (name, build) in workloads {
        if !opts.wants(name) {
            continue;
        }
        let run = || -> Result<Figure> {
            let mut s = build()?;
            let l0 = s.step()?;
            let secs = timing::bench(opts.reps, || s.step().map(drop))?;
            let l1 = s.step()?;
            let extra = format!("{:.1} steps/s; loss {l0:.3}->{l1:.3}", 1.0 / secs);
            Ok(Figure { workload: name.into(), threads: t, value: s.batch as f64 / secs, unit: "samples/s", pct_of_peak: None, extra })
        };
        record(name, run());
    }
    let graphs: [(&str, GraphBuilder); 2] =
        [("W4 MLP train (graph)", graph_step::GraphStep::mlp), ("W5 LeNet train (graph)", graph_step::GraphStep::lenet)];
    for (name, build) in graphs {
        if !opts.wants(name) {
            continue;
        }
        let run = || -> Result<Figure> {
            let mut s = build()?;
            let l0 = s.step()?;
            let secs = timing::bench(opts.reps, || s.step().map(drop))?;
            let l1 = s.step()?;
            if opts.profile {
                eprintln!("{name}, {t} thread(s), steps timed one by one:\n{}", s.profile(opts.reps)?);
            }
            let extra = format!("{:.1} steps/s; loss {l0:.3}->{l1:.3}; compiled Session", 1.0 / secs);
            Ok(Figure { workload: name.into(), threads: t, value: s.batch as f64 / secs, unit: "samples/s", pct_of_peak: None, extra })
        };
        record(name, run());
    }
}

fn sgemm(reps: usize, n: usize, t: usize, peak: Option<f64>) -> Result<Figure> {
    let (a, b) = sgemm_inputs(n)?;
    let s = timing::bench(reps, || a.matmul(&b).map(drop))?;
    let gflops = 2.0 * (n as f64).powi(3) / s / 1e9;
    Ok(rate_figure(format!("W1 sgemm n={n}"), t, gflops, peak, format!("{:.3} ms", s * 1e3)))
}

fn rate_figure(workload: String, threads: usize, gflops: f64, peak: Option<f64>, extra: String) -> Figure {
    Figure { workload, threads, value: gflops, unit: "GFLOP/s", pct_of_peak: peak.map(|p| 100.0 * gflops / p), extra }
}

/// A time figure whose extra states the flop rate (and its share of the peak).
fn ms_figure(workload: &str, threads: usize, secs: f64, flop: f64, peak: Option<f64>, note: &str) -> Figure {
    let gflops = flop / secs / 1e9;
    let pct = peak.map(|p| 100.0 * gflops / p);
    Figure {
        workload: workload.into(),
        threads,
        value: secs * 1e3,
        unit: "ms",
        pct_of_peak: pct,
        extra: format!("{gflops:.1} GFLOP/s{note}"),
    }
}

/// W1's operands: two `n x n` standard-normal f32 matrices from seed 0.
pub fn sgemm_inputs(n: usize) -> Result<(Tensor, Tensor)> {
    shendu_core::manual_seed(0);
    Ok((Tensor::randn([n, n], DType::F32)?, Tensor::randn([n, n], DType::F32)?))
}

fn conv_workloads(opts: &Options, t: usize, peak: Option<f64>, record: &mut impl FnMut(&str, Result<Figure>)) {
    use conv::{CONV_FWD_FLOP, DW_FWD_FLOP};
    let reps = opts.reps;
    if opts.wants("W2 conv fwd") {
        let fwd = || -> Result<Figure> {
            let (x, w) = conv::conv_inputs()?;
            let s = timing::bench(reps, || conv::forward(&x, &w, 1).map(drop))?;
            Ok(ms_figure("W2 conv fwd", t, s, CONV_FWD_FLOP, peak, ""))
        };
        record("W2 conv fwd", fwd());
    }
    if opts.wants("W2 conv fwd+bwd") {
        let fwd_bwd = || -> Result<Figure> {
            let (x, w) = conv::conv_inputs()?;
            let (xv, wv) = (shendu_core::Var::new(x), shendu_core::Var::new(w));
            let gy = Tensor::randn(conv::CONV_SHAPE.0, DType::F32)?;
            let s = timing::bench(reps, || conv::forward_backward(&xv, &wv, &gy).map(drop))?;
            Ok(ms_figure("W2 conv fwd+bwd", t, s, 3.0 * CONV_FWD_FLOP, peak, " (3x fwd flops)"))
        };
        record("W2 conv fwd+bwd", fwd_bwd());
    }
    if opts.wants("W3 dwconv fwd") {
        let dw = || -> Result<Figure> {
            let (x, w) = conv::dwconv_inputs()?;
            let groups = conv::DWCONV_SHAPE.0[1];
            let s = timing::bench(reps, || conv::forward(&x, &w, groups).map(drop))?;
            Ok(ms_figure("W3 dwconv fwd", t, s, DW_FWD_FLOP, peak, ""))
        };
        record("W3 dwconv fwd", dw());
    }
}

/// Width of the table's workload column: the longest name, "Z3 ShuffleNetV2-28 train" (rows
/// print as they are measured, so the width cannot come from the figures).
const NAME_WIDTH: usize = 24;

/// The header of [`table_row`]'s table.
pub fn table_header() -> String {
    format!("{:<NAME_WIDTH$} {:>7} {:>10} {:<8} {:>6}  {}", "workload", "threads", "value", "unit", "%peak", "detail")
}

/// One figure as a row of the human-readable table.
pub fn table_row(f: &Figure) -> String {
    let pct = f.pct_of_peak.map(|p| format!("{p:.0}%")).unwrap_or_default();
    format!("{:<NAME_WIDTH$} {:>7} {:>10} {:<8} {:>6}  {}", f.workload, f.threads, format_value(f.value), f.unit, pct, f.extra)
}

/// Three significant digits below 100, whole numbers above (as the peers' report).
fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// All figures as one JSON array.
pub fn to_json(figures: &[Figure]) -> String {
    serde_json::to_string_pretty(figures).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row's columns line up with the header's, the longest workload names included.
    #[test]
    fn table_columns_line_up() {
        let threads_end = table_header().find("threads").unwrap() + "threads".len();
        for name in ["W1 sgemm n=256", "W4 MLP train (graph)", "Z2 MobileNetV2-28 train", "Z3 ShuffleNetV2-28 train"] {
            let f = Figure { workload: name.into(), threads: 2, value: 1.0, unit: "ms", pct_of_peak: None, extra: String::new() };
            let row = table_row(&f);
            assert_eq!(row[..threads_end].trim_end().len(), threads_end, "{row:?}");
            assert_eq!(&row[threads_end - 1..threads_end], "2", "{row:?}");
        }
    }

    #[test]
    fn selection_by_prefix() {
        let mut o = Options::default_for_machine();
        assert!(o.wants("W2 conv fwd+bwd"));
        o.only = vec!["W1".into(), " W3".into()];
        assert!(o.wants("W1 sgemm n=256") && o.wants("W3 dwconv fwd"));
        assert!(!o.wants("W2 conv fwd") && !o.wants("P0 FMA peak"));
    }

    #[test]
    fn runs_w1_256_and_formats() {
        let opts = Options { threads: vec![1], reps: 1, only: vec!["W1 sgemm n=256".into()], profile: false };
        let mut seen = 0;
        let out = run(&opts, |_| seen += 1, |_| {});
        assert!(out.failures.is_empty());
        let figs = out.figures;
        assert_eq!(seen, 1);
        assert_eq!(figs.len(), 1);
        let f = &figs[0];
        assert_eq!((f.workload.as_str(), f.threads, f.unit), ("W1 sgemm n=256", 1, "GFLOP/s"));
        assert!(f.value > 0.0 && f.pct_of_peak.is_some());
        let json: serde_json::Value = serde_json::from_str(&to_json(&figs)).unwrap();
        assert_eq!(json[0]["workload"], "W1 sgemm n=256");
        assert_eq!(json[0]["threads"], 1);
        assert!(table_row(f).starts_with("W1 sgemm n=256"));
    }

    #[test]
    fn runs_w4_and_w5_once() {
        for (w, names) in [("W4", ["W4 MLP train", "W4 MLP train (graph)"]), ("W5", ["W5 LeNet train", "W5 LeNet train (graph)"])] {
            let opts = Options { threads: vec![1], reps: 1, only: vec![w.into()], profile: false };
            let out = run(&opts, |_| {}, |_| {});
            assert!(out.failures.is_empty(), "{:?}", out.failures);
            // "W4" selects the eager step and its graph-mode twin, as does "W5".
            let got: Vec<&str> = out.figures.iter().map(|f| f.workload.as_str()).collect();
            assert_eq!(got, names);
            for f in &out.figures {
                assert_eq!((f.threads, f.unit), (1, "samples/s"));
                assert!(f.value > 0.0 && f.pct_of_peak.is_none());
            }
        }
    }
}
