//! Elementwise map and zip over strided inputs, parallel on large contiguous data.

use crate::cpu::threads::parallel_ranges;
use crate::layout::{for_each_row_n, RowWalk};
use crate::pool::{PoolElem, PooledVec};
use crate::Layout;

/// Elements per parallel chunk: below this, threading costs more than it saves.
const PAR_CHUNK: usize = 1 << 15;

/// A raw pointer that may cross threads; each thread writes a disjoint range.
pub struct SendPtr<T>(pub *mut T);
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `SendPtr`, not its field).
    pub fn get(self) -> *mut T {
        self.0
    }
    /// # Safety
    /// `range` must be in bounds and not written by any other thread at the same time.
    pub unsafe fn slice_mut<'a>(self, range: std::ops::Range<usize>) -> &'a mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(range.start), range.len())
    }
}

/// Runs `f(range, out_chunk)` over disjoint chunks of `out` in parallel.
pub fn par_fill<U: Send>(out: &mut [U], min_chunk: usize, f: impl Fn(std::ops::Range<usize>, &mut [U]) + Sync) {
    let n = out.len();
    let ptr = SendPtr(out.as_mut_ptr());
    parallel_ranges(n, min_chunk, |r| {
        // SAFETY: parallel_ranges hands out disjoint in-bounds ranges.
        let chunk = unsafe { ptr.slice_mut(r.clone()) };
        f(r, chunk)
    });
}

/// `out[i] = f(x[i])` in row-major order of `layout`.
pub fn map<T: Copy + Sync, U: PoolElem + Sync>(x: &[T], layout: &Layout, f: impl Fn(T) -> U + Sync) -> PooledVec<U> {
    let n = layout.elem_count();
    let mut out = PooledVec::<U>::uninit(n);
    if let Some(r) = layout.contiguous_range() {
        let x = &x[r];
        par_fill(out.as_mut_slice(), PAR_CHUNK, |r, o| {
            for (o, &v) in o.iter_mut().zip(&x[r]) {
                *o = f(v);
            }
        });
    } else if let Some(walk) = RowWalk::new([layout]).filter(|_| n >= PAR_CHUNK) {
        // A large strided view (a channel shuffle's transpose, a permute): rows split between
        // threads, each writing its own part of the output.
        let (row, dst) = (walk.row_len(), SendPtr(out.as_mut_slice().as_mut_ptr()));
        parallel_ranges(walk.rows(), PAR_CHUNK.div_ceil(row), |rows| {
            // SAFETY: row i fills out[i * row..(i + 1) * row]; the ranges are disjoint.
            let o = unsafe { dst.slice_mut(rows.start * row..rows.end * row) };
            let mut i = 0;
            walk.for_rows(rows, |[off], [st], len| {
                map_row(&mut o[i..i + len], x, off, st, &f);
                i += len;
            });
        });
    } else {
        let o = out.as_mut_slice();
        let mut i = 0;
        layout.for_each_row(|off, len, st| {
            map_row(&mut o[i..i + len], x, off, st, &f);
            i += len;
        });
    }
    out
}

/// `o[k] = f(x[off + k * st])`.
#[inline(always)]
fn map_row<T: Copy, U>(o: &mut [U], x: &[T], off: usize, st: usize, f: &impl Fn(T) -> U) {
    if st == 1 {
        // Unit-stride rows (a permuted view's merged planes): a loop that vectorises.
        let len = o.len();
        o.iter_mut().zip(&x[off..off + len]).for_each(|(o, &v)| *o = f(v));
    } else {
        for (k, o) in o.iter_mut().enumerate() {
            *o = f(x[off + k * st]);
        }
    }
}

/// `out[i] = f(a[i], b[i])` where both layouts already have the output's shape (broadcast views).
pub fn zip<T: Copy + Sync, U: PoolElem + Sync>(a: &[T], la: &Layout, b: &[T], lb: &Layout, f: impl Fn(T, T) -> U + Sync) -> PooledVec<U> {
    let n = la.elem_count();
    let mut out = PooledVec::<U>::uninit(n);
    match (la.contiguous_range(), lb.contiguous_range()) {
        (Some(ra), Some(rb)) => {
            let (a, b) = (&a[ra], &b[rb]);
            par_fill(out.as_mut_slice(), PAR_CHUNK, |r, o| {
                for ((o, &x), &y) in o.iter_mut().zip(&a[r.clone()]).zip(&b[r]) {
                    *o = f(x, y);
                }
            });
        }
        _ => {
            let o = out.as_mut_slice();
            let mut i = 0;
            for_each_row_n([la, lb], |[oa, ob], [sa, sb], len| {
                let o = &mut o[i..i + len];
                match (sa, sb) {
                    (1, 1) => o.iter_mut().zip(&a[oa..oa + len]).zip(&b[ob..ob + len]).for_each(|((o, &x), &y)| *o = f(x, y)),
                    (1, 0) => {
                        let y = b[ob];
                        o.iter_mut().zip(&a[oa..oa + len]).for_each(|(o, &x)| *o = f(x, y))
                    }
                    (0, 1) => {
                        let x = a[oa];
                        o.iter_mut().zip(&b[ob..ob + len]).for_each(|(o, &y)| *o = f(x, y))
                    }
                    _ => (0..len).for_each(|k| o[k] = f(a[oa + k * sa], b[ob + k * sb])),
                }
                i += len;
            });
        }
    }
    out
}
