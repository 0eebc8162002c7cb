//! Executing a plan: kernels that write into the planned buffers through raw pointers, so a
//! step allocates nothing (ops without such a kernel fall back to their allocating forward).

use std::sync::Arc;

use super::plan::Plan;
use super::{AssignMode, GraphOp, Node};
use crate::cpu::gemm::{gemm, GemmElem, MatMut, MatRef};
use crate::dtype::Float;
use crate::layout::for_each_row_n;
use crate::ops::binary::Binary;
use crate::ops::unary::Unary;
use crate::{DType, Error, Layout, Result, Storage, Tensor};

/// Layouts up to this rank are walked without allocating.
pub(crate) const MAX_RANK: usize = 8;
/// Elements per chunk of a fused elementwise pass (stays in L1 between the fused ops).
const CHUNK: usize = 1024;

/// Where a value's elements live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    /// `Plan::bases[i]`.
    Ext(usize),
    /// The buffer of this (root) value, before buffers are assigned.
    Val(usize),
}

#[derive(Clone, Debug)]
pub(crate) struct Loc {
    pub(crate) base: Base,
    pub(crate) layout: Layout,
    pub(crate) dtype: DType,
}

#[derive(Clone)]
pub(crate) enum StepKind {
    Unary(Unary),
    Binary(Binary),
    /// `inputs[0] · inputs[1]`, plus the row bias `inputs[b]` when fused.
    Matmul {
        bias: Option<usize>,
    },
    /// Sums the input into the output through `acc` (the output's layout over the input's
    /// shape, stride 0 on reduced dims), then scales.
    Sum {
        scale: f64,
        acc: Layout,
    },
    /// Along the last dim of a contiguous input.
    Softmax {
        log: bool,
    },
    /// A strided copy into a contiguous output.
    Copy,
    Fallback {
        op: Arc<dyn GraphOp>,
    },
}

impl StepKind {
    pub(crate) fn takes_epilogue(&self) -> bool {
        !matches!(self, StepKind::Fallback { .. })
    }
}

/// One step of a plan.
pub(crate) struct Step {
    pub(crate) kind: StepKind,
    pub(crate) inputs: Vec<Loc>,
    pub(crate) in_vals: Vec<usize>,
    pub(crate) out: Loc,
    pub(crate) out_val: usize,
    /// Elementwise ops fused after the step, applied while its output is in cache.
    pub(crate) epi: Vec<Unary>,
    /// The graph nodes this step computes (more than one when fused).
    pub(crate) names: Vec<String>,
}

impl Step {
    pub(crate) fn describe(&self) -> String {
        let base = match &self.kind {
            StepKind::Unary(u) => format!("{u:?}"),
            StepKind::Binary(b) => format!("{b:?}"),
            StepKind::Matmul { bias: None } => "matmul".into(),
            StepKind::Matmul { bias: Some(_) } => "matmul+bias".into(),
            StepKind::Sum { .. } => "sum".into(),
            StepKind::Softmax { log } => if *log { "log_softmax" } else { "softmax" }.into(),
            StepKind::Copy => "copy".into(),
            StepKind::Fallback { op } => format!("{} (unplanned kernel)", op.name()),
        };
        let epi: String = self.epi.iter().map(|u| format!(" +{u:?}")).collect();
        let buf = match self.out.base {
            Base::Ext(i) => format!("buffer {i}"),
            Base::Val(v) => format!("value {v}"),
        };
        format!("{base}{epi} {} {} into {buf}", self.out.layout.shape(), self.out.dtype)
    }
}

fn apply_epi<T: Float>(epi: &[Unary], chunk: &mut [T]) {
    // The common ops get loops of their own (vectorised); the rest go through `eval`.
    for &u in epi {
        match u {
            Unary::Relu => chunk.iter_mut().for_each(|v| *v = v.max(T::ZERO)),
            Unary::Neg => chunk.iter_mut().for_each(|v| *v = -*v),
            Unary::Affine { mul, add } => {
                let (m, a) = (T::from_f64(mul), T::from_f64(add));
                chunk.iter_mut().for_each(|v| *v = *v * m + a)
            }
            u => chunk.iter_mut().for_each(|v| *v = u.eval(*v)),
        }
    }
}

/// The data pointer of a tensor's storage.
fn base_ptr(t: &Tensor) -> usize {
    let mut s = t.storage_mut();
    match &mut *s {
        Storage::F32(v) => v.as_mut_slice().as_mut_ptr() as usize,
        Storage::F64(v) => v.as_mut_slice().as_mut_ptr() as usize,
        Storage::F16(v) => v.as_mut_slice().as_mut_ptr() as usize,
        Storage::BF16(v) => v.as_mut_slice().as_mut_ptr() as usize,
        Storage::U8(v) => v.as_mut_slice().as_mut_ptr() as usize,
        Storage::I64(v) => v.as_mut_slice().as_mut_ptr() as usize,
    }
}

/// Raw access to the planned buffers of one run.
struct Mem<'a> {
    ptrs: &'a [usize],
}

impl Mem<'_> {
    fn ptr<T>(&self, l: &Loc) -> *mut T {
        match l.base {
            Base::Ext(i) => self.ptrs[i] as *mut T,
            Base::Val(_) => std::ptr::null_mut(),
        }
    }
}

// SAFETY (for all kernels below): the planner gives every step an output buffer of at least
// its element count, disjoint from its inputs except for elementwise steps whose output
// position i reads only input position i; the layouts were checked against the buffers' sizes
// when the trace ran the same ops on the same shapes.

unsafe fn unary_k<T: Float>(m: &Mem, s: &Step, u: Unary) {
    let (x, out) = (&s.inputs[0], m.ptr::<T>(&s.out));
    let xp = m.ptr::<T>(x);
    let mut o = 0;
    for_each_row_n([&x.layout], |[xo], [xs], len| {
        let mut k = 0;
        while k < len {
            let c = CHUNK.min(len - k);
            let dst = std::slice::from_raw_parts_mut(out.add(o), c);
            for (j, d) in dst.iter_mut().enumerate() {
                let v = *xp.add(xo + (k + j) * xs);
                *d = match u {
                    Unary::Relu => v.max(T::ZERO),
                    u => u.eval(v),
                };
            }
            apply_epi(&s.epi, dst);
            o += c;
            k += c;
        }
    });
}

unsafe fn binary_k<T: Float>(m: &Mem, s: &Step, b: Binary) {
    let (a, bb, out) = (&s.inputs[0], &s.inputs[1], m.ptr::<T>(&s.out));
    let (ap, bp) = (m.ptr::<T>(a), m.ptr::<T>(bb));
    let mut o = 0;
    for_each_row_n([&a.layout, &bb.layout], |[ao, bo], [as_, bs], len| {
        let mut k = 0;
        while k < len {
            let c = CHUNK.min(len - k);
            let dst = std::slice::from_raw_parts_mut(out.add(o), c);
            macro_rules! go {
                ($f:expr) => {
                    for (j, d) in dst.iter_mut().enumerate() {
                        let (x, y) = (*ap.add(ao + (k + j) * as_), *bp.add(bo + (k + j) * bs));
                        *d = $f(x, y);
                    }
                };
            }
            match b {
                Binary::Add => go!(|x: T, y: T| x + y),
                Binary::Sub => go!(|x: T, y: T| x - y),
                Binary::Mul => go!(|x: T, y: T| x * y),
                Binary::Div => go!(|x: T, y: T| x / y),
                b => go!(|x: T, y: T| b.eval(x, y)),
            }
            apply_epi(&s.epi, dst);
            o += c;
            k += c;
        }
    });
}

unsafe fn matmul_k<T: Float + GemmElem>(m: &Mem, s: &Step, bias: Option<usize>) {
    let (a, b, out) = (&s.inputs[0], &s.inputs[1], m.ptr::<T>(&s.out));
    let (mm, k, n) = (a.layout.dims()[0], a.layout.dims()[1], b.layout.dims()[1]);
    let accumulate = if let Some(bi) = bias {
        let bl = &s.inputs[bi];
        let bp = m.ptr::<T>(bl).add(bl.layout.offset());
        for r in 0..mm {
            std::ptr::copy_nonoverlapping(bp, out.add(r * n), n);
        }
        true
    } else {
        false
    };
    if k == 0 {
        if !accumulate {
            std::slice::from_raw_parts_mut(out, mm * n).fill(<T as Float>::ZERO);
        }
    } else if (n < NARROW || mm * n * k < SMALL_MACS) && (b.layout.strides()[1] == 1 || b.layout.strides()[0] == 1) {
        let ap = (m.ptr::<T>(a).add(a.layout.offset()) as *const T, a.layout.strides()[0], a.layout.strides()[1]);
        let bp = (m.ptr::<T>(b).add(b.layout.offset()) as *const T, b.layout.strides()[0], b.layout.strides()[1]);
        small_matmul(mm, n, k, out, accumulate, ap, bp);
    } else {
        let st = |l: &Layout| (l.strides()[0] as isize, l.strides()[1] as isize);
        let ((ars, acs), (brs, bcs)) = (st(&a.layout), st(&b.layout));
        gemm(
            mm,
            n,
            k,
            MatMut { ptr: out, rs: n as isize, cs: 1 },
            accumulate,
            MatRef { ptr: m.ptr::<T>(a).add(a.layout.offset()), rs: ars, cs: acs },
            MatRef { ptr: m.ptr::<T>(b).add(b.layout.offset()), rs: brs, cs: bcs },
            true,
        );
    }
    if !s.epi.is_empty() {
        for c in std::slice::from_raw_parts_mut(out, mm * n).chunks_mut(CHUNK) {
            apply_epi(&s.epi, c);
        }
    }
}

/// Products with fewer output columns than this, or fewer multiply-adds than `SMALL_MACS`,
/// run [`small_matmul`]: the gemm crate allocates packing buffers on every call, and packing
/// does not pay at these sizes.
const NARROW: usize = 16;
const SMALL_MACS: usize = 1 << 19;

/// `out[m x n] (+)= a · b` for operands given as (pointer, row stride, column stride); `b` has
/// contiguous rows (axpy of `a[i, p] * b[p, :]` into each output row, in registers when
/// narrow) or contiguous columns (a dot product per output element). Each element accumulates
/// over `p` in order with fused multiply-adds where the CPU has them, as the gemm crate's
/// kernels do, so graph and eager results agree to the bit at these sizes.
unsafe fn small_matmul<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    out: *mut T,
    accumulate: bool,
    a: (*const T, usize, usize),
    b: (*const T, usize, usize),
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        return small_matmul_fma(m, n, k, out, accumulate, a, b);
    }
    small_matmul_body(m, n, k, out, accumulate, a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn small_matmul_fma<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    out: *mut T,
    accumulate: bool,
    a: (*const T, usize, usize),
    b: (*const T, usize, usize),
) {
    small_matmul_body(m, n, k, out, accumulate, a, b)
}

#[inline(always)]
unsafe fn small_matmul_body<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    out: *mut T,
    accumulate: bool,
    a: (*const T, usize, usize),
    b: (*const T, usize, usize),
) {
    let (ap, ars, acs) = a;
    let (bp, brs, bcs) = b;
    let mut acc = [T::ZERO; NARROW];
    for i in 0..m {
        let row = std::slice::from_raw_parts_mut(out.add(i * n), n);
        if bcs == 1 && n < NARROW {
            acc[..n].fill(T::ZERO);
            for p in 0..k {
                let x = *ap.add(i * ars + p * acs);
                let brow = std::slice::from_raw_parts(bp.add(p * brs), n);
                acc[..n].iter_mut().zip(brow).for_each(|(c, &y)| *c = x.mul_add(y, *c));
            }
            if accumulate {
                row.iter_mut().zip(&acc[..n]).for_each(|(o, &c)| *o += c);
            } else {
                row.copy_from_slice(&acc[..n]);
            }
        } else if bcs == 1 {
            if accumulate {
                // Rare (a bias-fused small product): sum into the output directly.
                for p in 0..k {
                    let x = *ap.add(i * ars + p * acs);
                    let brow = std::slice::from_raw_parts(bp.add(p * brs), n);
                    row.iter_mut().zip(brow).for_each(|(c, &y)| *c = x.mul_add(y, *c));
                }
                continue;
            }
            row.fill(T::ZERO);
            for p in 0..k {
                let x = *ap.add(i * ars + p * acs);
                let brow = std::slice::from_raw_parts(bp.add(p * brs), n);
                row.iter_mut().zip(brow).for_each(|(c, &y)| *c = x.mul_add(y, *c));
            }
        } else {
            for (j, o) in row.iter_mut().enumerate() {
                let col = std::slice::from_raw_parts(bp.add(j * bcs), k);
                let mut t = T::ZERO;
                for (p, &y) in col.iter().enumerate() {
                    t = (*ap.add(i * ars + p * acs)).mul_add(y, t);
                }
                *o = if accumulate { *o + t } else { t };
            }
        }
    }
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

unsafe fn sum_k<T: Float>(m: &Mem, s: &Step, scale: f64, acc: &Layout) {
    let (x, out) = (&s.inputs[0], m.ptr::<T>(&s.out));
    let n = s.out.layout.elem_count();
    let dst = std::slice::from_raw_parts_mut(out, n);
    dst.fill(T::ZERO);
    let xp = m.ptr::<T>(x);
    // Reduced dims that are the contiguous tail of the input: one lane sum per output.
    let total = x.layout.elem_count();
    let (dims, st) = (x.layout.dims(), acc.strides());
    let (mut reduced, mut suffix) = (false, true);
    for (&d, &s) in dims.iter().zip(st) {
        if d == 1 {
            continue;
        }
        if s == 0 {
            reduced = true;
        } else if reduced {
            suffix = false;
        }
    }
    let block = total / n.max(1);
    if x.layout.is_contiguous() && reduced && suffix && block > 1 {
        let xs = std::slice::from_raw_parts(xp.add(x.layout.offset()), total);
        for (o, chunk) in dst.iter_mut().zip(xs.chunks_exact(block)) {
            *o = lane_sum(chunk);
        }
        finish_sum(dst, scale, &s.epi);
        return;
    }
    for_each_row_n([&x.layout, acc], |[xo, ao], [xs, as_], len| {
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
    finish_sum(dst, scale, &s.epi);
}

fn finish_sum<T: Float>(dst: &mut [T], scale: f64, epi: &[Unary]) {
    if scale != 1.0 {
        let c = T::from_f64(scale);
        dst.iter_mut().for_each(|v| *v *= c);
    }
    for c in dst.chunks_mut(CHUNK) {
        apply_epi(epi, c);
    }
}

unsafe fn softmax_k<T: Float>(m: &Mem, s: &Step, log: bool) {
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

unsafe fn copy_k<T: Float>(m: &Mem, s: &Step) {
    let (x, out) = (&s.inputs[0], m.ptr::<T>(&s.out));
    let xp = m.ptr::<T>(x);
    let mut o = 0;
    for_each_row_n([&x.layout], |[xo], [xs], len| {
        for j in 0..len {
            *out.add(o + j) = *xp.add(xo + j * xs);
        }
        o += len;
    });
    for c in std::slice::from_raw_parts_mut(out, o).chunks_mut(CHUNK) {
        apply_epi(&s.epi, c);
    }
}

/// `var (op)= scale * value`, in place.
unsafe fn commit_k<T: Float>(var: *mut T, value: *const T, l: &Layout, mode: AssignMode, scale: f64) {
    let c = T::from_f64(scale);
    let mut o = 0;
    for_each_row_n([l], |[vo], [vs], len| {
        let dst = std::slice::from_raw_parts_mut(var.add(o), len);
        if vs == 1 {
            let src = std::slice::from_raw_parts(value.add(vo), len);
            let pairs = dst.iter_mut().zip(src);
            match (mode, scale == 1.0) {
                (AssignMode::Set, true) => dst.copy_from_slice(src),
                (AssignMode::Sub, true) => pairs.for_each(|(d, &v)| *d = *d - v),
                (AssignMode::Add, true) => pairs.for_each(|(d, &v)| *d += v),
                (AssignMode::Set, false) => pairs.for_each(|(d, &v)| *d = v * c),
                (AssignMode::Sub, false) => pairs.for_each(|(d, &v)| *d = *d - v * c),
                (AssignMode::Add, false) => pairs.for_each(|(d, &v)| *d += v * c),
            }
        } else {
            for (j, d) in dst.iter_mut().enumerate() {
                let v = *value.add(vo + j * vs) * c;
                *d = match mode {
                    AssignMode::Set => v,
                    AssignMode::Add => *d + v,
                    AssignMode::Sub => *d - v,
                };
            }
        }
        o += len;
    });
}

fn run_step<T: Float + GemmElem>(m: &Mem, s: &Step, bases: &[Tensor]) -> Result<()> {
    // SAFETY: see the note above the kernels.
    unsafe {
        match &s.kind {
            StepKind::Unary(u) => unary_k::<T>(m, s, *u),
            StepKind::Binary(b) => binary_k::<T>(m, s, *b),
            StepKind::Matmul { bias } => matmul_k::<T>(m, s, *bias),
            StepKind::Sum { scale, acc } => sum_k::<T>(m, s, *scale, acc),
            StepKind::Softmax { log } => softmax_k::<T>(m, s, *log),
            StepKind::Copy => copy_k::<T>(m, s),
            StepKind::Fallback { .. } => return fallback(s, bases),
        }
    }
    Ok(())
}

fn view_of(l: &Loc, bases: &[Tensor]) -> Result<Tensor> {
    match l.base {
        Base::Ext(i) => Ok(Tensor::view_of_storage(bases[i].0.storage.clone(), l.layout.clone())),
        Base::Val(_) => Err(Error::invalid("session.run", "a value has no buffer")),
    }
}

/// An op without a planned kernel: its own forward, copied into the planned buffer.
fn fallback(s: &Step, bases: &[Tensor]) -> Result<()> {
    let StepKind::Fallback { op } = &s.kind else { return Ok(()) };
    let ins = s.inputs.iter().map(|l| view_of(l, bases)).collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = ins.iter().collect();
    let r = {
        let _g = crate::no_grad();
        op.forward(&refs).map_err(|e| super::trace::in_node(e, &s.names[0]))?
    };
    let dst = view_of(&s.out, bases)?;
    copy_into(&r, &dst)?;
    if !s.epi.is_empty() {
        let mut st = dst.storage_mut();
        crate::with_float!(s.out.dtype, "graph", |T| {
            if let Some(sl) = st.as_mut_slice::<T>() {
                sl[..s.out.layout.elem_count()].chunks_mut(CHUNK).for_each(|c| apply_epi(&s.epi, c));
            }
            Ok::<(), Error>(())
        })?;
    }
    Ok(())
}

/// Copies `src` into `dst` (same shape and dtype), in `dst`'s layout.
pub(crate) fn copy_into(src: &Tensor, dst: &Tensor) -> Result<()> {
    if src.shape() != dst.shape() || src.dtype() != dst.dtype() {
        return Err(Error::shape(
            "session.run_into",
            format!("output is {} {} but the value is {} {}", dst.shape(), dst.dtype(), src.shape(), src.dtype()),
        ));
    }
    let c = src.contiguous()?;
    let s = c.storage();
    let mut d = dst.storage_mut();
    crate::ops::copy::copy_storage_into(&s, &mut d, dst.layout())
}

impl Plan {
    /// Zeroed tensors of the fetched shapes, to receive a run's results.
    pub(crate) fn fresh_outputs(&self) -> Result<Vec<Tensor>> {
        self.fetch
            .iter()
            .zip(&self.fetch_var_after)
            .map(|(f, v)| match (f, v) {
                (Some(l), _) => Tensor::zeros(l.layout.shape().clone(), l.dtype),
                (None, Some(b)) => Tensor::zeros(self.bases[*b].shape().clone(), self.bases[*b].dtype()),
                _ => Tensor::zeros(0, DType::F32),
            })
            .collect()
    }

    /// One run over the planned buffers, results written into `outs`.
    pub(crate) fn execute(&mut self, feeds: &[(&Node, &Tensor)], outs: &mut [Tensor]) -> Result<()> {
        for (node, base, _) in &self.feeds {
            let Some((_, t)) = feeds.iter().find(|(n, _)| n.id == *node) else {
                return Err(Error::invalid("session.run", format!("placeholder #{node} must be fed")));
            };
            let plain = t.is_contiguous() && t.layout().offset() == 0;
            self.bases[*base] = if plain { (*t).clone() } else { t.copy()? };
        }
        for (p, b) in self.ptrs.iter_mut().zip(&self.bases) {
            *p = base_ptr(b);
        }
        let m = Mem { ptrs: &self.ptrs };
        for s in &self.steps {
            match s.out.dtype {
                DType::F32 => run_step::<f32>(&m, s, &self.bases)?,
                DType::F64 => run_step::<f64>(&m, s, &self.bases)?,
                _ => fallback(s, &self.bases)?,
            }
        }
        // Fetched values are read before the assigns change any variable.
        for (i, f) in self.fetch.iter().enumerate() {
            let Some(l) = f else { continue };
            let out = outs.get(i).ok_or_else(|| Error::invalid("session.run", "too few outputs"))?;
            if out.shape() != l.layout.shape() || out.dtype() != l.dtype || !out.is_contiguous() {
                return Err(Error::shape(
                    "session.run_into",
                    format!("output {i} is {} {} but the fetch is {} {}", out.shape(), out.dtype(), l.layout.shape(), l.dtype),
                ));
            }
            let dst = base_ptr(out);
            // SAFETY: `out` is contiguous with the fetched shape; the source layout is planned.
            unsafe {
                match l.dtype {
                    DType::F32 => {
                        commit_k::<f32>((dst as *mut f32).add(out.layout().offset()), m.ptr::<f32>(l), &l.layout, AssignMode::Set, 1.0)
                    }
                    DType::F64 => {
                        commit_k::<f64>((dst as *mut f64).add(out.layout().offset()), m.ptr::<f64>(l), &l.layout, AssignMode::Set, 1.0)
                    }
                    _ => copy_into(&view_of(l, &self.bases)?.contiguous()?, out)?,
                }
            }
        }
        for c in &self.commits {
            let vb = c.var;
            // SAFETY: variables are contiguous buffers of the value's shape (checked by the trace).
            unsafe {
                match c.value.dtype {
                    DType::F32 => commit_k::<f32>(m.ptrs[vb] as *mut f32, m.ptr::<f32>(&c.value), &c.value.layout, c.mode, c.scale),
                    DType::F64 => commit_k::<f64>(m.ptrs[vb] as *mut f64, m.ptr::<f64>(&c.value), &c.value.layout, c.mode, c.scale),
                    _ => {
                        let v = view_of(&c.value, &self.bases)?.affine(c.scale, 0.0)?;
                        super::trace::commit_eager(&self.bases[vb], &v, c.mode)?;
                    }
                }
            }
        }
        for (i, v) in self.fetch_var_after.iter().enumerate() {
            if let (Some(b), Some(out)) = (v, outs.get(i)) {
                copy_into(&self.bases[*b], out)?;
            }
        }
        Ok(())
    }
}
