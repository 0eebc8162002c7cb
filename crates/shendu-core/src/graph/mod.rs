//! Graph mode (TensorFlow 1 style): build the computation first from constants, placeholders and
//! variables, then run it in a [`Session`] with feeds.
//!
//! ```
//! use shendu_core::graph::{Graph, Session};
//! use shendu_core::{DType, Tensor};
//! let g = Graph::new();
//! let x = g.placeholder("x", DType::F64, &[None, Some(2)]);
//! let w = g.variable("w", Tensor::from_vec(vec![1.0f64, 2.0], &[2, 1]).unwrap());
//! let loss = x.matmul(&w).unwrap().sqr().unwrap().sum_all().unwrap();
//! let grads = g.gradients(&[&loss], &[&w]).unwrap();
//! let gw = grads[0].clone().unwrap();
//! let train = w.assign_sub(&gw.mul_scalar(0.1).unwrap()).unwrap();
//! let mut sess = Session::new(&g);
//! let xs = Tensor::from_vec(vec![1.0f64, 1.0], &[1, 2]).unwrap();
//! let out = sess.run(&[&loss, &train], &[(&x, &xs)]).unwrap();
//! assert_eq!(out[0].to_f64().unwrap(), 9.0);
//! ```
//!
//! Design. A [`Node`] records an op struct (the same structs eager mode runs, boxed) and its
//! inputs. `gradients` records *which* gradients are wanted; a session expands them when it
//! compiles, by running each op's one backward rule on traced values (`trace.rs`), once the feed
//! shapes are known, so placeholders may leave dims unknown and the rules see concrete shapes.
//! The first run of a feed-shape signature executes that trace and yields its results; the
//! trace is then compiled into a plan (`plan.rs`: dead-node elimination, fusion, buffers from
//! liveness) that later runs execute without allocating (`exec.rs`).

mod exec;
mod kernels;
mod narrow;
mod node_ops;
mod plan;
mod profile;
mod rows;
mod session;
pub(crate) mod trace;
mod update_fusion;

use std::any::Any;
use std::collections::HashSet;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use profile::StepProfile;
pub use session::{MemoryReport, Session};

use crate::autograd::Op;
use crate::{DType, Error, Result, Tensor};
pub(crate) use trace::Traced;

/// Object-safe face of [`Op`] for graph nodes: the forward, the backward rule instantiated on
/// traced values, and a way to recognise the op struct when compiling.
pub(crate) trait GraphOp: Send + Sync {
    fn name(&self) -> &'static str;
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor>;
    fn backward_traced(&self, inputs: &[&Traced], output: &Traced, grad: &Traced) -> Result<Vec<Option<Traced>>>;
    fn as_any(&self) -> &dyn Any;
}

impl<O: Op> GraphOp for O {
    fn name(&self) -> &'static str {
        Op::name(self)
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        Op::forward(self, inputs)
    }
    fn backward_traced(&self, inputs: &[&Traced], output: &Traced, grad: &Traced) -> Result<Vec<Option<Traced>>> {
        self.backward::<Traced>(inputs, output, grad)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// How an assign node changes its variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AssignMode {
    Set,
    Add,
    Sub,
}

pub(crate) enum NodeKind {
    Const(Tensor),
    Placeholder {
        dtype: DType,
        dims: Vec<Option<usize>>,
    },
    /// The variable's current value; assigns write into its storage in place.
    Variable(Tensor),
    Op {
        op: node_ops::NodeOp,
        inputs: Vec<usize>,
    },
    /// The gradient of the sum of `grad_sets[set].ys` with respect to its `index`-th x.
    Grad {
        set: usize,
        index: usize,
    },
    Assign {
        var: usize,
        value: usize,
        mode: AssignMode,
    },
    Group(Vec<usize>),
}

impl NodeKind {
    /// The nodes this one reads.
    pub(crate) fn deps(&self, sets: &[GradSet]) -> Vec<usize> {
        match self {
            NodeKind::Const(_) | NodeKind::Placeholder { .. } | NodeKind::Variable(_) => vec![],
            NodeKind::Op { inputs, .. } => inputs.clone(),
            NodeKind::Grad { set, .. } => sets[*set].ys.iter().chain(&sets[*set].xs).copied().collect(),
            NodeKind::Assign { var, value, .. } => vec![*var, *value],
            NodeKind::Group(v) => v.clone(),
        }
    }
}

pub(crate) struct NodeData {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
}

pub(crate) struct GradSet {
    pub(crate) ys: Vec<usize>,
    pub(crate) xs: Vec<usize>,
}

#[derive(Default)]
pub(crate) struct GraphInner {
    pub(crate) nodes: Vec<NodeData>,
    pub(crate) grad_sets: Vec<GradSet>,
    scope: Vec<String>,
    names: HashSet<String>,
}

impl GraphInner {
    /// `scope/base`, made unique TensorFlow's way (`_1`, `_2`, ...).
    fn unique_name(&mut self, base: &str) -> String {
        let mut prefix = self.scope.join("/");
        if !prefix.is_empty() {
            prefix.push('/');
        }
        let mut name = format!("{prefix}{base}");
        let mut i = 1;
        while self.names.contains(&name) {
            name = format!("{prefix}{base}_{i}");
            i += 1;
        }
        self.names.insert(name.clone());
        name
    }
}

/// A computation graph. Cheap to clone (a shared handle).
#[derive(Clone, Default)]
pub struct Graph(Arc<RwLock<GraphInner>>);

/// A handle to one node of a [`Graph`]: cheap to clone, usable with every op of [`Tensor`] under
/// the same name (`x.matmul(&w)?.relu()?`).
#[derive(Clone)]
pub struct Node {
    graph: Graph,
    id: usize,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({} #{})", self.name(), self.id)
    }
}

/// Pops a name scope when dropped (see [`Graph::scope`]).
#[must_use = "the scope ends when the guard drops"]
pub struct ScopeGuard {
    graph: Graph,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        self.graph.write().scope.pop();
    }
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, GraphInner> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, GraphInner> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn same(&self, other: &Graph) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub(crate) fn add(&self, base: &str, kind: NodeKind) -> Node {
        let mut g = self.write();
        let name = g.unique_name(base);
        g.nodes.push(NodeData { name, kind });
        Node { graph: self.clone(), id: g.nodes.len() - 1 }
    }

    /// Nodes created while the guard lives get names under `name/` (TensorFlow's `name_scope`).
    ///
    /// ```
    /// let g = shendu_core::graph::Graph::new();
    /// let _s = g.scope("layer1");
    /// let c = g.constant(shendu_core::Tensor::scalar(1.0f32));
    /// assert_eq!(c.name(), "layer1/const");
    /// ```
    pub fn scope(&self, name: &str) -> ScopeGuard {
        self.write().scope.push(name.to_string());
        ScopeGuard { graph: self.clone() }
    }

    /// A node holding a fixed tensor.
    pub fn constant(&self, t: Tensor) -> Node {
        self.add("const", NodeKind::Const(t.detach()))
    }

    /// A value fed at every run; `None` dims take any size.
    pub fn placeholder(&self, name: &str, dtype: DType, dims: &[Option<usize>]) -> Node {
        self.add(name, NodeKind::Placeholder { dtype, dims: dims.to_vec() })
    }

    /// A trainable value kept between runs, starting as a copy of `initial`.
    pub fn variable(&self, name: &str, initial: Tensor) -> Node {
        let value = initial.detach().copy().unwrap_or(initial);
        self.add(name, NodeKind::Variable(value))
    }

    /// The variable's current value (a copy).
    pub fn value_of(&self, var: &Node) -> Result<Tensor> {
        match &self.read().nodes.get(var.id).map(|n| &n.kind) {
            Some(NodeKind::Variable(t)) => t.copy(),
            _ => Err(Error::invalid("value_of", format!("node {} is not a variable", var.name()))),
        }
    }

    /// Overwrites the variable's value in place (same shape and dtype), between runs.
    pub fn set_value(&self, var: &Node, value: &Tensor) -> Result<()> {
        match &self.read().nodes.get(var.id).map(|n| &n.kind) {
            Some(NodeKind::Variable(t)) => trace::commit_eager(t, value, AssignMode::Set),
            _ => Err(Error::invalid("set_value", format!("node {} is not a variable", var.name()))),
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.read().nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check_own(&self, nodes: &[&Node], op: &'static str) -> Result<()> {
        for n in nodes {
            if !self.same(&n.graph) {
                return Err(Error::invalid(op, format!("node {} belongs to another graph", n.name())));
            }
        }
        Ok(())
    }

    /// Adds a node applying any [`Op`] to `inputs` (the ops' methods on [`Node`] call this).
    pub fn apply<O: Op>(&self, op: O, inputs: &[&Node]) -> Result<Node> {
        self.check_own(inputs, op.name())?;
        let name = op.name();
        Ok(self.add(name, NodeKind::Op { op: node_ops::NodeOp::Core(Arc::new(op)), inputs: inputs.iter().map(|n| n.id).collect() }))
    }

    /// Symbolic gradients of `sum(ys)` with respect to each of `xs` (TensorFlow's
    /// `tf.gradients`): `None` for an x that no y depends on.
    pub fn gradients(&self, ys: &[&Node], xs: &[&Node]) -> Result<Vec<Option<Node>>> {
        self.check_own(ys, "gradients")?;
        self.check_own(xs, "gradients")?;
        let reach = {
            let g = self.read();
            // Which nodes lead to some y (ancestors), walking ids downwards.
            let mut anc = vec![false; g.nodes.len()];
            ys.iter().for_each(|y| anc[y.id] = true);
            for id in (0..g.nodes.len()).rev() {
                if anc[id] {
                    for d in g.nodes[id].kind.deps(&g.grad_sets) {
                        anc[d] = true;
                    }
                }
            }
            anc
        };
        let set = {
            let mut g = self.write();
            g.grad_sets.push(GradSet { ys: ys.iter().map(|n| n.id).collect(), xs: xs.iter().map(|n| n.id).collect() });
            g.grad_sets.len() - 1
        };
        Ok(xs
            .iter()
            .enumerate()
            .map(|(index, x)| {
                let connected = reach[x.id];
                connected.then(|| self.add(&format!("gradients/{}_grad", x.name()), NodeKind::Grad { set, index }))
            })
            .collect())
    }

    /// An op that runs all of `deps` (TensorFlow's `tf.group`); fetching it yields an empty tensor.
    pub fn group(&self, deps: &[&Node]) -> Result<Node> {
        self.check_own(deps, "group")?;
        Ok(self.add("group", NodeKind::Group(deps.iter().map(|n| n.id).collect())))
    }
}

impl Node {
    /// The node's unique, scope-qualified name (`layer1/matmul_2`).
    pub fn name(&self) -> String {
        self.graph.read().nodes.get(self.id).map(|n| n.name.clone()).unwrap_or_default()
    }

    /// The position of the node in its graph.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The graph the node belongs to.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    fn assign_with(&self, value: &Node, mode: AssignMode, op: &'static str) -> Result<Node> {
        self.graph.check_own(&[value], op)?;
        if !matches!(self.graph.read().nodes[self.id].kind, NodeKind::Variable(_)) {
            return Err(Error::invalid(op, format!("{} is not a variable", self.name())));
        }
        let base = format!("{}/{op}", self.name().rsplit('/').next().unwrap_or(op));
        Ok(self.graph.add(&base, NodeKind::Assign { var: self.id, value: value.id, mode }))
    }

    /// `var = value` when run. Reads of the variable in the same run see the old value; the
    /// assigns of a run apply at its end, in the order they were created.
    pub fn assign(&self, value: &Node) -> Result<Node> {
        self.assign_with(value, AssignMode::Set, "assign")
    }

    /// `var += value` in place when run.
    pub fn assign_add(&self, value: &Node) -> Result<Node> {
        self.assign_with(value, AssignMode::Add, "assign_add")
    }

    /// `var -= value` in place when run (the SGD update).
    pub fn assign_sub(&self, value: &Node) -> Result<Node> {
        self.assign_with(value, AssignMode::Sub, "assign_sub")
    }
}
