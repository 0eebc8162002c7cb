//! Index-mapping kernels: row selection and its adjoint, gather/scatter along a dim, padding by
//! per-dim index maps, and a walker over several strided layouts of one shape. Callers validate
//! every index first; these kernels trust them.

use std::cmp::Ordering;

use half::{bf16, f16};

use crate::cpu::elementwise::SendPtr;
use crate::cpu::threads::parallel_ranges;
use crate::layout::for_each_row_n;
use crate::Layout;

/// Elements copied per parallel task: below this, threading costs more than it saves.
const PAR_ELEMS: usize = 1 << 15;

/// Element types that can be summed into an output (scatter-add, index-add, pad backward).
/// Integers wrap, as PyTorch's do.
pub trait Accumulate: Copy + Send + Sync {
    fn acc(self, other: Self) -> Self;
    fn zero() -> Self;
}

macro_rules! accumulate_float {
    ($($t:ty => $zero:expr),*) => {$(
        impl Accumulate for $t {
            #[inline(always)]
            fn acc(self, other: Self) -> Self {
                self + other
            }
            #[inline(always)]
            fn zero() -> Self {
                $zero
            }
        }
    )*};
}
accumulate_float!(f32 => 0.0, f64 => 0.0, f16 => f16::ZERO, bf16 => bf16::ZERO);

macro_rules! accumulate_int {
    ($($t:ty),*) => {$(
        impl Accumulate for $t {
            #[inline(always)]
            fn acc(self, other: Self) -> Self {
                self.wrapping_add(other)
            }
            #[inline(always)]
            fn zero() -> Self {
                0
            }
        }
    )*};
}
accumulate_int!(u8, i64);

/// `out[o, j, :] = src[o, idx[j], :]` for a row-major `src` seen as `[outer, n, inner]` and
/// `out` as `[outer, idx.len(), inner]`.
pub fn index_select<T: Copy + Send + Sync>(src: &[T], n: usize, inner: usize, idx: &[usize], out: &mut [T]) {
    let k = idx.len();
    if inner == 0 || k == 0 {
        return;
    }
    let rows = out.len() / inner;
    let dst = SendPtr(out.as_mut_ptr());
    parallel_ranges(rows, PAR_ELEMS / inner + 1, |r| {
        // SAFETY: each range of rows writes its own part of `out`.
        let o = unsafe { dst.slice_mut(r.start * inner..r.end * inner) };
        for (row, d) in r.zip(o.chunks_exact_mut(inner)) {
            let s = ((row / k) * n + idx[row % k]) * inner;
            d.copy_from_slice(&src[s..s + inner]);
        }
    });
}

/// The adjoint of [`index_select`]: `out[o, idx[j], :] += src[o, j, :]` (repeated indices sum).
pub fn index_add<T: Accumulate>(src: &[T], n: usize, inner: usize, idx: &[usize], out: &mut [T]) {
    let k = idx.len();
    if inner == 0 || k == 0 {
        return;
    }
    let outer = src.len() / (k * inner);
    // Different outer rows never collide, so they may run in parallel.
    let dst = SendPtr(out.as_mut_ptr());
    parallel_ranges(outer, PAR_ELEMS / (k * inner) + 1, |r| {
        // SAFETY: outer rows `r` own `out[r.start*n*inner .. r.end*n*inner]`.
        let o = unsafe { dst.slice_mut(r.start * n * inner..r.end * n * inner) };
        for (oi, o) in r.zip(o.chunks_exact_mut(n * inner)) {
            let s = &src[oi * k * inner..(oi + 1) * k * inner];
            for (&i, srow) in idx.iter().zip(s.chunks_exact(inner)) {
                for (d, &v) in o[i * inner..(i + 1) * inner].iter_mut().zip(srow) {
                    *d = d.acc(v);
                }
            }
        }
    });
}

/// Gather along a dim: walks `index` (through `idx_layout`) and `x_view` (x's strides over the
/// index's shape, stride 0 at the gathered dim) together, writing `out` in row-major order.
pub fn gather<T: Copy>(x: &[T], x_view: &Layout, dim_stride: usize, idx: &[i64], idx_layout: &Layout, out: &mut [T]) {
    let mut c = 0;
    for_each_row_n([x_view, idx_layout], |[ox, oi], [sx, si], len| {
        for (k, o) in out[c..c + len].iter_mut().enumerate() {
            let i = idx[oi + k * si] as usize;
            *o = x[ox + k * sx + i * dim_stride];
        }
        c += len;
    });
}

/// Scatter-add along a dim: `out[.., idx, ..] += src[..]` over the index's positions.
/// `out_view` and `src_view` are the two layouts over the index's shape (out's with stride 0 at
/// the scattered dim).
pub fn scatter_add<T: Accumulate>(
    out: &mut [T],
    out_view: &Layout,
    dim_stride: usize,
    idx: &[i64],
    idx_layout: &Layout,
    src: &[T],
    src_view: &Layout,
) {
    for_each_row_n([out_view, idx_layout, src_view], |[oo, oi, os], [so, si, ss], len| {
        for k in 0..len {
            let d = oo + k * so + idx[oi + k * si] as usize * dim_stride;
            out[d] = out[d].acc(src[os + k * ss]);
        }
    });
}

/// Calls `f(src_base, out_offset, row_len)` for each output row of a padded tensor: `src_base`
/// is the source offset of the row's outer coordinates, or `None` when an outer coordinate falls
/// in a constant border. `maps[d][i]` is the source index of output index `i` along `d`.
fn for_each_padded_row(maps: &[Vec<Option<usize>>], src_strides: &[usize], src_offset: usize, mut f: impl FnMut(Option<usize>, usize)) {
    let rank = maps.len();
    if rank == 0 || maps.iter().any(|m| m.is_empty()) {
        return;
    }
    let row_len = maps[rank - 1].len();
    let mut idx = vec![0usize; rank - 1];
    let mut c = 0;
    loop {
        let mut base = Some(src_offset);
        for d in 0..rank - 1 {
            base = match (base, maps[d][idx[d]]) {
                (Some(b), Some(s)) => Some(b + s * src_strides[d]),
                _ => None,
            };
        }
        f(base, c);
        c += row_len;
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < maps[d].len() {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Padding forward: `out[i] = src[map(i)]`, or `fill` where any coordinate maps to `None`.
pub fn pad_gather<T: Copy>(src: &[T], l: &Layout, maps: &[Vec<Option<usize>>], fill: T, out: &mut [T]) {
    let Some(last) = maps.last() else { return };
    let (strides, inner) = (l.strides(), l.strides()[maps.len() - 1]);
    for_each_padded_row(maps, strides, l.offset(), |base, c| {
        let dst = &mut out[c..c + last.len()];
        match base {
            None => dst.fill(fill),
            Some(b) => {
                for (o, m) in dst.iter_mut().zip(last) {
                    *o = match m {
                        Some(s) => src[b + s * inner],
                        None => fill,
                    };
                }
            }
        }
    });
}

/// Padding backward: `out[map(i)] += grad[i]` over the row-major padded `grad`; `out` is the
/// row-major source shape with `out_strides`.
pub fn pad_scatter_add<T: Accumulate>(grad: &[T], maps: &[Vec<Option<usize>>], out: &mut [T], out_strides: &[usize]) {
    let Some(last) = maps.last() else { return };
    let inner = out_strides[maps.len() - 1];
    for_each_padded_row(maps, out_strides, 0, |base, c| {
        let Some(b) = base else { return };
        for (&g, m) in grad[c..c + last.len()].iter().zip(last) {
            if let Some(s) = m {
                let d = b + s * inner;
                out[d] = out[d].acc(g);
            }
        }
    });
}

/// True for NaN; works for every element type (integers are never NaN).
#[inline(always)]
pub fn is_nan<T: PartialOrd>(v: &T) -> bool {
    v.partial_cmp(v).is_none()
}

/// Order with NaN above everything (as PyTorch's sort and topk treat it).
#[inline(always)]
fn cmp_nan_max<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    a.partial_cmp(b).unwrap_or_else(|| is_nan(a).cmp(&is_nan(b)))
}

/// Below this `k`, top-k keeps a sorted buffer while scanning (one comparison per entry for
/// most entries); above it, a full selection is cheaper.
const SMALL_K: usize = 64;

/// For each row of `n` entries of the row-major `s`, the indices of the `k` best entries
/// (largest or smallest; NaN counts as largest; ties go to the lower index), best first when
/// `sorted`, else in index order. `out` holds `k` indices per row.
pub fn top_k_rows<T: PartialOrd + Sync>(s: &[T], n: usize, k: usize, largest: bool, sorted: bool, out: &mut [i64]) {
    if k == 0 || n == 0 {
        return;
    }
    let rows = s.len() / n;
    let dst = SendPtr(out.as_mut_ptr());
    parallel_ranges(rows, PAR_ELEMS / n + 1, |r| {
        // SAFETY: each range of rows writes its own `k` indices per row.
        let o = unsafe { dst.slice_mut(r.start * k..r.end * k) };
        let mut order: Vec<usize> = Vec::with_capacity(if k <= SMALL_K { k + 1 } else { n });
        for (row, o) in r.map(|i| &s[i * n..(i + 1) * n]).zip(o.chunks_exact_mut(k)) {
            // A total order: better value first, then lower index.
            let cmp = |a: &usize, b: &usize| {
                let v = if largest { cmp_nan_max(&row[*b], &row[*a]) } else { cmp_nan_max(&row[*a], &row[*b]) };
                v.then(a.cmp(b))
            };
            order.clear();
            if k <= SMALL_K {
                for i in 0..n {
                    if order.len() == k {
                        if cmp(&i, &order[k - 1]) != Ordering::Less {
                            continue;
                        }
                        order.pop();
                    }
                    let at = order.partition_point(|j| cmp(j, &i) == Ordering::Less);
                    order.insert(at, i);
                }
            } else {
                order.extend(0..n);
                if k < n {
                    order.select_nth_unstable_by(k - 1, cmp);
                }
                order.truncate(k);
                order.sort_unstable_by(cmp);
            }
            if !sorted {
                order.sort_unstable();
            }
            for (o, &i) in o.iter_mut().zip(&order) {
                *o = i as i64;
            }
        }
    });
}
