//! Elementwise map and zip over strided inputs, parallel on large contiguous data.

use crate::cpu::threads::parallel_ranges;
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
    } else {
        let o = out.as_mut_slice();
        let mut i = 0;
        layout.for_each_row(|off, len, st| {
            for k in 0..len {
                o[i + k] = f(x[off + k * st]);
            }
            i += len;
        });
    }
    out
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
            for_each_row_pair(la, lb, |oa, sa, ob, sb, len| {
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

/// Walks two layouts of the same shape row by row: `f(offset_a, stride_a, offset_b, stride_b, len)`.
pub fn for_each_row_pair(la: &Layout, lb: &Layout, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
    let dims = la.dims();
    if la.elem_count() == 0 {
        return;
    }
    if dims.is_empty() {
        f(la.offset(), 1, lb.offset(), 1, 1);
        return;
    }
    let rank = dims.len();
    let (sa, sb) = (la.strides(), lb.strides());
    let mut idx = vec![0usize; rank - 1];
    let (mut oa, mut ob) = (la.offset(), lb.offset());
    loop {
        f(oa, sa[rank - 1], ob, sb[rank - 1], dims[rank - 1]);
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            oa += sa[d];
            ob += sb[d];
            if idx[d] < dims[d] {
                break;
            }
            oa -= sa[d] * dims[d];
            ob -= sb[d] * dims[d];
            idx[d] = 0;
        }
    }
}
