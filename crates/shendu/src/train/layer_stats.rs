//! `shendu train --log-stats N`: every N steps, per-layer statistics of the activations, the
//! gradients and the update into the metrics log, the numbers that show why a network does not
//! learn (vanishing or exploding gradients, dead units, updates too large for the weights).

use serde::{Deserialize, Serialize};
use shendu_core::Tensor;
use shendu_nn::{tap, Module, ModuleExt, ParamKind};

use crate::cli::{CliError, CliResult};
use crate::stats::TensorStats;

/// One `--log-stats` line of `metrics.jsonl` (`"kind": "stats"` tells it from epoch lines).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsRecord {
    pub kind: String,
    /// 1-based epoch the step belongs to.
    pub epoch: usize,
    /// 1-based optimizer step.
    pub step: usize,
    pub layers: Vec<LayerStats>,
}

/// One layer's figures at one step; `None` where the layer has no parameters (or no output).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// Dotted path, the prefix of its parameters (`layers.2`).
    pub layer: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub act_mean: Option<f64>,
    pub act_std: Option<f64>,
    /// Fraction of exact zeros in the output (dead ReLUs).
    pub act_zero_fraction: Option<f64>,
    pub act_nonfinite: Option<usize>,
    /// L2 norm of the gradient of the layer's weights (all its trained tensors together).
    pub grad_norm: Option<f64>,
    /// L2 norm of those weights after the step.
    pub weight_norm: Option<f64>,
    /// ‖update‖ / ‖weights before‖: around 1e-3 is healthy; much larger diverges, much smaller
    /// barely learns.
    pub update_ratio: Option<f64>,
}

impl LayerStats {
    /// The row of `layer` with no figures yet.
    pub fn empty(layer: impl Into<String>, type_name: impl Into<String>) -> LayerStats {
        LayerStats {
            layer: layer.into(),
            type_name: type_name.into(),
            act_mean: None,
            act_std: None,
            act_zero_fraction: None,
            act_nonfinite: None,
            grad_norm: None,
            weight_norm: None,
            update_ratio: None,
        }
    }
}

/// A step being observed: the tap recording layer outputs and the weights before the update.
pub struct StatsProbe {
    _tap: tap::TapGuard,
    before: Vec<(String, Tensor)>,
}

impl StatsProbe {
    /// Call before the step's forward pass.
    pub fn begin(model: &dyn Module) -> CliResult<StatsProbe> {
        let mut before = Vec::new();
        for (name, p) in model.trainable_params() {
            // A copy: optimizers update the weights in place.
            before.push((name, p.value().copy()?));
        }
        Ok(StatsProbe { _tap: tap::open(), before })
    }

    /// Call after the optimizer step: the record of this step.
    pub fn finish(self, model: &dyn Module, epoch: usize, step: usize) -> CliResult<StatsRecord> {
        let mut layers: Vec<LayerStats> = Vec::new();
        for rec in tap::take() {
            let a = TensorStats::of(&rec.output)?;
            // Over the finite values, and 0 (not null) when there are none.
            let finite = a.finite.max(1) as f64;
            let or_zero = |v: f64| if a.finite == 0 { 0.0 } else { v };
            layers.push(LayerStats {
                act_mean: Some(or_zero(a.mean)),
                act_std: Some(or_zero(a.std)),
                act_zero_fraction: Some(a.zeros as f64 / finite),
                act_nonfinite: Some(a.nonfinite()),
                ..LayerStats::empty(rec.path, rec.type_name)
            });
        }
        // Sum of squares per layer: (grad, weight after, update, weight before).
        let mut sums: Vec<(String, [f64; 4])> = Vec::new();
        let params = model.named_params();
        for (name, before) in &self.before {
            let Some((_, p)) = params.iter().find(|(n, p)| n == name && p.kind() == ParamKind::Weight) else { continue };
            let after = p.value();
            let layer = owning_layer(name, &layers);
            let grad = match p.grad() {
                Some(g) => sum_sq(&g)?,
                None => 0.0,
            };
            let update = sum_sq(&after.sub(before)?)?;
            let entry = match sums.iter_mut().find(|(l, _)| *l == layer) {
                Some(e) => e,
                None => {
                    sums.push((layer.clone(), [0.0; 4]));
                    sums.last_mut().ok_or_else(|| CliError::internal("stats: empty list"))?
                }
            };
            for (acc, v) in entry.1.iter_mut().zip([grad, sum_sq(&after)?, update, sum_sq(before)?]) {
                *acc += v;
            }
        }
        // Parameters of no recorded layer (a cfg conv's batch norm, `3.bn`) get a row right after
        // the layer whose parameters come before theirs, so rows stay in network order.
        let mut after: Option<usize> = None;
        for (layer, [g, w, u, b]) in sums {
            let i = match layers.iter().position(|l| l.layer == layer) {
                Some(i) => i,
                None => {
                    let i = after.map_or(0, |a| a + 1);
                    layers.insert(i, LayerStats::empty(layer.clone(), "parameters"));
                    i
                }
            };
            after = Some(i);
            let row = &mut layers[i];
            row.grad_norm = Some(g.sqrt());
            row.weight_norm = Some(w.sqrt());
            row.update_ratio = Some(if b > 0.0 { (u / b).sqrt() } else { u.sqrt() });
        }
        Ok(StatsRecord { kind: "stats".into(), epoch, step, layers })
    }
}

/// The recorded layer a parameter belongs to: the longest recorded path that prefixes its
/// name, else its name without the last part (`layers.2.weight` -> `layers.2`).
fn owning_layer(name: &str, layers: &[LayerStats]) -> String {
    layers
        .iter()
        .map(|l| l.layer.as_str())
        .filter(|l| name.strip_prefix(l).is_some_and(|rest| rest.starts_with('.')))
        .max_by_key(|l| l.len())
        .map(str::to_string)
        .unwrap_or_else(|| name.rsplit_once('.').map(|(l, _)| l.to_string()).unwrap_or_default())
}

/// Sum of squares of all the values: a NaN or infinity shows in the norm.
fn sum_sq(t: &Tensor) -> CliResult<f64> {
    Ok(t.to_vec_f64()?.iter().map(|x| x * x).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_join_the_longest_recorded_prefix() {
        let row = |l: &str| LayerStats::empty(l, "");
        let layers = [row("features.0"), row("features.0.1"), row("3")];
        assert_eq!(owning_layer("features.0.1.weight", &layers), "features.0.1");
        assert_eq!(owning_layer("3.bn.weight", &layers), "3");
        assert_eq!(owning_layer("classifier.2.bias", &layers), "classifier.2");
    }
}
