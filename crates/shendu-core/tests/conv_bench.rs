//! Timings of the benchmark workloads W2 (conv2d) and W3 (depthwise), 1 and 2 threads:
//! `cargo test --release -p shendu-core --test conv_bench -- --ignored --nocapture`
//! (the machines are shared: read the medians side by side with a peer run, not as absolutes).
//! Environment: `THREADS=1,2`, `REPS=9`, `CPU=1` (also print on-CPU time), and `ONLY=` one of
//! `W2` (W2 and W3), `W2,parts` (also the two W2 gradients alone), `W3` (W3 forward only),
//! `W3B` (W3 forward+backward), `W3parts`, `ab` / `ab,bw` (Winograd against im2col, forward /
//! weight gradient, interleaved), `threads` (2 threads: per-thread work items against threaded
//! gemms, interleaved).

use std::time::Instant;

use shendu_core::{manual_seed, set_num_threads, Conv2dParams, DType, Tensor, Var};

/// On-CPU nanoseconds of all this process's threads (from the scheduler's accounting): on a
/// machine shared with other jobs this counts only the time the benchmark actually ran.
fn cpu_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0 };
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Median wall-clock ms of `reps` runs; also prints the median on-CPU ms per thread when
/// `CPU=1` (a steadier figure on a busy machine).
fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut cpu = Vec::new();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let c = cpu_ns();
            let s = Instant::now();
            f();
            let wall = s.elapsed().as_secs_f64() * 1e3;
            cpu.push((cpu_ns() - c) as f64 / 1e6);
            wall
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    cpu.sort_by(|a, b| a.total_cmp(b));
    if std::env::var("CPU").is_ok() {
        eprint!("[cpu {:.2} ms, wall min {:.2}] ", cpu[reps / 2], t[0]);
    }
    t[reps / 2]
}

#[test]
#[ignore]
fn bench_conv_workloads() {
    manual_seed(0);
    let reps: usize = std::env::var("REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(9);
    let x = Tensor::randn([32, 64, 28, 28], DType::F32).unwrap();
    let w = Tensor::randn([64, 64, 3, 3], DType::F32).unwrap().affine(0.05, 0.0).unwrap();
    let gy = Tensor::randn([32, 64, 28, 28], DType::F32).unwrap();
    let xd = Tensor::randn([32, 128, 28, 28], DType::F32).unwrap();
    let wd = Tensor::randn([128, 1, 3, 3], DType::F32).unwrap();
    let p = Conv2dParams::default().with_pad(1);
    let pd = p.with_groups(128);
    let flop = 2.0 * 32.0 * 64.0 * 64.0 * 9.0 * 784.0;
    let only = std::env::var("ONLY").unwrap_or_default();
    if only.contains("threads") {
        // Interleaved A/B at 2 threads: work items per thread vs threaded gemms.
        set_num_threads(2);
        for (name, wino) in [("winograd", true), ("im2col", false)] {
            shendu_core::cpu::winograd::set_enabled(wino);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for rep in 0..reps * 2 + 2 {
                for (items, v) in [(true, &mut a), (false, &mut b)] {
                    shendu_core::cpu::winograd::set_item_threads(items);
                    let (xv, wv) = (Var::new(x.clone()), Var::new(w.clone()));
                    let s = Instant::now();
                    let y = xv.conv2d(&wv, &p).unwrap();
                    y.backward_with_grad(&gy, false).unwrap();
                    if rep >= 2 {
                        v.push(s.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }
            a.sort_by(|x, y| x.total_cmp(y));
            b.sort_by(|x, y| x.total_cmp(y));
            println!(
                "threads 2, {name} fwd+bwd: items {:.2} ms (min {:.2}), gemm threads {:.2} ms (min {:.2})",
                a[a.len() / 2],
                a[0],
                b[b.len() / 2],
                b[0]
            );
        }
        return;
    }
    if only.contains("ab") {
        // Interleaved A/B: Winograd on/off for the forward, the op mix of fwd+bwd.
        set_num_threads(1);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let _g = shendu_core::no_grad();
        for rep in 0..reps * 2 + 2 {
            for (on, v) in [(true, &mut a), (false, &mut b)] {
                shendu_core::cpu::winograd::set_enabled(on);
                let s = Instant::now();
                if only.contains("bw") {
                    use shendu_core::ops::conv::{Conv2dWeightGrad, ConvSpec};
                    use shendu_core::Op;
                    let spec = ConvSpec { stride: (1, 1), pads: [1; 4], dilation: (1, 1), groups: 1 };
                    Conv2dWeightGrad { spec, kernel: (3, 3) }.forward(&[&x, &gy]).unwrap();
                } else {
                    x.conv2d(&w, &p).unwrap();
                }
                if rep >= 2 {
                    v.push(s.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        let ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
        let med = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(|a, b| a.total_cmp(b));
            (v[v.len() / 2], v[0])
        };
        println!("threads 1: winograd {:?} ms, im2col {:?} ms (median, min); ratio median {:?}", med(&a), med(&b), med(&ratios));
        return;
    }
    let want = |w: &str| only.is_empty() || only.contains(w);
    let list = std::env::var("THREADS").unwrap_or_else(|_| "1,2".into());
    for threads in list.split(',').filter_map(|t| t.trim().parse::<usize>().ok()) {
        set_num_threads(threads);
        if only.contains("W3parts") {
            use shendu_core::ops::conv::{Conv2dWeightGrad, ConvSpec};
            use shendu_core::ops::conv_transpose::ConvTranspose2d;
            use shendu_core::Op;
            let spec = ConvSpec { stride: (1, 1), pads: [1; 4], dilation: (1, 1), groups: 128 };
            let bd = median_ms(reps, || {
                ConvTranspose2d { spec, output_padding: (0, 0) }.forward(&[&xd, &wd]).unwrap();
            });
            let bw = median_ms(reps, || {
                Conv2dWeightGrad { spec, kernel: (3, 3) }.forward(&[&xd, &xd]).unwrap();
            });
            println!("threads {threads}: W3 backward-data {bd:.2} ms | backward-weight {bw:.2} ms");
            continue;
        }
        if only.contains("W3B") {
            let (xdv, wdv) = (Var::new(xd.clone()), Var::new(wd.clone()));
            let dwb = median_ms(reps, || {
                xdv.zero_grad();
                wdv.zero_grad();
                let y = xdv.conv2d(&wdv, &pd).unwrap();
                y.backward_with_grad(&xd, false).unwrap();
            });
            println!("threads {threads}: W3 dwconv fwd+bwd {dwb:.2} ms");
            continue;
        }
        if !want("W2") {
            let dw = median_ms(reps, || {
                let _g = shendu_core::no_grad();
                xd.conv2d(&wd, &pd).unwrap();
            });
            println!("threads {threads}: W3 dwconv fwd {dw:.2} ms");
            continue;
        }
        let fwd = median_ms(reps, || {
            let _g = shendu_core::no_grad();
            x.conv2d(&w, &p).unwrap();
        });
        let (xv, wv) = (Var::new(x.clone()), Var::new(w.clone()));
        let fb = median_ms(reps, || {
            // like torch.autograd.grad: no accumulation into .grad from earlier reps
            xv.zero_grad();
            wv.zero_grad();
            let y = xv.conv2d(&wv, &p).unwrap();
            let g = y.backward_with_grad(&gy, false).unwrap();
            assert!(g.get(&xv).is_some() && g.get(&wv).is_some());
        });
        let dw = median_ms(reps, || {
            let _g = shendu_core::no_grad();
            xd.conv2d(&wd, &pd).unwrap();
        });
        if want("parts") {
            use shendu_core::ops::conv::{Conv2dWeightGrad, ConvSpec};
            use shendu_core::ops::conv_transpose::ConvTranspose2d;
            use shendu_core::Op;
            let spec = ConvSpec { stride: (1, 1), pads: [1; 4], dilation: (1, 1), groups: 1 };
            let bd = median_ms(reps, || {
                ConvTranspose2d { spec, output_padding: (0, 0) }.forward(&[&gy, &w]).unwrap();
            });
            let bw = median_ms(reps, || {
                Conv2dWeightGrad { spec, kernel: (3, 3) }.forward(&[&x, &gy]).unwrap();
            });
            println!("threads {threads}: W2 backward-data {bd:.2} ms | backward-weight {bw:.2} ms");
        }
        let (xdv, wdv) = (Var::new(xd.clone()), Var::new(wd.clone()));
        let dwb = median_ms(reps, || {
            xdv.zero_grad();
            wdv.zero_grad();
            let y = xdv.conv2d(&wdv, &pd).unwrap();
            y.backward_with_grad(&xd, false).unwrap();
        });
        println!("threads {threads}: W3 dwconv fwd+bwd {dwb:.2} ms");
        println!(
            "threads {threads}: W2 conv fwd {fwd:.2} ms ({:.1} GFLOP/s) | W2 conv fwd+bwd {fb:.2} ms | W3 dwconv fwd {dw:.2} ms",
            flop / fwd / 1e6
        );
    }
}
