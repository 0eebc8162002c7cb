//! `shendu train --check-numerics`: when the first NaN or infinity appears, say where (op, layer
//! path, step) with the statistics of the op's inputs, and save those inputs and the layer's
//! parameters to a safetensors dump that `shendu weights inspect` reads.

use std::collections::BTreeMap;
use std::path::Path;

use shendu_core::numerics::Failure;
use shendu_core::Tensor;
use shendu_nn::{Module, ModuleExt};

use crate::cli::{CliError, CliResult};
use crate::stats::TensorStats;

/// The dump's file name inside the run's output directory.
pub const DUMP_FILE: &str = "numerics-dump.safetensors";

/// Where training stood when the check tripped.
pub struct At {
    pub epoch: usize,
    pub step: usize,
}

/// The error `shendu train` ends with: the report, and the dump written into `dir`.
pub fn report(failure: &Failure, model: &dyn Module, at: &At, dir: &Path) -> CliError {
    // Scopes are pushed per Sequential child, so `layers/2` is the parameter prefix `layers.2`.
    let layer = failure.path.replace('/', ".");
    let shown = if layer.is_empty() { "(top level)".to_string() } else { layer.clone() };
    let mut lines = vec![format!(
        "check-numerics: {} of {} produced {} at step {} (epoch {}), layer {shown}",
        failure.phase, failure.op, failure.found, at.step, at.epoch
    )];
    for (i, t) in failure.inputs.iter().enumerate() {
        lines.push(format!("  input {i}: {}", describe(t)));
    }
    let params: Vec<(String, Tensor)> = model
        .named_params()
        .into_iter()
        .filter(|(name, _)| !layer.is_empty() && name.strip_prefix(&layer).is_some_and(|rest| rest.starts_with('.')))
        .map(|(name, p)| (name, p.value()))
        .collect();
    let path = dir.join(DUMP_FILE);
    match write_dump(&path, failure, &layer, &params, at) {
        Ok(()) => lines.push(format!(
            "dump: {} (the op's inputs as input.N{}); read it with `shendu weights inspect {}`",
            path.display(),
            if params.is_empty() { String::new() } else { format!(" and {layer}'s {} parameters", params.len()) },
            path.display()
        )),
        Err(e) => lines.push(format!("dump not written: {e}")),
    }
    CliError::internal(lines.join("\n"))
}

/// `[64, 512] f32: min .. max .. mean .. (finite values), 3 NaN, 0 Inf`.
fn describe(t: &Tensor) -> String {
    let head = format!("{} {}", t.shape(), t.dtype());
    let Ok(s) = TensorStats::of(t) else { return head };
    if s.finite == 0 {
        return format!("{head}: no finite values, {} NaN, {} Inf", s.nan, s.inf);
    }
    format!("{head}: min {:.4e} max {:.4e} mean {:.4e} (finite values), {} NaN, {} Inf", s.min, s.max, s.mean, s.nan, s.inf)
}

fn write_dump(path: &Path, failure: &Failure, layer: &str, params: &[(String, Tensor)], at: &At) -> CliResult<()> {
    let mut tensors: Vec<(String, Tensor)> = failure.inputs.iter().enumerate().map(|(i, t)| (format!("input.{i}"), t.clone())).collect();
    tensors.extend(params.iter().cloned());
    let meta = BTreeMap::from([
        ("format".to_string(), "shendu-numerics-dump".to_string()),
        ("op".into(), failure.op.to_string()),
        ("phase".into(), failure.phase.clone()),
        ("layer".into(), layer.to_string()),
        ("found".into(), failure.found.to_string()),
        ("epoch".into(), at.epoch.to_string()),
        ("step".into(), at.step.to_string()),
    ]);
    shendu_nn::state::save_safetensors(path, &tensors, &meta)?;
    Ok(())
}
