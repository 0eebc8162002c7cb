//! `Session`: feed validation, the plan cache, and the reports.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use super::plan::Plan;
use super::{trace, Graph, GraphInner, Node, NodeKind};
use crate::{Error, Result, Tensor};

/// Planned memory of a compiled step (see [`Session::memory_report`]).
#[derive(Clone, Debug, Default)]
pub struct MemoryReport {
    /// Bytes of all the buffers the plan holds for intermediates (the planned peak).
    pub planned_peak_bytes: usize,
    /// Bytes of all intermediates if each had its own buffer (what eager mode allocates).
    pub intermediates_bytes: usize,
    /// Per computed value: (graph node, op, bytes, buffer index or "view"/"fused").
    pub values: Vec<(String, &'static str, usize, String)>,
}

impl std::fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "planned peak {} bytes; intermediates {} bytes ({:.1}%)",
            self.planned_peak_bytes,
            self.intermediates_bytes,
            100.0 * self.planned_peak_bytes as f64 / self.intermediates_bytes.max(1) as f64
        )?;
        for (node, op, bytes, buf) in &self.values {
            writeln!(f, "  {node:<40} {op:<14} {bytes:>10} B  {buf}")?;
        }
        Ok(())
    }
}

/// Runs a [`Graph`]: the first run of each fetch list and feed shapes traces the graph (shape
/// inference, gradient expansion) and compiles a plan; later runs execute the plan.
///
/// ```
/// use shendu_core::graph::{Graph, Session};
/// use shendu_core::{DType, Tensor};
/// let g = Graph::new();
/// let a = g.placeholder("a", DType::F32, &[]);
/// let b = g.constant(Tensor::scalar(3.0f32));
/// let c = a.mul(&b).unwrap();
/// let mut sess = Session::new(&g);
/// let out = sess.run(&[&c], &[(&a, &Tensor::scalar(2.0f32))]).unwrap();
/// assert_eq!(out[0].to_f64().unwrap(), 6.0);
/// ```
pub struct Session {
    graph: Graph,
    plans: HashMap<u64, Plan>,
    last: Option<u64>,
    profiling: bool,
}

/// The nodes that `fetches` depend on (a mask by node id).
pub(crate) fn needed_nodes(g: &GraphInner, fetches: &[usize]) -> Vec<bool> {
    let mut needed = vec![false; g.nodes.len()];
    let mut stack: Vec<usize> = fetches.to_vec();
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut needed[id], true) {
            continue;
        }
        stack.extend(g.nodes[id].kind.deps(&g.grad_sets));
    }
    needed
}

impl Session {
    /// A session over `graph` (which may keep growing; each run compiles what it needs).
    pub fn new(graph: &Graph) -> Session {
        Session { graph: graph.clone(), plans: HashMap::new(), last: None, profiling: false }
    }

    fn validate(&self, fetches: &[&Node], feeds: &[(&Node, &Tensor)]) -> Result<u64> {
        let g = self.graph.read();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for f in fetches {
            if !f.graph.same(&self.graph) || f.id >= g.nodes.len() {
                return Err(Error::invalid("session.run", format!("fetch {} belongs to another graph", f.name())));
            }
            f.id.hash(&mut h);
        }
        usize::MAX.hash(&mut h);
        for (node, t) in feeds {
            if !node.graph.same(&self.graph) || node.id >= g.nodes.len() {
                return Err(Error::invalid("session.run", format!("feed {} belongs to another graph", node.name())));
            }
            let data = &g.nodes[node.id];
            let NodeKind::Placeholder { dtype, dims } = &data.kind else {
                return Err(Error::invalid("session.run", format!("node {} is fed but is not a placeholder", data.name)));
            };
            let fits = dims.len() == t.rank() && dims.iter().zip(t.dims()).all(|(d, &s)| d.is_none_or(|d| d == s));
            if t.dtype() != *dtype || !fits {
                let want: Vec<String> = dims.iter().map(|d| d.map_or("?".to_string(), |d| d.to_string())).collect();
                return Err(Error::shape(
                    "session.run",
                    format!("placeholder {} expects {} [{}] but was fed {} {}", data.name, dtype, want.join(", "), t.dtype(), t.shape()),
                ));
            }
            node.id.hash(&mut h);
            t.dims().hash(&mut h);
        }
        Ok(h.finish())
    }

    fn check_fed(&self, fetches: &[&Node], feeds: &[(&Node, &Tensor)]) -> Result<()> {
        let g = self.graph.read();
        let ids: Vec<usize> = fetches.iter().map(|f| f.id).collect();
        let needed = needed_nodes(&g, &ids);
        for (id, n) in g.nodes.iter().enumerate() {
            if needed[id] && matches!(n.kind, NodeKind::Placeholder { .. }) && !feeds.iter().any(|(f, _)| f.id == id) {
                return Err(Error::invalid("session.run", format!("placeholder {} must be fed (fetches need it)", n.name)));
            }
        }
        Ok(())
    }

    /// Computes `fetches` with `feeds`, applying the assigns among them at the end of the run.
    /// A fetched assign yields the variable's new value; a group yields an empty tensor.
    pub fn run(&mut self, fetches: &[&Node], feeds: &[(&Node, &Tensor)]) -> Result<Vec<Tensor>> {
        let key = self.validate(fetches, feeds)?;
        if crate::numerics::enabled() {
            // Checked runs take the traced path, which checks every op under its node name.
            return self.trace_run(fetches, feeds, None);
        }
        if let Some(plan) = self.plans.get_mut(&key) {
            if plan.matches(fetches, feeds) {
                self.last = Some(key);
                let mut outs = plan.fresh_outputs()?;
                plan.execute(feeds, &mut outs)?;
                return Ok(outs);
            }
        }
        self.trace_run(fetches, feeds, Some(key))
    }

    /// Like [`Session::run`], writing the fetched values into `outs` (tensors of the fetched
    /// shapes and dtypes). After the first run of a signature this allocates nothing.
    pub fn run_into(&mut self, fetches: &[&Node], feeds: &[(&Node, &Tensor)], outs: &mut [Tensor]) -> Result<()> {
        if outs.len() != fetches.len() {
            return Err(Error::invalid("session.run_into", format!("{} fetches but {} outputs", fetches.len(), outs.len())));
        }
        let key = self.validate(fetches, feeds)?;
        if !crate::numerics::enabled() {
            if let Some(plan) = self.plans.get_mut(&key) {
                if plan.matches(fetches, feeds) {
                    self.last = Some(key);
                    return plan.execute(feeds, outs);
                }
            }
        }
        let results = self.run(fetches, feeds)?;
        for (o, r) in outs.iter().zip(&results) {
            super::exec::copy_into(r, o)?;
        }
        Ok(())
    }

    fn trace_run(&mut self, fetches: &[&Node], feeds: &[(&Node, &Tensor)], key: Option<u64>) -> Result<Vec<Tensor>> {
        self.check_fed(fetches, feeds)?;
        let ids: Vec<usize> = fetches.iter().map(|f| f.id).collect();
        let feed_list: Vec<(usize, Tensor)> =
            feeds.iter().map(|(n, t)| Ok((n.id, if t.is_contiguous() { (*t).clone() } else { t.contiguous()? }))).collect::<Result<_>>()?;
        let tr = trace::trace(&self.graph, &ids, &feed_list)?;
        let outputs = tr.outputs.clone();
        if let Some(key) = key {
            let mut plan = Plan::compile(&self.graph, tr, &ids, &feed_list)?;
            plan.profile = self.profiling.then(|| super::profile::StepTimes::new(plan.steps.len()));
            self.plans.insert(key, plan);
            self.last = Some(key);
        }
        Ok(outputs)
    }

    fn last_plan(&self) -> Option<&Plan> {
        self.last.and_then(|k| self.plans.get(&k))
    }

    /// Times every step of the compiled runs from now on (`true`, clearing earlier timings) or
    /// stops timing (`false`). Off by default: timing reads the clock twice per step.
    pub fn set_profiling(&mut self, on: bool) {
        self.profiling = on;
        for p in self.plans.values_mut() {
            p.profile = on.then(|| super::profile::StepTimes::new(p.steps.len()));
        }
    }

    /// Mean time per step of the most recently run plan over the runs timed since
    /// [`Session::set_profiling`] (the first run of a signature traces and is not timed).
    pub fn profile(&self) -> super::StepProfile {
        self.last_plan().map(|p| p.profile_report()).unwrap_or_default()
    }

    /// The planned memory of the most recently run plan (empty before the first run).
    pub fn memory_report(&self) -> MemoryReport {
        self.last_plan().map(|p| p.report.clone()).unwrap_or_default()
    }

    /// The most recently run plan in words: each step, what was fused into it, which buffer
    /// it writes and which values are views.
    pub fn explain(&self) -> String {
        self.last_plan().map(|p| p.explain()).unwrap_or_else(|| "no plan yet: run the session first\n".to_string())
    }

    /// The graph as Graphviz DOT (ops as boxes, placeholders and variables as ellipses).
    pub fn to_dot(&self) -> String {
        let g = self.graph.read();
        let mut s = String::from("digraph shendu {\n  rankdir=TB;\n");
        for (id, n) in g.nodes.iter().enumerate() {
            let (label, shape) = match &n.kind {
                NodeKind::Const(t) => (format!("const {}", t.shape()), "ellipse"),
                NodeKind::Placeholder { dtype, .. } => (format!("placeholder {dtype}"), "ellipse"),
                NodeKind::Variable(t) => (format!("variable {}", t.shape()), "ellipse"),
                NodeKind::Op { op, .. } => (op.name().to_string(), "box"),
                NodeKind::Grad { .. } => ("gradient".to_string(), "box"),
                NodeKind::Assign { mode, .. } => (format!("{mode:?}").to_lowercase(), "box"),
                NodeKind::Group(_) => ("group".to_string(), "box"),
            };
            let _ = writeln!(s, "  n{id} [label=\"{}\\n{}\", shape={shape}];", n.name.replace('"', "'"), label);
            for d in n.kind.deps(&g.grad_sets) {
                let _ = writeln!(s, "  n{d} -> n{id};");
            }
        }
        s.push_str("}\n");
        s
    }
}
