//! P0: the machine's single-precision peak, measured the way `peers/fma/fma_peak.c` does it.
//!
//! Each thread runs 12 independent chains of 8-wide fused multiply-adds (16 flop each); with
//! 2 FMA pipes of 4-cycle latency (Zen 3, most Intel cores) 8 chains already saturate a core.
//! Rust never reassociates float arithmetic, so the chains stay as written.

use std::sync::Barrier;
use std::time::Instant;

/// Independent accumulator chains per thread.
const CHAINS: usize = 12;
/// Inner iterations of one timed run per thread: 12 x 16 x 5e7 = 9.6 GFLOP, about 0.1 s on
/// one core at the peak (the C probe's count).
const ITERS: u64 = 50_000_000;

/// Which kernel the probe ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// 256-bit `vfmadd` (x86-64 with AVX2 and FMA, detected at run time).
    Avx2Fma,
    /// Separate multiply and add on plain arrays, for CPUs without AVX2+FMA.
    Scalar,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Kernel::Avx2Fma;
            }
        }
        Kernel::Scalar
    }

    /// A short description for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Kernel::Avx2Fma => "AVX2 FMA, 12 chains",
            Kernel::Scalar => "scalar mul+add fallback, 12 chains",
        }
    }

    /// Floating-point operations of `iters` iterations.
    fn flops(self, iters: u64) -> f64 {
        // Both kernels do 12 chains x 8 lanes x 2 flop per iteration.
        iters as f64 * (CHAINS * 8 * 2) as f64
    }

    fn run(self, iters: u64) -> f32 {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2Fma` is only chosen by `detect` after checking both features.
            Kernel::Avx2Fma => unsafe { avx2_chains(iters) },
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx2Fma => scalar_chains(iters),
            Kernel::Scalar => scalar_chains(iters),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_chains(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let m = _mm256_set1_ps(0.999_999_9);
    let a = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_setzero_ps(); CHAINS];
    for (i, c) in acc.iter_mut().enumerate() {
        *c = _mm256_set1_ps(i as f32);
    }
    for _ in 0..iters {
        for c in acc.iter_mut() {
            *c = _mm256_fmadd_ps(*c, m, a);
        }
    }
    let mut s = acc[0];
    for c in &acc[1..] {
        s = _mm256_add_ps(s, *c);
    }
    let mut out = [0f32; 8];
    _mm256_storeu_ps(out.as_mut_ptr(), s);
    out[0]
}

fn scalar_chains(iters: u64) -> f32 {
    let mut acc = [[0f32; 8]; CHAINS];
    for (i, c) in acc.iter_mut().enumerate() {
        *c = [i as f32; 8];
    }
    // black_box keeps the constants opaque so the loop cannot be folded.
    let m = std::hint::black_box(0.999_999_9f32);
    let a = std::hint::black_box(1e-7f32);
    for _ in 0..iters {
        for c in acc.iter_mut() {
            for v in c.iter_mut() {
                *v = *v * m + a;
            }
        }
    }
    acc.iter().map(|c| c[0]).sum()
}

/// One measured probe figure.
#[derive(Clone, Copy, Debug)]
pub struct Peak {
    /// Threads that ran the kernel at once.
    pub threads: usize,
    /// GFLOP/s of all threads together (median over the repetitions).
    pub gflops: f64,
    /// Whether every thread was pinned to its own cpu.
    pub pinned: bool,
    pub kernel: Kernel,
}

/// GFLOP/s of `threads` threads running the kernel at once, median of `reps` runs. Threads are
/// pinned to distinct cpus of the process's affinity mask when it has enough of them (so a run
/// under `taskset -c 0` stays on cpu 0), else left to the scheduler.
pub fn measure(threads: usize, reps: usize) -> Peak {
    measure_with(Kernel::detect(), threads, reps, ITERS)
}

fn measure_with(kernel: Kernel, threads: usize, reps: usize, iters: u64) -> Peak {
    let threads = threads.max(1);
    let cpus = affinity::allowed_cpus();
    let pinned = cpus.len() >= threads;
    let mut runs: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let secs = run_once(kernel, threads, iters, if pinned { &cpus[..threads] } else { &[] });
            threads as f64 * kernel.flops(iters) / secs / 1e9
        })
        .collect();
    Peak { threads, gflops: super::timing::median(&mut runs), pinned, kernel }
}

/// Seconds for `threads` threads to each run `iters` iterations, timed between two barriers
/// after a short warm-up that lets the clocks ramp up.
fn run_once(kernel: Kernel, threads: usize, iters: u64, pin_to: &[usize]) -> f64 {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            let cpu = pin_to.get(t).copied();
            s.spawn(move || {
                if let Some(cpu) = cpu {
                    affinity::pin_current_thread(cpu);
                }
                std::hint::black_box(kernel.run(iters / 20));
                barrier.wait();
                std::hint::black_box(kernel.run(iters));
                barrier.wait();
            });
        }
        barrier.wait();
        let t0 = Instant::now();
        barrier.wait();
        t0.elapsed().as_secs_f64().max(1e-9)
    })
}

#[cfg(target_os = "linux")]
mod affinity {
    /// The cpus this process may run on, in increasing order.
    pub fn allowed_cpus() -> Vec<usize> {
        // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Vec::new();
            }
            (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
        }
    }

    /// Best effort: a failure leaves the thread where the scheduler puts it.
    pub fn pin_current_thread(cpu: usize) {
        // SAFETY: as above; pid 0 is the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod affinity {
    pub fn allowed_cpus() -> Vec<usize> {
        Vec::new()
    }
    pub fn pin_current_thread(_cpu: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_and_report_positive_rates() {
        // Same arithmetic in both kernels up to FMA's single rounding.
        let a = Kernel::detect().run(1000);
        let b = scalar_chains(1000);
        assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "{a} vs {b}");
        let p = measure_with(Kernel::detect(), 2, 3, 200_000);
        assert_eq!(p.threads, 2);
        assert!(p.gflops.is_finite() && p.gflops > 0.0);
        let s = measure_with(Kernel::Scalar, 1, 1, 100_000);
        assert!(s.gflops > 0.0);
    }
}
