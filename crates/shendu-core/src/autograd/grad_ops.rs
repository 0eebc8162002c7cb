//! The vocabulary backward rules are written in.
//!
//! [`GradOps`] is the whole contract a value type must meet for the rules to run on it: report
//! its shape and dtype, and apply an op. Everything else a rule uses comes from [`GradExt`],
//! blanket-implemented on top of `apply`, the way JAX's rules call `bind` and tinygrad's mixins
//! call `alu`. `Tensor` applies eagerly (recording history when grad mode is on); the graph's node
//! type will apply by adding a node.

use super::Op;
use crate::ops::binary::Binary;
use crate::ops::copy::CopyOp;
use crate::ops::matmul::Matmul;
use crate::ops::movement::{BroadcastLike, Embed, Narrow, Permute, ReshapeLike, SumToLike};
use crate::ops::reduce::{Reduce, ReduceKind};
use crate::ops::unary::Unary;
use crate::{DType, Result, Shape, Tensor};

/// What a value must provide so backward rules can run on it.
pub trait GradOps: Clone + Sized {
    fn shape(&self) -> Shape;
    fn dtype(&self) -> DType;
    /// Applies `op` to `inputs` in this value's mode (eager: compute now).
    fn apply<O: Op>(op: O, inputs: &[&Self]) -> Result<Self>;
    /// Whether this value is stored as the transpose of a row-major matrix (its last two dims
    /// swapped). A layout hint only: rules may use it to produce a gradient in the same layout,
    /// saving a strided copy later. Values without a layout (graph nodes) say `false`.
    fn is_transposed_matrix(&self) -> bool {
        false
    }
    /// Whether a gradient for this input is wanted at all. Eager: whether it requires grad (a
    /// network's input batch does not, so conv2d skips its costly input gradient). Values that
    /// cannot tell say `true`; a rule may return `None` for an input that says `false`.
    fn needs_grad(&self) -> bool {
        true
    }
    /// Whether this value is laid out contiguously. A layout hint only; values without a
    /// layout (graph nodes, planned into contiguous buffers) say `true`.
    fn is_contiguous(&self) -> bool {
        true
    }
}

impl GradOps for Tensor {
    fn shape(&self) -> Shape {
        Tensor::shape(self).clone()
    }
    fn dtype(&self) -> DType {
        Tensor::dtype(self)
    }
    fn apply<O: Op>(op: O, inputs: &[&Self]) -> Result<Self> {
        super::apply(op, inputs)
    }
    fn needs_grad(&self) -> bool {
        self.requires_grad()
    }
    fn is_contiguous(&self) -> bool {
        Tensor::is_contiguous(self)
    }
    fn is_transposed_matrix(&self) -> bool {
        let (dims, strides) = (self.dims(), self.layout().strides());
        let r = dims.len();
        r == 2 && dims[0] > 1 && dims[1] > 1 && strides[0] == 1 && strides[1] == dims[0]
    }
}

/// The ops backward rules use, written once on top of [`GradOps::apply`].
pub trait GradExt: GradOps {
    /// This value, copied into a contiguous layout unless it is one already: for a rule that
    /// hands one strided value (a channel slice of a concatenation's gradient) to several ops
    /// that would each copy it.
    fn g_contiguous(&self) -> Result<Self> {
        if self.is_contiguous() {
            Ok(self.clone())
        } else {
            Self::apply(CopyOp, &[self])
        }
    }
    fn unary(&self, op: Unary) -> Result<Self> {
        Self::apply(op, &[self])
    }
    fn binary(&self, op: Binary, rhs: &Self) -> Result<Self> {
        Self::apply(op, &[self, rhs])
    }
    fn g_add(&self, rhs: &Self) -> Result<Self> {
        self.binary(Binary::Add, rhs)
    }
    fn g_sub(&self, rhs: &Self) -> Result<Self> {
        self.binary(Binary::Sub, rhs)
    }
    fn g_mul(&self, rhs: &Self) -> Result<Self> {
        self.binary(Binary::Mul, rhs)
    }
    fn g_div(&self, rhs: &Self) -> Result<Self> {
        self.binary(Binary::Div, rhs)
    }
    fn g_neg(&self) -> Result<Self> {
        self.unary(Unary::Neg)
    }
    /// `self * mul + add` with scalars.
    fn g_affine(&self, mul: f64, add: f64) -> Result<Self> {
        self.unary(Unary::Affine { mul, add })
    }
    fn g_scale(&self, mul: f64) -> Result<Self> {
        self.g_affine(mul, 0.0)
    }
    /// Heaviside step: 1 where `self > 0`, else 0 (its own gradient is zero).
    fn g_step(&self) -> Result<Self> {
        self.unary(Unary::Step)
    }
    fn g_matmul(&self, rhs: &Self) -> Result<Self> {
        Self::apply(Matmul, &[self, rhs])
    }
    fn g_permute(&self, perm: &[usize]) -> Result<Self> {
        Self::apply(Permute { perm: perm.to_vec() }, &[self])
    }
    /// Swaps the last two dims.
    fn g_t(&self) -> Result<Self> {
        let r = self.shape().rank();
        if r < 2 {
            return Err(crate::Error::shape("t", format!("needs at least 2 dims, got shape {}", self.shape())));
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.g_permute(&perm)
    }
    /// Sums broadcast dims away so the result has `like`'s shape.
    fn g_sum_to_like(&self, like: &Self) -> Result<Self> {
        if self.shape() == like.shape() {
            return Ok(self.clone());
        }
        Self::apply(SumToLike, &[self, like])
    }
    fn g_broadcast_like(&self, like: &Self) -> Result<Self> {
        if self.shape() == like.shape() {
            return Ok(self.clone());
        }
        Self::apply(BroadcastLike, &[self, like])
    }
    fn g_reshape_like(&self, like: &Self) -> Result<Self> {
        Self::apply(ReshapeLike, &[self, like])
    }
    fn g_sum_keepdim(&self, dims: &[usize]) -> Result<Self> {
        Self::apply(Reduce { kind: ReduceKind::Sum, dims: dims.to_vec(), keepdim: true }, &[self])
    }
    fn g_narrow(&self, dim: usize, start: usize, len: usize) -> Result<Self> {
        Self::apply(Narrow { dim, start, len }, &[self])
    }
    /// Zeros of `like`'s shape with `self` written at `start` along `dim` (narrow's adjoint).
    fn g_embed(&self, like: &Self, dim: usize, start: usize) -> Result<Self> {
        Self::apply(Embed { dim, start }, &[self, like])
    }
}

impl<T: GradOps> GradExt for T {}
