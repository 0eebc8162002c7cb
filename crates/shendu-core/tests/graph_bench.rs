//! Timing of BENCH.md's W4 training step (MLP 784-512-512-10, batch 128, softmax
//! cross-entropy, SGD) in eager and graph mode, at 1 and 2 threads. Ignored by default:
//! `cargo test --release -p shendu-core --test graph_bench -- --ignored --nocapture`.

use std::time::Instant;

use shendu_core::graph::{Graph, Node, Session};
use shendu_core::{DType, Tensor, Var};

const SIZES: [usize; 4] = [784, 512, 512, 10];
const BATCH: usize = 128;
const LR: f64 = 0.05;

fn init() -> Vec<(Tensor, Tensor)> {
    shendu_core::manual_seed(0);
    SIZES
        .windows(2)
        .map(|w| {
            let scale = (1.0 / w[0] as f64).sqrt();
            (Tensor::randn(&[w[0], w[1]], DType::F32).unwrap().mul_scalar(scale).unwrap(), Tensor::zeros(&[w[1]], DType::F32).unwrap())
        })
        .collect()
}

fn data() -> (Tensor, Tensor) {
    let x = Tensor::randn(&[BATCH, SIZES[0]], DType::F32).unwrap();
    let c = SIZES[3];
    let y: Vec<f32> = (0..BATCH * c).map(|i| if i % c == (i / c) % c { 1.0 } else { 0.0 }).collect();
    (x, Tensor::from_vec(y, &[BATCH, c]).unwrap())
}

/// Median seconds per call of `f` over `n` calls after 3 warm-up calls.
fn time(n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[n / 2]
}

fn eager_step(params: &[(Var, Var)], x: &Tensor, y: &Tensor) -> f64 {
    let mut h = x.clone();
    for (i, (w, b)) in params.iter().enumerate() {
        h = h.matmul(w).unwrap().add(b).unwrap();
        if i + 1 < params.len() {
            h = h.relu().unwrap();
        }
    }
    let loss = h.log_softmax(1).unwrap().mul(y).unwrap().sum(&[1], false).unwrap().mean_all().unwrap().neg().unwrap();
    let grads = loss.backward().unwrap();
    for (w, b) in params {
        for p in [w, b] {
            p.sub_assign(&grads.get(p).unwrap().mul_scalar(LR).unwrap()).unwrap();
            p.zero_grad();
        }
    }
    loss.to_f64().unwrap()
}

fn graph_step() -> (Graph, Node, Node, Node, Node) {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[None, Some(SIZES[0])]);
    let y = g.placeholder("y", DType::F32, &[None, Some(SIZES[3])]);
    let mut h = x.clone();
    let mut params = Vec::new();
    let n = SIZES.len() - 1;
    for (i, (w, b)) in init().into_iter().enumerate() {
        let (w, b) = (g.variable("w", w), g.variable("b", b));
        h = h.matmul(&w).unwrap().add(&b).unwrap();
        if i + 1 < n {
            h = h.relu().unwrap();
        }
        params.extend([w, b]);
    }
    let loss = h.log_softmax(1).unwrap().mul(&y).unwrap().sum(&[1], false).unwrap().mean_all().unwrap().neg().unwrap();
    let grads = g.gradients(&[&loss], &params.iter().collect::<Vec<_>>()).unwrap();
    let ups: Vec<Node> = params.iter().zip(grads).map(|(p, gp)| p.assign_sub(&gp.unwrap().mul_scalar(LR).unwrap()).unwrap()).collect();
    let train = g.group(&ups.iter().collect::<Vec<_>>()).unwrap();
    (g, x, y, loss, train)
}

#[test]
#[ignore]
fn w4_mlp_step_eager_vs_graph() {
    let (xs, ys) = data();
    for threads in [1, 2] {
        shendu_core::set_num_threads(threads);
        let params: Vec<(Var, Var)> = init().into_iter().map(|(w, b)| (Var::new(w), Var::new(b))).collect();
        let eager = time(50, || {
            eager_step(&params, &xs, &ys);
        });
        let (g, x, y, loss, train) = graph_step();
        let mut sess = Session::new(&g);
        let mut out = vec![Tensor::zeros((), DType::F32).unwrap(), Tensor::zeros(0, DType::F32).unwrap()];
        let feeds = [(&x, &xs), (&y, &ys)];
        let graph = time(50, || sess.run_into(&[&loss, &train], &feeds, &mut out).unwrap());
        println!(
            "W4 MLP step, {threads} thread(s): eager {:.3} ms, graph {:.3} ms, speedup {:.2}x",
            eager * 1e3,
            graph * 1e3,
            eager / graph
        );
    }
}

/// The W4 plan in words (which steps, fusions and buffers), for profiling.
#[test]
#[ignore]
fn w4_plan_explain() {
    let (xs, ys) = data();
    let (g, x, y, loss, train) = graph_step();
    let mut sess = Session::new(&g);
    sess.run(&[&loss, &train], &[(&x, &xs), (&y, &ys)]).unwrap();
    println!("{}", sess.explain());
}

/// Steps of one mode only, for `perf record` / `perf stat`: SHENDU_PROFILE_STEPS steps (default
/// 300) of SHENDU_PROFILE_MODE (`graph`, the default, or `eager`).
#[test]
#[ignore]
fn w4_profile() {
    let steps = std::env::var("SHENDU_PROFILE_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let (xs, ys) = data();
    if std::env::var("SHENDU_PROFILE_MODE").is_ok_and(|m| m == "eager") {
        let params: Vec<(Var, Var)> = init().into_iter().map(|(w, b)| (Var::new(w), Var::new(b))).collect();
        for _ in 0..steps {
            eager_step(&params, &xs, &ys);
        }
        return;
    }
    let (g, x, y, loss, train) = graph_step();
    let mut sess = Session::new(&g);
    let mut out = vec![Tensor::zeros((), DType::F32).unwrap(), Tensor::zeros(0, DType::F32).unwrap()];
    let feeds = [(&x, &xs), (&y, &ys)];
    for _ in 0..steps {
        sess.run_into(&[&loss, &train], &feeds, &mut out).unwrap();
    }
}
