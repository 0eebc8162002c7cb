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

#[test]
fn a_shorter_request_reuses_a_longer_buffer_within_half_again() {
    use pool::PooledVec;
    // Lengths no other test uses, so the buffers seen are this test's.
    let full = 1_234_567;
    let ptr = {
        let v = PooledVec::<f32>::uninit(full);
        v.as_slice().as_ptr()
    };
    // A short last batch (here 75%) runs in the full batch's buffer, at its own length.
    let short = PooledVec::<f32>::uninit(full * 3 / 4);
    assert_eq!(short.len(), full * 3 / 4);
    assert_eq!(short.as_slice().as_ptr(), ptr, "the pooled buffer was not reused");
    drop(short);
    // A request under two thirds of it would waste over a third: it gets its own buffer.
    let small = PooledVec::<f32>::uninit(full / 2);
    assert_ne!(small.as_slice().as_ptr(), ptr);
    // Growing back to the full length within the capacity keeps the buffer.
    let again = PooledVec::<f32>::uninit(full);
    assert_eq!((again.len(), again.as_slice().as_ptr()), (full, ptr));
}

#[test]
fn vec_with_capacity_takes_a_pooled_buffer() {
    let len = 765_431;
    let ptr = {
        let t = Tensor::from_vec(vec![1.0f64; len], len).unwrap();
        t.with_contiguous::<f64, _>("test", |s| s.as_ptr()).unwrap()
    };
    let v: Vec<f64> = pool::vec_with_capacity(len);
    assert!(v.is_empty() && v.capacity() >= len);
    assert_eq!(v.as_ptr(), ptr, "the tensor's buffer, back in the pool, was not reused");
}

#[test]
fn empty_buffers_are_neither_hits_nor_misses() {
    use pool::PooledVec;
    let before = pool::stats();
    for _ in 0..1000 {
        let v = PooledVec::<f32>::uninit(0);
        assert!(v.is_empty());
    }
    let after = pool::stats();
    // The other tests of this binary may run meanwhile, but make far fewer than 1000 requests.
    assert!(after.misses - before.misses < 100, "misses {} -> {}", before.misses, after.misses);
    assert!(after.hits - before.hits < 100, "hits {} -> {}", before.hits, after.hits);
}
