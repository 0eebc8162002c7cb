//! Thread count: `SHENDU_NUM_THREADS` (or `RAYON_NUM_THREADS`), else all cores; set once per
//! process before the first parallel kernel runs, or changed later with [`set_num_threads`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::thread_context::ThreadContext;

static OVERRIDE: AtomicUsize = AtomicUsize::new(0);

/// Threads of the pools: `SHENDU_NUM_THREADS` (or `RAYON_NUM_THREADS`), else all cores.
pub(crate) fn pool_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| env_threads().unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1))
}

/// The rayon pool of [`install`] (parallel iterators, as in k-means and k-NN); the kernels'
/// own forks go through [`fork_join`](super::fork_join).
fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = pool_size();
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .thread_name(|i| format!("shendu-{i}"))
            .build()
            .unwrap_or_else(|_| rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a 1-thread pool always builds"))
    })
}

fn env_threads() -> Option<usize> {
    ["SHENDU_NUM_THREADS", "RAYON_NUM_THREADS"].iter().find_map(|k| std::env::var(k).ok()?.trim().parse::<usize>().ok()).filter(|&n| n > 0)
}

/// Threads kernels use: the last [`set_num_threads`], else the pool size.
pub fn num_threads() -> usize {
    match OVERRIDE.load(Ordering::Relaxed) {
        0 => pool().current_num_threads(),
        n => n.min(pool().current_num_threads().max(n)),
    }
}

/// Limits kernels to `n` threads (at most the pool size, which `SHENDU_NUM_THREADS` fixes).
pub fn set_num_threads(n: usize) {
    OVERRIDE.store(n.max(1), Ordering::Relaxed);
}

/// Runs `f` inside shendu's thread pool so rayon parallel iterators use it, in the caller's
/// [`ThreadContext`] (grad mode, numerics scope).
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // On a pool thread rayon would run `f` right here, in this thread's own context anyway.
    if num_threads() <= 1 || pool().current_thread_index().is_some() {
        return f();
    }
    let ctx = ThreadContext::capture();
    pool().install(move || ctx.run(f))
}

/// Splits `0..n` into at most `num_threads()` contiguous ranges of at least `min_chunk` items
/// (`ceil(n / chunks)` each, the last shorter) and runs `f` on each in parallel, the calling
/// thread included, through [`fork_join`](super::fork_join): idle workers spin for a moment
/// before they sleep, so forking costs a store rather than a wake-up, and a range whose worker
/// is descheduled is run by the caller instead of waited for. The ranges run in the caller's
/// [`ThreadContext`](super::thread_context::ThreadContext).
pub fn parallel_ranges(n: usize, min_chunk: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    let threads = num_threads();
    let chunks = (n / min_chunk.max(1)).clamp(1, threads);
    if chunks <= 1 {
        f(0..n);
        return;
    }
    let per = n.div_ceil(chunks);
    super::fork_join::run_chunks(chunks, &|c| {
        let r = c * per..((c + 1) * per).min(n);
        if !r.is_empty() {
            f(r);
        }
    });
}
