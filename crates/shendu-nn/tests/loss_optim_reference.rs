//! Losses (value and input gradient), optimizers (parameters after each step) and learning-rate
//! schedules against PyTorch float64 (tests/reference/loss_optim.json, written by
//! tests/reference/gen_loss_optim.py): f64 to 1e-10 and f32 to 1e-5, relative to max(1, |expected|).

use serde_json::Value;
use shendu_core::{DType, Tensor, Var};
use shendu_nn::clip::{clip_grad_norm, clip_grad_value};
use shendu_nn::loss::{self, CrossEntropyOpts, KlReduction, Reduction};
use shendu_nn::optim::{Adam, AdamConfig, AdamW, AdamWConfig, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig};
use shendu_nn::schedule::Schedule;
use shendu_nn::Param;

fn data() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/loss_optim.json");
    let text = std::fs::read_to_string(path).expect("read loss_optim.json");
    serde_json::from_str(&text).expect("parse loss_optim.json")
}

fn dims(v: &Value) -> Vec<usize> {
    v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect()
}

fn tensor(v: &Value, dtype: DType) -> Tensor {
    Tensor::from_vec(floats(v), dims(v)).unwrap().to_dtype(dtype).unwrap()
}

fn index_tensor(v: &Value) -> Tensor {
    let d: Vec<i64> = v["data"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect();
    Tensor::from_vec(d, dims(v)).unwrap()
}

/// Checks `got` against `expected` entry by entry, relative to max(1, |expected|).
fn assert_close(what: &str, got: &Tensor, expected: &Value, tol: f64) {
    assert_eq!(got.dims(), dims(expected).as_slice(), "{what}: shape");
    let g = got.to_vec_f64().unwrap();
    for (i, (a, e)) in g.iter().zip(floats(expected)).enumerate() {
        let err = (a - e).abs() / e.abs().max(1.0);
        assert!(err <= tol, "{what}[{i}]: got {a}, expected {e} (relative error {err:e} > {tol:e})");
    }
}

fn reduction(s: &str) -> Reduction {
    match s {
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        "none" => Reduction::None,
        other => panic!("reduction {other}"),
    }
}

fn run_loss(case: &Value, input: &Tensor, dtype: DType) -> shendu_nn::Result<Tensor> {
    let p = &case["params"];
    let inputs = &case["inputs"];
    let red = p["reduction"].as_str().unwrap();
    let opt_input = |name: &str| inputs.get(name).map(|v| tensor(v, dtype));
    let target = || tensor(&inputs["target"], dtype);
    match case["loss"].as_str().unwrap() {
        "mse_loss" => loss::mse_loss(input, &target(), reduction(red)),
        "l1_loss" => loss::l1_loss(input, &target(), reduction(red)),
        "smooth_l1_loss" => loss::smooth_l1_loss(input, &target(), p["beta"].as_f64().unwrap(), reduction(red)),
        "cross_entropy" => {
            let opts = CrossEntropyOpts {
                weight: opt_input("weight"),
                label_smoothing: p["label_smoothing"].as_f64().unwrap(),
                ignore_index: p.get("ignore_index").map(|v| v.as_i64().unwrap()),
                reduction: reduction(red),
            };
            loss::cross_entropy(input, &index_tensor(&inputs["target"]), &opts)
        }
        "nll_loss" => loss::nll_loss(input, &index_tensor(&inputs["target"]), opt_input("weight").as_ref(), reduction(red)),
        "binary_cross_entropy" => loss::binary_cross_entropy(input, &target(), opt_input("weight").as_ref(), reduction(red)),
        "binary_cross_entropy_with_logits" => {
            loss::binary_cross_entropy_with_logits(input, &target(), opt_input("pos_weight").as_ref(), reduction(red))
        }
        "kl_div" => {
            let r = match red {
                "batchmean" => KlReduction::BatchMean,
                other => reduction(other).into(),
            };
            loss::kl_div(input, &target(), r, p["log_target"].as_bool().unwrap())
        }
        other => panic!("unknown loss {other}"),
    }
}

fn check_losses(dtype: DType, tol: f64) {
    let data = data();
    let cases = data["losses"].as_array().unwrap();
    assert!(cases.len() >= 60);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let x = Var::new(tensor(&case["inputs"]["input"], dtype));
        let out = run_loss(case, &x, dtype).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.dtype(), dtype, "{name}: dtype");
        assert_close(&format!("{name} value"), &out, &case["value"], tol);
        let seed = match case.get("upstream") {
            Some(up) => out.mul(&tensor(up, dtype)).unwrap().sum_all().unwrap(),
            None => out,
        };
        let grads = seed.backward().unwrap();
        let g = grads.get(&x).unwrap_or_else(|| panic!("{name}: no gradient"));
        assert_close(&format!("{name} grad"), g, &case["grad"], tol);
    }
}

#[test]
fn losses_match_pytorch_f64() {
    check_losses(DType::F64, 1e-10);
}

#[test]
fn losses_match_pytorch_f32() {
    check_losses(DType::F32, 1e-5);
}

fn f(cfg: &Value, key: &str, default: f64) -> f64 {
    cfg.get(key).map_or(default, |v| v.as_f64().unwrap())
}

fn flag(cfg: &Value, key: &str) -> bool {
    cfg.get(key).is_some_and(|v| v.as_bool().unwrap())
}

fn betas(cfg: &Value) -> (f64, f64) {
    cfg.get("betas").map_or((0.9, 0.999), |b| (b[0].as_f64().unwrap(), b[1].as_f64().unwrap()))
}

pub fn make_optimizer(kind: &str, cfg: &Value, params: Vec<(String, Param)>) -> Box<dyn Optimizer> {
    match kind {
        "sgd" => Box::new(
            Sgd::new(
                params,
                SgdConfig {
                    lr: f(cfg, "lr", 0.01),
                    momentum: f(cfg, "momentum", 0.0),
                    dampening: f(cfg, "dampening", 0.0),
                    nesterov: flag(cfg, "nesterov"),
                    weight_decay: f(cfg, "weight_decay", 0.0),
                },
            )
            .unwrap(),
        ),
        "adam" => Box::new(
            Adam::new(
                params,
                AdamConfig {
                    lr: f(cfg, "lr", 1e-3),
                    betas: betas(cfg),
                    eps: f(cfg, "eps", 1e-8),
                    weight_decay: f(cfg, "weight_decay", 0.0),
                    amsgrad: flag(cfg, "amsgrad"),
                },
            )
            .unwrap(),
        ),
        "adamw" => Box::new(
            AdamW::new(
                params,
                AdamWConfig {
                    lr: f(cfg, "lr", 1e-3),
                    betas: betas(cfg),
                    eps: f(cfg, "eps", 1e-8),
                    weight_decay: f(cfg, "weight_decay", 1e-2),
                    amsgrad: flag(cfg, "amsgrad"),
                },
            )
            .unwrap(),
        ),
        "rmsprop" => Box::new(
            RmsProp::new(
                params,
                RmsPropConfig {
                    lr: f(cfg, "lr", 1e-2),
                    alpha: f(cfg, "alpha", 0.99),
                    eps: f(cfg, "eps", 1e-8),
                    weight_decay: f(cfg, "weight_decay", 0.0),
                    momentum: f(cfg, "momentum", 0.0),
                    centered: flag(cfg, "centered"),
                },
            )
            .unwrap(),
        ),
        other => panic!("unknown optimizer {other}"),
    }
}

fn check_optimizers(dtype: DType, tol: f64) {
    let data = data();
    let o = &data["optimizers"];
    let (x, y) = (tensor(&o["x"], dtype), tensor(&o["y"], dtype));
    let cases = o["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 17);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let w = Param::new(tensor(&o["w0"], dtype));
        let b = Param::new(tensor(&o["b0"], dtype));
        let mut opt =
            make_optimizer(case["optim"].as_str().unwrap(), &case["config"], vec![("w".into(), w.clone()), ("b".into(), b.clone())]);
        for (i, after) in case["after"].as_array().unwrap().iter().enumerate() {
            opt.zero_grad();
            let pred = x.matmul(&w.tensor()).unwrap().add(&b.tensor()).unwrap();
            pred.sub(&y).unwrap().sqr().unwrap().mean_all().unwrap().backward().unwrap();
            opt.step().unwrap();
            assert_close(&format!("{name} step {} w", i + 1), &w.value(), &after["w"], tol);
            assert_close(&format!("{name} step {} b", i + 1), &b.value(), &after["b"], tol);
        }
    }
}

#[test]
fn optimizers_match_pytorch_f64() {
    check_optimizers(DType::F64, 1e-10);
}

#[test]
fn optimizers_match_pytorch_f32() {
    check_optimizers(DType::F32, 1e-5);
}

#[test]
fn schedules_match_pytorch() {
    let data = data();
    for case in data["schedules"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let p = &case["params"];
        let base = case["base_lr"].as_f64().unwrap();
        let lrs: Vec<f64> = case["lrs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let usize_of = |k: &str| p[k].as_u64().unwrap() as usize;
        let (schedules, upto): (Vec<(usize, Schedule)>, usize) = match name {
            "step" => (vec![(0, Schedule::Step { step_size: usize_of("step_size"), gamma: p["gamma"].as_f64().unwrap() })], lrs.len()),
            "multistep" => {
                let milestones = p["milestones"].as_array().unwrap().iter().map(|m| m.as_u64().unwrap() as usize).collect();
                (vec![(0, Schedule::MultiStep { milestones, gamma: p["gamma"].as_f64().unwrap() })], lrs.len())
            }
            "exponential" => (vec![(0, Schedule::Exponential { gamma: p["gamma"].as_f64().unwrap() })], lrs.len()),
            // PyTorch's cosine restarts upwards after T_max; ours stays at min_lr, so compare up to T_max.
            // With a warmup, the cosine part is PyTorch's shifted by the warmup.
            "cosine" => {
                let (total, min_lr) = (usize_of("total"), p["min_lr"].as_f64().unwrap());
                let s = |warmup| (warmup, Schedule::CosineWarmup { warmup, total: total + warmup, min_lr });
                (vec![s(0), s(7)], total + 1)
            }
            "polynomial" | "polynomial_linear" => {
                (vec![(0, Schedule::Polynomial { total: usize_of("total"), power: p["power"].as_f64().unwrap(), end_lr: 0.0 })], lrs.len())
            }
            other => panic!("unknown schedule {other}"),
        };
        for (offset, s) in schedules {
            for (e, &want) in lrs.iter().enumerate().take(upto) {
                let got = s.lr_at(base, e + offset);
                assert!((got - want).abs() <= 1e-12, "{name} (offset {offset}) at {e}: got {got}, expected {want}");
            }
        }
    }
}

#[test]
fn clipping_matches_pytorch() {
    let data = data();
    let c = &data["clip"];
    for dtype in [DType::F64, DType::F32] {
        let tol = if dtype == DType::F64 { 1e-12 } else { 1e-6 };
        for case in c["cases"].as_array().unwrap() {
            // Gradients equal to g1, g2: the gradient of sum(p * g) is g.
            let (g1, g2) = (tensor(&c["g1"], dtype), tensor(&c["g2"], dtype));
            let p1 = Param::new(g1.zeros_like().unwrap());
            let p2 = Param::new(g2.zeros_like().unwrap());
            let l = p1.tensor().mul(&g1).unwrap().sum_all().unwrap().add(&p2.tensor().mul(&g2).unwrap().sum_all().unwrap()).unwrap();
            l.backward().unwrap();
            let params = vec![("a".to_string(), p1.clone()), ("b".to_string(), p2.clone())];
            let what = format!("{case} {dtype}");
            if case["kind"] == "norm" {
                let norm_type = if case["norm_type"] == "inf" { f64::INFINITY } else { case["norm_type"].as_f64().unwrap() };
                let total = clip_grad_norm(&params, case["max_norm"].as_f64().unwrap(), norm_type).unwrap();
                let want = case["total"].as_f64().unwrap();
                assert!((total - want).abs() <= tol * want.max(1.0), "{what}: total {total}, expected {want}");
            } else {
                clip_grad_value(&params, case["clip"].as_f64().unwrap()).unwrap();
            }
            assert_close(&format!("{what} grad 0"), &p1.grad().unwrap(), &case["grads"][0], tol);
            assert_close(&format!("{what} grad 1"), &p2.grad().unwrap(), &case["grads"][1], tol);
        }
    }
}
