//! The buffer pool: after the first step of a steady loop, tensor buffers come from the pool,
//! not the system allocator.

use shendu_core::{pool, DType, Tensor, Var};

fn step(x: &Tensor, y: &Tensor, w1: &Var, w2: &Var) -> f32 {
    let pred = x.matmul(w1).unwrap().relu().unwrap().matmul(w2).unwrap();
    let loss = pred.sub(y).unwrap().sqr().unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    w1.sub_assign(&grads.get(w1).unwrap().mul_scalar(1e-6).unwrap()).unwrap();
    w2.sub_assign(&grads.get(w2).unwrap().mul_scalar(1e-6).unwrap()).unwrap();
    w1.zero_grad();
    w2.zero_grad();
    loss.to_scalar::<f32>().unwrap()
}

#[test]
fn steady_training_loop_reuses_buffers() {
    shendu_core::manual_seed(1);
    let x = Tensor::randn(&[64, 100], DType::F32).unwrap();
    let y = Tensor::randn(&[64, 10], DType::F32).unwrap();
    let w1 = Var::new(Tensor::randn(&[100, 50], DType::F32).unwrap());
    let w2 = Var::new(Tensor::randn(&[50, 10], DType::F32).unwrap());
    for _ in 0..3 {
        step(&x, &y, &w1, &w2);
    }
    let before = pool::stats();
    for _ in 0..10 {
        step(&x, &y, &w1, &w2);
    }
    let after = pool::stats();
    // Other tests in this binary run on other threads; this one only checks its own loop ran
    // from the pool: hits grew and misses did not grow by more than a few per step.
    assert!(after.hits > before.hits + 100, "pool hits {} -> {}", before.hits, after.hits);
    assert!(after.misses - before.misses <= 2, "system allocations in steady state: {}", after.misses - before.misses);
}
