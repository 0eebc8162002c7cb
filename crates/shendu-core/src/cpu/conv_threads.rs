//! How the convolution kernels spread their work items (image, group, band of rows) over
//! threads.
//!
//! Threads take chunks of items from a shared counter until none are left, rather than one fixed
//! range each: on a machine shared with other processes one of two threads is often descheduled
//! for a few milliseconds, and with fixed ranges the other then sits at the join while the
//! descheduled one finishes its half; with chunks it takes over the rest of the work. Each thread
//! still runs its items without any synchronisation inside them, and keeps its scratch buffers
//! across all the chunks it takes.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cpu::conv::ConvElem;
use crate::cpu::elementwise::SendPtr;
use crate::cpu::{threads, winograd};
use crate::dtype::Float;
use crate::pool::PooledVec;

/// The items one thread runs: chunks of `unit` consecutive items taken from a shared counter.
pub(crate) struct Items<'a> {
    next: &'a AtomicUsize,
    total: usize,
    unit: usize,
    cur: Range<usize>,
}

impl<'a> Items<'a> {
    fn new(next: &'a AtomicUsize, total: usize, unit: usize) -> Self {
        Items { next, total, unit: unit.max(1), cur: 0..0 }
    }
}

impl Iterator for Items<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if let Some(i) = self.cur.next() {
            return Some(i);
        }
        let start = self.next.fetch_add(self.unit, Ordering::Relaxed);
        if start >= self.total {
            return None;
        }
        self.cur = start + 1..(start + self.unit).min(self.total);
        Some(start)
    }
}

/// Runs `f(items, allow_gemm_threads)` over the work items `0..total`. On several threads each
/// thread calls `f` once, and its `items` hand it chunks of `unit` consecutive items (so state
/// kept per image, such as a padded input copy, is reused across a chunk) until all are taken;
/// with one thread, or fewer items than threads, or item threads switched off
/// ([`winograd::set_item_threads`]), one call here takes every item and may thread its gemms.
pub(crate) fn for_items(total: usize, unit: usize, f: impl Fn(&mut Items<'_>, bool) + Sync) {
    let t = threads::num_threads();
    let next = AtomicUsize::new(0);
    if t > 1 && total >= t && winograd::item_threads() {
        threads::parallel_ranges(t, 1, |r| {
            for _ in r {
                f(&mut Items::new(&next, total, unit), false);
            }
        });
    } else {
        f(&mut Items::new(&next, total, total), true);
    }
}

/// Runs `f(chunk)` over `0..n` split into chunks of at least `min_chunk`, several per thread,
/// taken from a shared counter.
pub(crate) fn for_chunks(n: usize, min_chunk: usize, f: impl Fn(Range<usize>) + Sync) {
    let t = threads::num_threads();
    let chunks = (n / min_chunk.max(1)).min(8 * t);
    if t <= 1 || chunks < 2 {
        return f(0..n);
    }
    let next = AtomicUsize::new(0);
    threads::parallel_ranges(t, 1, |_| loop {
        let c = next.fetch_add(1, Ordering::Relaxed);
        if c >= chunks {
            break;
        }
        f(c * n / chunks..(c + 1) * n / chunks);
    });
}

/// Runs `run(items, allow_gemm_threads, acc)` over the work items `0..total` and sums the results
/// into `out` (which arrives zeroed). The items are cut into a fixed set of chunks of whole
/// `unit`s (four per thread), threads take chunks from a shared counter, each chunk sums into its
/// own buffer (`out` itself for the first), and the buffers are added in chunk order: the result
/// depends on the thread count but not on which thread ran which chunk.
pub(crate) fn sum_over_items<T: ConvElem>(total: usize, unit: usize, out: &mut [T], run: impl Fn(Range<usize>, bool, &mut [T]) + Sync) {
    let t = threads::num_threads();
    if t <= 1 || total < t || !winograd::item_threads() {
        return run(0..total, true, out);
    }
    let unit = unit.max(1);
    let units = total.div_ceil(unit);
    let chunks = units.min(4 * t);
    let bound = |c: usize| (c * units / chunks * unit).min(total);
    let len = out.len();
    let mut partials: Vec<PooledVec<T>> = (1..chunks).map(|_| PooledVec::uninit(len)).collect();
    let ptrs: Vec<SendPtr<T>> =
        std::iter::once(SendPtr(out.as_mut_ptr())).chain(partials.iter_mut().map(|p| SendPtr(p.as_mut_slice().as_mut_ptr()))).collect();
    let next = AtomicUsize::new(0);
    threads::parallel_ranges(t, 1, |_| loop {
        let c = next.fetch_add(1, Ordering::Relaxed);
        if c >= chunks {
            break;
        }
        // SAFETY: chunk c, taken by one thread only, owns buffer c of `len` elements.
        let acc = unsafe { ptrs[c].slice_mut(0..len) };
        if c > 0 {
            acc.fill(<T as Float>::ZERO);
        }
        run(bound(c)..bound(c + 1), false, acc);
    });
    let parts: Vec<SendPtr<T>> = ptrs[1..].to_vec();
    let dst = ptrs[0];
    threads::parallel_ranges(len, 1 << 14, |r| {
        // SAFETY: disjoint ranges of `out`; the partial buffers are only read now.
        let o = unsafe { dst.slice_mut(r.clone()) };
        for p in &parts {
            let s = unsafe { p.slice_mut(r.clone()) };
            for (d, &v) in o.iter_mut().zip(s.iter()) {
                *d += v;
            }
        }
    });
    drop(partials);
}
