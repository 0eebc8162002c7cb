//! Executing a plan: kernels that write into the planned buffers through raw pointers, so a
//! step allocates nothing (ops without such a kernel fall back to their allocating forward).

use std::sync::Arc;

use super::kernels::{apply_epi, binary_k, commit_k, copy_k, epi_k, softmax_k, sum_k, unary_k, CHUNK};
use super::narrow::small_matmul_par;
use super::plan::Plan;
use super::{AssignMode, GraphOp, Node};
use crate::cpu::gemm::{gemm_scaled, GemmElem, MatMut, MatRef};
use crate::dtype::Float;
use crate::ops::binary::Binary;
use crate::ops::unary::Unary;
use crate::{DType, Error, Layout, Result, Storage, Tensor};

/// Layouts up to this rank are walked without allocating.
pub(crate) const MAX_RANK: usize = 8;

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
    /// With a unary op applied to one operand (its index) as it is read.
    Binary(Binary, Option<(usize, Unary)>),
    /// `inputs[0] · inputs[1]`, plus the row bias `inputs[b]` when fused; with `update`, the
    /// product times that scale is added to the output (a variable: `var -= lr · xᵀ·dy`).
    Matmul {
        bias: Option<usize>,
        update: Option<f64>,
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
            StepKind::Binary(b, None) => format!("{b:?}"),
            StepKind::Binary(b, Some((k, u))) => format!("{b:?} of {u:?}(input {k})"),
            StepKind::Matmul { bias: None, update: None } => "matmul".into(),
            StepKind::Matmul { bias: Some(_), .. } => "matmul+bias".into(),
            StepKind::Matmul { update: Some(a), .. } => format!("matmul, {a} x product added in place"),
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
pub(super) struct Mem<'a> {
    ptrs: &'a [usize],
}

impl Mem<'_> {
    pub(super) fn ptr<T>(&self, l: &Loc) -> *mut T {
        match l.base {
            Base::Ext(i) => self.ptrs[i] as *mut T,
            Base::Val(_) => std::ptr::null_mut(),
        }
    }
}

// SAFETY: see the note in `kernels`; the matmul operands are the planned layouts, of the
// shapes the trace checked.

unsafe fn matmul_k<T: Float + GemmElem>(m: &Mem, s: &Step, bias: Option<usize>, update: Option<f64>) {
    let (a, b) = (&s.inputs[0], &s.inputs[1]);
    let out = m.ptr::<T>(&s.out).add(s.out.layout.offset());
    let (mm, k, n) = (a.layout.dims()[0], a.layout.dims()[1], b.layout.dims()[1]);
    let accumulate = if update.is_some() {
        true
    } else if let Some(bi) = bias {
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
    } else if update.is_none() && takes_small_kernel(mm, n, k, &b.layout) {
        let ap = (m.ptr::<T>(a).add(a.layout.offset()) as *const T, a.layout.strides()[0], a.layout.strides()[1]);
        let bp = (m.ptr::<T>(b).add(b.layout.offset()) as *const T, b.layout.strides()[0], b.layout.strides()[1]);
        small_matmul_par(mm, n, k, out, accumulate, ap, bp);
    } else {
        let st = |l: &Layout| (l.strides()[0] as isize, l.strides()[1] as isize);
        let ((ars, acs), (brs, bcs)) = (st(&a.layout), st(&b.layout));
        gemm_scaled(
            mm,
            n,
            k,
            MatMut { ptr: out, rs: n as isize, cs: 1 },
            accumulate,
            T::from_f64(update.unwrap_or(1.0)),
            MatRef { ptr: m.ptr::<T>(a).add(a.layout.offset()), rs: ars, cs: acs },
            MatRef { ptr: m.ptr::<T>(b).add(b.layout.offset()), rs: brs, cs: bcs },
            true,
        );
    }
    epi_k(&s.epi, out, mm * n);
}

/// Products with fewer output columns than this, or fewer multiply-adds than `SMALL_MACS`,
/// run [`small_matmul`]: the gemm crate allocates packing buffers on every call, and packing
/// does not pay at these sizes.
const NARROW: usize = 16;
const SMALL_MACS: usize = 1 << 19;

/// Whether an `m x k · k x n` product (of this `b`) runs [`small_matmul`] rather than gemm.
pub(crate) fn takes_small_kernel(m: usize, n: usize, k: usize, b: &Layout) -> bool {
    (n < NARROW || m * n * k < SMALL_MACS) && (b.strides()[1] == 1 || b.strides()[0] == 1)
}

/// Runs a planned kernel (not a fallback).
fn run_step<T: Float + GemmElem>(m: &Mem, s: &Step) {
    // SAFETY: see the note above the kernels.
    unsafe {
        match &s.kind {
            StepKind::Unary(u) => unary_k::<T>(m, s, *u),
            StepKind::Binary(b, pre) => binary_k::<T>(m, s, *b, *pre),
            StepKind::Matmul { bias, update } => matmul_k::<T>(m, s, *bias, *update),
            StepKind::Sum { scale, acc } => sum_k::<T>(m, s, *scale, acc),
            StepKind::Softmax { log } => softmax_k::<T>(m, s, *log),
            StepKind::Copy => copy_k::<T>(m, s),
            StepKind::Fallback { .. } => {}
        }
    }
}

fn view_of(l: &Loc, bases: &[Tensor]) -> Result<Tensor> {
    match l.base {
        Base::Ext(i) => Ok(Tensor::view_of_storage(bases[i].0.storage.clone(), l.layout.clone())),
        Base::Val(_) => Err(Error::invalid("session.run", "a value has no buffer")),
    }
}

/// An op without a planned kernel: its own forward. Its result becomes the planned buffer
/// when it fills it exactly and nothing else holds it (the buffer it replaces goes back to
/// the buffer pool, where the op's next forward finds it), else it is copied in.
fn fallback(s: &Step, bases: &mut [Tensor], ptrs: &mut [usize]) -> Result<()> {
    let StepKind::Fallback { op } = &s.kind else { return Ok(()) };
    let ins = s.inputs.iter().map(|l| view_of(l, bases)).collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = ins.iter().collect();
    let r = {
        let _g = crate::no_grad();
        op.forward(&refs).map_err(|e| super::trace::in_node(e, &s.names[0]))?
    };
    drop(ins);
    let adopt = match s.out.base {
        Base::Ext(b) => {
            let fits = r.shape() == s.out.layout.shape()
                && r.dtype() == s.out.dtype
                && r.is_contiguous()
                && r.layout().offset() == 0
                && s.out.layout.offset() == 0
                && Arc::strong_count(&r.0) == 1
                && Arc::strong_count(&r.0.storage) == 1
                && r.storage().len() == bases[b].storage().len();
            fits.then_some(b)
        }
        Base::Val(_) => None,
    };
    let dst = match adopt {
        Some(b) => {
            ptrs[b] = base_ptr(&r);
            bases[b] = r;
            view_of(&s.out, bases)?
        }
        None => {
            let dst = view_of(&s.out, bases)?;
            copy_into(&r, &dst)?;
            dst
        }
    };
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
        let mut lap = self.profile.is_some().then(std::time::Instant::now);
        for (i, s) in self.steps.iter().enumerate() {
            let m = Mem { ptrs: &self.ptrs };
            match (s.out.dtype, &s.kind) {
                (_, StepKind::Fallback { .. }) => fallback(s, &mut self.bases, &mut self.ptrs)?,
                (DType::F32, _) => run_step::<f32>(&m, s),
                (DType::F64, _) => run_step::<f64>(&m, s),
                _ => {}
            }
            if let (Some(p), Some(t)) = (&mut self.profile, lap) {
                lap = Some(p.lap(i, t));
            }
        }
        let m = Mem { ptrs: &self.ptrs };
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
        if let (Some(p), Some(t)) = (&mut self.profile, lap) {
            p.lap(self.steps.len(), t);
            p.runs += 1;
        }
        Ok(())
    }
}
