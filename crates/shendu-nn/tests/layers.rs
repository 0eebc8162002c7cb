//! The layers against PyTorch (tests/reference/layers.json, made by gen_layers.py): forward
//! outputs, gradients of the input and of every parameter, and BatchNorm's running statistics
//! and eval output, in f64 (1e-10) and f32 (1e-5), relative to max(1, |expected|).

use serde_json::Value;
use shendu_core::{DType, Padding, Tensor, Var};
use shendu_nn::layers::*;
use shendu_nn::{Mode, Module, ModuleExt};

fn cases() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/layers.json");
    let text = std::fs::read_to_string(path).expect("layers.json: run tests/reference/gen_layers.py");
    let doc: Value = serde_json::from_str(&text).expect("layers.json parses");
    doc["cases"].as_array().expect("cases").clone()
}

fn dims(v: &Value) -> Vec<usize> {
    v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()
}

fn tensor(v: &Value, dtype: DType) -> Tensor {
    let data: Vec<f64> = v["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    Tensor::from_vec(data, dims(v)).unwrap().to_dtype(dtype).unwrap()
}

fn int_tensor(v: &Value) -> Tensor {
    let data: Vec<i64> = v["data"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    Tensor::from_vec(data, dims(v)).unwrap()
}

fn us(v: &Value) -> usize {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not an unsigned integer")) as usize
}

fn pair(v: &Value) -> (usize, usize) {
    match v.as_array() {
        Some(a) => (us(&a[0]), us(&a[1])),
        None => (us(v), us(v)),
    }
}

fn check(case: &str, what: &str, got: &Tensor, want: &Value, tol: f64) {
    assert_eq!(got.dims(), dims(want).as_slice(), "{case}: {what} shape");
    let got = got.to_vec_f64().unwrap();
    let want: Vec<f64> = want["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let mut worst = (0.0f64, 0usize);
    assert_eq!(got.len(), want.len(), "{case}: {what} length");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let err = (g - w).abs() / w.abs().max(1.0);
        if err.is_nan() || err > worst.0 {
            worst = (err, i);
        }
    }
    assert!(worst.0 <= tol, "{case}: {what} differs by {:e} at {} (got {}, want {})", worst.0, worst.1, got[worst.1], want[worst.1]);
}

fn build(case: &Value, dtype: DType) -> Box<dyn Module> {
    let c = &case["config"];
    let layer = case["layer"].as_str().unwrap();
    match layer {
        "Conv2d" => {
            let k = pair(&c["kernel"]);
            let (s, d) = (pair(&c["stride"]), pair(&c["dilation"]));
            let padding = match &c["padding"] {
                Value::String(p) if p == "same" => Padding::Same,
                Value::String(p) if p == "valid" => Padding::Valid,
                p => {
                    let p: Vec<usize> = p.as_array().unwrap().iter().map(us).collect();
                    Padding::explicit(p[0], p[1], p[2], p[3])
                }
            };
            let cfg = Conv2dConfig::new(us(&c["in"]), us(&c["out"]), 1)
                .kernel_hw(k.0, k.1)
                .stride_hw(s.0, s.1)
                .dilation_hw(d.0, d.1)
                .padding(padding)
                .groups(us(&c["groups"]))
                .bias(c["bias"].as_bool().unwrap());
            Box::new(cfg.build(dtype).unwrap())
        }
        "ConvTranspose2d" => {
            let k = pair(&c["kernel"]);
            let cfg = ConvTranspose2dConfig::new(us(&c["in"]), us(&c["out"]), 1)
                .kernel_hw(k.0, k.1)
                .stride(us(&c["stride"]))
                .padding(us(&c["padding"]))
                .output_padding(us(&c["output_padding"]))
                .dilation(us(&c["dilation"]))
                .groups(us(&c["groups"]))
                .bias(c["bias"].as_bool().unwrap());
            Box::new(cfg.build(dtype).unwrap())
        }
        "BatchNorm1d" | "BatchNorm2d" => {
            let cfg = BatchNormConfig::new(us(&c["num_features"]))
                .momentum(c["momentum"].as_f64())
                .affine(c["affine"].as_bool().unwrap())
                .eps(c["eps"].as_f64().unwrap());
            if layer == "BatchNorm1d" {
                Box::new(cfg.build_1d(dtype).unwrap())
            } else {
                Box::new(cfg.build_2d(dtype).unwrap())
            }
        }
        "MaxPool2d" => {
            let p = us(&c["padding"]);
            Box::new(
                MaxPool2d::new(us(&c["kernel"]))
                    .stride(us(&c["stride"]))
                    .padding(Padding::symmetric(p))
                    .dilation(us(&c["dilation"]))
                    .ceil_mode(c["ceil_mode"].as_bool().unwrap()),
            )
        }
        "AvgPool2d" => Box::new(
            AvgPool2d::new(us(&c["kernel"]))
                .stride(us(&c["stride"]))
                .padding(Padding::symmetric(us(&c["padding"])))
                .ceil_mode(c["ceil_mode"].as_bool().unwrap())
                .count_include_pad(c["count_include_pad"].as_bool().unwrap()),
        ),
        "AdaptiveAvgPool2d" => {
            let o = pair(&c["output"]);
            Box::new(AdaptiveAvgPool2d::new(o.0, o.1))
        }
        "GlobalAvgPool2d" => Box::new(GlobalAvgPool2d::new().keepdim(c["keepdim"].as_bool().unwrap())),
        "Embedding" => Box::new(Embedding::new(us(&c["num"]), us(&c["dim"]), dtype).unwrap()),
        "ChannelShuffle" => Box::new(ChannelShuffle::new(us(&c["groups"])).unwrap()),
        "Upsample" => {
            let mode = match c["mode"].as_str().unwrap() {
                "nearest" => UpsampleMode::Nearest,
                _ => UpsampleMode::Bilinear { align_corners: c["align_corners"].as_bool().unwrap() },
            };
            Box::new(match c["scale"].as_f64() {
                Some(s) => Upsample::scale(s, mode).unwrap(),
                None => {
                    let o = pair(&c["size"]);
                    Upsample::size(o.0, o.1, mode).unwrap()
                }
            })
        }
        other => panic!("unknown layer {other}"),
    }
}

/// Forward in `mode` and backward of sum(output * grad_out); checks output and gradients.
fn forward_backward(name: &str, layer: &dyn Module, case: &Value, keys: [&str; 3], mode: Mode, dtype: DType, tol: f64) {
    let [out_key, gout_key, grads_key] = keys;
    layer.zero_grad();
    let is_index = case["layer"] == "Embedding";
    let var = if is_index { None } else { Some(Var::new(tensor(&case["input"], dtype))) };
    let x = match &var {
        Some(v) => v.as_tensor().clone(),
        None => int_tensor(&case["input"]),
    };
    let y = layer.forward(&x, mode).unwrap();
    check(name, out_key, &y, &case[out_key], tol);
    if !y.requires_grad() {
        return;
    }
    let grads = y.backward_with_grad(&tensor(&case[gout_key], dtype), false).unwrap();
    let want = case[grads_key].as_object().unwrap();
    let params = layer.named_params();
    for (key, value) in want {
        let got = if key == "input" {
            grads.get(&x).unwrap_or_else(|| panic!("{name}: no input gradient")).clone()
        } else {
            let (_, p) = params.iter().find(|(n, _)| n == key).unwrap_or_else(|| panic!("{name}: no parameter {key}"));
            p.grad().unwrap_or_else(|| panic!("{name}: no gradient for {key}"))
        };
        check(name, &format!("{grads_key}.{key}"), &got, value, tol);
    }
    // Every trainable parameter has a reference gradient.
    for (n, p) in &params {
        if p.is_trainable() {
            assert!(want.contains_key(n), "{name}: gradient of {n} not checked");
        }
    }
}

fn run_case(case: &Value, dtype: DType, tol: f64) {
    let name = format!("{} ({dtype})", case["name"].as_str().unwrap());
    let layer = build(case, dtype);
    let params = layer.named_params();
    for (key, value) in case["params"].as_object().unwrap() {
        let (_, p) = params.iter().find(|(n, _)| n == key).unwrap_or_else(|| panic!("{name}: no parameter {key}"));
        p.set(&tensor(value, dtype)).unwrap();
    }
    forward_backward(&name, layer.as_ref(), case, ["output", "grad_out", "grads"], Mode::Train, dtype, tol);
    let Some(running) = case.get("running") else { return };
    // A second train step, then the buffers and eval mode.
    layer.forward(&tensor(&case["input2"], dtype), Mode::Train).unwrap();
    let buffer = |n: &str| params.iter().find(|(k, _)| k == n).unwrap().1.value();
    check(&name, "running_mean", &buffer("running_mean"), &running["running_mean"], tol);
    check(&name, "running_var", &buffer("running_var"), &running["running_var"], tol);
    let tracked = buffer("num_batches_tracked");
    assert_eq!(tracked.dtype(), DType::I64);
    assert_eq!(tracked.to_scalar::<i64>().unwrap(), running["num_batches_tracked"].as_i64().unwrap(), "{name}");
    forward_backward(&name, layer.as_ref(), case, ["eval_output", "eval_grad_out", "eval_grads"], Mode::Eval, dtype, tol);
}

fn run_all(prefixes: &[&str]) {
    let mut n = 0;
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        if prefixes.iter().any(|p| name.starts_with(p)) {
            run_case(&case, DType::F64, 1e-10);
            run_case(&case, DType::F32, 1e-5);
            n += 1;
        }
    }
    assert!(n > 0, "no cases for {prefixes:?}");
}

#[test]
fn conv2d_matches_pytorch() {
    run_all(&["conv_"]);
}

#[test]
fn conv_transpose2d_matches_pytorch() {
    run_all(&["convt_"]);
}

#[test]
fn batch_norm_matches_pytorch() {
    run_all(&["bn1d", "bn2d"]);
}

#[test]
fn pools_match_pytorch() {
    run_all(&["maxpool", "avgpool", "adaptive", "global"]);
}

#[test]
fn embedding_shuffle_upsample_match_pytorch() {
    run_all(&["embedding", "channel_shuffle", "upsample"]);
}

#[test]
fn every_case_is_run() {
    let known = ["conv_", "convt_", "bn1d", "bn2d", "maxpool", "avgpool", "adaptive", "global", "embedding", "channel_shuffle", "upsample"];
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        assert!(known.iter().any(|p| name.starts_with(p)), "case {name} is not covered by a test");
    }
}
