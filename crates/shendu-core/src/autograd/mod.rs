//! Eager reverse-mode autograd.
//!
//! Every op is a struct implementing [`Op`]: a forward on tensors and **one** backward rule,
//! generic over [`GradOps`]. Eager tensors implement `GradOps` by computing (and recording, so
//! second-order gradients work); graph nodes will implement it by adding nodes. The rule is
//! written once and the two modes cannot disagree (DESIGN.md, "One backward rule").

mod backward;
mod grad_ops;
mod var;

use std::cell::Cell;
use std::sync::Arc;

pub use backward::GradStore;
pub use grad_ops::{GradExt, GradOps};
pub use var::Var;

use crate::{Result, Tensor};

/// One differentiable (or explicitly non-differentiable) operation.
pub trait Op: Send + Sync + 'static {
    /// The op's name, as it appears in error messages and debugging output.
    fn name(&self) -> &'static str;

    /// Computes the output from the inputs. Never records history: [`apply`] does that.
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor>;

    /// The vector-Jacobian product: given the inputs, the output and the gradient of the output,
    /// the gradient of each input (`None` where the input gets none, e.g. an index tensor).
    fn backward<T: GradOps>(&self, inputs: &[&T], output: &T, grad: &T) -> Result<Vec<Option<T>>>;
}

/// Object-safe face of [`Op`] for the eager tape (the generic `backward` is instantiated at `Tensor`).
pub trait DynOp: Send + Sync {
    fn name(&self) -> &'static str;
    fn backward_eager(&self, inputs: &[&Tensor], output: &Tensor, grad: &Tensor) -> Result<Vec<Option<Tensor>>>;
}

impl<O: Op> DynOp for O {
    fn name(&self) -> &'static str {
        Op::name(self)
    }
    fn backward_eager(&self, inputs: &[&Tensor], output: &Tensor, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        self.backward::<Tensor>(inputs, output, grad)
    }
}

/// The record of how a non-leaf tensor was made.
#[derive(Clone)]
pub struct GradFn {
    pub(crate) op: Arc<dyn DynOp>,
    pub(crate) inputs: Vec<Tensor>,
    /// The numerics scope path at forward time (recorded only while numerics checking is on).
    pub(crate) scope: Option<Arc<str>>,
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// True unless inside a [`no_grad`] scope.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// While the returned guard lives, ops record no history (PyTorch's `torch.no_grad()`).
///
/// ```
/// use shendu_core::{Var, Tensor, DType};
/// let w = Var::new(Tensor::ones(&[2], DType::F32).unwrap());
/// let _guard = shendu_core::no_grad();
/// assert!(!w.exp().unwrap().requires_grad());
/// ```
pub fn no_grad() -> GradModeGuard {
    set_grad_enabled(false)
}

/// Sets grad mode until the guard drops, restoring the previous mode.
pub fn set_grad_enabled(enabled: bool) -> GradModeGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(enabled));
    GradModeGuard { previous }
}

#[must_use = "grad mode is restored when the guard drops"]
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Dtype errors raised by a kernel's dispatch know the dtype but not the shapes: add them.
fn with_input_shapes(e: crate::Error, inputs: &[&Tensor]) -> crate::Error {
    match e {
        crate::Error::DType { op, msg } if !msg.contains('[') => {
            let shapes: Vec<String> = inputs.iter().map(|t| format!("{} {}", t.shape(), t.dtype())).collect();
            crate::Error::DType { op, msg: format!("{msg}; inputs: {}", shapes.join(", ")) }
        }
        e => e,
    }
}

/// Runs an op eagerly: the forward, then, if grad mode is on and an input needs a gradient,
/// records the op and its inputs on the output.
pub fn apply<O: Op>(op: O, inputs: &[&Tensor]) -> Result<Tensor> {
    let out = op.forward(inputs).map_err(|e| with_input_shapes(e, inputs))?;
    let checking = crate::numerics::enabled();
    if checking {
        crate::numerics::check_op(op.name(), &crate::numerics::current_path(), inputs, &out)?;
    }
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return Ok(out);
    }
    let scope = checking.then(|| Arc::from(crate::numerics::current_path()));
    let grad_fn = GradFn { op: Arc::new(op), inputs: inputs.iter().map(|t| (*t).clone()).collect(), scope };
    Ok(out.into_tracked(Some(grad_fn), false))
}
