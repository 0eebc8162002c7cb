//! Compiling a trace into a plan: dead-instruction elimination, views without copies, fusion
//! (elementwise chains into their producer's pass, bias-add + activation into the matmul, the
//! learning-rate scale into the variable update), and buffers assigned from liveness.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::exec::{Base, Loc, Step, StepKind, MAX_RANK};
use super::session::MemoryReport;
use super::trace::{Commit, FetchSrc, Source, Trace};
use super::{AssignMode, Graph, Node, NodeKind};
use crate::ops::binary::Binary;
use crate::ops::copy::CopyOp;
use crate::ops::matmul::Matmul;
use crate::ops::movement::{BroadcastAs, BroadcastLike, Embed, Narrow, Permute, Reshape, ReshapeLike, SumToLike, Unsqueeze};
use crate::ops::reduce::{Reduce, ReduceKind};
use crate::ops::softmax::Softmax;
use crate::ops::unary::Unary;
use crate::{DType, Layout, Result, Shape, Tensor};

/// A variable update of the plan: `var (op)= scale * value`.
pub(crate) struct PlannedCommit {
    pub(crate) var: usize,
    pub(crate) name: String,
    pub(crate) value: Loc,
    pub(crate) mode: AssignMode,
    pub(crate) scale: f64,
}

/// A compiled run: steps over planned buffers.
pub(crate) struct Plan {
    pub(crate) steps: Vec<Step>,
    /// Tensors behind every base: arena buffers, then feeds, variables and constants.
    pub(crate) bases: Vec<Tensor>,
    /// Raw pointers of `bases`, refreshed per run (feeds change).
    pub(crate) ptrs: Vec<usize>,
    /// (placeholder node id, base index) for each feed.
    pub(crate) feeds: Vec<(usize, usize, Shape)>,
    pub(crate) fetch_ids: Vec<usize>,
    pub(crate) fetch: Vec<Option<Loc>>,
    pub(crate) fetch_var_after: Vec<Option<usize>>,
    pub(crate) commits: Vec<PlannedCommit>,
    pub(crate) report: MemoryReport,
    /// Variable node id -> name, for `explain`.
    var_names: HashMap<usize, String>,
    /// Per-step time when profiling (see [`super::Session::set_profiling`]).
    pub(crate) profile: Option<super::profile::StepTimes>,
}

fn is_float(d: DType) -> bool {
    matches!(d, DType::F32 | DType::F64)
}

/// A view op's output layout from its input's, or `None` when it must compute.
fn view_layout(op: &dyn std::any::Any, x: &Layout, out_shape: &Shape) -> Option<Layout> {
    if let Some(p) = op.downcast_ref::<Permute>() {
        return x.permute(&p.perm, "permute").ok();
    }
    if op.is::<BroadcastAs>() || op.is::<BroadcastLike>() {
        return x.broadcast_as(out_shape, "broadcast").ok();
    }
    if let Some(n) = op.downcast_ref::<Narrow>() {
        return x.narrow(n.dim, n.start, n.len, "narrow").ok();
    }
    if op.is::<Reshape>() || op.is::<ReshapeLike>() || op.is::<Unsqueeze>() {
        return x.reshape(out_shape.clone());
    }
    None
}

/// The output's layout over the input's shape with stride 0 on summed dims (`keep` is the
/// output shape with the summed dims kept as 1).
fn acc_layout(x: &Shape, keep: &[usize]) -> Layout {
    let strides = Shape::from(keep).contiguous_strides();
    let strides = keep.iter().zip(strides).map(|(&k, s)| if k == 1 { 0 } else { s }).collect();
    Layout::new(x.clone(), strides, 0)
}

/// The summed-dims-kept output shape of a sum step, or `None` if it is not a plain sum.
fn sum_keep(op: &dyn std::any::Any, x: &Shape, out: &Shape) -> Option<Vec<usize>> {
    if let Some(r) = op.downcast_ref::<Reduce>() {
        if r.kind != ReduceKind::Sum {
            return None;
        }
        return Some(x.dims().iter().enumerate().map(|(d, &s)| if r.dims.contains(&d) { 1 } else { s }).collect());
    }
    if op.is::<SumToLike>() {
        let (xr, tr) = (x.rank(), out.rank());
        if tr > xr {
            return None;
        }
        let mut keep = vec![1; xr - tr];
        keep.extend_from_slice(out.dims());
        return Some(keep);
    }
    None
}

/// Ops whose second input gives only a shape (`broadcast_like`, `sum_to_like`, ...): its
/// values are never read, so it does not keep its producer alive.
fn shape_only_second(op: &dyn std::any::Any) -> bool {
    op.is::<BroadcastLike>() || op.is::<ReshapeLike>() || op.is::<SumToLike>() || op.is::<Embed>()
}

fn remap(l: &mut Loc, from: Base, to: Base) {
    if l.base == from {
        l.base = to;
    }
}

impl Plan {
    pub(crate) fn compile(graph: &Graph, tr: Trace, fetch_ids: &[usize], feeds: &[(usize, Tensor)]) -> Result<Plan> {
        let g = graph.read();
        let ir = &tr.ir;
        let nv = ir.values.len();
        // Dead-instruction elimination: keep what fetches and assigns read.
        let mut live = vec![false; nv];
        let mut stack: Vec<usize> = tr.fetch.iter().filter_map(|f| if let FetchSrc::Value(v) = f { Some(*v) } else { None }).collect();
        stack.extend(tr.commits.iter().map(|c| c.value));
        while let Some(v) = stack.pop() {
            if std::mem::replace(&mut live[v], true) {
                continue;
            }
            if let Source::Instr(i) = ir.values[v].source {
                let instr = &ir.instrs[i];
                let n = if shape_only_second(instr.op.as_any()) { 1 } else { instr.inputs.len() };
                stack.extend(&instr.inputs[..n]);
            }
        }

        // Bases for the values that come from outside.
        let mut bases: Vec<Tensor> = Vec::new();
        let mut plan_feeds = Vec::new();
        let mut locs: Vec<Option<Loc>> = vec![None; nv];
        let mut var_base = HashMap::new();
        for (v, val) in ir.values.iter().enumerate() {
            let (t, layout) = match &val.source {
                Source::Feed(node) => {
                    let Some(t) = feeds.iter().find(|(n, _)| n == node).map(|(_, t)| t.clone()) else { continue };
                    plan_feeds.push((*node, bases.len(), val.shape.clone()));
                    (t, Layout::contiguous(val.shape.clone()))
                }
                Source::Var(node) => {
                    let NodeKind::Variable(t) = &g.nodes[*node].kind else { continue };
                    var_base.insert(*node, bases.len());
                    (t.clone(), t.layout().clone())
                }
                Source::Const(t) => (t.clone(), t.layout().clone()),
                Source::Instr(_) => continue,
            };
            locs[v] = Some(Loc { base: Base::Ext(bases.len()), layout, dtype: val.dtype });
            bases.push(t);
        }
        for c in &tr.commits {
            if let (false, NodeKind::Variable(t)) = (var_base.contains_key(&c.var), &g.nodes[c.var].kind) {
                var_base.insert(c.var, bases.len());
                bases.push(t.clone());
            }
        }

        // Steps; view outputs are layouts over their input's buffer.
        let mut steps: Vec<Step> = Vec::new();
        let mut report = MemoryReport::default();
        let mut report_vals = Vec::new();
        for instr in &ir.instrs {
            if !live[instr.out] {
                continue;
            }
            let val = &ir.values[instr.out];
            let op = instr.op.as_any();
            let mut ins = Vec::with_capacity(instr.inputs.len());
            for (k, &i) in instr.inputs.iter().enumerate() {
                let loc = match locs[i].clone() {
                    Some(l) => l,
                    // A dead shape-only input: zeros of its shape, broadcast from one element.
                    None if k == 1 && shape_only_second(op) => {
                        let v = &ir.values[i];
                        let zero = bases.len();
                        bases.push(Tensor::zeros((), v.dtype)?);
                        Loc { base: Base::Ext(zero), layout: Layout::new(v.shape.clone(), vec![0; v.shape.rank()], 0), dtype: v.dtype }
                    }
                    None => return Err(crate::Error::invalid("session.compile", format!("an input of {} has no location", instr.name))),
                };
                ins.push(loc);
            }
            let bytes = val.shape.elem_count() * val.dtype.size_in_bytes();
            if let Some(layout) = view_layout(op, &ins[0].layout, &val.shape) {
                report.values.push((instr.name.clone(), instr.op.name(), bytes, "view".into()));
                report_vals.push(None);
                locs[instr.out] = Some(Loc { base: ins[0].base, layout, dtype: val.dtype });
                continue;
            }
            report.intermediates_bytes += bytes;
            let out = Loc { base: Base::Val(instr.out), layout: Layout::contiguous(val.shape.clone()), dtype: val.dtype };
            let x_shape = ins[0].layout.shape().clone();
            let floats = is_float(val.dtype)
                && ins.iter().all(|l| l.dtype == val.dtype)
                && val.shape.rank() <= MAX_RANK
                && x_shape.rank() <= MAX_RANK;
            let kind = if !floats {
                StepKind::Fallback { op: instr.op.clone() }
            } else if let Some(u) = op.downcast_ref::<Unary>() {
                StepKind::Unary(*u)
            } else if let Some(b) = op.downcast_ref::<Binary>() {
                StepKind::Binary(*b, None)
            } else if op.is::<Matmul>() && ins[0].layout.dims().len() == 2 && ins[1].layout.dims().len() == 2 {
                StepKind::Matmul { bias: None, update: None }
            } else if let Some(keep) = sum_keep(op, &x_shape, &val.shape) {
                StepKind::Sum { scale: 1.0, acc: acc_layout(&x_shape, &keep) }
            } else if let Some(sm) = op.downcast_ref::<Softmax>().filter(|s| s.dim + 1 == val.shape.rank() && ins[0].layout.is_contiguous())
            {
                StepKind::Softmax { log: sm.log }
            } else if op.is::<CopyOp>() || op.is::<Reshape>() || op.is::<ReshapeLike>() || op.is::<Unsqueeze>() {
                StepKind::Copy
            } else {
                StepKind::Fallback { op: instr.op.clone() }
            };
            // Binary inputs are read through layouts of the output's shape.
            let ins = match &kind {
                StepKind::Binary(..) => ins
                    .into_iter()
                    .map(|l| Ok(Loc { layout: l.layout.broadcast_as(&val.shape, "graph")?, ..l }))
                    .collect::<Result<Vec<_>>>()?,
                _ => ins,
            };
            locs[instr.out] = Some(out.clone());
            report.values.push((instr.name.clone(), instr.op.name(), bytes, String::new()));
            report_vals.push(Some(instr.out));
            steps.push(Step {
                kind,
                inputs: ins,
                in_vals: instr.inputs.clone(),
                out,
                out_val: instr.out,
                epi: vec![],
                names: vec![instr.name.clone()],
            });
        }

        let fetch: Vec<Option<Loc>> = tr.fetch.iter().map(|f| if let FetchSrc::Value(v) = f { locs[*v].clone() } else { None }).collect();
        let fetch_var_after: Vec<Option<usize>> =
            tr.fetch.iter().map(|f| if let FetchSrc::VarAfter(v) = f { var_base.get(v).copied() } else { None }).collect();
        let mut plan = Plan {
            steps,
            bases,
            ptrs: vec![],
            feeds: plan_feeds,
            fetch_ids: fetch_ids.to_vec(),
            fetch,
            fetch_var_after,
            commits: vec![],
            report,
            var_names: tr.commits.iter().map(|c| (c.var, g.nodes[c.var].name.clone())).collect(),
            profile: None,
        };
        plan.commits = plan.fuse(&tr.commits, &mut locs, &var_base)?;
        plan.fuse_updates_into_matmuls();
        let assigned = plan.assign_buffers();
        for ((_, _, _, col), v) in plan.report.values.iter_mut().zip(&report_vals) {
            if let Some(v) = v {
                *col = match assigned.get(v) {
                    Some(b) => format!("buffer {b}"),
                    None => "fused".into(),
                };
            }
        }
        plan.ptrs = vec![0; plan.bases.len()];
        Ok(plan)
    }

    /// Folds single-use elementwise consumers into their producers (unary ops into any planned
    /// kernel, a row-bias add into a matmul), and `var -= lr * g` into the update.
    fn fuse(&mut self, commits: &[Commit], locs: &mut [Option<Loc>], var_base: &HashMap<usize, usize>) -> Result<Vec<PlannedCommit>> {
        let nsteps = self.steps.len();
        let uses = self.use_counts(commits);
        let single = |v: usize| uses.get(&v).copied().unwrap_or(0) == 1;
        let mut removed = vec![false; nsteps];
        // The step whose buffer holds each value.
        let mut step_of: HashMap<usize, usize> = self.steps.iter().enumerate().map(|(i, s)| (s.out_val, i)).collect();
        // `var -= lr * g` scales inside the update (one pass over `g`) rather than as an
        // epilogue of g's producer (a second pass), so such scales stay for the commits below.
        let update_scale: Vec<bool> = self
            .steps
            .iter()
            .map(|s| {
                matches!(s.kind, StepKind::Unary(Unary::Affine { add, .. }) if add == 0.0)
                    && commits.iter().any(|c| c.value == s.out_val && c.mode != AssignMode::Set)
            })
            .collect();
        #[allow(clippy::needless_range_loop)] // steps before `i` change while `i` is visited
        for i in 0..nsteps {
            let in_vals = self.steps[i].in_vals.clone();
            let fused_into = match self.steps[i].kind.clone() {
                StepKind::Unary(u) => {
                    let v = in_vals[0];
                    match step_of.get(&v) {
                        Some(&p)
                            if single(v)
                                && !update_scale[i]
                                && self.steps[i].inputs[0].layout == self.steps[p].out.layout
                                && self.steps[p].kind.takes_epilogue()
                                && self.steps[i].inputs[0].base == self.steps[p].out.base =>
                        {
                            self.steps[p].epi.push(u);
                            Some(p)
                        }
                        _ => None,
                    }
                }
                StepKind::Binary(Binary::Add, None) => {
                    let mut hit = None;
                    for (mi, bi) in [(0, 1), (1, 0)] {
                        let Some(&p) = step_of.get(&in_vals[mi]) else { continue };
                        let bias = self.steps[i].inputs[bi].clone();
                        let bs = bias.layout.strides();
                        let row_bias = bs.len() == 2 && bs[0] == 0 && bs[1] == 1;
                        // The bias must exist before the matmul runs.
                        let ready = match bias.base {
                            Base::Ext(_) => true,
                            Base::Val(b) => step_of.get(&b).is_some_and(|&q| q < p),
                        };
                        let fits = matches!(self.steps[p].kind, StepKind::Matmul { bias: None, update: None })
                            && self.steps[p].epi.is_empty()
                            && single(in_vals[mi])
                            && self.steps[i].inputs[mi].layout == self.steps[p].out.layout
                            && self.steps[i].inputs[mi].base == self.steps[p].out.base;
                        if fits && row_bias && ready {
                            self.steps[p].kind = StepKind::Matmul { bias: Some(self.steps[p].inputs.len()), update: None };
                            self.steps[p].inputs.push(bias);
                            self.steps[p].in_vals.push(in_vals[bi]);
                            hit = Some(p);
                            break;
                        }
                    }
                    hit
                }
                _ => None,
            };
            if let Some(p) = fused_into {
                removed[i] = true;
                let name = self.steps[i].names[0].clone();
                self.steps[p].names.push(name);
                let (from, to) = (self.steps[i].out.base, self.steps[p].out.base);
                step_of.insert(self.steps[i].out_val, p);
                for s in self.steps.iter_mut() {
                    s.inputs.iter_mut().for_each(|l| remap(l, from, to));
                }
                self.fetch.iter_mut().flatten().for_each(|l| remap(l, from, to));
                locs.iter_mut().flatten().for_each(|l| remap(l, from, to));
            } else if let StepKind::Binary(b, None) = self.steps[i].kind {
                self.fuse_prologue(i, b, &mut removed, &step_of, &single, commits, locs);
            }
        }
        let mut planned = Vec::new();
        for c in commits {
            let Some(&var) = var_base.get(&c.var) else { continue };
            let mut value =
                locs[c.value].clone().ok_or_else(|| crate::Error::invalid("session.compile", "an assigned value has no location"))?;
            let mut scale = 1.0;
            if let Some(&p) = step_of.get(&c.value) {
                let st = &self.steps[p];
                if let StepKind::Unary(Unary::Affine { mul, add }) = st.kind {
                    if add == 0.0
                        && st.epi.is_empty()
                        && !removed[p]
                        && single(c.value)
                        && c.mode != AssignMode::Set
                        && st.out_val == c.value
                    {
                        scale = mul;
                        value = st.inputs[0].clone();
                        removed[p] = true;
                    }
                }
            }
            let name = self.var_names.get(&c.var).cloned().unwrap_or_default();
            planned.push(PlannedCommit { var, name, value, mode: c.mode, scale });
        }
        let mut i = 0;
        self.steps.retain(|_| {
            i += 1;
            !removed[i - 1]
        });
        Ok(planned)
    }

    /// Folds a single-use unary step into the binary step `i` that reads it, applied to that
    /// operand as it is loaded (`step(x) * g` reads `x` and `g` once and writes once, where two
    /// steps write and read the mask between them).
    #[allow(clippy::too_many_arguments)]
    fn fuse_prologue(
        &mut self,
        i: usize,
        b: Binary,
        removed: &mut [bool],
        step_of: &HashMap<usize, usize>,
        single: &dyn Fn(usize) -> bool,
        commits: &[Commit],
        locs: &[Option<Loc>],
    ) {
        for k in 0..2 {
            let v = self.steps[i].in_vals[k];
            let Some(&p) = step_of.get(&v) else { continue };
            let StepKind::Unary(u) = self.steps[p].kind else { continue };
            let (pin, pout) = (&self.steps[p].inputs[0], &self.steps[p].out);
            let fits = !removed[p]
                && self.steps[p].out_val == v
                && self.steps[p].epi.is_empty()
                && single(v)
                && self.steps[i].inputs[k].layout == pout.layout
                && self.steps[i].inputs[k].base == pout.base
                && pin.layout.shape() == pout.layout.shape();
            // The unary's result is never written: nothing else may read its buffer (a view
            // of it is another value, with uses of its own).
            let base = pout.base;
            let elsewhere = self
                .steps
                .iter()
                .enumerate()
                .any(|(j, st)| !removed[j] && st.inputs.iter().enumerate().any(|(q, l)| l.base == base && !(j == i && q == k)))
                || self.fetch.iter().flatten().any(|l| l.base == base)
                || commits.iter().any(|c| locs[c.value].as_ref().is_some_and(|l| l.base == base));
            if fits && !elsewhere {
                let (input, in_val) = (pin.clone(), self.steps[p].in_vals[0]);
                let names = std::mem::take(&mut self.steps[p].names);
                let st = &mut self.steps[i];
                st.inputs[k] = input;
                st.in_vals[k] = in_val;
                st.kind = StepKind::Binary(b, Some((k, u)));
                st.names.splice(0..0, names);
                removed[p] = true;
                return;
            }
        }
    }

    /// How many steps, fetches and assigns read each value.
    fn use_counts(&self, commits: &[Commit]) -> HashMap<usize, usize> {
        let mut uses = HashMap::new();
        for s in &self.steps {
            for &v in &s.in_vals {
                *uses.entry(v).or_insert(0) += 1;
            }
        }
        for c in commits {
            *uses.entry(c.value).or_insert(0) += 1;
        }
        // A fetched value is read after the run: never fuse it away.
        for l in self.fetch.iter().flatten() {
            if let Base::Val(v) = l.base {
                *uses.entry(v).or_insert(0) += 2;
            }
        }
        uses
    }

    /// Gives every step's output a buffer, reusing buffers of dead values (liveness over the
    /// step order; best fit by size). An elementwise step may write over an input that dies
    /// there. Returns the buffer of each root value.
    fn assign_buffers(&mut self) -> HashMap<usize, usize> {
        let mut last: HashMap<usize, usize> = HashMap::new();
        for (si, s) in self.steps.iter().enumerate() {
            for l in &s.inputs {
                if let Base::Val(r) = l.base {
                    last.insert(r, si);
                }
            }
        }
        let forever = self.fetch.iter().flatten().chain(self.commits.iter().map(|c| &c.value));
        for l in forever {
            if let Base::Val(r) = l.base {
                last.insert(r, usize::MAX);
            }
        }
        let mut bufs: Vec<(usize, DType)> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut assigned: HashMap<usize, usize> = HashMap::new();
        for si in 0..self.steps.len() {
            let s = &self.steps[si];
            let Base::Val(r) = s.out.base else { continue };
            let (need, dtype) = (s.out.layout.elem_count().max(1), s.out.dtype);
            let mut released = Vec::new();
            if matches!(s.kind, StepKind::Unary(_) | StepKind::Binary(..)) {
                for l in &s.inputs {
                    if let Base::Val(ri) = l.base {
                        // Every read of that buffer in this step must be position-aligned.
                        let aligned = s.inputs.iter().all(|o| o.base != l.base || o.layout == s.out.layout);
                        if ri != r && last.get(&ri) == Some(&si) && aligned && !released.contains(&ri) {
                            if let Some(&b) = assigned.get(&ri) {
                                free.push(b);
                            }
                            released.push(ri);
                        }
                    }
                }
            }
            // Best fit; else grow the largest free buffer (sizes are final only after
            // planning, so growing costs the difference where a new buffer costs it all).
            let same = || free.iter().enumerate().filter(|(_, &b)| bufs[b].1 == dtype);
            let best = same().filter(|(_, &b)| bufs[b].0 >= need).min_by_key(|(_, &b)| bufs[b].0).map(|(i, _)| i);
            let b = match best.or_else(|| same().max_by_key(|(_, &b)| bufs[b].0).map(|(i, _)| i)) {
                Some(i) => {
                    let b = free.swap_remove(i);
                    bufs[b].0 = bufs[b].0.max(need);
                    b
                }
                None => {
                    bufs.push((need, dtype));
                    bufs.len() - 1
                }
            };
            assigned.insert(r, b);
            if !last.contains_key(&r) {
                free.push(b);
            }
            for l in &s.inputs {
                if let Base::Val(ri) = l.base {
                    if last.get(&ri) == Some(&si) && !released.contains(&ri) {
                        if let Some(&b) = assigned.get(&ri) {
                            free.push(b);
                        }
                        released.push(ri);
                    }
                }
            }
        }
        let first = self.bases.len();
        for &(n, dtype) in &bufs {
            self.bases.push(Tensor::zeros(n, dtype).unwrap_or_else(|_| Tensor::scalar(0f32)));
            self.report.planned_peak_bytes += n * dtype.size_in_bytes();
        }
        let fix = |l: &mut Loc| {
            if let Base::Val(r) = l.base {
                if let Some(&b) = assigned.get(&r) {
                    l.base = Base::Ext(first + b);
                }
            }
        };
        for s in self.steps.iter_mut() {
            s.inputs.iter_mut().for_each(fix);
            fix(&mut s.out);
        }
        self.fetch.iter_mut().flatten().for_each(fix);
        self.commits.iter_mut().for_each(|c| fix(&mut c.value));
        assigned.into_iter().map(|(r, b)| (r, first + b)).collect()
    }

    /// Whether this plan was compiled for exactly these fetches and feed shapes.
    pub(crate) fn matches(&self, fetches: &[&Node], feeds: &[(&Node, &Tensor)]) -> bool {
        self.fetch_ids.len() == fetches.len()
            && self.fetch_ids.iter().zip(fetches).all(|(a, b)| *a == b.id)
            && self.feeds.iter().all(|(node, _, shape)| feeds.iter().any(|(n, t)| n.id == *node && t.shape() == shape))
    }

    /// Mean time per step over the profiled runs (see [`super::Session::profile`]).
    pub(crate) fn profile_report(&self) -> super::StepProfile {
        let Some(p) = &self.profile else { return super::StepProfile::default() };
        let mean = |n: u64| std::time::Duration::from_nanos(n / p.runs.max(1));
        let mut steps: Vec<(String, std::time::Duration)> =
            self.steps.iter().zip(&p.nanos).map(|(s, &n)| (s.describe(), mean(n))).collect();
        let last = p.nanos.last().copied().unwrap_or(0);
        steps.push((format!("fetches and {} variable updates", self.commits.len()), mean(last)));
        super::StepProfile { runs: p.runs, steps }
    }

    /// The plan in words (see [`super::Session::explain`]).
    pub(crate) fn explain(&self) -> String {
        let mut s = String::new();
        let r = &self.report;
        let _ = writeln!(
            s,
            "{} steps; planned buffers {} bytes for {} bytes of intermediates",
            self.steps.len(),
            r.planned_peak_bytes,
            r.intermediates_bytes
        );
        for (i, st) in self.steps.iter().enumerate() {
            let fused = if st.names.len() > 1 { " [fused]" } else { "" };
            let _ = writeln!(s, "{i:>4}: {}{fused}  <- {}", st.describe(), st.names.join(" + "));
        }
        for c in &self.commits {
            let how = if c.scale != 1.0 { format!(" with the scale {} fused", c.scale) } else { String::new() };
            let _ = writeln!(s, "      in-place {:?} into variable {}{how}", c.mode, c.name);
        }
        s
    }
}
