//! Work handed to shendu's pool runs in its caller's thread context (grad mode, numerics
//! scope), whichever pool thread takes it, and never in the state of that pool thread, which
//! may be waiting inside another job. The layer tap's part is tested in `shendu-nn`'s tap.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shendu_core::cpu::threads::{install, parallel_ranges};
use shendu_core::{is_grad_enabled, no_grad, numerics, set_num_threads};

/// The tests share the pool and one needs its threads idle.
static POOL: Mutex<()> = Mutex::new(());

fn wait_for(flag: &AtomicBool) {
    let start = Instant::now();
    while !flag.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(5) {
        std::thread::yield_now();
    }
}

/// The numerics scope path and grad mode of this thread.
fn state() -> (String, bool) {
    (numerics::current_path(), is_grad_enabled())
}

/// Runs `stolen` as a job of this thread while a pool thread W is inside the state `inside`
/// sets up in another job, waiting in a `rayon::join` for its second half, which the second
/// pool thread runs (a job waiting on the pool, as the `gemm` crate's threaded products do).
/// In a 2-thread pool W is the only idle thread, so W runs `stolen`. Returns its result,
/// whether W ran it, and W's state after the wait. (The kernels' own forks, `parallel_ranges`,
/// never run other jobs while they wait: `cpu::fork_join`.)
fn steal_while_inside<G, R: Send>(inside: impl Fn() -> G + Sync, stolen: impl FnOnce() -> R + Send) -> (R, bool, (String, bool)) {
    set_num_threads(2);
    let second_started = AtomicBool::new(false);
    let stolen_done = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let a = sc.spawn(|| {
            install(|| {
                let _state = inside();
                rayon::join(
                    || wait_for(&second_started),
                    || {
                        second_started.store(true, Ordering::Release);
                        wait_for(&stolen_done);
                    },
                );
                (std::thread::current().id(), state())
            })
        });
        wait_for(&second_started);
        let (r, by) = install(|| (stolen(), std::thread::current().id()));
        stolen_done.store(true, Ordering::Release);
        let (w, after) = a.join().unwrap();
        if w != by {
            eprintln!("the stolen job ran on another pool thread: the pool has more than 2 threads");
        }
        (r, w == by, after)
    })
}

#[test]
fn parallel_ranges_on_the_pool_see_the_callers_scope_and_grad_mode() {
    let _pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    set_num_threads(2);
    let _s = numerics::scope("model");
    let _b = numerics::scope("block");
    let _g = no_grad();
    let seen = Mutex::new(Vec::new());
    let second_started = AtomicBool::new(false);
    parallel_ranges(2, 1, |r| {
        let name = std::thread::current().name().unwrap_or("").to_string();
        seen.lock().unwrap().push((r.start, name, numerics::current_path(), is_grad_enabled()));
        // Whichever range the caller claims first, it waits here until the other has started
        // elsewhere: on a pool worker.
        second_started.fetch_or(r.start == 1, Ordering::AcqRel);
        if r.start == 0 {
            wait_for(&second_started);
        }
    });
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    assert_eq!(seen.len(), 2);
    // The test thread is no pool thread, and one of the ranges ran on the pool.
    assert!(seen.iter().any(|s| s.1.starts_with("shendu-")), "{seen:?}");
    for (_, _, path, grad) in &seen {
        assert_eq!((path.as_str(), *grad), ("model/block", false));
    }
}

#[test]
fn install_runs_in_the_callers_scope() {
    let _pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    set_num_threads(2);
    assert_eq!(install(numerics::current_path), "");
    let _s = numerics::scope("step");
    assert_eq!(install(numerics::current_path), "step");
}

#[test]
fn a_job_run_by_a_pool_thread_waiting_inside_another_job_sees_only_its_callers_state() {
    let _pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let _mine = numerics::scope("mine");
    let (seen, _, after) = steal_while_inside(|| (no_grad(), numerics::scope("theirs")), state);
    assert_eq!(seen, ("mine".to_string(), true));
    // The waiting job got its own state back.
    assert_eq!(after, ("theirs".to_string(), false));
}
