//! conv2d, conv_transpose2d, pooling and upsampling against PyTorch float64
//! (tests/reference/data.json, made by tests/reference/generate.py), in f64 and f32.

mod common;

use common::*;
use shendu_core::{Conv2dParams, DType, Padding, Result, Tensor};

// ---- adapters: the only code that names the conv/pool/upsample API ------------------------------

/// `padding` is the case's `{"kind": "explicit"|"same"|"valid", top, bottom, left, right}`.
fn conv2d(x: &Tensor, w: &Tensor, c: &RefCase) -> Result<Tensor> {
    let p = &c.params["padding"];
    let side = |k: &str| p[k].as_u64().expect("padding side") as usize;
    let padding = match p["kind"].as_str().expect("padding kind") {
        "same" => Padding::Same,
        "valid" => Padding::Valid,
        _ => Padding::Explicit { top: side("top"), bottom: side("bottom"), left: side("left"), right: side("right") },
    };
    x.conv2d(w, &Conv2dParams { stride: c.pair("stride"), padding, dilation: c.pair("dilation"), groups: c.usize("groups") })
}

/// PyTorch's `conv_transpose2d(x, w, stride, padding, output_padding, groups, dilation)`;
/// `w` is `[in, out / groups, kh, kw]`.
fn conv_transpose2d(x: &Tensor, w: &Tensor, c: &RefCase) -> Result<Tensor> {
    x.conv_transpose2d(
        w,
        &shendu_core::ConvTranspose2dParams {
            stride: c.pair("stride"),
            padding: {
                let (ph, pw) = c.pair("padding");
                (ph, ph, pw, pw)
            },
            output_padding: c.pair("output_padding"),
            dilation: c.pair("dilation"),
            groups: c.usize("groups"),
        },
    )
}

/// PyTorch's `max_pool2d(x, kernel, stride, padding, ceil_mode=..)` (padding counts as -inf).
fn max_pool2d(x: &Tensor, c: &RefCase) -> Result<Tensor> {
    let (ph, pw) = c.pair("padding");
    x.max_pool2d(c.pair("kernel"), c.pair("stride"), Padding::symmetric2(ph, pw), (1, 1), c.bool("ceil_mode"))
}

/// PyTorch's `avg_pool2d(x, kernel, stride, padding, ceil_mode=.., count_include_pad=..)`.
fn avg_pool2d(x: &Tensor, c: &RefCase) -> Result<Tensor> {
    let (ph, pw) = c.pair("padding");
    x.avg_pool2d(c.pair("kernel"), c.pair("stride"), Padding::symmetric2(ph, pw), c.bool("ceil_mode"), c.bool("count_include_pad"))
}

/// `adaptive_avg_pool2d` to `output_size`; nearest (PyTorch's `mode="nearest"`, not
/// `nearest-exact`) and bilinear upsampling to `size`.
fn upsample_or_adaptive(x: &Tensor, c: &RefCase) -> Result<Tensor> {
    match c.op.as_str() {
        "adaptive_avg_pool2d" => x.adaptive_avg_pool2d(c.pair("output_size")),
        "upsample_nearest2d" => x.upsample_nearest2d(c.pair("size")),
        _ => x.upsample_bilinear2d(c.pair("size"), c.bool("align_corners")),
    }
}

// ---- the checks ---------------------------------------------------------------------------------

const OPS: &[&str] =
    &["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "upsample_nearest2d", "upsample_bilinear2d"];

fn run(c: &RefCase, x: &[Tensor]) -> Result<Tensor> {
    match c.op.as_str() {
        "conv2d" => conv2d(&x[0], &x[1], c),
        "conv_transpose2d" => conv_transpose2d(&x[0], &x[1], c),
        "max_pool2d" => max_pool2d(&x[0], c),
        "avg_pool2d" => avg_pool2d(&x[0], c),
        _ => upsample_or_adaptive(&x[0], c),
    }
}

/// Runs every case of this file's ops with inputs made by `make`; returns the number checked.
fn check_all(label: &str, dtype: DType, tol: f64, make: impl Fn(&RefArray) -> Tensor) -> usize {
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut worst = 0.0f64;
    for c in reference_cases().into_iter().filter(|c| OPS.contains(&c.op.as_str())) {
        checked += 1;
        let inputs: Vec<Tensor> = c.inputs.iter().map(&make).collect();
        let r = run(&c, &inputs).map_err(|e| format!("{}: {e}", c.name)).and_then(|t| {
            if t.dtype() != dtype {
                return Err(format!("{}: output dtype {}, expected {dtype}", c.name, t.dtype()));
            }
            if let Ok(v) = t.to_vec_f64() {
                for (a, e) in v.iter().zip(&c.output.data) {
                    worst = worst.max((a - e).abs() / e.abs().max(1.0));
                }
            }
            check_close(&c.name, &t, &c.output, tol)
        });
        if let Err(e) = r {
            failures.push(e);
        }
    }
    eprintln!("{label}: {checked} cases, worst error {worst:.2e}");
    assert!(failures.is_empty(), "{label}: {} cases differ from PyTorch:\n{}", failures.len(), failures.join("\n"));
    checked
}

#[test]
fn conv_pool_upsample_match_pytorch_f64() {
    let n = check_all("f64", DType::F64, 1e-10, |a| a.tensor(DType::F64));
    assert!(n >= 46, "only {n} conv/pool/upsample cases ran");
}

#[test]
fn conv_pool_upsample_match_pytorch_f32() {
    check_all("f32", DType::F32, 1e-5, |a| a.tensor(DType::F32));
}

/// Inputs (and weights) seen through reversed-stride layouts must give the same values.
#[test]
fn conv_pool_upsample_match_pytorch_on_strided_inputs() {
    check_all("f64 strided", DType::F64, 1e-10, |a| {
        let rev: Vec<usize> = (0..a.shape.len()).rev().collect();
        a.tensor(DType::F64).permute(&rev).and_then(|t| t.contiguous()).and_then(|t| t.permute(&rev)).expect("view")
    });
}
