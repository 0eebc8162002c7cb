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

    /// [`backward`](Tensor::backward) that also keeps the gradients of the non-leaf tensors in
    /// `keep` (layer outputs, say) in the returned store, as PyTorch's `retain_grad` does: a
    /// debugger's view of the gradient flowing through each activation. A kept tensor that the
    /// loss does not depend on gets no entry. Only the store holds them; `.grad()` of `Var`s is
    /// accumulated as usual.
    pub fn backward_keeping(&self, keep: &[&Tensor]) -> Result<GradStore> {
        if self.elem_count() != 1 {
            return Err(Error::autograd(
                "backward_keeping",
                format!("output has shape {}; backward without a seed needs a single element", self.shape()),
            ));
        }
        let keep: HashSet<TensorId> = keep.iter().map(|t| t.id()).collect();
        self.run_backward(&self.ones_like()?, false, &keep)
    }

    /// Backward with an explicit output gradient. With `create_graph` the gradients are
    /// themselves recorded, so they can be differentiated again.
    pub fn backward_with_grad(&self, grad: &Tensor, create_graph: bool) -> Result<GradStore> {
        self.run_backward(grad, create_graph, &HashSet::new())
    }

    /// The backward pass; the gradients of the non-leaf tensors in `keep` go into the store too.
    fn run_backward(&self, grad: &Tensor, create_graph: bool, keep: &HashSet<TensorId>) -> Result<GradStore> {
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
            if keep.contains(&node.id()) {
                // Complete: the topological order ran every consumer of `node` already.
                store.0.insert(node.id(), g.clone());
            }
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

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor, Var};

    #[test]
    fn backward_keeping_returns_the_gradients_of_chosen_intermediates() {
        let w = Var::new(Tensor::from_vec(vec![1.0f64, -2.0, 3.0], &[3]).unwrap());
        let x = Tensor::from_vec(vec![0.5f64, 1.0, 2.0], &[3]).unwrap();
        let h = w.mul(&x).unwrap(); // h = w * x
        let r = h.relu().unwrap(); // used twice below: gradients of reuses add up
        let loss = r.mul(&r).unwrap().sum_all().unwrap().add(&r.sum_all().unwrap()).unwrap();
        let unrelated = w.exp().unwrap();
        let grads = loss.backward_keeping(&[&h, &r, &unrelated]).unwrap();
        // d loss / d r = 2r + 1, r = [0.5, 0, 6]; d loss / d h = that where h > 0.
        assert_eq!(grads.get(&r).unwrap().to_vec::<f64>().unwrap(), [2.0, 1.0, 13.0]);
        assert_eq!(grads.get(&h).unwrap().to_vec::<f64>().unwrap(), [2.0, 0.0, 13.0]);
        assert!(grads.get(&unrelated).is_none());
        // Leaves are unchanged: d loss / d w = x * d loss / d h.
        assert_eq!(grads.get(&w).unwrap().to_vec::<f64>().unwrap(), [1.0, 0.0, 26.0]);
        // The plain backward keeps leaves only.
        let again = w.mul(&x).unwrap().sum_all().unwrap();
        let plain = again.backward().unwrap();
        assert_eq!(plain.len(), 1);
    }

    #[test]
    fn backward_keeping_needs_a_scalar() {
        let w = Var::new(Tensor::ones(&[2], DType::F32).unwrap());
        let y = w.mul(&w).unwrap();
        let err = y.backward_keeping(&[&y]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("backward_keeping") && err.contains("[2]"), "{err}");
    }
}
