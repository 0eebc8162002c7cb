//! Keeping the pool's threads awake for a whole compiled run.
//!
//! A run is a burst of kernels, each split over the pool and joined again. Between two of them
//! an idle rayon worker soon goes to sleep, and waking it costs tens of microseconds (more on a
//! virtual machine, where the idle vCPU is halted) for every kernel. A session knows the burst
//! ahead, so for its duration it parks the other workers in a loop that runs pool work as soon
//! as a kernel forks it (the role of OpenMP's active wait policy, limited to the run).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::cpu::threads;

/// Sets the flag when dropped, so that the spinning workers stop even if the run panics.
struct Done<'a>(&'a AtomicBool);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Idle rounds after which a spinning worker yields its CPU between polls (other processes
/// may need the core; a yield costs far less than a sleep and wake-up).
const SPINS_BEFORE_YIELD: u32 = 1 << 12;

/// Runs `f` on the pool with the other workers kept awake, stealing the jobs `f`'s kernels fork.
pub(super) fn run_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let n = threads::num_threads();
    if n <= 1 || std::env::var_os("SHENDU_GRAPH_NOSPIN").is_some() {
        return f();
    }
    threads::install(|| {
        let done = AtomicBool::new(false);
        rayon::scope(|s| {
            for _ in 1..n {
                s.spawn(|_| {
                    let mut idle = 0u32;
                    while !done.load(Ordering::Acquire) {
                        match rayon::yield_now() {
                            Some(rayon::Yield::Executed) => idle = 0,
                            _ => {
                                idle = idle.saturating_add(1);
                                if idle >= SPINS_BEFORE_YIELD {
                                    std::thread::yield_now();
                                } else {
                                    std::hint::spin_loop();
                                }
                            }
                        }
                    }
                });
            }
            let _done = Done(&done);
            f()
        })
    })
}
