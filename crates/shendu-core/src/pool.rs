//! A buffer pool for tensor storage. A training loop allocates the same intermediate sizes at
//! every step; dropping a tensor returns its buffer here and the next tensor of that length takes
//! it back, so a steady loop stops calling the system allocator (and stops page-faulting fresh
//! memory in, which on this class of machine costs more than the arithmetic of a large op).
//!
//! Buffers are shelved by capacity and a request takes the smallest one that holds it, up to
//! half again its length: the short last batch of an epoch, or an evaluation's short tail, runs in
//! the full batch's buffers instead of growing a second set of every size. Counters of live and
//! pooled bytes with their peaks are what `shendu train --mem-report` measures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use half::{bf16, f16};

/// Buffers kept per capacity; more than this are freed (the byte limit bounds the total). A
/// training step can hold many buffers of one size for its backward: ShuffleNetV2-28's holds
/// more than 32, and with a cap of 32 the rest were freed at every step and faulted in afresh
/// at the next (16 misses a step, 2.6% of its time in page faults and zeroing).
const MAX_PER_CAPACITY: usize = 1024;
/// A request of `len` elements may take a pooled buffer of up to `len + len / SLACK_DIVISOR`
/// elements: room for a short last batch, while a tensor half the size (the next stage of a
/// ResNet) does not take the buffer its full-size neighbour is about to ask for.
const SLACK_DIVISOR: usize = 2;

static POOLED_BYTES: AtomicUsize = AtomicUsize::new(0);
static HITS: AtomicUsize = AtomicUsize::new(0);
static MISSES: AtomicUsize = AtomicUsize::new(0);
/// Bytes of buffers handed out and not yet dropped (tensor storage in use).
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Highest `LIVE_BYTES` since the last [`reset_peaks`].
static PEAK_LIVE: AtomicUsize = AtomicUsize::new(0);
/// Highest live + pooled bytes since the last [`reset_peaks`]: the memory the pool answers for.
static PEAK_HELD: AtomicUsize = AtomicUsize::new(0);

fn byte_limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| std::env::var("SHENDU_POOL_MB").ok().and_then(|v| v.parse::<usize>().ok()).map(|mb| mb << 20).unwrap_or(2 << 30))
}

/// Counters of the pool, for benchmarks and the memory report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Allocations served from the pool.
    pub hits: usize,
    /// Allocations that went to the system allocator.
    pub misses: usize,
    /// Bytes currently held by the pool, ready for reuse.
    pub pooled_bytes: usize,
    /// Bytes of tensor buffers in use now.
    pub live_bytes: usize,
    /// Highest `live_bytes` since the last [`reset_peaks`].
    pub peak_live_bytes: usize,
    /// Highest live plus pooled bytes since the last [`reset_peaks`]: what tensor storage cost
    /// the process at its worst, buffers kept for reuse included.
    pub peak_held_bytes: usize,
    /// Scratch kernels keep between calls outside the pool (sgemm packing buffers, per thread).
    pub scratch_bytes: usize,
}

pub fn stats() -> PoolStats {
    PoolStats {
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
        pooled_bytes: POOLED_BYTES.load(Ordering::Relaxed),
        live_bytes: LIVE_BYTES.load(Ordering::Relaxed),
        peak_live_bytes: PEAK_LIVE.load(Ordering::Relaxed),
        peak_held_bytes: PEAK_HELD.load(Ordering::Relaxed),
        scratch_bytes: SCRATCH_BYTES.load(Ordering::Relaxed),
    }
}

/// Bytes of scratch that kernels keep outside the pool (sgemm's per-thread packing buffers).
static SCRATCH_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Kernels report scratch memory they keep between calls (grown by `bytes`, or shrunk with
/// [`scratch_released`]), so that a memory report can account for it.
pub fn scratch_grown(bytes: usize) {
    SCRATCH_BYTES.fetch_add(bytes, Ordering::Relaxed);
}

/// See [`scratch_grown`].
pub fn scratch_released(bytes: usize) {
    SCRATCH_BYTES.fetch_sub(bytes, Ordering::Relaxed);
}

/// Starts new peaks from the current live and held bytes (a memory report measures one step,
/// one epoch or one evaluation this way).
pub fn reset_peaks() {
    let live = LIVE_BYTES.load(Ordering::Relaxed);
    PEAK_LIVE.store(live, Ordering::Relaxed);
    PEAK_HELD.store(live + POOLED_BYTES.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Counts `bytes` handed out, raising the peaks. Two relaxed atomics per allocation: nothing
/// next to the work of filling the buffer.
fn count_out(bytes: usize) {
    let live = LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK_LIVE.fetch_max(live, Ordering::Relaxed);
    PEAK_HELD.fetch_max(live + POOLED_BYTES.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Pooled buffers by capacity.
type Shelves<T> = Mutex<BTreeMap<usize, Vec<Vec<T>>>>;

pub trait PoolElem: Copy + Default + Send + 'static {
    fn shelves() -> &'static Shelves<Self>;
}

macro_rules! pool_elem {
    ($($t:ty),*) => {$(
        impl PoolElem for $t {
            fn shelves() -> &'static Shelves<Self> {
                static S: OnceLock<Shelves<$t>> = OnceLock::new();
                S.get_or_init(|| Mutex::new(BTreeMap::new()))
            }
        }
    )*};
}
pool_elem!(f32, f64, f16, bf16, u8, i64);

/// A vector whose buffer goes back to the pool when dropped.
#[derive(Debug, Default)]
pub struct PooledVec<T: PoolElem>(Vec<T>);

impl<T: PoolElem> PooledVec<T> {
    pub fn from_vec(v: Vec<T>) -> Self {
        count_out(bytes_of(&v));
        PooledVec(v)
    }

    /// A buffer of `len` elements whose contents are unspecified (old values from the pool, or
    /// zeros): the caller writes every element.
    pub fn uninit(len: usize) -> Self {
        if len == 0 {
            // No buffer at all: neither a hit nor a miss (an empty `Vec` allocates nothing).
            return PooledVec(Vec::new());
        }
        let v = take::<T>(len).unwrap_or_else(|| {
            MISSES.fetch_add(1, Ordering::Relaxed);
            vec![T::default(); len]
        });
        count_out(bytes_of(&v));
        PooledVec(v)
    }

    /// A buffer of `len` copies of `value`.
    pub fn filled(len: usize, value: T) -> Self {
        let mut v = Self::uninit(len);
        v.0.fill(value);
        v
    }

    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: PoolElem> Drop for PooledVec<T> {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        LIVE_BYTES.fetch_sub(bytes_of(&v), Ordering::Relaxed);
        give_back(v);
    }
}

/// Memory a buffer holds: its capacity, which may exceed its length.
fn bytes_of<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

/// The smallest pooled buffer of capacity `len..=len + len / SLACK_DIVISOR`, set to length `len`.
fn take<T: PoolElem>(len: usize) -> Option<Vec<T>> {
    if len == 0 {
        return None;
    }
    let mut v = {
        let mut shelves = T::shelves().lock().ok()?;
        let (&capacity, shelf) = shelves.range_mut(len..=len.saturating_add(len / SLACK_DIVISOR)).next()?;
        let v = shelf.pop()?;
        if shelf.is_empty() {
            shelves.remove(&capacity);
        }
        v
    };
    POOLED_BYTES.fetch_sub(bytes_of(&v), Ordering::Relaxed);
    HITS.fetch_add(1, Ordering::Relaxed);
    // Growing within the capacity writes only the new tail; the caller overwrites it anyway.
    v.resize(len, T::default());
    Some(v)
}

fn give_back<T: PoolElem>(v: Vec<T>) {
    let bytes = bytes_of(&v);
    if v.capacity() == 0 || POOLED_BYTES.load(Ordering::Relaxed) + bytes > byte_limit() {
        return;
    }
    let Ok(mut shelves) = T::shelves().lock() else { return };
    let shelf = shelves.entry(v.capacity()).or_default();
    if shelf.len() < MAX_PER_CAPACITY {
        shelf.push(v);
        POOLED_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// An empty vector with room for exactly `capacity` elements, reusing a pooled buffer of that
/// length when there is one. For code that builds a tensor's data by pushing and then hands it
/// to `Tensor::from_vec` (a data loader's batches): without it, such buffers would go into the
/// pool when their tensors drop and never come out again.
pub fn vec_with_capacity<T: PoolElem>(capacity: usize) -> Vec<T> {
    match take::<T>(capacity) {
        Some(mut v) => {
            v.clear();
            v
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Frees every pooled buffer (after a phase that used sizes the next phase will not).
pub fn clear() {
    fn clear_one<T: PoolElem>() {
        if let Ok(mut s) = T::shelves().lock() {
            for (capacity, shelf) in std::mem::take(&mut *s) {
                POOLED_BYTES.fetch_sub(capacity * shelf.len() * std::mem::size_of::<T>(), Ordering::Relaxed);
            }
        }
    }
    clear_one::<f32>();
    clear_one::<f64>();
    clear_one::<f16>();
    clear_one::<bf16>();
    clear_one::<u8>();
    clear_one::<i64>();
}
