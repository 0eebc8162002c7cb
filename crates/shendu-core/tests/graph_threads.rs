//! Compiled runs on the thread pool while other threads run sessions too: every run keeps the
//! pool's workers awake (`graph::awake`) and they steal each other's kernel pieces, so this
//! checks that no run waits on itself and that each gets the single-threaded results.

use shendu_core::graph::{Graph, Node, Session};
use shendu_core::{DType, Tensor};

/// A two-layer training step (products large enough to split over threads).
fn step_graph(seed: u64) -> (Graph, Node, Node, Node, Tensor) {
    shendu_core::manual_seed(seed);
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[None, Some(256)]);
    let w1 = g.variable("w1", Tensor::randn(&[256, 128], DType::F32).unwrap().mul_scalar(0.05).unwrap());
    let w2 = g.variable("w2", Tensor::randn(&[128, 64], DType::F32).unwrap().mul_scalar(0.05).unwrap());
    let loss = x.matmul(&w1).unwrap().relu().unwrap().matmul(&w2).unwrap().sqr().unwrap().mean_all().unwrap();
    let gr = g.gradients(&[&loss], &[&w1, &w2]).unwrap();
    let u1 = w1.assign_sub(&gr[0].clone().unwrap().mul_scalar(0.1).unwrap()).unwrap();
    let u2 = w2.assign_sub(&gr[1].clone().unwrap().mul_scalar(0.1).unwrap()).unwrap();
    let train = g.group(&[&u1, &u2]).unwrap();
    let xs = Tensor::randn(&[96, 256], DType::F32).unwrap();
    (g, x, loss, train, xs)
}

fn losses(seed: u64, runs: usize) -> Vec<f32> {
    let (g, x, loss, train, xs) = step_graph(seed);
    let mut sess = Session::new(&g);
    (0..runs).map(|_| sess.run(&[&loss, &train], &[(&x, &xs)]).unwrap()[0].to_vec::<f32>().unwrap()[0]).collect()
}

#[test]
fn concurrent_sessions_on_the_pool_finish_with_the_serial_results() {
    shendu_core::cpu::threads::set_num_threads(1);
    let want: Vec<Vec<f32>> = (0..4).map(|s| losses(s, 12)).collect();
    shendu_core::cpu::threads::set_num_threads(2);
    let got: Vec<Vec<f32>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4u64).map(|s| sc.spawn(move || losses(s, 12))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (s, (g, w)) in got.iter().zip(&want).enumerate() {
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "session {s} run {i}: {a} on 2 threads vs {b} on 1");
        }
    }
}
