//! The rows of a strided step, with dims merged: `for_each_row_n` walks the innermost dim of
//! the shape as given, so a per-channel bias broadcast over `[N, C, H, W]` came as `N*C*H`
//! rows of `W` elements, each paying a kernel call. Here adjacent dims merge wherever every
//! layout allows it (that bias gives `N*C` rows of `H*W`), size-1 dims drop out, and a range
//! of rows can be walked on its own, so steps split their rows between threads. Everything
//! lives on the stack: a planned run allocates nothing.

use std::ops::Range;

use super::exec::MAX_RANK;
use crate::Layout;

/// Merged dims and strides of `N` layouts of one shape; index 0 is the innermost dim.
pub(super) struct Rows<const N: usize> {
    dims: [usize; MAX_RANK],
    strides: [[usize; MAX_RANK]; N],
    rank: usize,
    base: [usize; N],
}

impl<const N: usize> Rows<N> {
    /// `None` for a shape of more than [`MAX_RANK`] dims.
    pub(super) fn new(layouts: [&Layout; N]) -> Option<Rows<N>> {
        let shape = layouts[0].dims();
        if shape.len() > MAX_RANK {
            return None;
        }
        let mut r = Rows { dims: [1; MAX_RANK], strides: [[0; MAX_RANK]; N], rank: 0, base: std::array::from_fn(|i| layouts[i].offset()) };
        for d in (0..shape.len()).rev() {
            let n = shape[d];
            if n == 1 {
                continue;
            }
            if let Some(k) = r.rank.checked_sub(1) {
                if (0..N).all(|i| layouts[i].strides()[d] == r.strides[i][k] * r.dims[k]) {
                    r.dims[k] *= n;
                    continue;
                }
            }
            r.dims[r.rank] = n;
            for (i, l) in layouts.iter().enumerate() {
                r.strides[i][r.rank] = l.strides()[d];
            }
            r.rank += 1;
        }
        Some(r)
    }

    /// Elements per row.
    pub(super) fn len(&self) -> usize {
        self.dims[0]
    }

    /// Number of rows (the product of the outer merged dims).
    pub(super) fn count(&self) -> usize {
        self.dims[1..self.rank.max(1)].iter().product()
    }

    /// Calls `f(offsets, inner strides, len)` for the rows in `range`, in row-major order (row
    /// `r` is elements `r * len ..` of a contiguous array of the shape).
    pub(super) fn walk(&self, range: Range<usize>, mut f: impl FnMut([usize; N], [usize; N], usize)) {
        if range.is_empty() {
            return;
        }
        let (dims, st, rank) = (&self.dims, &self.strides, self.rank);
        let inner: [usize; N] = std::array::from_fn(|i| st[i][0]);
        let mut idx = [0usize; MAX_RANK];
        let mut off = self.base;
        let mut rem = range.start;
        for d in 1..rank {
            idx[d] = rem % dims[d];
            rem /= dims[d];
            for i in 0..N {
                off[i] += idx[d] * st[i][d];
            }
        }
        for _ in range {
            f(off, inner, dims[0]);
            for d in 1..rank {
                idx[d] += 1;
                for i in 0..N {
                    off[i] += st[i][d];
                }
                if idx[d] < dims[d] {
                    break;
                }
                for i in 0..N {
                    off[i] -= st[i][d] * dims[d];
                }
                idx[d] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::for_each_row_n;
    use crate::Shape;

    /// Every element's offsets, in order, as `for_each_row_n` gives them.
    fn reference<const N: usize>(ls: [&Layout; N]) -> Vec<[usize; N]> {
        let mut v = Vec::new();
        for_each_row_n(ls, |o, s, len| (0..len).for_each(|j| v.push(std::array::from_fn(|i| o[i] + j * s[i]))));
        v
    }

    fn merged<const N: usize>(ls: [&Layout; N], pieces: usize) -> Vec<[usize; N]> {
        let r = Rows::new(ls).unwrap();
        let (rows, mut v) = (r.count(), Vec::new());
        for p in 0..pieces {
            let range = rows * p / pieces..rows * (p + 1) / pieces;
            r.walk(range, |o, s, len| (0..len).for_each(|j| v.push(std::array::from_fn(|i| o[i] + j * s[i]))));
        }
        v
    }

    #[test]
    fn merged_rows_visit_the_same_offsets() {
        let shape = Shape::from(vec![4, 3, 5, 6]);
        let c = Layout::contiguous(shape.clone());
        let bias = Layout::contiguous(Shape::from(vec![1, 3, 1, 1])).broadcast_as(&shape, "t").unwrap();
        let perm = Layout::contiguous(Shape::from(vec![6, 5, 3, 4])).permute(&[3, 2, 1, 0], "t").unwrap();
        let narrow = Layout::contiguous(Shape::from(vec![4, 3, 5, 9])).narrow(3, 2, 6, "t").unwrap();
        for other in [&bias, &perm, &narrow, &c] {
            let want = reference([&c, other]);
            for pieces in [1, 2, 3, 7] {
                assert_eq!(merged([&c, other], pieces), want, "{:?} in {pieces} pieces", other.strides());
            }
        }
        let r = Rows::new([&c, &bias]).unwrap();
        assert_eq!((r.len(), r.count()), (30, 12));
        let one = Layout::contiguous(Shape::from(vec![1, 1]));
        assert_eq!(merged([&one], 1), reference([&one]));
        let scalar = Layout::contiguous(Shape::from(Vec::<usize>::new()));
        assert_eq!(merged([&scalar], 1), reference([&scalar]));
    }
}
