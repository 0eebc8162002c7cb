//! Lowering a graph to a flat list of core-op instructions by running it once.
//!
//! With the feeds in hand every shape is concrete, so late ops resolve to core op structs and
//! `gradients` expand by running each op's one backward rule on [`Traced`] values, which
//! compute eagerly and append instructions: the first run of a session *is* this trace.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::node_ops::NodeOp;
use super::{AssignMode, Graph, GraphOp, NodeKind};
use crate::autograd::{GradExt, GradOps, Op};
use crate::{DType, Error, Result, Shape, Tensor};

/// A value during tracing: its id in the trace and its computed tensor.
#[derive(Clone)]
pub(crate) struct Traced {
    pub(crate) vid: usize,
    pub(crate) t: Tensor,
}

/// Where a traced value comes from.
pub(crate) enum Source {
    /// The feed of the placeholder with this node id.
    Feed(usize),
    /// The variable with this node id.
    Var(usize),
    Const(Tensor),
    /// The output of instruction `i`.
    Instr(usize),
}

pub(crate) struct Value {
    pub(crate) source: Source,
    pub(crate) shape: Shape,
    pub(crate) dtype: DType,
}

pub(crate) struct Instr {
    pub(crate) op: Arc<dyn GraphOp>,
    pub(crate) inputs: Vec<usize>,
    pub(crate) out: usize,
    /// The graph node (scope path) this instruction computes or differentiates.
    pub(crate) name: String,
}

/// The lowered computation: values and the instructions producing them, in execution order.
#[derive(Default)]
pub(crate) struct Ir {
    pub(crate) values: Vec<Value>,
    pub(crate) instrs: Vec<Instr>,
}

/// What a fetch returns.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FetchSrc {
    Value(usize),
    /// The variable's value after the run's assigns.
    VarAfter(usize),
    /// An op without a value (a group): an empty tensor.
    Nothing,
}

/// An assign, applied at the end of a run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Commit {
    pub(crate) var: usize,
    pub(crate) value: usize,
    pub(crate) mode: AssignMode,
}

pub(crate) struct Trace {
    pub(crate) ir: Ir,
    pub(crate) fetch: Vec<FetchSrc>,
    pub(crate) commits: Vec<Commit>,
    /// The first run's results.
    pub(crate) outputs: Vec<Tensor>,
}

struct State {
    ir: Ir,
    /// The computed tensor of every value, by id.
    tensors: Vec<Tensor>,
    /// Name of the node being lowered, given to the instructions it produces.
    name: String,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// This thread's trace, set aside while a pool job runs on it; put back when dropped.
pub(crate) struct SetAside(Option<State>);

/// Sets this thread's trace (if any) aside, so that a job the thread runs meanwhile neither
/// records into it nor ends it.
pub(crate) fn set_aside() -> SetAside {
    SetAside(STATE.with(|s| s.borrow_mut().take()))
}

impl Drop for SetAside {
    fn drop(&mut self) {
        if let Some(outer) = self.0.take() {
            STATE.with(|s| *s.borrow_mut() = Some(outer));
        }
    }
}

/// Adds the node's name to an op's error, keeping its kind and op.
pub(crate) fn in_node(e: Error, node: &str) -> Error {
    let add = |msg: String| format!("{msg} (graph node {node})");
    match e {
        Error::Shape { op, msg } => Error::Shape { op, msg: add(msg) },
        Error::DType { op, msg } => Error::DType { op, msg: add(msg) },
        Error::Device { op, msg } => Error::Device { op, msg: add(msg) },
        Error::Index { op, msg } => Error::Index { op, msg: add(msg) },
        Error::Invalid { op, msg } => Error::Invalid { op, msg: add(msg) },
        Error::Autograd { op, msg } => Error::Autograd { op, msg: add(msg) },
    }
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Result<R> {
    STATE.with(|s| match s.borrow_mut().as_mut() {
        Some(st) => Ok(f(st)),
        None => Err(Error::invalid("graph", "a traced value was used outside a session run")),
    })
}

fn new_value(source: Source, t: &Tensor) -> Result<Traced> {
    let vid = with_state(|st| {
        st.ir.values.push(Value { source, shape: t.shape().clone(), dtype: t.dtype() });
        st.tensors.push(t.clone());
        st.ir.values.len() - 1
    })?;
    Ok(Traced { vid, t: t.clone() })
}

impl Traced {
    /// Runs `op` on the inputs now and records it.
    pub(crate) fn apply_dyn(op: Arc<dyn GraphOp>, inputs: &[&Traced]) -> Result<Traced> {
        let name = with_state(|st| st.name.clone())?;
        let tensors: Vec<&Tensor> = inputs.iter().map(|t| &t.t).collect();
        let out = {
            let _g = crate::no_grad();
            op.forward(&tensors).map_err(|e| in_node(e, &name))?
        };
        crate::numerics::check_op(op.name(), &name, &tensors, &out)?;
        let vid = with_state(|st| {
            let instr = st.ir.instrs.len();
            st.ir.values.push(Value { source: Source::Instr(instr), shape: out.shape().clone(), dtype: out.dtype() });
            st.tensors.push(out.clone());
            let vid = st.ir.values.len() - 1;
            st.ir.instrs.push(Instr { op, inputs: inputs.iter().map(|t| t.vid).collect(), out: vid, name: st.name.clone() });
            vid
        })?;
        Ok(Traced { vid, t: out })
    }
}

impl GradOps for Traced {
    fn shape(&self) -> Shape {
        self.t.shape().clone()
    }
    fn dtype(&self) -> DType {
        self.t.dtype()
    }
    fn apply<O: Op>(op: O, inputs: &[&Self]) -> Result<Self> {
        Traced::apply_dyn(Arc::new(op), inputs)
    }
}

fn set_name(name: String) -> Result<()> {
    with_state(|st| st.name = name)
}

/// Lowers the nodes `fetches` need and runs them with `feeds` (node id, contiguous tensor).
pub(crate) fn trace(graph: &Graph, fetches: &[usize], feeds: &[(usize, Tensor)]) -> Result<Trace> {
    // A pool thread waiting inside a traced kernel may run another session's job, which traces
    // too; `cpu::thread_context` sets this trace aside around every pool job, so finding one
    // here means a job reached the pool some other way, and would have ended this trace.
    if STATE.with(|s| s.borrow().is_some()) {
        return Err(Error::invalid("graph", "a session run started inside another session's trace on this thread"));
    }
    STATE.with(|s| *s.borrow_mut() = Some(State { ir: Ir::default(), tensors: Vec::new(), name: String::new() }));
    let _ends = EndsTrace;
    let result = lower(graph, fetches, feeds);
    let state = STATE.with(|s| s.borrow_mut().take());
    let (fetch, commits, outputs) = result?;
    let ir = state.map(|s| s.ir).unwrap_or_default();
    Ok(Trace { ir, fetch, commits, outputs })
}

/// Ends the trace also when lowering unwinds, so that the thread can trace again.
pub(crate) struct EndsTrace;

impl Drop for EndsTrace {
    fn drop(&mut self) {
        STATE.with(|s| s.borrow_mut().take());
    }
}

type Lowered = (Vec<FetchSrc>, Vec<Commit>, Vec<Tensor>);

fn lower(graph: &Graph, fetches: &[usize], feeds: &[(usize, Tensor)]) -> Result<Lowered> {
    let g = graph.read();
    let needed = super::session::needed_nodes(&g, fetches);
    let mut vals: Vec<Option<Traced>> = vec![None; g.nodes.len()];
    let mut grads: HashMap<usize, Vec<Option<Traced>>> = HashMap::new();
    let mut commits = Vec::new();
    for id in (0..g.nodes.len()).filter(|&i| needed[i]) {
        let node = &g.nodes[id];
        let input = |i: usize| {
            vals[i]
                .clone()
                .ok_or_else(|| Error::invalid("graph", format!("node {} reads {}, which has no value", node.name, g.nodes[i].name)))
        };
        let v = match &node.kind {
            NodeKind::Const(t) => Some(new_value(Source::Const(t.clone()), t)?),
            NodeKind::Placeholder { .. } => {
                let t = feeds.iter().find(|(f, _)| *f == id).map(|(_, t)| t.clone());
                let t = t.ok_or_else(|| Error::invalid("session.run", format!("placeholder {} must be fed", node.name)))?;
                Some(new_value(Source::Feed(id), &t)?)
            }
            NodeKind::Variable(t) => Some(new_value(Source::Var(id), t)?),
            NodeKind::Op { op, inputs } => {
                let ins = inputs.iter().map(|&i| input(i)).collect::<Result<Vec<_>>>()?;
                let refs: Vec<&Traced> = ins.iter().collect();
                set_name(node.name.clone())?;
                Some(match op {
                    NodeOp::Core(op) => Traced::apply_dyn(op.clone(), &refs)?,
                    NodeOp::Late { f, .. } => f(&refs).map_err(|e| in_node(e, &node.name))?,
                })
            }
            NodeKind::Grad { set, index } => {
                if !grads.contains_key(set) {
                    let s = &g.grad_sets[*set];
                    let ys = s.ys.iter().map(|&i| input(i)).collect::<Result<Vec<_>>>()?;
                    let xs = s.xs.iter().map(|&i| input(i)).collect::<Result<Vec<_>>>()?;
                    grads.insert(*set, expand_gradients(&ys, &xs)?);
                }
                let gi = grads.get(set).and_then(|v| v.get(*index).cloned()).flatten();
                match gi {
                    Some(gi) => Some(gi),
                    // Connected in the graph but no rule passes a gradient (an index input):
                    // zeros, as TensorFlow's `unconnected_gradients="zero"`.
                    None => {
                        let x = input(g.grad_sets[*set].xs[*index])?;
                        let z = x.t.zeros_like()?;
                        Some(new_value(Source::Const(z.clone()), &z)?)
                    }
                }
            }
            NodeKind::Assign { var, value, mode } => {
                commits.push(Commit { var: *var, value: input(*value)?.vid, mode: *mode });
                None
            }
            NodeKind::Group(_) => None,
        };
        vals[id] = v;
    }
    let mut fetch = Vec::with_capacity(fetches.len());
    let mut outputs = Vec::with_capacity(fetches.len());
    for &f in fetches {
        match (&vals[f], &g.nodes[f].kind) {
            (Some(v), _) => {
                fetch.push(FetchSrc::Value(v.vid));
                // A copy: the value may view a variable that this run's assigns change.
                outputs.push(v.t.copy()?);
            }
            (None, NodeKind::Assign { var, .. }) => {
                fetch.push(FetchSrc::VarAfter(*var));
                outputs.push(Tensor::zeros(0, DType::F32)?);
            }
            _ => {
                fetch.push(FetchSrc::Nothing);
                outputs.push(Tensor::zeros(0, DType::F32)?);
            }
        }
    }
    let value_of = |vid: usize| -> Result<Tensor> {
        with_state(|st| st.tensors.get(vid).cloned())?.ok_or_else(|| Error::invalid("assign", format!("value {vid} of the trace was lost")))
    };
    // Every assign's value is computed before any variable changes.
    let values: Vec<Tensor> = commits.iter().map(|c| value_of(c.value)).collect::<Result<_>>()?;
    for (c, v) in commits.iter().zip(&values) {
        if let NodeKind::Variable(var) = &g.nodes[c.var].kind {
            commit_eager(var, v, c.mode).map_err(|e| in_node(e, &g.nodes[c.var].name))?;
        }
    }
    for (i, f) in fetch.iter().enumerate() {
        if let FetchSrc::VarAfter(var) = f {
            if let NodeKind::Variable(t) = &g.nodes[*var].kind {
                outputs[i] = t.copy()?;
            }
        }
    }
    Ok((fetch, commits, outputs))
}

/// Applies one assign to a variable's storage, in place.
pub(crate) fn commit_eager(var: &Tensor, value: &Tensor, mode: AssignMode) -> Result<()> {
    let op = match mode {
        AssignMode::Set => "assign",
        AssignMode::Add => "assign_add",
        AssignMode::Sub => "assign_sub",
    };
    if value.shape() != var.shape() || value.dtype() != var.dtype() {
        return Err(Error::shape(
            op,
            format!("variable is {} {} but the value is {} {}", var.shape(), var.dtype(), value.shape(), value.dtype()),
        ));
    }
    let _g = crate::no_grad();
    let new = match mode {
        AssignMode::Set => value.copy()?,
        AssignMode::Add => var.add(value)?,
        AssignMode::Sub => var.sub(value)?,
    };
    let src = new.storage();
    let mut dst = var.storage_mut();
    crate::ops::copy::copy_storage_into(&src, &mut dst, var.layout())
}

/// An instruction's op, inputs, output and name, copied out of the trace state.
type InstrCopy = (Arc<dyn GraphOp>, Vec<usize>, usize, String);

/// Reverse mode over the trace so far: the gradient of `sum(ys)` for each x (`None` where no
/// rule passes one). Each instruction's rule runs on traced values, appending the gradient
/// instructions.
fn expand_gradients(ys: &[Traced], xs: &[Traced]) -> Result<Vec<Option<Traced>>> {
    let (n_values, instrs) = with_state(|st| {
        let list: Vec<InstrCopy> = st.ir.instrs.iter().map(|i| (i.op.clone(), i.inputs.clone(), i.out, i.name.clone())).collect();
        (st.ir.values.len(), list)
    })?;
    let mut depends = vec![false; n_values];
    xs.iter().for_each(|x| depends[x.vid] = true);
    for (_, inputs, out, _) in &instrs {
        if inputs.iter().any(|&i| depends[i]) {
            depends[*out] = true;
        }
    }
    let mut pending: HashMap<usize, Traced> = HashMap::new();
    for y in ys {
        set_name(format!("gradients/seed_{}", y.vid))?;
        let ones = y.t.ones_like()?;
        let seed = new_value(Source::Const(ones.clone()), &ones)?;
        let merged = match pending.remove(&y.vid) {
            Some(prev) => prev.g_add(&seed)?,
            None => seed,
        };
        pending.insert(y.vid, merged);
    }
    let get = |vid: usize| -> Result<Traced> {
        with_state(|st| st.tensors.get(vid).cloned())?
            .map(|t| Traced { vid, t })
            .ok_or_else(|| Error::autograd("gradients", format!("value {vid} of the trace was lost")))
    };
    for (op, inputs, out, name) in instrs.iter().rev() {
        if !depends[*out] {
            continue;
        }
        let Some(g) = pending.get(out).cloned() else { continue };
        let ins: Vec<Traced> = inputs.iter().map(|&i| get(i)).collect::<Result<_>>()?;
        let output = get(*out)?;
        let refs: Vec<&Traced> = ins.iter().collect();
        set_name(format!("gradients/{name}"))?;
        let _checking = crate::numerics::enabled().then(|| crate::numerics::in_backward(op.name(), name));
        let gs = op.backward_traced(&refs, &output, &g).map_err(|e| in_node(e, name))?;
        for (input, gi) in ins.iter().zip(gs) {
            let Some(gi) = gi else { continue };
            if !depends[input.vid] {
                continue;
            }
            if gi.t.shape() != input.t.shape() {
                return Err(Error::autograd(
                    "gradients",
                    format!(
                        "rule of {} ({name}) gave a gradient of shape {} for an input of shape {}",
                        op.name(),
                        gi.t.shape(),
                        input.t.shape()
                    ),
                ));
            }
            let merged = match pending.remove(&input.vid) {
                Some(prev) => prev.g_add(&gi)?,
                None => gi,
            };
            pending.insert(input.vid, merged);
        }
    }
    Ok(xs.iter().map(|x| pending.get(&x.vid).cloned()).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Starts an empty trace on this thread, ended when the guard drops.
    pub(crate) fn start_empty_trace() -> EndsTrace {
        STATE.with(|s| *s.borrow_mut() = Some(State { ir: Ir::default(), tensors: Vec::new(), name: String::new() }));
        EndsTrace
    }

    /// Whether this thread is tracing.
    pub(crate) fn tracing() -> bool {
        STATE.with(|s| s.borrow().is_some())
    }
}
