//! `shendu train --check-numerics`: when the first NaN or infinity appears, say where (op, layer
//! path, step) with the statistics of the op's inputs, and save those inputs and the layer's
//! parameters to a safetensors dump that `shendu weights inspect` reads.

use std::collections::BTreeMap;
use std::path::Path;

use shendu_core::numerics::Failure;
use shendu_core::{DType, Tensor};
use shendu_nn::{Module, ModuleExt};

use crate::cli::{CliError, CliResult};

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
    let values = match t.to_dtype(DType::F64).and_then(|v| v.flatten_all()).and_then(|v| v.to_vec::<f64>()) {
        Ok(v) => v,
        Err(_) => return head,
    };
    let (mut min, mut max, mut sum, mut finite, mut nan, mut inf) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize, 0usize, 0usize);
    for v in values {
        if v.is_nan() {
            nan += 1;
        } else if v.is_infinite() {
            inf += 1;
        } else {
            min = min.min(v);
            max = max.max(v);
            sum += v;
            finite += 1;
        }
    }
    if finite == 0 {
        return format!("{head}: no finite values, {nan} NaN, {inf} Inf");
    }
    format!("{head}: min {min:.4e} max {max:.4e} mean {:.4e} (finite values), {nan} NaN, {inf} Inf", sum / finite as f64)
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
