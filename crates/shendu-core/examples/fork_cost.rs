//! The cost of one fork-join on 2 threads: shendu's `parallel_ranges` (`cpu/fork_join.rs`,
//! spinning workers) against a rayon scope with a spawned job (what the kernels used before),
//! with a little work in each range and serial work between forks, as in a training step.
//! `cargo run --release -p shendu-core --example fork_cost`
//! The overhead is the time per fork beyond the work inside and between forks.

use std::hint::black_box;
use std::time::Instant;

use shendu_core::cpu::threads;

/// Busy-waits `us` microseconds (work that neither sleeps nor touches memory).
fn spin(us: f64) {
    let t = Instant::now();
    while t.elapsed().as_secs_f64() * 1e6 < us {
        black_box(0);
    }
}

fn rayon_fork(pool: &rayon::ThreadPool, work: f64) {
    pool.in_place_scope(|s| {
        s.spawn(|_| spin(work));
        spin(work);
    });
}

fn main() {
    threads::set_num_threads(2);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a 2-thread rayon pool");
    let forks = 5000;
    println!("{:>8} {:>8} {:>16} {:>16}", "work us", "gap us", "shendu overhead", "rayon overhead");
    for (work, gap) in [(0.0, 0.0), (5.0, 0.0), (5.0, 5.0), (20.0, 20.0), (50.0, 100.0)] {
        let time = |fork: &dyn Fn()| {
            let t = Instant::now();
            for _ in 0..forks {
                fork();
                spin(gap);
            }
            t.elapsed().as_secs_f64() * 1e6 / forks as f64 - work - gap
        };
        let ours = time(&|| threads::parallel_ranges(2, 1, |_| spin(work)));
        let theirs = time(&|| rayon_fork(&pool, work));
        println!("{work:>8.1} {gap:>8.1} {ours:>13.2} us {theirs:>13.2} us");
    }
}
