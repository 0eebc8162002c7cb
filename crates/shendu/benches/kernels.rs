//! Criterion benches of the kernels behind `shendu bench`: sgemm n=256 and 1024 (W1), conv2d
//! forward (W2) and depthwise conv2d forward (W3).
//!
//! `cargo bench -p shendu --bench kernels`; the thread count follows
//! `SHENDU_NUM_THREADS` (all cores by default).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shendu::bench;

fn sgemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("sgemm");
    g.sample_size(20);
    for n in [256usize, 1024] {
        let (a, b) = bench::sgemm_inputs(n).expect("sgemm inputs");
        // One "element" per flop, so criterion's Gelem/s reads as GFLOP/s.
        g.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        g.bench_function(format!("n={n}"), |bch| bch.iter(|| a.matmul(&b).expect("matmul")));
    }
    g.finish();
}

fn conv(c: &mut Criterion) {
    use bench::conv;
    let mut g = c.benchmark_group("conv");
    g.sample_size(20);
    let (x, w) = conv::conv_inputs().expect("conv inputs");
    g.bench_function("W2 conv fwd", |bch| bch.iter(|| conv::forward(&x, &w, 1).expect("conv2d")));
    let (x, w) = conv::dwconv_inputs().expect("dwconv inputs");
    let groups = conv::DWCONV_SHAPE.0[1];
    g.bench_function("W3 dwconv fwd", |bch| bch.iter(|| conv::forward(&x, &w, groups).expect("conv2d")));
    g.finish();
}

criterion_group!(benches, sgemm, conv);
criterion_main!(benches);
