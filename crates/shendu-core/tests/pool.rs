//! The buffer pool: after the first step of a steady loop, tensor buffers come from the pool,
//! not the system allocator.

use shendu_core::{pool, DType, Tensor, Var};

/// Held by the tests that count the pool's misses or cause many: the counters are global.
static MISS_COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    let _serial = MISS_COUNTING.lock().unwrap_or_else(|e| e.into_inner());
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

/// A step that holds many buffers of one size at once (a deep network keeps dozens of
/// same-sized activations for its backward) gets all of them back from the pool at the next
/// step. With a cap of 32 buffers per size, the rest were freed and allocated afresh each step.
#[test]
fn many_buffers_of_one_size_all_come_back() {
    let _serial = MISS_COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    use pool::PooledVec;
    // A length no other test uses, so the buffers seen are this test's (200 x 160 KB).
    let len = 40_009;
    let held = |n: usize| (0..n).map(|_| PooledVec::<f32>::uninit(len)).collect::<Vec<_>>();
    drop(held(200));
    // Mark every buffer of the second round; a pooled buffer keeps its contents, a fresh one
    // from the system allocator arrives zeroed. (Addresses would not tell: the allocator
    // often hands a freed block straight back.)
    let mut second = held(200);
    second.iter_mut().for_each(|v| v.as_mut_slice().fill(7.0));
    drop(second);
    let third = held(200);
    let fresh = third.iter().filter(|v| v.as_slice().iter().any(|&x| x != 7.0)).count();
    assert_eq!(fresh, 0, "{fresh} of 200 buffers were freed after the second round instead of pooled");
}
