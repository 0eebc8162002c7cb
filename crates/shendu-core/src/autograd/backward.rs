//! The backward pass over the eager tape: a topological order (iterative, so deep networks do
//! not overflow the stack), then each op's rule in reverse, summing gradients of reused values.

use std::collections::{HashMap, HashSet};

use super::var::accumulate_leaf_grad;
use crate::tensor::TensorId;
use crate::{Error, Result, Tensor};

/// The gradients of one backward call, keyed by tensor.
#[derive(Default, Clone)]
pub struct GradStore(HashMap<TensorId, Tensor>);

impl GradStore {
    /// The gradient of `t` (a `Var` or any tensor that required grad), if it received one.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.0.get(&t.id())
    }
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.0.remove(&t.id())
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Tensor {
    /// Gradients of this scalar with respect to every `Var` it depends on. Each `Var`'s `.grad()`
    /// also accumulates them until `zero_grad`.
    pub fn backward(&self) -> Result<GradStore> {
        if self.elem_count() != 1 {
            return Err(Error::autograd(
                "backward",
                format!("output has shape {}; backward without a seed needs a single element (use backward_with_grad)", self.shape()),
            ));
        }
        let seed = self.ones_like()?;
        self.backward_with_grad(&seed, false)
    }

    /// Backward with an explicit output gradient. With `create_graph` the gradients are
    /// themselves recorded, so they can be differentiated again.
    pub fn backward_with_grad(&self, grad: &Tensor, create_graph: bool) -> Result<GradStore> {
        if !self.requires_grad() {
            return Err(Error::autograd(
                "backward",
                format!("output {} does not require grad: no Var reaches it (or it was computed under no_grad)", self.shape()),
            ));
        }
        if grad.shape() != self.shape() || grad.dtype() != self.dtype() {
            return Err(Error::shape(
                "backward",
                format!("seed gradient {} {} does not match output {} {}", grad.shape(), grad.dtype(), self.shape(), self.dtype()),
            ));
        }
        let _mode = crate::autograd::set_grad_enabled(create_graph);
        let order = topological_order(self);
        let mut pending: HashMap<TensorId, Tensor> = HashMap::new();
        pending.insert(self.id(), grad.clone());
        let mut store = GradStore::default();
        for node in order.iter().rev() {
            let Some(g) = pending.remove(&node.id()) else { continue };
            let Some(grad_fn) = &node.0.grad_fn else {
                // A leaf: keep its gradient.
                accumulate_leaf_grad(node, &g)?;
                store.0.insert(node.id(), g);
                continue;
            };
            let inputs: Vec<&Tensor> = grad_fn.inputs.iter().collect();
            let checking = crate::numerics::enabled();
            let guard = checking.then(|| crate::numerics::in_backward(grad_fn.op.name(), grad_fn.scope.as_deref().unwrap_or("")));
            let grads = grad_fn.op.backward_eager(&inputs, node, &g)?;
            drop(guard);
            if checking {
                let outs: Vec<&Tensor> = grads.iter().flatten().collect();
                let path = grad_fn.scope.as_deref().unwrap_or("");
                let mut seen: Vec<&Tensor> = inputs.clone();
                seen.push(&g);
                crate::numerics::check(grad_fn.op.name(), "backward", path, &seen, &outs)?;
            }
            for (input, gi) in grad_fn.inputs.iter().zip(grads) {
                let Some(gi) = gi else { continue };
                if !input.requires_grad() {
                    continue;
                }
                if gi.shape() != input.shape() {
                    return Err(Error::autograd(
                        "backward",
                        format!(
                            "rule of {} gave a gradient of shape {} for an input of shape {}",
                            grad_fn.op.name(),
                            gi.shape(),
                            input.shape()
                        ),
                    ));
                }
                let merged = match pending.remove(&input.id()) {
                    Some(prev) => prev.add(&gi)?,
                    None => gi,
                };
                pending.insert(input.id(), merged);
            }
        }
        Ok(store)
    }
}

/// Tensors that need a gradient and lead to `root`, each after all of its inputs.
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited: HashSet<TensorId> = HashSet::new();
    // (node, inputs already pushed?)
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((node, expanded)) = stack.pop() {
        if expanded {
            order.push(node);
            continue;
        }
        if !visited.insert(node.id()) {
            continue;
        }
        stack.push((node.clone(), true));
        if let Some(grad_fn) = &node.0.grad_fn {
            for input in &grad_fn.inputs {
                if input.requires_grad() && !visited.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}
