//! Criterion benches of the kernels behind `shendu bench`: sgemm n=256 and 1024 (W1), conv2d
//! forward (W2) and depthwise conv2d forward (W3); and of the weight-gradient products that
//! sum along both operands' rows (`cpu::gemm_nt` against the general gemm on the same product)
//! and a 1x1 convolution on a 14x14 map, forward and weight gradient (MobileNet and
//! ShuffleNet's pointwise layers).
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

/// `C += A · Bᵀ` with both operands along k: ResNet-20's 16-channel Winograd weight-gradient
/// product (16 x 16 x 112) and a 1x1 layer's (144 x 24 x 784), through both kernels.
fn weight_gradient_products(c: &mut Criterion) {
    use shendu_core::cpu::gemm::{gemm, MatMut, MatRef};
    use shendu_core::cpu::gemm_nt::gemm_nt;
    let mut g = c.benchmark_group("gemm A·Bᵀ");
    g.sample_size(20);
    for (m, n, k) in [(16usize, 16usize, 112usize), (144, 24, 784)] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut out = vec![0f32; m * n];
        g.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        g.bench_function(format!("{m}x{n}x{k} gemm_nt"), |bch| bch.iter(|| gemm_nt(m, n, k, &a, k, &b, k, &mut out, n)));
        g.bench_function(format!("{m}x{n}x{k} gemm"), |bch| {
            bch.iter(|| {
                let (dst, lhs, rhs) = (
                    MatMut { ptr: out.as_mut_ptr(), rs: n as isize, cs: 1 },
                    MatRef { ptr: a.as_ptr(), rs: k as isize, cs: 1 },
                    MatRef { ptr: b.as_ptr(), rs: 1, cs: k as isize },
                );
                // SAFETY: the buffers hold the m x k, n x k and m x n operands.
                unsafe { gemm(m, n, k, dst, true, lhs, rhs, false) }
            })
        });
    }
    g.finish();
}

/// A 1x1 convolution, 96 -> 96 channels on 14x14 at batch 64: forward, and the weight gradient
/// (forward + backward).
fn pointwise(c: &mut Criterion) {
    use shendu_core::{Conv2dParams, DType, Tensor, Var};
    let mut g = c.benchmark_group("pointwise 96->96 14x14 n64");
    g.sample_size(20);
    let x = Tensor::randn(vec![64, 96, 14, 14], DType::F32).expect("input");
    let w = Var::new(Tensor::randn(vec![96, 96, 1, 1], DType::F32).expect("weight"));
    let p = Conv2dParams::default();
    let gy = Tensor::randn(vec![64, 96, 14, 14], DType::F32).expect("output gradient");
    // GFLOP/s: the forward's multiply-adds, twice that with the weight gradient.
    let fwd_flops = 2 * 64 * 96 * 96 * 196;
    g.throughput(Throughput::Elements(fwd_flops));
    g.bench_function("forward", |bch| bch.iter(|| x.conv2d(&w, &p).expect("conv2d")));
    g.throughput(Throughput::Elements(2 * fwd_flops));
    g.bench_function("forward + weight gradient", |bch| {
        bch.iter(|| x.conv2d(&w, &p).expect("conv2d").backward_with_grad(&gy, false).expect("backward"))
    });
    g.finish();
}

criterion_group!(benches, sgemm, conv, weight_gradient_products, pointwise);
criterion_main!(benches);
