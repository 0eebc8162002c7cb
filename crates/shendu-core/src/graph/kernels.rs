//! The executor's elementwise, reduction, softmax, copy and update kernels. They write planned
//! buffers through raw pointers; long contiguous passes run on the thread pool in pieces, and
//! the loops over contiguous runs are compiled for AVX2 where the CPU has it (`cpu::simd`).
//! Each output element is computed by the same expression, in the same order, as eager mode's
//! kernels, so the results do not depend on the piece or the instruction set.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::exec::{Mem, Step};
use super::rows::Rows;
use super::AssignMode;
use crate::cpu::elementwise::SendPtr;
use crate::cpu::simd::{dispatch, Madd, SimdKernel};
use crate::cpu::{fork_join, threads};
use crate::dtype::Float;
use crate::layout::{for_each_innermost_row_n, for_each_row_n};
use crate::ops::binary::Binary;
use crate::ops::unary::Unary;
use crate::Layout;

/// Elements per chunk of a fused elementwise pass (stays in L1 between the fused ops).
pub(super) const CHUNK: usize = 1024;
/// Elements per parallel piece, as eager's elementwise kernels: below this, waking a thread
/// costs more than it saves.
const PAR_CHUNK: usize = 1 << 15;

/// Runs `f` on disjoint ranges covering `0..n` (piece `c` of `p` starts at `n * c / p`), on up
/// to `num_threads()` threads with at least `min_chunk` items each. A fork allocates nothing
/// (`cpu::fork_join`), so a run allocates nothing on any thread count.
pub(super) fn par_ranges(n: usize, min_chunk: usize, f: impl Fn(Range<usize>) + Sync) {
    let pieces = (n / min_chunk.max(1)).clamp(1, threads::num_threads());
    if pieces <= 1 {
        return f(0..n);
    }
    fork_join::run_chunks(pieces, &|c| f(n * c / pieces..n * (c + 1) / pieces));
}

/// `dst[i] = u(src[i])`, or in place when `src` is `None` (eager's expressions; the common ops
/// get loops of their own so that they vectorise).
#[inline(always)]
fn map_unary<T: Float>(u: Unary, src: Option<&[T]>, dst: &mut [T]) {
    macro_rules! go {
        ($f:expr) => {{
            let f = $f;
            match src {
                Some(s) => dst.iter_mut().zip(s).for_each(|(d, &v)| *d = f(v)),
                None => dst.iter_mut().for_each(|d| *d = f(*d)),
            }
        }};
    }
    match u {
        Unary::Relu => go!(|v: T| v.max(T::ZERO)),
        Unary::Step => go!(|v: T| if v > T::ZERO { T::ONE } else { T::ZERO }),
        Unary::Neg => go!(|v: T| -v),
        Unary::Sqr => go!(|v: T| v * v),
        Unary::Affine { mul, add } => {
            let (m, a) = (T::from_f64(mul), T::from_f64(add));
            go!(|v: T| v * m + a)
        }
        u => go!(|v: T| u.eval(v)),
    }
}

/// The elementwise ops fused after a step, over a chunk of its output.
#[inline(always)]
pub(super) fn apply_epi<T: Float>(epi: &[Unary], chunk: &mut [T]) {
    for &u in epi {
        map_unary(u, None, chunk);
    }
}

/// One binary operand of a contiguous run: elements, or one element broadcast.
#[derive(Clone, Copy)]
enum Arg<'a, T> {
    S(&'a [T]),
    C(T),
}

#[inline(always)]
fn map_binary<T: Float>(b: Binary, x: Arg<T>, y: Arg<T>, dst: &mut [T]) {
    macro_rules! go {
        ($f:expr) => {{
            let f = $f;
            match (x, y) {
                (Arg::S(x), Arg::S(y)) => dst.iter_mut().zip(x).zip(y).for_each(|((d, &x), &y)| *d = f(x, y)),
                (Arg::S(x), Arg::C(y)) => dst.iter_mut().zip(x).for_each(|(d, &x)| *d = f(x, y)),
                (Arg::C(x), Arg::S(y)) => dst.iter_mut().zip(y).for_each(|(d, &y)| *d = f(x, y)),
                (Arg::C(x), Arg::C(y)) => dst.fill(f(x, y)),
            }
        }};
    }
    match b {
        Binary::Add => go!(|x: T, y: T| x + y),
        Binary::Sub => go!(|x: T, y: T| x - y),
        Binary::Mul => go!(|x: T, y: T| x * y),
        Binary::Div => go!(|x: T, y: T| x / y),
        Binary::PassWithin { lo, hi } => {
            let (lo, hi) = (T::from_f64(lo), T::from_f64(hi));
            go!(|g: T, x: T| if x > lo && x < hi { g } else { T::ZERO })
        }
        b => go!(|x: T, y: T| b.eval(x, y)),
    }
}

/// A run of `n` output elements of a unary step (`src` is `dst` itself or disjoint from it).
struct UnaryRun<'a, T> {
    u: Unary,
    src: *const T,
    dst: *mut T,
    n: usize,
    epi: &'a [Unary],
}

impl<T: Float> SimdKernel for UnaryRun<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let mut k = 0;
        while k < self.n {
            let c = CHUNK.min(self.n - k);
            // SAFETY: the step's pointers are valid for `n` elements; `src` equals `dst` (read
            // in place) or does not overlap it (the planner's aliasing rule).
            let d = unsafe { std::slice::from_raw_parts_mut(self.dst.add(k), c) };
            let s = (!std::ptr::eq(self.src, self.dst)).then(|| unsafe { std::slice::from_raw_parts(self.src.add(k), c) });
            map_unary(self.u, s, d);
            apply_epi(self.epi, d);
            k += c;
        }
    }
}

/// A run of `n` output elements of a binary step; each operand advances by its stride (0 or
/// 1) and is `dst` itself or disjoint from it; `pre` maps one operand as it is read.
struct BinaryRun<'a, T> {
    b: Binary,
    pre: Option<(usize, Unary)>,
    x: (*const T, usize),
    y: (*const T, usize),
    dst: *mut T,
    n: usize,
    epi: &'a [Unary],
}

impl<T: Float> SimdKernel for BinaryRun<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        // An operand that is the output itself is copied out chunk by chunk first, so that the
        // loops see disjoint slices (and vectorise).
        let (mut tx, mut ty) = (MaybeUninit::<[T; CHUNK]>::uninit(), MaybeUninit::<[T; CHUNK]>::uninit());
        let mut k = 0;
        while k < self.n {
            let c = CHUNK.min(self.n - k);
            // SAFETY: the step's pointers are valid for `n` elements (strided by 0 or 1); an
            // operand overlapping the output starts where it does (the planner's rule); a
            // scratch chunk is read only where it was just written.
            unsafe {
                let arg = |i: usize, (p, st): (*const T, usize), tmp: *mut T| {
                    let pre = self.pre.filter(|&(o, _)| o == i).map(|(_, u)| u);
                    if st == 0 {
                        Arg::C(pre.map_or(*p, |u| u.eval(*p)))
                    } else if let Some(u) = pre {
                        map_unary(u, Some(std::slice::from_raw_parts(p.add(k), c)), std::slice::from_raw_parts_mut(tmp, c));
                        Arg::S(std::slice::from_raw_parts(tmp as *const T, c))
                    } else if std::ptr::eq(p, self.dst) {
                        std::ptr::copy_nonoverlapping(p.add(k), tmp, c);
                        Arg::S(std::slice::from_raw_parts(tmp as *const T, c))
                    } else {
                        Arg::S(std::slice::from_raw_parts(p.add(k), c))
                    }
                };
                let (x, y) = (arg(0, self.x, tx.as_mut_ptr() as *mut T), arg(1, self.y, ty.as_mut_ptr() as *mut T));
                let d = std::slice::from_raw_parts_mut(self.dst.add(k), c);
                map_binary(self.b, x, y, d);
                apply_epi(self.epi, d);
            }
            k += c;
        }
    }
}

// SAFETY (for all kernels below): the planner gives every step an output buffer of at least
// its element count, disjoint from its inputs except for elementwise steps whose output
// position i reads only input position i; the layouts were checked against the buffers' sizes
// when the trace ran the same ops on the same shapes.

pub(super) unsafe fn unary_k<T: Float>(m: &Mem, s: &Step, u: Unary) {
    let (x, out) = (&s.inputs[0], SendPtr(m.ptr::<T>(&s.out)));
    let xp = SendPtr(m.ptr::<T>(x));
    let epi = &s.epi[..];
    if let Some(r) = x.layout.contiguous_range() {
        par_ranges(r.len(), PAR_CHUNK, |p| {
            let (src, dst) = (xp.get().add(r.start + p.start), out.get().add(p.start));
            dispatch(UnaryRun { u, src, dst, n: p.len(), epi });
        });
        return;
    }
    let Some(rows) = Rows::new([&x.layout]) else { return };
    let len = rows.len();
    par_ranges(rows.count(), PAR_CHUNK / len.max(1) + 1, |r| {
        let mut o = r.start * len;
        rows.walk(r, |[xo], [xs], len| {
            let (xp, out) = (xp.get(), out.get());
            let mut k = 0;
            while k < len {
                let c = CHUNK.min(len - k);
                let dst = std::slice::from_raw_parts_mut(out.add(o), c);
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = u.eval(*xp.add(xo + (k + j) * xs));
                }
                apply_epi(epi, dst);
                o += c;
                k += c;
            }
        });
    });
}

pub(super) unsafe fn binary_k<T: Float>(m: &Mem, s: &Step, b: Binary, pre: Option<(usize, Unary)>) {
    let (a, bb, out) = (&s.inputs[0], &s.inputs[1], m.ptr::<T>(&s.out));
    let (ap, bp) = (m.ptr::<T>(a) as *const T, m.ptr::<T>(bb) as *const T);
    let epi = &s.epi[..];
    if let (Some(ra), Some(rb)) = (a.layout.contiguous_range(), bb.layout.contiguous_range()) {
        let (ap, bp, out) = (SendPtr(ap.add(ra.start) as *mut T), SendPtr(bp.add(rb.start) as *mut T), SendPtr(out));
        par_ranges(ra.len(), PAR_CHUNK, |p| {
            let (x, y) = ((ap.get().add(p.start) as *const T, 1), (bp.get().add(p.start) as *const T, 1));
            dispatch(BinaryRun { b, pre, x, y, dst: out.get().add(p.start), n: p.len(), epi });
        });
        return;
    }
    let pre_on = |i: usize, v: T| match pre {
        Some((k, u)) if k == i => u.eval(v),
        _ => v,
    };
    let Some(rows) = Rows::new([&a.layout, &bb.layout]) else { return };
    let len = rows.len();
    let (ap, bp, out) = (SendPtr(ap as *mut T), SendPtr(bp as *mut T), SendPtr(out));
    par_ranges(rows.count(), PAR_CHUNK / len.max(1) + 1, |r| {
        let mut o = r.start * len;
        rows.walk(r, |[ao, bo], [as_, bs], len| {
            let (ap, bp, dst) = (ap.get() as *const T, bp.get() as *const T, out.get().add(o));
            if as_ <= 1 && bs <= 1 {
                dispatch(BinaryRun { b, pre, x: (ap.add(ao), as_), y: (bp.add(bo), bs), dst, n: len, epi });
            } else {
                for j in 0..len {
                    *dst.add(j) = b.eval(pre_on(0, *ap.add(ao + j * as_)), pre_on(1, *bp.add(bo + j * bs)));
                }
                for k in (0..len).step_by(CHUNK) {
                    apply_epi(epi, std::slice::from_raw_parts_mut(dst.add(k), CHUNK.min(len - k)));
                }
            }
            o += len;
        });
    });
}

/// Applies `epi` over `n` contiguous elements at `out`, in parallel pieces.
pub(super) unsafe fn epi_k<T: Float>(epi: &[Unary], out: *mut T, n: usize) {
    if epi.is_empty() {
        return;
    }
    struct Epi<'a, T>(&'a [Unary], &'a mut [T]);
    impl<T: Float> SimdKernel for Epi<'_, T> {
        type Out = ();
        #[inline(always)]
        fn run<A: Madd>(self) {
            self.1.chunks_mut(CHUNK).for_each(|c| apply_epi(self.0, c));
        }
    }
    let out = SendPtr(out);
    par_ranges(n, PAR_CHUNK, |p| dispatch(Epi(epi, out.slice_mut(p))));
}

/// Eager's contiguous sum: 8 independent accumulators (see `ops::reduce`), copied so that
/// graph and eager sums agree to the bit.
fn lane_sum<T: Float>(row: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &v in rest {
        s += v;
    }
    s
}

/// Sums of the rows of `x` (`rows` x `dst.len()`, row stride `stride`) into `dst`, in row
/// order per output as eager's sum over leading dims (a bias gradient).
struct ColumnSums<'a, T> {
    x: *const T,
    rows: usize,
    stride: usize,
    dst: &'a mut [T],
}

impl<T: Float> SimdKernel for ColumnSums<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        self.dst.fill(T::ZERO);
        for r in 0..self.rows {
            // SAFETY: the caller's operand covers `rows` rows of `dst.len()` elements; the
            // output is a different buffer.
            let row = unsafe { std::slice::from_raw_parts(self.x.add(r * self.stride), self.dst.len()) };
            self.dst.iter_mut().zip(row).for_each(|(o, &v)| *o += v);
        }
    }
}

/// For reduced dims (stride 0 in `acc`) that both lead and end the shape around the kept
/// ones: the leading block's size and the trailing run's length. Only without size-1 dims:
/// whether eager lists those among the reduced ones changes its order (`ops::reduce`).
fn kept_between(dims: &[usize], acc: &[usize]) -> Option<(usize, usize)> {
    let (mut outer, mut run, mut phase) = (1usize, 1usize, 0);
    for (&d, &s) in dims.iter().zip(acc) {
        if d == 1 {
            return None;
        }
        phase = match (phase, s == 0) {
            (0, true) => 0,
            (0 | 1, false) => 1,
            (1 | 2, true) => 2,
            _ => return None,
        };
        match phase {
            0 => outer *= d,
            2 => run *= d,
            _ => {}
        }
    }
    (phase == 2 && outer > 1).then_some((outer, run))
}

pub(super) unsafe fn sum_k<T: Float>(m: &Mem, s: &Step, scale: f64, acc: &Layout) {
    let (x, out) = (&s.inputs[0], m.ptr::<T>(&s.out));
    let n = s.out.layout.elem_count();
    let xp = m.ptr::<T>(x);
    let total = x.layout.elem_count();
    // Where the reduced dims (stride 0 in `acc`) sit among the others.
    let (dims, st) = (x.layout.dims(), acc.strides());
    let (mut reduced, mut suffix, mut kept, mut prefix) = (false, true, false, true);
    for (&d, &s) in dims.iter().zip(st) {
        if d == 1 {
            continue;
        }
        if s == 0 {
            reduced = true;
            prefix &= !kept;
        } else {
            kept = true;
            suffix &= !reduced;
        }
    }
    let block = total / n.max(1);
    let (xs, dst) = (SendPtr(xp.add(x.layout.offset())), SendPtr(out));
    let sandwich = x.layout.is_contiguous().then(|| kept_between(dims, st)).flatten();
    if let Some((outer, run)) = sandwich {
        // Kept dims between reduced ones (a conv bias gradient sums [N, C, H, W] over N, H and
        // W): eager's order, the lane sum of each H*W plane added up over N.
        par_ranges(n, PAR_CHUNK / block.max(1) + 1, |r| {
            for o in r {
                let mut t = T::ZERO;
                for i in 0..outer {
                    t += lane_sum(std::slice::from_raw_parts(xs.get().add((i * n + o) * run), run));
                }
                *dst.get().add(o) = t;
            }
        });
    } else if x.layout.is_contiguous() && reduced && suffix && block > 1 {
        // One lane sum per output over a contiguous block.
        par_ranges(n, PAR_CHUNK / block + 1, |r| {
            for o in r {
                *dst.get().add(o) = lane_sum(std::slice::from_raw_parts(xs.get().add(o * block), block));
            }
        });
    } else if x.layout.is_contiguous() && reduced && kept && prefix {
        // Leading dims reduced: whole rows add into the outputs.
        par_ranges(n, PAR_CHUNK / block.max(1) + 1, |r| {
            let x = xs.get().add(r.start) as *const T;
            dispatch(ColumnSums { x, rows: block, stride: n, dst: dst.slice_mut(r) });
        });
    } else {
        std::slice::from_raw_parts_mut(out, n).fill(T::ZERO);
        for_each_innermost_row_n([&x.layout, acc], |[xo, ao], [xs, as_], len| {
            if as_ == 0 {
                let mut t = T::ZERO;
                for j in 0..len {
                    t += *xp.add(xo + j * xs);
                }
                *out.add(ao) += t;
            } else {
                for j in 0..len {
                    *out.add(ao + j * as_) += *xp.add(xo + j * xs);
                }
            }
        });
    }
    let dst = std::slice::from_raw_parts_mut(out, n);
    if scale != 1.0 {
        let c = T::from_f64(scale);
        dst.iter_mut().for_each(|v| *v *= c);
    }
    epi_k(&s.epi, out, n);
}

pub(super) unsafe fn softmax_k<T: Float>(m: &Mem, s: &Step, log: bool) {
    let x = &s.inputs[0];
    let n = *x.layout.dims().last().unwrap_or(&1);
    let total = x.layout.elem_count();
    if n == 0 || total == 0 {
        return;
    }
    let xs = std::slice::from_raw_parts(m.ptr::<T>(x).add(x.layout.offset()), total);
    let os = std::slice::from_raw_parts_mut(m.ptr::<T>(&s.out), total);
    for (row_o, row_x) in os.chunks_mut(n).zip(xs.chunks(n)) {
        let mx = row_x.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
        let mx = if mx.is_finite() { mx } else { T::ZERO };
        let mut sum = T::ZERO;
        for (o, &v) in row_o.iter_mut().zip(row_x) {
            let e = (v - mx).exp();
            *o = e;
            sum += e;
        }
        if log {
            let ls = sum.ln() + mx;
            row_o.iter_mut().zip(row_x).for_each(|(o, &v)| *o = v - ls);
        } else {
            let inv = T::ONE / sum;
            row_o.iter_mut().for_each(|o| *o *= inv);
        }
        apply_epi(&s.epi, row_o);
    }
}

pub(super) unsafe fn copy_k<T: Float>(m: &Mem, s: &Step) {
    let (x, out) = (&s.inputs[0], m.ptr::<T>(&s.out));
    let Some(rows) = Rows::new([&x.layout]) else { return };
    let (xp, dst, len) = (SendPtr(m.ptr::<T>(x)), SendPtr(out), rows.len());
    par_ranges(rows.count(), PAR_CHUNK / len.max(1) + 1, |r| {
        let mut o = r.start * len;
        rows.walk(r, |[xo], [xs], len| {
            let (xp, out) = (xp.get(), dst.get());
            if xs == 1 {
                std::ptr::copy_nonoverlapping(xp.add(xo), out.add(o), len);
            } else {
                for j in 0..len {
                    *out.add(o + j) = *xp.add(xo + j * xs);
                }
            }
            o += len;
        });
    });
    epi_k(&s.epi, out, s.out.layout.elem_count());
}

/// `var (op)= scale * value` over one contiguous run (`value` disjoint from `var`).
struct CommitRun<'a, T> {
    var: &'a mut [T],
    value: &'a [T],
    mode: AssignMode,
    scale: f64,
}

impl<T: Float> SimdKernel for CommitRun<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let (dst, src, c) = (self.var, self.value, T::from_f64(self.scale));
        let pairs = dst.iter_mut().zip(src);
        match (self.mode, self.scale == 1.0) {
            (AssignMode::Set, true) => dst.copy_from_slice(src),
            (AssignMode::Sub, true) => pairs.for_each(|(d, &v)| *d = *d - v),
            (AssignMode::Add, true) => pairs.for_each(|(d, &v)| *d += v),
            (AssignMode::Set, false) => pairs.for_each(|(d, &v)| *d = v * c),
            (AssignMode::Sub, false) => pairs.for_each(|(d, &v)| *d = *d - v * c),
            (AssignMode::Add, false) => pairs.for_each(|(d, &v)| *d += v * c),
        }
    }
}

/// `var (op)= scale * value`, in place (`var` contiguous with `l`'s shape).
pub(super) unsafe fn commit_k<T: Float>(var: *mut T, value: *const T, l: &Layout, mode: AssignMode, scale: f64) {
    let c = T::from_f64(scale);
    let one = |d: T, v: T| {
        let v = if scale == 1.0 { v } else { v * c };
        match mode {
            AssignMode::Set => v,
            AssignMode::Add => d + v,
            AssignMode::Sub => d - v,
        }
    };
    if let Some(r) = l.contiguous_range() {
        let src = value.add(r.start);
        if std::ptr::eq(src, var) {
            // The variable assigned from itself.
            for j in 0..r.len() {
                *var.add(j) = one(*var.add(j), *var.add(j));
            }
            return;
        }
        let (dst, src) = (SendPtr(var), SendPtr(src as *mut T));
        par_ranges(r.len(), PAR_CHUNK, |p| {
            let value = std::slice::from_raw_parts(src.get().add(p.start), p.len());
            dispatch(CommitRun { var: dst.slice_mut(p), value, mode, scale });
        });
        return;
    }
    let mut o = 0;
    for_each_row_n([l], |[vo], [vs], len| {
        for j in 0..len {
            *var.add(o + j) = one(*var.add(o + j), *value.add(vo + j * vs));
        }
        o += len;
    });
}
