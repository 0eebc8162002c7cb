//! A compiled training step allocates nothing after its first run (counted by a global
//! allocator), and its planned buffers take at most half the bytes of its intermediates.
//! One test per binary so no other test allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use shendu_core::graph::{Graph, Node, Session};
use shendu_core::{DType, Tensor};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNT_HERE.try_with(|c| c.get()).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator; the counter has no effect on the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations made by this thread while `f` runs.
fn count(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNT_HERE.with(|c| c.set(true));
    f();
    COUNT_HERE.with(|c| c.set(false));
    ALLOCS.load(Ordering::Relaxed) - before
}

/// An MLP on `sizes` with softmax cross-entropy (one-hot labels) and an SGD step.
fn mlp(sizes: &[usize], lr: f64) -> (Graph, Node, Node, Node, Node) {
    shendu_core::manual_seed(0);
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[None, Some(sizes[0])]);
    let y = g.placeholder("labels", DType::F32, &[None, Some(*sizes.last().unwrap())]);
    let mut h = x.clone();
    let mut params = Vec::new();
    for (i, w) in sizes.windows(2).enumerate() {
        let _s = g.scope(&format!("layer{i}"));
        let scale = (1.0 / w[0] as f64).sqrt();
        let wv = g.variable("weight", Tensor::randn(&[w[0], w[1]], DType::F32).unwrap().mul_scalar(scale).unwrap());
        let bv = g.variable("bias", Tensor::zeros(&[w[1]], DType::F32).unwrap());
        h = h.matmul(&wv).unwrap().add(&bv).unwrap();
        if i + 2 < sizes.len() {
            h = h.relu().unwrap();
        }
        params.extend([wv, bv]);
    }
    let loss = h.log_softmax(1).unwrap().mul(&y).unwrap().sum(&[1], false).unwrap().mean_all().unwrap().neg().unwrap();
    let refs: Vec<&Node> = params.iter().collect();
    let grads = g.gradients(&[&loss], &refs).unwrap();
    let updates: Vec<Node> = params.iter().zip(grads).map(|(p, gp)| p.assign_sub(&gp.unwrap().mul_scalar(lr).unwrap()).unwrap()).collect();
    let train = g.group(&updates.iter().collect::<Vec<_>>()).unwrap();
    (g, x, y, loss, train)
}

fn data(batch: usize, d_in: usize, classes: usize) -> (Tensor, Tensor) {
    let x = Tensor::randn(&[batch, d_in], DType::F32).unwrap();
    let labels: Vec<f32> = (0..batch * classes).map(|i| if i % classes == (i / classes) % classes { 1.0 } else { 0.0 }).collect();
    (x, Tensor::from_vec(labels, &[batch, classes]).unwrap())
}

#[test]
fn compiled_steps_allocate_nothing_after_the_first_run() {
    shendu_core::set_num_threads(1);
    // The MLP 784-512-512-10 at batch 128.
    let (g, x, y, loss, train) = mlp(&[784, 512, 512, 10], 0.05);
    let (xs, ys) = data(128, 784, 10);
    let mut sess = Session::new(&g);
    let mut out = vec![Tensor::zeros((), DType::F32).unwrap(), Tensor::zeros(0, DType::F32).unwrap()];
    let feeds = [(&x, &xs), (&y, &ys)];
    sess.run_into(&[&loss, &train], &feeds, &mut out).unwrap();
    let first = out[0].to_f64().unwrap();
    let n = count(|| {
        for _ in 0..10 {
            sess.run_into(&[&loss, &train], &feeds, &mut out).unwrap();
        }
    });
    let last = out[0].to_f64().unwrap();
    assert!(last < first, "training must lower the loss: {first} -> {last}");
    let report = sess.memory_report();
    println!("MLP: {n} allocations in 10 steps; {report}");
    println!("{}", sess.explain());
    assert_eq!(n, 0, "allocations in 10 compiled steps");
    assert!(
        report.planned_peak_bytes * 2 <= report.intermediates_bytes,
        "planned peak {} vs intermediates {}",
        report.planned_peak_bytes,
        report.intermediates_bytes
    );

    // The two-layer net of the notebook.
    shendu_core::manual_seed(0);
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[None, Some(1000)]);
    let y = g.placeholder("y", DType::F32, &[None, Some(10)]);
    let w1 = g.variable("w1", Tensor::randn(&[1000, 100], DType::F32).unwrap());
    let w2 = g.variable("w2", Tensor::randn(&[100, 10], DType::F32).unwrap());
    let loss = x.matmul(&w1).unwrap().relu().unwrap().matmul(&w2).unwrap().sub(&y).unwrap().sqr().unwrap().sum_all().unwrap();
    let gr = g.gradients(&[&loss], &[&w1, &w2]).unwrap();
    let u1 = w1.assign_sub(&gr[0].clone().unwrap().mul_scalar(1e-6).unwrap()).unwrap();
    let u2 = w2.assign_sub(&gr[1].clone().unwrap().mul_scalar(1e-6).unwrap()).unwrap();
    let train = g.group(&[&u1, &u2]).unwrap();
    let (xs, ys) = (Tensor::randn(&[64, 1000], DType::F32).unwrap(), Tensor::randn(&[64, 10], DType::F32).unwrap());
    let mut sess = Session::new(&g);
    let feeds = [(&x, &xs), (&y, &ys)];
    sess.run_into(&[&loss, &train], &feeds, &mut out).unwrap();
    let n = count(|| {
        for _ in 0..10 {
            sess.run_into(&[&loss, &train], &feeds, &mut out).unwrap();
        }
    });
    println!("two-layer net: {n} allocations in 10 steps; {}", sess.memory_report());
    assert_eq!(n, 0, "allocations in 10 compiled steps of the two-layer net");

    // With a thread pool the kernels' fork-join (rayon scopes) boxes its jobs: reported only.
    shendu_core::set_num_threads(2);
    sess.run_into(&[&loss, &train], &feeds, &mut out).unwrap();
    let n = count(|| {
        for _ in 0..10 {
            sess.run_into(&[&loss, &train], &feeds, &mut out).unwrap();
        }
    });
    println!("two-layer net, 2 threads: {n} allocations in 10 steps (the calling thread's)");
}
