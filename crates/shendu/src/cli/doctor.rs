//! `shendu doctor LOG`: reads a metrics log and names the usual suspects of a run that does not
//! learn, each with the numbers that point at it. The thresholds are rules of thumb, stated in
//! each finding, not verdicts: divergence (NaN, loss rising), plateau, dead ReLUs, vanishing or
//! exploding gradients across layers, and update/weight ratios that say the learning rate is too
//! high or too low (healthy is around 1e-3).

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{CliError, CliResult};
use crate::train::layer_stats::StatsRecord;
use crate::train::metrics::EpochRecord;

/// Flags of `shendu doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// A metrics.jsonl written by `shendu train` (with `--log-stats N` for the per-layer checks).
    pub log: PathBuf,
    /// Print the findings as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// One suspect and its evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// `divergence`, `loss-rising`, `plateau`, `overfitting`, `dead-units`, `vanishing-gradients`,
    /// `exploding-gradients`, `lr-too-high`, `lr-too-low`.
    pub suspect: &'static str,
    pub evidence: String,
    pub advice: &'static str,
}

pub fn run(args: DoctorArgs) -> CliResult<()> {
    let text = std::fs::read_to_string(&args.log).map_err(|e| CliError::bad(format!("{}: cannot read: {e}", args.log.display())))?;
    let epochs: Vec<EpochRecord> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let stats: Vec<StatsRecord> =
        text.lines().filter_map(|l| serde_json::from_str::<StatsRecord>(l).ok()).filter(|r| r.kind == "stats").collect();
    if epochs.is_empty() && stats.is_empty() {
        return Err(CliError::bad(format!("{}: no epoch or statistics lines: not a metrics log of shendu train", args.log.display())));
    }
    let findings = diagnose(&epochs, &stats);
    if args.json {
        let v = serde_json::json!({ "log": args.log, "epochs": epochs.len(), "stats_steps": stats.len(), "findings": findings });
        println!("{v}");
        return Ok(());
    }
    println!("{}: {} epoch line(s), {} statistics line(s)", args.log.display(), epochs.len(), stats.len());
    if stats.is_empty() {
        println!("(no --log-stats lines: the per-layer checks were skipped)");
    }
    if findings.is_empty() {
        println!("no usual suspect found");
    }
    for f in &findings {
        println!("{}: {}\n    -> {}", f.suspect, f.evidence, f.advice);
    }
    Ok(())
}

/// Every finding the records support.
pub fn diagnose(epochs: &[EpochRecord], stats: &[StatsRecord]) -> Vec<Finding> {
    let mut out = Vec::new();
    epoch_findings(epochs, &mut out);
    stats_findings(stats, &mut out);
    out
}

fn epoch_findings(e: &[EpochRecord], out: &mut Vec<Finding>) {
    if let Some(bad) = e.iter().find(|r| !r.train_loss.is_finite() || !r.test_loss.is_finite()) {
        out.push(Finding {
            suspect: "divergence",
            evidence: format!("epoch {}: train loss {}, test loss {}", bad.epoch, bad.train_loss, bad.test_loss),
            advice: "lower the learning rate, clip gradients (--clip-norm), and rerun with --check-numerics to find the first op",
        });
        return;
    }
    let (Some(first), Some(last)) = (e.first(), e.last()) else { return };
    if e.len() >= 2 && last.train_loss > 1.1 * first.train_loss {
        out.push(Finding {
            suspect: "loss-rising",
            evidence: format!(
                "train loss {:.4} at epoch {} rose to {:.4} at epoch {}",
                first.train_loss, first.epoch, last.train_loss, last.epoch
            ),
            advice: "the learning rate is likely too high for this network: try a tenth of it",
        });
    }
    if e.len() >= 3 {
        let w = &e[e.len() - 3..];
        let change = (w[0].train_loss - w[2].train_loss) / w[0].train_loss.abs().max(1e-12);
        if change.abs() < 0.01 && last.train_accuracy < 0.99 {
            out.push(Finding {
                suspect: "plateau",
                evidence: format!(
                    "train loss changed by {:.2}% over epochs {}-{} ({:.4} -> {:.4}) at train accuracy {:.1}%",
                    100.0 * change,
                    w[0].epoch,
                    w[2].epoch,
                    w[0].train_loss,
                    w[2].train_loss,
                    100.0 * last.train_accuracy
                ),
                advice: "check the per-layer gradients (--log-stats) for vanishing layers; try a higher or scheduled learning rate",
            });
        }
        let test_up = w[2].test_loss > w[0].test_loss * 1.05;
        let train_down = w[2].train_loss < w[0].train_loss;
        if test_up && train_down {
            out.push(Finding {
                suspect: "overfitting",
                evidence: format!(
                    "test loss rose {:.4} -> {:.4} over epochs {}-{} while train loss fell {:.4} -> {:.4}",
                    w[0].test_loss, w[2].test_loss, w[0].epoch, w[2].epoch, w[0].train_loss, w[2].train_loss
                ),
                advice: "use the best checkpoint, add weight decay, dropout or augmentation, or stop earlier (--patience)",
            });
        }
    }
}

fn stats_findings(stats: &[StatsRecord], out: &mut Vec<Finding>) {
    let Some(last) = stats.last() else { return };
    if let Some(l) = stats.iter().flat_map(|r| r.layers.iter().map(move |l| (r.step, l))).find(|(_, l)| l.act_nonfinite.unwrap_or(0) > 0) {
        out.push(Finding {
            suspect: "divergence",
            evidence: format!("step {}: layer {} output holds {} NaN/Inf values", l.0, l.1.layer, l.1.act_nonfinite.unwrap_or(0)),
            advice: "rerun with --check-numerics to find the first op that made them",
        });
    }
    for l in &last.layers {
        let zeros = l.act_zero_fraction.unwrap_or(0.0);
        if l.type_name.to_lowercase().contains("relu") && zeros > 0.9 {
            out.push(Finding {
                suspect: "dead-units",
                evidence: format!("step {}: {:.1}% of layer {} ({}) outputs are exactly 0", last.step, 100.0 * zeros, l.layer, l.type_name),
                advice: "lower the learning rate, use leaky ReLU, or check the initialisation and input normalisation",
            });
        }
    }
    // Gradients across depth, at the last logged step: first vs last layer with parameters.
    let with_grad: Vec<(&str, f64)> = last.layers.iter().filter_map(|l| Some((l.layer.as_str(), l.grad_norm?))).collect();
    if let (Some(&(fl, fg)), Some(&(ll, lg))) = (with_grad.first(), with_grad.last()) {
        if with_grad.len() >= 3 && lg > 0.0 {
            let ratio = fg / lg;
            if ratio < 1e-3 {
                out.push(Finding {
                    suspect: "vanishing-gradients",
                    evidence: format!("step {}: gradient norm {fg:.2e} at the first layer {fl} vs {lg:.2e} at the last {ll} (ratio {ratio:.1e} < 1e-3)", last.step),
                    advice: "the early layers barely learn: use ReLU-family activations, batch norm, residual connections or a better initialisation",
                });
            } else if ratio > 1e3 {
                out.push(Finding {
                    suspect: "exploding-gradients",
                    evidence: format!(
                        "step {}: gradient norm {fg:.2e} at the first layer {fl} vs {lg:.2e} at the last {ll} (ratio {ratio:.1e} > 1e3)",
                        last.step
                    ),
                    advice: "clip gradients (--clip-norm), lower the learning rate, add normalisation",
                });
            }
        }
    }
    // Update/weight ratios over the whole log: the median says where the learning rate sits.
    let mut ratios: Vec<f64> =
        stats.iter().flat_map(|r| r.layers.iter().filter_map(|l| l.update_ratio)).filter(|v| v.is_finite()).collect();
    if !ratios.is_empty() {
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        if median > 3e-2 {
            out.push(Finding {
                suspect: "lr-too-high",
                evidence: format!(
                    "median update/weight ratio {median:.1e} over {} layer-steps (healthy: about 1e-3; above 3e-2 is large)",
                    ratios.len()
                ),
                advice: "lower the learning rate (a tenth), or warm it up",
            });
        } else if median < 1e-5 {
            out.push(Finding {
                suspect: "lr-too-low",
                evidence: format!(
                    "median update/weight ratio {median:.1e} over {} layer-steps (healthy: about 1e-3; below 1e-5 is tiny)",
                    ratios.len()
                ),
                advice: "raise the learning rate (ten times) or check for vanishing gradients",
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::layer_stats::LayerStats;

    fn epoch(epoch: usize, train_loss: f64, test_loss: f64, acc: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            step: epoch * 100,
            lr: 0.1,
            train_loss,
            train_accuracy: acc,
            test_loss,
            test_accuracy: acc,
            seconds: 1.0,
            samples_per_second: 1.0,
        }
    }

    fn layer(name: &str, kind: &str, grad: Option<f64>, ratio: Option<f64>, zeros: f64) -> LayerStats {
        LayerStats {
            layer: name.into(),
            type_name: kind.into(),
            act_mean: Some(0.0),
            act_std: Some(1.0),
            act_zero_fraction: Some(zeros),
            act_nonfinite: Some(0),
            grad_norm: grad,
            weight_norm: grad.map(|_| 1.0),
            update_ratio: ratio,
        }
    }

    fn suspects(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.suspect).collect()
    }

    #[test]
    fn epoch_level_suspects() {
        let healthy = [epoch(1, 0.5, 0.4, 0.9), epoch(2, 0.3, 0.3, 0.95), epoch(3, 0.2, 0.25, 0.97)];
        assert!(diagnose(&healthy, &[]).is_empty());
        let nan = [epoch(1, 0.5, 0.4, 0.9), epoch(2, f64::NAN, f64::NAN, 0.1)];
        assert_eq!(suspects(&diagnose(&nan, &[])), ["divergence"]);
        let rising = [epoch(1, 0.5, 0.4, 0.9), epoch(2, 0.9, 0.9, 0.5)];
        assert_eq!(suspects(&diagnose(&rising, &[])), ["loss-rising"]);
        let flat = [epoch(1, 2.302, 2.3, 0.11), epoch(2, 2.301, 2.3, 0.11), epoch(3, 2.3, 2.3, 0.11)];
        let f = diagnose(&flat, &[]);
        assert_eq!(suspects(&f), ["plateau"]);
        assert!(f[0].evidence.contains("epochs 1-3"), "{}", f[0].evidence);
        let over = [epoch(1, 0.3, 0.30, 0.9), epoch(2, 0.2, 0.33, 0.95), epoch(3, 0.1, 0.40, 0.98)];
        assert_eq!(suspects(&diagnose(&over, &[])), ["overfitting"]);
    }

    #[test]
    fn layer_level_suspects() {
        let rec = |layers: Vec<LayerStats>| StatsRecord { kind: "stats".into(), epoch: 1, step: 50, layers };
        let vanishing = rec(vec![
            layer("0", "Linear", Some(1e-9), Some(1e-3), 0.0),
            layer("1", "Sigmoid", None, None, 0.0),
            layer("2", "Linear", Some(1e-5), Some(1e-3), 0.0),
            layer("4", "Linear", Some(1e-1), Some(1e-3), 0.0),
        ]);
        let f = diagnose(&[], &[vanishing]);
        assert_eq!(suspects(&f), ["vanishing-gradients"]);
        assert!(f[0].evidence.contains("first layer 0") && f[0].evidence.contains("last 4"), "{}", f[0].evidence);
        let exploding = rec(vec![
            layer("0", "Linear", Some(1e4), Some(1e-3), 0.0),
            layer("2", "Linear", Some(1e2), Some(1e-3), 0.0),
            layer("4", "Linear", Some(1.0), Some(1e-3), 0.0),
        ]);
        assert_eq!(suspects(&diagnose(&[], &[exploding])), ["exploding-gradients"]);
        let dead = rec(vec![layer("0", "Linear", Some(1.0), Some(1e-3), 0.0), layer("1", "Relu", None, None, 0.97)]);
        assert_eq!(suspects(&diagnose(&[], &[dead])), ["dead-units"]);
        let hot = rec(vec![layer("0", "Linear", Some(1.0), Some(0.5), 0.0), layer("2", "Linear", Some(1.0), Some(0.2), 0.0)]);
        assert_eq!(suspects(&diagnose(&[], &[hot])), ["lr-too-high"]);
        let cold = rec(vec![layer("0", "Linear", Some(1.0), Some(1e-7), 0.0), layer("2", "Linear", Some(1.0), Some(1e-6), 0.0)]);
        assert_eq!(suspects(&diagnose(&[], &[cold])), ["lr-too-low"]);
    }
}
