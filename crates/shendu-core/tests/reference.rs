//! Forward values against PyTorch float64 (tests/reference/data.json, made by
//! tests/reference/generate.py): elementwise ops, reductions, softmax and matmul, in f64 and f32.
//! conv/pool/upsample cases are checked by tests/reference_conv.rs.

mod common;

use common::*;
use shendu_core::{DType, Result, Tensor};

/// Ops of data.json that tests/reference_conv.rs checks.
const CONV_OPS: &[&str] =
    &["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "upsample_nearest2d", "upsample_bilinear2d"];

/// shendu's output for a case on inputs `x`, or `None` if the op is not one of this file's.
fn run(c: &RefCase, x: &[Tensor]) -> Option<Result<Tensor>> {
    let a = &x[0];
    let dims = || c.usizes("dims");
    Some(match c.op.as_str() {
        "neg" => a.neg(),
        "abs" => a.abs(),
        "exp" => a.exp(),
        "log" => a.log(),
        "sqrt" => a.sqrt(),
        "rsqrt" => a.rsqrt(),
        "sqr" => a.sqr(),
        "recip" => a.recip(),
        "sin" => a.sin(),
        "cos" => a.cos(),
        "tanh" => a.tanh(),
        "sigmoid" => a.sigmoid(),
        "erf" => a.erf(),
        "relu" => a.relu(),
        "relu6" => a.relu6(),
        "selu" => a.selu(),
        "gelu" => a.gelu(),
        "silu" => a.silu(),
        "mish" => a.mish(),
        "softplus" => a.softplus(),
        "sign" => a.sign(),
        "leaky_relu" => a.leaky_relu(c.f64("slope")),
        "elu" => a.elu(c.f64("alpha")),
        "clamp" => a.clamp(c.f64("min"), c.f64("max")),
        "affine" => a.affine(c.f64("mul"), c.f64("add")),
        "powf" => a.powf(c.f64("p")),
        "add" => a.add(&x[1]),
        "sub" => a.sub(&x[1]),
        "mul" => a.mul(&x[1]),
        "div" => a.div(&x[1]),
        "pow" => a.pow(&x[1]),
        "maximum" => a.maximum(&x[1]),
        "minimum" => a.minimum(&x[1]),
        "sum" => a.sum(&dims(), c.bool("keepdim")),
        "mean" => a.mean(&dims(), c.bool("keepdim")),
        "max" => a.max(&dims(), c.bool("keepdim")),
        "min" => a.min(&dims(), c.bool("keepdim")),
        "logsumexp" => a.logsumexp(&dims(), c.bool("keepdim")),
        "var" => a.var(&dims(), c.bool("keepdim"), c.usize("correction")),
        "std" => a.std(&dims(), c.bool("keepdim"), c.usize("correction")),
        "softmax" => a.softmax(c.usize("dim")),
        "log_softmax" => a.log_softmax(c.usize("dim")),
        "matmul" => a.matmul(&x[1]),
        _ => return None,
    })
}

fn check_all(dtype: DType, tol: f64) -> usize {
    let mut failures = Vec::new();
    let mut checked = 0;
    for c in reference_cases() {
        let inputs: Vec<Tensor> = c.inputs.iter().map(|i| i.tensor(dtype)).collect();
        let Some(out) = run(&c, &inputs) else {
            assert!(CONV_OPS.contains(&c.op.as_str()), "case {}: op {} is checked by no test", c.name, c.op);
            continue;
        };
        checked += 1;
        let r = out.map_err(|e| format!("{}: {e}", c.name)).and_then(|t| {
            if t.dtype() != dtype {
                return Err(format!("{}: output dtype {}, expected {dtype}", c.name, t.dtype()));
            }
            check_close(&c.name, &t, &c.output, tol)
        });
        if let Err(e) = r {
            failures.push(e);
        }
    }
    eprintln!("{dtype}: {checked} cases, worst error {:.2e} (relative to max(1, |expected|))", worst_error(dtype));
    assert!(failures.is_empty(), "{dtype}: {} cases differ from PyTorch:\n{}", failures.len(), failures.join("\n"));
    checked
}

/// The largest `|a - e| / max(1, |e|)` over this file's cases.
fn worst_error(dtype: DType) -> f64 {
    let mut worst = 0.0f64;
    for c in reference_cases() {
        let inputs: Vec<Tensor> = c.inputs.iter().map(|i| i.tensor(dtype)).collect();
        let Some(Ok(t)) = run(&c, &inputs) else { continue };
        for (a, e) in t.to_vec_f64().expect("values").iter().zip(&c.output.data) {
            worst = worst.max((a - e).abs() / e.abs().max(1.0));
        }
    }
    worst
}

/// The comparison must be able to fail: a value off by 1e-9 (relative) is caught in f64.
#[test]
fn tolerance_catches_small_errors() {
    let c = &reference_cases()[0];
    let inputs: Vec<Tensor> = c.inputs.iter().map(|i| i.tensor(DType::F64)).collect();
    let t = run(c, &inputs).expect("first case is elementwise").expect("runs");
    let mut off = c.output.clone();
    off.data[3] += 1e-9 * off.data[3].abs().max(1.0);
    assert!(check_close(&c.name, &t, &c.output, 1e-10).is_ok());
    assert!(check_close(&c.name, &t, &off, 1e-10).is_err());
}

#[test]
fn forward_matches_pytorch_f64() {
    let n = check_all(DType::F64, 1e-10);
    assert!(n >= 90, "only {n} reference cases ran");
}

#[test]
fn forward_matches_pytorch_f32() {
    check_all(DType::F32, 1e-5);
}

/// Non-contiguous inputs must give the same values: the f64 cases again, each input seen
/// through a layout with reversed strides (a contiguous copy of the reversed-dims permutation,
/// permuted back).
#[test]
fn forward_matches_pytorch_on_strided_inputs() {
    let mut failures = Vec::new();
    for c in reference_cases() {
        let views: Vec<Tensor> = c
            .inputs
            .iter()
            .map(|i| {
                let rev: Vec<usize> = (0..i.shape.len()).rev().collect();
                let t = i.tensor(DType::F64).permute(&rev).and_then(|t| t.contiguous()).and_then(|t| t.permute(&rev)).expect("view");
                assert!(i.shape.iter().filter(|&&d| d > 1).count() < 2 || !t.is_contiguous());
                assert_eq!(t.to_vec_f64().expect("values"), i.data);
                t
            })
            .collect();
        let Some(out) = run(&c, &views) else { continue };
        if let Err(e) = out.map_err(|e| format!("{}: {e}", c.name)).and_then(|t| check_close(&c.name, &t, &c.output, 1e-10)) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "strided inputs: {} cases differ:\n{}", failures.len(), failures.join("\n"));
}
