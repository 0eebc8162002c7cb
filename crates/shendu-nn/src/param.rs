//! `Param`: one named tensor of a module, either a trainable weight or a buffer (running stats).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use shendu_core::{DType, Shape, Tensor, Var};

use crate::Result;

/// Whether a tensor is learned by the optimizer or only carried along in the state dict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Learned: receives gradients (PyTorch's `nn.Parameter`).
    Weight,
    /// Saved and loaded but never trained (PyTorch's buffers: BatchNorm's running statistics).
    Buffer,
}

/// A shared handle to one parameter. Cloning shares the values, so an optimizer, a state dict and
/// the module all see one tensor.
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::Param;
/// let p = Param::new(Tensor::ones(&[2], DType::F32).unwrap());
/// let loss = p.tensor().sqr().unwrap().sum_all().unwrap();
/// loss.backward().unwrap();
/// assert_eq!(p.grad().unwrap().to_vec::<f32>().unwrap(), vec![2.0, 2.0]);
/// p.freeze();
/// assert!(!p.tensor().requires_grad());
/// ```
#[derive(Clone)]
pub struct Param(Arc<Inner>);

struct Inner {
    var: Var,
    kind: ParamKind,
    frozen: AtomicBool,
}

impl Param {
    /// A trainable weight holding a copy of `t`.
    pub fn new(t: Tensor) -> Param {
        Param(Arc::new(Inner { var: Var::new(t), kind: ParamKind::Weight, frozen: AtomicBool::new(false) }))
    }

    /// A buffer: saved in the state dict, never trained.
    pub fn buffer(t: Tensor) -> Param {
        Param(Arc::new(Inner { var: Var::new(t), kind: ParamKind::Buffer, frozen: AtomicBool::new(true) }))
    }

    /// The tensor to use in `forward`: recorded for autograd when trainable, detached when frozen
    /// or a buffer (so no gradient is computed for it at all).
    pub fn tensor(&self) -> Tensor {
        if self.is_trainable() {
            self.0.var.as_tensor().clone()
        } else {
            self.0.var.detach()
        }
    }

    /// The current values, cut from autograd.
    pub fn value(&self) -> Tensor {
        self.0.var.detach()
    }

    /// The underlying leaf (gradients are keyed by it).
    pub fn var(&self) -> &Var {
        &self.0.var
    }

    pub fn kind(&self) -> ParamKind {
        self.0.kind
    }

    /// A weight that is not frozen.
    pub fn is_trainable(&self) -> bool {
        self.0.kind == ParamKind::Weight && !self.0.frozen.load(Ordering::Relaxed)
    }

    /// Stops training this weight: forward detaches it and optimizers skip it.
    pub fn freeze(&self) {
        self.0.frozen.store(true, Ordering::Relaxed);
    }

    /// Trains a frozen weight again (buffers stay untrained).
    pub fn unfreeze(&self) {
        if self.0.kind == ParamKind::Weight {
            self.0.frozen.store(false, Ordering::Relaxed);
        }
    }

    /// The accumulated gradient since the last `zero_grad`.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.var.grad()
    }

    pub fn zero_grad(&self) {
        self.0.var.zero_grad()
    }

    /// Overwrites the values in place (same shape and dtype); identity and sharing are kept.
    pub fn set(&self, values: &Tensor) -> Result<()> {
        Ok(self.0.var.set(values)?)
    }

    pub fn shape(&self) -> &Shape {
        self.0.var.shape()
    }

    pub fn dims(&self) -> &[usize] {
        self.0.var.dims()
    }

    pub fn dtype(&self) -> DType {
        self.0.var.dtype()
    }

    /// Whether two handles share one parameter.
    pub fn same(&self, other: &Param) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({:?}, {} {}{})", self.0.kind, self.shape(), self.dtype(), if self.is_trainable() { "" } else { ", frozen" })
    }
}
