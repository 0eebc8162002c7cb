//! Times f32 products through shendu's packed kernel and the `gemm` crate, interleaved so load
//! from other processes hits both alike. `cargo run --release -p shendu-core --example sgemm_bench`
//! Env: SGEMM_SHAPES="m,n,k;..." (default: squares + conv/MLP shapes), SGEMM_THREADS="1,2",
//! SGEMM_ISA=avx2|avx512, SGEMM_KC / SGEMM_MC / SGEMM_NC (blocking), SGEMM_REPS (default 7).

use std::time::Instant;

use shendu_core::cpu::gemm::{gemm_crate, MatMut, MatRef};
use shendu_core::cpu::sgemm::{sgemm, Isa};
use shendu_core::cpu::threads;

/// Nanoseconds this thread has run on a CPU (Linux), so a 1-thread rate can discount time slices
/// lost to other processes (SGEMM_CLOCK=cpu).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

fn env_usize(k: &str) -> Option<usize> {
    std::env::var(k).ok()?.parse().ok()
}

fn main() {
    let shapes: Vec<(usize, usize, usize)> = std::env::var("SGEMM_SHAPES")
        .unwrap_or_else(|_| "256,256,256;1024,1024,1024;2048,2048,2048;64,3136,576;128,512,784;64,1024,64;1,512,784".into())
        .split(';')
        .map(|s| {
            let v: Vec<usize> = s.split(',').map(|x| x.trim().parse().unwrap()).collect();
            (v[0], v[1], v[2])
        })
        .collect();
    let thread_list: Vec<usize> =
        std::env::var("SGEMM_THREADS").unwrap_or_else(|_| "1,2".into()).split(',').map(|x| x.parse().unwrap()).collect();
    let isa = match std::env::var("SGEMM_ISA").as_deref() {
        Ok("avx2") => Isa::Avx2,
        Ok("avx512") => Isa::Avx512,
        _ => Isa::detect().expect("needs AVX2 or AVX-512"),
    };
    let mut blk = isa.default_blocking();
    blk.kc = env_usize("SGEMM_KC").unwrap_or(blk.kc);
    blk.mc = env_usize("SGEMM_MC").unwrap_or(blk.mc);
    blk.nc = env_usize("SGEMM_NC").unwrap_or(blk.nc);
    let reps = env_usize("SGEMM_REPS").unwrap_or(7);
    let cpu_clock = std::env::var("SGEMM_CLOCK").as_deref() == Ok("cpu");
    println!("isa {isa:?} blocking {blk:?}");
    println!("{:>18} {:>3} {:>10} {:>10} {:>7}", "m x n x k", "thr", "ours GF/s", "crate GF/s", "ratio");
    for &(m, n, k) in &shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        for &t in &thread_list {
            threads::set_num_threads(t);
            let flops = 2.0 * (m * n * k) as f64;
            // Enough calls per sample for ~50 ms.
            let iters = ((5e9 / flops) as usize).clamp(1, 100_000);
            let run = |ours: bool, c: &mut [f32]| {
                let dst = MatMut { ptr: c.as_mut_ptr(), rs: n as isize, cs: 1 };
                let lhs = MatRef { ptr: a.as_ptr(), rs: k as isize, cs: 1 };
                let rhs = MatRef { ptr: b.as_ptr(), rs: n as isize, cs: 1 };
                let start = Instant::now();
                let cpu0 = thread_cpu_ns();
                for _ in 0..iters {
                    // SAFETY: the buffers match the shapes and strides.
                    unsafe {
                        if ours {
                            let nt = if m * n * k >= 1 << 18 { t } else { 1 };
                            sgemm(m, n, k, dst, false, lhs, rhs, nt, isa, blk)
                        } else {
                            gemm_crate(m, n, k, dst, false, lhs, rhs, true)
                        }
                    }
                }
                let secs = match (cpu_clock, cpu0, thread_cpu_ns()) {
                    (true, Some(a), Some(b)) => (b - a) as f64 * 1e-9,
                    _ => start.elapsed().as_secs_f64(),
                };
                flops * iters as f64 / secs / 1e9
            };
            if std::env::var("SGEMM_ONLY").as_deref() == Ok("ours") {
                let best = (0..reps).map(|_| run(true, &mut c)).fold(0.0, f64::max);
                println!("{m}x{n}x{k} t={t}: best {best:.1} GF/s");
                continue;
            }
            run(true, &mut c);
            run(false, &mut c);
            let (mut ours, mut theirs) = (vec![], vec![]);
            for _ in 0..reps {
                ours.push(run(true, &mut c));
                theirs.push(run(false, &mut c));
            }
            ours.sort_by(f64::total_cmp);
            theirs.sort_by(f64::total_cmp);
            let (o, g) = (ours[reps / 2], theirs[reps / 2]);
            println!(
                "{:>18} {t:>3} {o:>10.1} {g:>10.1} {:>7.2}   (ours {:.0}-{:.0}, crate {:.0}-{:.0})",
                format!("{m}x{n}x{k}"),
                o / g,
                ours[0],
                ours[reps - 1],
                theirs[0],
                theirs[reps - 1]
            );
        }
    }
}
