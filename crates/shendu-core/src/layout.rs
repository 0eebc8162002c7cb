//! Layout: how a tensor's logical elements sit in its storage (shape, strides, offset). Views are
//! new layouts over the same storage; no data moves.

use crate::{Error, Result, Shape};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Shape,
    strides: Vec<usize>,
    offset: usize,
}

impl Layout {
    pub fn contiguous(shape: Shape) -> Self {
        let strides = shape.contiguous_strides();
        Layout { shape, strides, offset: 0 }
    }

    pub fn new(shape: Shape, strides: Vec<usize>, offset: usize) -> Self {
        Layout { shape, strides, offset }
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn elem_count(&self) -> usize {
        self.shape.elem_count()
    }

    /// True when the elements are in row-major order with no gaps (size-1 dims may have any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1;
        for (&d, &s) in self.dims().iter().zip(&self.strides).rev() {
            if d != 1 && s != acc {
                return false;
            }
            acc = acc.saturating_mul(d);
        }
        true
    }

    /// True when some elements share a storage place (a broadcast: stride 0 on a dim longer
    /// than 1), so writes through this layout cannot be split between threads.
    pub fn repeats_elements(&self) -> bool {
        self.dims().iter().zip(&self.strides).any(|(&d, &s)| d > 1 && s == 0)
    }

    /// The storage offset of the furthest element (the offset itself when empty).
    pub fn max_offset(&self) -> usize {
        let span: usize = self.dims().iter().zip(&self.strides).map(|(&d, &s)| d.saturating_sub(1) * s).sum();
        self.offset + if self.elem_count() == 0 { 0 } else { span }
    }

    /// The storage range of a contiguous layout.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous().then(|| self.offset..self.offset + self.elem_count())
    }

    /// A view with new dims over the same elements, when the strides allow it without a copy.
    pub fn reshape(&self, shape: Shape) -> Option<Layout> {
        if self.is_contiguous() {
            Some(Layout { strides: shape.contiguous_strides(), shape, offset: self.offset })
        } else {
            None
        }
    }

    pub fn permute(&self, perm: &[usize], op: &'static str) -> Result<Layout> {
        let rank = self.shape.rank();
        let mut seen = vec![false; rank];
        if perm.len() != rank || perm.iter().any(|&p| p >= rank || std::mem::replace(&mut seen[p], true)) {
            return Err(Error::index(op, format!("{perm:?} is not a permutation of the {rank} dims of {}", self.shape)));
        }
        let dims = perm.iter().map(|&p| self.dims()[p]).collect::<Vec<_>>();
        let strides = perm.iter().map(|&p| self.strides[p]).collect();
        Ok(Layout { shape: Shape::new(dims), strides, offset: self.offset })
    }

    pub fn narrow(&self, dim: usize, start: usize, len: usize, op: &'static str) -> Result<Layout> {
        let size = self.dims()[dim];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::index(
                op,
                format!(
                    "range {start}..{} is out of bounds for dimension {dim} of size {size} (shape {})",
                    start as u128 + len as u128,
                    self.shape
                ),
            ));
        }
        let mut dims = self.dims().to_vec();
        dims[dim] = len;
        Ok(Layout { shape: Shape::new(dims), strides: self.strides.clone(), offset: self.offset + start * self.strides[dim] })
    }

    /// A view that repeats size-1 (or missing leading) dims with stride 0.
    pub fn broadcast_as(&self, target: &Shape, op: &'static str) -> Result<Layout> {
        let (src, dst) = (self.dims(), target.dims());
        if dst.len() < src.len() {
            return Err(Error::shape(op, format!("cannot broadcast {} to {target}: target has fewer dims", self.shape)));
        }
        if target.checked_elem_count().is_none() {
            return Err(Error::shape(op, format!("cannot broadcast {} to {target}: too many elements", self.shape)));
        }
        let lead = dst.len() - src.len();
        let mut strides = vec![0; dst.len()];
        for i in 0..src.len() {
            strides[lead + i] = if src[i] == dst[lead + i] {
                self.strides[i]
            } else if src[i] == 1 {
                0
            } else {
                return Err(Error::shape(
                    op,
                    format!(
                        "cannot broadcast {} to {target}: dimension {i} has size {} (must be 1 or {})",
                        self.shape,
                        src[i],
                        dst[lead + i]
                    ),
                ));
            };
        }
        Ok(Layout { shape: target.clone(), strides, offset: self.offset })
    }

    /// Calls `f(storage_offset, len, stride)` for each run of elements in row-major order (an
    /// innermost row, or the whole tensor when contiguous).
    pub fn for_each_row(&self, mut f: impl FnMut(usize, usize, usize)) {
        for_each_row_n([self], |[o], [s], n| f(o, n, s));
    }

    /// Storage offsets of all elements in row-major order (for slow paths and tests).
    pub fn offsets(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.elem_count());
        self.for_each_row(|o, n, s| out.extend((0..n).map(|i| o + i * s)));
        out
    }
}

/// Dims a row walk merges on the stack (more: the dims are walked as they are).
const MERGE_MAX: usize = 16;

/// Calls `f(offsets, strides, len)` for each row of `N` layouts that share one shape, in
/// row-major order (contiguous layouts come as one flat row). Adjacent dims merge into one
/// wherever every layout allows it and size-1 dims drop out, so a channel shuffle's
/// `[n, g, c, h, w]` view comes as rows of `h*w`, not of `w`. The one strided walker of the
/// kernels.
pub fn for_each_row_n<const N: usize>(layouts: [&Layout; N], mut f: impl FnMut([usize; N], [usize; N], usize)) {
    let dims = layouts[0].dims();
    if layouts[0].elem_count() == 0 {
        return;
    }
    let mut off: [usize; N] = std::array::from_fn(|i| layouts[i].offset());
    if dims.is_empty() || layouts.iter().all(|l| l.is_contiguous()) {
        // One flat row: every layout is a plain range from its offset.
        f(off, [1; N], layouts[0].elem_count());
        return;
    }
    if dims.len() > MERGE_MAX {
        return for_each_innermost_row_n(layouts, f);
    }
    let walk = RowWalk::merge(layouts);
    if walk.r == 0 {
        return f(off, [1; N], 1);
    }
    walk.walk(&mut off, 0..walk.rows(), f)
}

/// The rows of a strided walk of `N` layouts with their dims merged, as [`for_each_row_n`]
/// visits them, held on the stack (no allocation), so that a range of rows can be walked on
/// its own: a kernel splits the rows between threads.
#[derive(Clone, Copy, Debug)]
pub struct RowWalk<const N: usize> {
    /// Merged dims and strides, innermost first; `r` of them.
    md: [usize; MERGE_MAX],
    ms: [[usize; MERGE_MAX]; N],
    r: usize,
    offsets: [usize; N],
}

impl<const N: usize> RowWalk<N> {
    /// The walk of layouts sharing one shape, or `None` where [`for_each_row_n`] takes another
    /// path (all contiguous, empty, scalar, or too many dims to merge on the stack).
    pub fn new(layouts: [&Layout; N]) -> Option<RowWalk<N>> {
        let dims = layouts[0].dims();
        if layouts[0].elem_count() == 0 || dims.is_empty() || dims.len() > MERGE_MAX || layouts.iter().all(|l| l.is_contiguous()) {
            return None;
        }
        let walk = RowWalk::merge(layouts);
        (walk.r > 0).then_some(walk)
    }

    fn merge(layouts: [&Layout; N]) -> RowWalk<N> {
        let dims = layouts[0].dims();
        let (mut md, mut ms, mut r) = ([0usize; MERGE_MAX], [[0usize; MERGE_MAX]; N], 0);
        for d in (0..dims.len()).rev() {
            let n = dims[d];
            if n == 1 {
                continue;
            }
            if r > 0 && (0..N).all(|i| layouts[i].strides()[d] == ms[i][r - 1] * md[r - 1]) {
                md[r - 1] *= n;
                continue;
            }
            md[r] = n;
            for i in 0..N {
                ms[i][r] = layouts[i].strides()[d];
            }
            r += 1;
        }
        RowWalk { md, ms, r, offsets: std::array::from_fn(|i| layouts[i].offset()) }
    }

    /// Elements per row.
    pub fn row_len(&self) -> usize {
        self.md[0]
    }

    /// Rows in the walk.
    pub fn rows(&self) -> usize {
        self.md[1..self.r].iter().product()
    }

    /// Calls `f(offsets, strides, len)` for rows `rows` (row `i` holds elements `i * row_len`
    /// onwards in row-major order).
    pub fn for_rows(&self, rows: std::ops::Range<usize>, f: impl FnMut([usize; N], [usize; N], usize)) {
        let mut off = self.offsets;
        self.walk(&mut off, rows, f)
    }

    fn walk(&self, off: &mut [usize; N], rows: std::ops::Range<usize>, mut f: impl FnMut([usize; N], [usize; N], usize)) {
        let (md, ms, r) = (&self.md, &self.ms, self.r);
        // The starting row's index in the merged outer dims (mixed radix, innermost first).
        let mut idx = [0usize; MERGE_MAX];
        let mut rest = rows.start;
        for d in 1..r {
            idx[d] = rest % md[d];
            rest /= md[d];
            for (o, s) in off.iter_mut().zip(ms) {
                *o += s[d] * idx[d];
            }
        }
        let inner: [usize; N] = std::array::from_fn(|i| ms[i][0]);
        for _ in rows {
            f(*off, inner, md[0]);
            let mut d = 1;
            while d < r {
                idx[d] += 1;
                for (o, s) in off.iter_mut().zip(ms) {
                    *o += s[d];
                }
                if idx[d] < md[d] {
                    break;
                }
                for (o, s) in off.iter_mut().zip(ms) {
                    *o -= s[d] * md[d];
                }
                idx[d] = 0;
                d += 1;
            }
        }
    }
}

/// [`for_each_row_n`] without merging: rows of the innermost dim as the shape gives it (the
/// graph's general sum keeps eager's grouping of the additions this way), and shapes of very
/// high rank.
pub fn for_each_innermost_row_n<const N: usize>(layouts: [&Layout; N], mut f: impl FnMut([usize; N], [usize; N], usize)) {
    let dims = layouts[0].dims();
    if layouts[0].elem_count() == 0 {
        return;
    }
    let mut off: [usize; N] = std::array::from_fn(|i| layouts[i].offset());
    if dims.is_empty() {
        return f(off, [1; N], 1);
    }
    let rank = dims.len();
    let inner: [usize; N] = std::array::from_fn(|i| layouts[i].strides()[rank - 1]);
    let mut idx = vec![0usize; rank - 1];
    loop {
        f(off, inner, dims[rank - 1]);
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            for (o, l) in off.iter_mut().zip(&layouts) {
                *o += l.strides()[d];
            }
            if idx[d] < dims[d] {
                break;
            }
            for (o, l) in off.iter_mut().zip(&layouts) {
                *o -= l.strides()[d] * dims[d];
            }
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element's offsets, in row-major order, from the multi-index directly.
    fn naive<const N: usize>(ls: [&Layout; N]) -> Vec<[usize; N]> {
        let dims = ls[0].dims();
        let mut out = Vec::new();
        let mut idx = vec![0usize; dims.len()];
        for _ in 0..ls[0].elem_count() {
            out.push(std::array::from_fn(|i| ls[i].offset() + idx.iter().zip(ls[i].strides()).map(|(a, s)| a * s).sum::<usize>()));
            for d in (0..dims.len()).rev() {
                idx[d] += 1;
                if idx[d] < dims[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        out
    }

    fn walked<const N: usize>(ls: [&Layout; N]) -> Vec<[usize; N]> {
        let mut out = Vec::new();
        for_each_row_n(ls, |o, s, len| out.extend((0..len).map(|j| std::array::from_fn(|i| o[i] + j * s[i]))));
        out
    }

    #[test]
    fn rows_merge_without_changing_the_order() {
        let c = |d: &[usize]| Layout::contiguous(Shape::from(d.to_vec()));
        // A channel shuffle's view: [n, g, c, h, w] with g and c swapped; h, w merge.
        let shuffle = c(&[2, 3, 4, 5, 6]).permute(&[0, 2, 1, 3, 4], "t").unwrap();
        // A narrowed view (rows merge only within it), a broadcast (stride 0) and size-1 dims.
        let narrow = c(&[4, 6, 5]).narrow(1, 1, 3, "t").unwrap();
        let bcast = c(&[1, 3, 1]).broadcast_as(&Shape::from(vec![2, 3, 4]), "t").unwrap();
        let ones = c(&[1, 1, 5, 1]).permute(&[3, 2, 1, 0], "t").unwrap();
        for l in [&shuffle, &narrow, &bcast, &ones] {
            assert_eq!(walked([l]), naive([l]), "{:?} {:?}", l.dims(), l.strides());
        }
        // Two layouts walk together: merging needs both to allow it.
        let a = c(&[2, 3, 4, 5]).permute(&[0, 1, 3, 2], "t").unwrap();
        let b = c(&[2, 3, 5, 4]);
        assert_eq!(walked([&a, &b]), naive([&a, &b]));
        let mut rows = 0;
        for_each_row_n([&shuffle], |_, _, len| {
            assert_eq!(len, 30, "h*w merged");
            rows += 1;
        });
        assert_eq!(rows, 2 * 3 * 4);
    }

    /// Any range of a [`RowWalk`]'s rows, walked on its own, is that stretch of the full walk,
    /// and max_offset is the furthest element.
    #[test]
    fn row_ranges_walk_their_part_of_the_whole() {
        let c = |d: &[usize]| Layout::contiguous(Shape::from(d.to_vec()));
        let shuffle = c(&[2, 3, 4, 5, 6]).permute(&[0, 2, 1, 3, 4], "t").unwrap();
        let narrow = c(&[4, 6, 5]).narrow(1, 1, 3, "t").unwrap().narrow(0, 1, 3, "t").unwrap();
        let bcast = c(&[1, 3, 1]).broadcast_as(&Shape::from(vec![2, 3, 4]), "t").unwrap();
        let t = c(&[7, 5]).permute(&[1, 0], "t").unwrap();
        for l in [&shuffle, &narrow, &bcast, &t] {
            let want = naive([l]);
            assert_eq!(l.max_offset(), want.iter().map(|o| o[0]).max().unwrap(), "{:?}", l.dims());
            let walk = RowWalk::new([l]).expect("a strided layout");
            assert_eq!(walk.rows() * walk.row_len(), l.elem_count());
            for split in [1, 2, 3, walk.rows() - 1] {
                let mut got = Vec::new();
                for r in [0..split, split..walk.rows()] {
                    walk.for_rows(r, |[o], [s], len| got.extend((0..len).map(|j| [o + j * s])));
                }
                assert_eq!(got, want, "{:?} {:?} split at row {split}", l.dims(), l.strides());
            }
        }
        assert!(RowWalk::new([&c(&[3, 4])]).is_none(), "contiguous: one flat row, no walk");
    }
}
