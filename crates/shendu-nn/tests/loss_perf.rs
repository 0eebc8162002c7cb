//! Timings of the per-step hot paths (cross entropy forward + backward at 128 x 10, optimizer
//! steps over 1M f32 weights). Ignored by default; run with
//! `cargo test --release -p shendu-nn --test loss_perf -- --ignored --nocapture`.

use std::time::Instant;

use shendu_core::{DType, Tensor, Var};
use shendu_nn::loss::{cross_entropy, CrossEntropyOpts};
use shendu_nn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use shendu_nn::Param;

fn time(what: &str, iters: usize, mut f: impl FnMut()) {
    for _ in 0..iters / 10 + 1 {
        f();
    }
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    println!("{what}: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / iters as f64);
}

#[test]
#[ignore]
fn perf_cross_entropy_and_steps() {
    shendu_core::manual_seed(1);
    let logits = Var::new(Tensor::randn(&[128, 10], DType::F32).unwrap());
    let targets = Tensor::from_vec((0..128).map(|i| (i * 7 % 10) as i64).collect::<Vec<_>>(), &[128]).unwrap();
    let opts = CrossEntropyOpts::default();
    time("cross_entropy 128x10 f32 forward", 20000, || {
        cross_entropy(&logits, &targets, &opts).unwrap();
    });
    time("cross_entropy 128x10 f32 forward+backward", 20000, || {
        cross_entropy(&logits, &targets, &opts).unwrap().backward().unwrap();
    });
    let smooth = CrossEntropyOpts { label_smoothing: 0.1, ..Default::default() };
    time("cross_entropy 128x10 f32 smoothing forward+backward", 20000, || {
        cross_entropy(&logits, &targets, &smooth).unwrap().backward().unwrap();
    });
    let w = Param::new(Tensor::randn(&[1024, 1024], DType::F32).unwrap());
    w.tensor().sum_all().unwrap().backward().unwrap();
    let v = w.value().copy().unwrap();
    time("Param::set, 1M f32", 200, || w.set(&v).unwrap());
    let mut sgd = Sgd::new(vec![("w".into(), w.clone())], SgdConfig { lr: 1e-3, momentum: 0.9, ..Default::default() }).unwrap();
    time("SGD momentum step, 1M f32", 200, || sgd.step().unwrap());
    let mut adam = Adam::new(vec![("w".into(), w.clone())], AdamConfig::default()).unwrap();
    time("Adam step, 1M f32", 200, || adam.step().unwrap());
    let small: Vec<(String, Param)> =
        (0..8).map(|i| (format!("p{i}"), Param::new(Tensor::randn(&[64, 32], DType::F32).unwrap()))).collect();
    for (_, p) in &small {
        p.tensor().sum_all().unwrap().backward().unwrap();
    }
    let mut adam = Adam::new(small, AdamConfig::default()).unwrap();
    time("Adam step, 8 x 2048 f32", 5000, || adam.step().unwrap());
}
