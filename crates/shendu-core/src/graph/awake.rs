//! Keeping the pool's threads awake for a whole compiled run.
//!
//! A run is a burst of kernels, each split over the pool and joined again. Between two of them
//! an idle rayon worker soon goes to sleep, and waking it costs tens of microseconds (more on a
//! virtual machine, where the idle vCPU is halted) for every kernel. A session knows the burst
//! ahead, so for its duration it parks the other workers in a loop that runs pool work as soon
//! as a kernel forks it (the role of OpenMP's active wait policy, limited to the run).
//!
//! A spinner only spins on a thread that is in no run and no other spinner: a spinner picked up
//! by a thread waiting inside a run (its own or another session's) returns at once, since
//! spinning there would hold that run until this one ends, and two such runs could each hold
//! the other.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::cpu::threads;

thread_local! {
    /// Whether this thread is inside a run's kernels or a spinner.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread busy until dropped (restoring the previous mark, also on unwind).
struct Busy(bool);

impl Busy {
    fn enter() -> Busy {
        Busy(BUSY.with(|b| b.replace(true)))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.with(|b| b.set(self.0));
    }
}

/// Sets the flag when dropped, so that the spinners stop even if the run panics.
struct Done<'a>(&'a AtomicBool);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Idle polls after which a spinning worker yields its CPU between polls (other processes may
/// need the core; a yield costs far less than a sleep and wake-up).
const SPINS_BEFORE_YIELD: u32 = 1 << 12;

/// Whether runs keep the pool awake: yes unless `SHENDU_GRAPH_SPIN=0` (for a machine shared
/// with other busy processes, where a spinning worker takes a core from them).
fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("SHENDU_GRAPH_SPIN").map_or(true, |v| v.trim() != "0"))
}

/// Polls the pool for work until `done`.
fn spin(done: &AtomicBool) {
    if BUSY.with(|b| b.get()) {
        return;
    }
    let _busy = Busy::enter();
    let mut idle = 0u32;
    while !done.load(Ordering::Acquire) {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => idle = 0,
            _ if idle >= SPINS_BEFORE_YIELD => std::thread::yield_now(),
            _ => {
                idle += 1;
                std::hint::spin_loop();
            }
        }
    }
}

/// Runs `f` on the pool with the other workers kept awake, stealing the jobs `f`'s kernels fork.
pub(super) fn run_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let n = threads::num_threads();
    if n <= 1 || !enabled() {
        return f();
    }
    threads::install(|| {
        let done = AtomicBool::new(false);
        rayon::scope(|s| {
            for _ in 1..n {
                s.spawn(|_| spin(&done));
            }
            let _done = Done(&done);
            let _busy = Busy::enter();
            f()
        })
    })
}
