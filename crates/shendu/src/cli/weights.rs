//! `shendu weights inspect|diff|copy`: what a safetensors file holds, how two differ, and moving
//! weights between models whose parameter names differ (see `weights_copy.rs`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;
use shendu_core::Tensor;
use shendu_nn::state::{self, Metadata, NamedTensors};

use super::loaded::single_line;
use super::weights_copy::{self, CopyArgs};
use super::{CliError, CliResult};
use crate::stats::TensorStats;

/// Flags of `shendu weights`.
#[derive(Args, Debug)]
pub struct WeightsArgs {
    #[command(subcommand)]
    pub action: WeightsAction,
}

/// The `weights` subcommands.
#[derive(Subcommand, Debug)]
pub enum WeightsAction {
    /// Lists every tensor of a safetensors file (name, dtype, shape, count, min/max/mean/std),
    /// its metadata and the totals.
    Inspect(InspectArgs),
    /// Compares two safetensors files tensor by tensor: max |a-b| and relative difference of
    /// common tensors; names only in one file; shape and dtype mismatches; metadata changes.
    Diff(DiffArgs),
    /// Copies tensors from one file into another model's parameters by a name-matching rule,
    /// printing every pair made and every leftover (the transfer plan).
    Copy(CopyArgs),
}

/// Flags of `shendu weights inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The safetensors file (checkpoint or plain weights).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print only one JSON object: {"tensors": [{name, dtype, shape, numel, min, max, mean, std,
    /// nonfinite}], "metadata": {...}, "totals": {tensors, numel, bytes}}.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `shendu weights diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The first file (A).
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// The second file (B).
    #[arg(value_name = "B")]
    pub b: PathBuf,
    /// Print only one JSON object with the per-tensor figures and the mismatches.
    #[arg(long)]
    pub json: bool,
}

/// Runs the chosen `weights` subcommand.
pub fn run(args: WeightsArgs) -> CliResult<()> {
    match args.action {
        WeightsAction::Inspect(a) => inspect(&a),
        WeightsAction::Diff(a) => diff(&a),
        WeightsAction::Copy(a) => weights_copy::run(&a),
    }
    .map_err(single_line)
}

/// Reads a safetensors file; a directory or an unreadable file is bad input naming it.
pub(crate) fn read(path: &Path) -> CliResult<(NamedTensors, Metadata)> {
    if path.is_dir() {
        return Err(CliError::bad(format!("{}: is a directory, not a safetensors file", path.display())));
    }
    Ok(state::load_safetensors(path)?)
}

/// A number for a table: fixed point for everyday magnitudes, scientific otherwise.
pub(crate) fn num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !v.is_finite() {
        format!("{v}")
    } else if (1e-3..1e5).contains(&a) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

fn opt_num(v: Option<f64>) -> String {
    v.map(num).unwrap_or_else(|| "-".into())
}

fn shape_str(dims: &[usize]) -> String {
    format!("{dims:?}")
}

/// The first `left` columns (names) left-aligned, the others (numbers) right-aligned, two spaces
/// apart.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.zip(&widths).enumerate() {
            let sep = if i == 0 { "" } else { "  " };
            if i < left {
                s.push_str(&format!("{sep}{c:<w$}"));
            } else {
                s.push_str(&format!("{sep}{c:>w$}"));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

fn inspect(args: &InspectArgs) -> CliResult<()> {
    let (tensors, metadata) = read(&args.file)?;
    let mut rows = Vec::with_capacity(tensors.len());
    let mut records = Vec::with_capacity(tensors.len());
    let (mut total_numel, mut total_bytes) = (0usize, 0usize);
    for (name, t) in &tensors {
        let s = TensorStats::of(t)?;
        // No finite value, no statistics: "-" in the table, null in JSON.
        let [min, max, mean, sd] = [s.min, s.max, s.mean, s.std].map(|v| (s.finite > 0).then_some(v));
        let numel = t.elem_count();
        total_numel += numel;
        total_bytes += numel * t.dtype().size_in_bytes();
        let mut std = opt_num(sd);
        if s.nonfinite() > 0 {
            std.push_str(&format!(" ({} non-finite)", s.nonfinite()));
        }
        rows.push(vec![
            name.clone(),
            t.dtype().to_string(),
            shape_str(t.dims()),
            numel.to_string(),
            opt_num(min),
            opt_num(max),
            opt_num(mean),
            std,
        ]);
        records.push(json!({
            "name": name, "dtype": t.dtype().to_string(), "shape": t.dims(), "numel": numel,
            "min": min, "max": max, "mean": mean, "std": sd, "nonfinite": s.nonfinite(),
        }));
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let obj = json!({
            "command": "weights inspect",
            "file": args.file.display().to_string(),
            "tensors": records,
            "metadata": metadata,
            "totals": {"tensors": tensors.len(), "numel": total_numel, "bytes": total_bytes},
        });
        writeln!(out, "{obj}")?;
        return Ok(());
    }
    writeln!(out, "{}", args.file.display())?;
    write!(out, "{}", table(&["name", "dtype", "shape", "numel", "min", "max", "mean", "std"], &rows, 3))?;
    if metadata.is_empty() {
        writeln!(out, "metadata: none")?;
    } else {
        writeln!(out, "metadata:")?;
        for (k, v) in &metadata {
            writeln!(out, "  {k} = {v}")?;
        }
    }
    writeln!(out, "total: {} tensor(s), {total_numel} value(s), {total_bytes} byte(s) of data", tensors.len())?;
    Ok(())
}

/// How two tensors of one name and shape differ.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorDiff {
    /// The largest |a - b| (NaN if some difference is NaN).
    pub max_abs: f64,
    /// ||a - b||_2 / max(||a||_2, ||b||_2); 0 when both are zero.
    pub rel: f64,
}

/// Compares two tensors of the same shape, whatever their dtypes (both read as f64).
pub fn tensor_diff(a: &Tensor, b: &Tensor) -> CliResult<TensorDiff> {
    let (a, b) = (a.to_vec_f64()?, b.to_vec_f64()?);
    let (mut max_abs, mut d2, mut a2, mut b2) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(&b) {
        let d = (x - y).abs();
        if d.is_nan() || d > max_abs {
            max_abs = if max_abs.is_nan() { max_abs } else { d };
        }
        d2 += d * d;
        a2 += x * x;
        b2 += y * y;
    }
    let norm = a2.sqrt().max(b2.sqrt());
    let rel = if norm == 0.0 && d2 == 0.0 { 0.0 } else { d2.sqrt() / norm };
    Ok(TensorDiff { max_abs, rel })
}

fn diff(args: &DiffArgs) -> CliResult<()> {
    let (ta, ma) = read(&args.a)?;
    let (tb, mb) = read(&args.b)?;
    let in_b: HashMap<&str, &Tensor> = tb.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let in_a: HashMap<&str, &Tensor> = ta.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let only_a: Vec<&str> = ta.iter().map(|(n, _)| n.as_str()).filter(|n| !in_b.contains_key(n)).collect();
    let only_b: Vec<&str> = tb.iter().map(|(n, _)| n.as_str()).filter(|n| !in_a.contains_key(n)).collect();
    let (mut rows, mut records, mut shape_mismatch, mut dtype_differs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut identical, mut worst): (usize, Option<(f64, &str)>) = (0, None);
    for (name, a) in &ta {
        let Some(b) = in_b.get(name.as_str()) else { continue };
        if a.dims() != b.dims() {
            shape_mismatch.push(json!({"name": name, "a": a.dims(), "b": b.dims()}));
            continue;
        }
        if a.dtype() != b.dtype() {
            dtype_differs.push(json!({"name": name, "a": a.dtype().to_string(), "b": b.dtype().to_string()}));
        }
        let d = tensor_diff(a, b)?;
        if d.max_abs == 0.0 {
            identical += 1;
        }
        if worst.is_none_or(|(m, _)| d.max_abs > m || d.max_abs.is_nan()) {
            worst = Some((d.max_abs, name));
        }
        rows.push(vec![name.clone(), shape_str(a.dims()), num(d.max_abs), num(d.rel)]);
        records.push(json!({"name": name, "shape": a.dims(), "max_abs": d.max_abs, "rel": d.rel}));
    }
    let meta_changes = metadata_changes(&ma, &mb);
    let same = only_a.is_empty() && only_b.is_empty() && shape_mismatch.is_empty() && identical == rows.len();
    let mut out = std::io::stdout().lock();
    if args.json {
        let obj = json!({
            "command": "weights diff",
            "a": args.a.display().to_string(),
            "b": args.b.display().to_string(),
            "tensors": records,
            "identical": identical,
            "only_in_a": only_a,
            "only_in_b": only_b,
            "shape_mismatch": shape_mismatch,
            "dtype_differs": dtype_differs,
            "metadata_differs": meta_changes,
            "same_tensors": same,
        });
        writeln!(out, "{obj}")?;
        return Ok(());
    }
    writeln!(out, "A: {} ({} tensor(s))\nB: {} ({} tensor(s))", args.a.display(), ta.len(), args.b.display(), tb.len())?;
    if !rows.is_empty() {
        write!(out, "{}", table(&["name", "shape", "max|a-b|", "rel"], &rows, 2))?;
    }
    let list = |names: &[&str]| if names.is_empty() { "none".to_string() } else { names.join(", ") };
    writeln!(out, "only in A: {}", list(&only_a))?;
    writeln!(out, "only in B: {}", list(&only_b))?;
    for m in &shape_mismatch {
        writeln!(out, "shape mismatch: {} A {} B {}", m["name"].as_str().unwrap_or(""), m["a"], m["b"])?;
    }
    for m in &dtype_differs {
        writeln!(out, "dtype differs (compared as f64): {} A {} B {}", m["name"].as_str().unwrap_or(""), m["a"], m["b"])?;
    }
    for c in &meta_changes {
        writeln!(out, "metadata {c}")?;
    }
    let worst = worst.map(|(m, n)| format!("; largest max|a-b| {} ({n})", num(m))).unwrap_or_default();
    writeln!(
        out,
        "{} common tensor(s) compared, {identical} identical{worst}; {} only in A, {} only in B, {} shape mismatch(es){}",
        rows.len(),
        only_a.len(),
        only_b.len(),
        shape_mismatch.len(),
        if same { "; the tensors are identical" } else { "" }
    )?;
    Ok(())
}

/// `key: 'a' -> 'b'`, `key: only in A`, ... for each metadata key that differs.
fn metadata_changes(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x != y => Some(format!("{k}: '{x}' -> '{y}'")),
            (Some(_), None) => Some(format!("{k}: only in A")),
            (None, Some(_)) => Some(format!("{k}: only in B")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shendu_core::DType;

    #[test]
    fn stats_and_diff() {
        let t = Tensor::from_vec(vec![1.0f32, 3.0, f32::NAN], &[3]).unwrap();
        let s = TensorStats::of(&t).unwrap();
        assert_eq!((s.min, s.max, s.mean, s.std, s.nonfinite()), (1.0, 3.0, 2.0, 1.0, 1));
        let a = Tensor::from_vec(vec![3.0f32, 4.0], &[2]).unwrap();
        let b = Tensor::from_vec(vec![3.0f64, 4.5], &[2]).unwrap();
        let d = tensor_diff(&a, &b).unwrap();
        assert_eq!(d.max_abs, 0.5);
        assert!((d.rel - 0.5 / (9.0f64 + 20.25).sqrt()).abs() < 1e-12);
        let z = Tensor::zeros(&[2], DType::F32).unwrap();
        assert_eq!(tensor_diff(&z, &z).unwrap(), TensorDiff { max_abs: 0.0, rel: 0.0 });
        assert_eq!(num(0.12345), "0.1235");
        assert_eq!(num(1.5e-7), "1.500e-7");
        let t = table(&["name", "n"], &[vec!["a.weight".into(), "12".into()], vec!["b".into(), "3".into()]], 1);
        assert_eq!(t, "name       n\na.weight  12\nb          3\n");
    }
}
