//! A buffer pool for tensor storage. A training loop allocates the same intermediate sizes at
//! every step; dropping a tensor returns its buffer here and the next tensor of that length takes
//! it back, so a steady loop stops calling the system allocator (and stops page-faulting fresh
//! memory in, which on this class of machine costs more than the arithmetic of a large op).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use half::{bf16, f16};

/// Buffers kept per length; more than this are freed.
const MAX_PER_LENGTH: usize = 32;

static POOLED_BYTES: AtomicUsize = AtomicUsize::new(0);
static HITS: AtomicUsize = AtomicUsize::new(0);
static MISSES: AtomicUsize = AtomicUsize::new(0);

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
}

pub fn stats() -> PoolStats {
    PoolStats {
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
        pooled_bytes: POOLED_BYTES.load(Ordering::Relaxed),
    }
}

type Shelves<T> = Mutex<HashMap<usize, Vec<Vec<T>>>>;

pub trait PoolElem: Copy + Default + Send + 'static {
    fn shelves() -> &'static Shelves<Self>;
}

macro_rules! pool_elem {
    ($($t:ty),*) => {$(
        impl PoolElem for $t {
            fn shelves() -> &'static Shelves<Self> {
                static S: OnceLock<Shelves<$t>> = OnceLock::new();
                S.get_or_init(|| Mutex::new(HashMap::new()))
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
        PooledVec(v)
    }

    /// A buffer of `len` elements whose contents are unspecified (old values from the pool, or
    /// zeros): the caller writes every element.
    pub fn uninit(len: usize) -> Self {
        if let Some(v) = take::<T>(len) {
            return PooledVec(v);
        }
        MISSES.fetch_add(1, Ordering::Relaxed);
        PooledVec(vec![T::default(); len])
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
        give_back(v);
    }
}

fn take<T: PoolElem>(len: usize) -> Option<Vec<T>> {
    if len == 0 {
        return None;
    }
    let mut shelves = T::shelves().lock().ok()?;
    let v = shelves.get_mut(&len)?.pop()?;
    POOLED_BYTES.fetch_sub(len * std::mem::size_of::<T>(), Ordering::Relaxed);
    HITS.fetch_add(1, Ordering::Relaxed);
    Some(v)
}

fn give_back<T: PoolElem>(v: Vec<T>) {
    let len = v.len();
    let bytes = len * std::mem::size_of::<T>();
    if len == 0 || v.capacity() != len || POOLED_BYTES.load(Ordering::Relaxed) + bytes > byte_limit() {
        return;
    }
    let Ok(mut shelves) = T::shelves().lock() else { return };
    let shelf = shelves.entry(len).or_default();
    if shelf.len() < MAX_PER_LENGTH {
        shelf.push(v);
        POOLED_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Frees every pooled buffer (after a phase that used sizes the next phase will not).
pub fn clear() {
    fn clear_one<T: PoolElem>() {
        if let Ok(mut s) = T::shelves().lock() {
            for (len, shelf) in s.drain() {
                POOLED_BYTES.fetch_sub(len * shelf.len() * std::mem::size_of::<T>(), Ordering::Relaxed);
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
