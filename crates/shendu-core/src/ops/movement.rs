//! Views and shape changes: reshape, permute/transpose, narrow, broadcast, squeeze/unsqueeze,
//! and the adjoints their backward rules need (sum-to, embed).

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::cpu::elementwise::SendPtr;
use crate::cpu::threads::parallel_ranges;
use crate::ops::copy::copy_strided;
use crate::ops::reduce::sum_to_shape;
use crate::pool::PooledVec;
use crate::storage::IntoStorage;
use crate::{with_any, Dim, Error, Layout, Result, Shape, Tensor};

/// A view (or a copy, if the strides do not allow a view) with another shape of equal size.
#[derive(Clone, Debug)]
pub struct Reshape(pub Shape);

fn reshape_to(x: &Tensor, shape: Shape, op: &'static str) -> Result<Tensor> {
    if shape.elem_count() != x.elem_count() {
        return Err(Error::shape(
            op,
            format!("cannot reshape {} ({} elements) to {shape} ({} elements)", x.shape(), x.elem_count(), shape.elem_count()),
        ));
    }
    match x.layout().reshape(shape.clone()) {
        Some(l) => Ok(x.with_layout(l)),
        None => {
            let c = CopyOp.forward(&[x])?;
            Ok(c.with_layout(Layout::contiguous(shape)))
        }
    }
}
use crate::ops::copy::CopyOp;

impl Op for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        reshape_to(inputs[0], self.0.clone(), "reshape")
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(grad.g_reshape_like(inputs[0])?)])
    }
}

/// Reshapes input 0 to the shape of input 1.
#[derive(Clone, Copy, Debug)]
pub struct ReshapeLike;

impl Op for ReshapeLike {
    fn name(&self) -> &'static str {
        "reshape_like"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        reshape_to(inputs[0], inputs[1].shape().clone(), "reshape_like")
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(grad.g_reshape_like(inputs[0])?), None])
    }
}

/// Inserts size-1 dims at the given (sorted) positions of the output: restores the dims a
/// reduction removed, knowing only their positions (so graph nodes of unknown size can use it).
#[derive(Clone, Debug)]
pub struct Unsqueeze {
    pub dims: Vec<usize>,
}

impl Op for Unsqueeze {
    fn name(&self) -> &'static str {
        "unsqueeze"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        let mut dims = x.dims().to_vec();
        for &d in &self.dims {
            if d > dims.len() {
                return Err(Error::index("unsqueeze", format!("position {d} is out of range for shape {}", x.shape())));
            }
            dims.insert(d, 1);
        }
        reshape_to(x, Shape::new(dims), "unsqueeze")
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(grad.g_reshape_like(inputs[0])?)])
    }
}

/// Reorders dims (a view).
#[derive(Clone, Debug)]
pub struct Permute {
    pub perm: Vec<usize>,
}

impl Op for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        Ok(x.with_layout(x.layout().permute(&self.perm, "permute")?))
    }
    fn backward<T: GradOps>(&self, _i: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        let mut inverse = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(vec![Some(grad.g_permute(&inverse)?)])
    }
}

/// `len` elements of `dim` from `start` (a view).
#[derive(Clone, Copy, Debug)]
pub struct Narrow {
    pub dim: usize,
    pub start: usize,
    pub len: usize,
}

impl Op for Narrow {
    fn name(&self) -> &'static str {
        "narrow"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        let dim = self.dim.resolve(x.rank(), "narrow")?;
        Ok(x.with_layout(x.layout().narrow(dim, self.start, self.len, "narrow")?))
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(grad.g_embed(inputs[0], self.dim, self.start)?)])
    }
}

/// Elements below which embed's zero-fill stays on one thread.
const PAR_ELEMS: usize = 1 << 15;

/// Zeros shaped like input 1, with input 0 written at `start` along `dim`: narrow's adjoint.
#[derive(Clone, Copy, Debug)]
pub struct Embed {
    pub dim: usize,
    pub start: usize,
}

impl Op for Embed {
    fn name(&self) -> &'static str {
        "embed"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (x, like) = (inputs[0], inputs[1]);
        let shape = like.shape().clone();
        if x.rank() != shape.rank() || self.dim >= x.rank() {
            return Err(Error::shape(
                "embed",
                format!("cannot place {} into {shape} at dim {} offset {}", x.shape(), self.dim, self.start),
            ));
        }
        let dst_layout = Layout::contiguous(shape.clone()).narrow(self.dim, self.start, x.dims()[self.dim], "embed")?;
        if dst_layout.shape() != x.shape() {
            return Err(Error::shape(
                "embed",
                format!("cannot place {} into {shape} at dim {} offset {}", x.shape(), self.dim, self.start),
            ));
        }
        let d = shape.dims();
        let (outer, inner): (usize, usize) = (d[..self.dim].iter().product(), d[self.dim + 1..].iter().product());
        // Each outer row: zeros, the block of `x`, zeros.
        let (row, head, block) = (d[self.dim] * inner, self.start * inner, x.dims()[self.dim] * inner);
        with_any!(x.dtype(), |T| {
            let mut out = PooledVec::<T>::uninit(shape.elem_count());
            let zero = <T as crate::dtype::WithDType>::from_f64(0.0);
            // Only the zeros around the blocks are written here (the blocks are copied next),
            // rows in parallel: a channel split's backward embeds half of a large gradient.
            let dst = SendPtr(out.as_mut_slice().as_mut_ptr());
            parallel_ranges(outer, PAR_ELEMS.div_ceil(row.max(1)), |rows| {
                for o in rows {
                    // SAFETY: each outer row writes its own two zero runs inside `out`.
                    unsafe {
                        dst.slice_mut(o * row..o * row + head).fill(zero);
                        dst.slice_mut(o * row + head + block..(o + 1) * row).fill(zero);
                    }
                }
            });
            x.with_slice("embed", |s: &[T], l| copy_strided(s, l, out.as_mut_slice(), &dst_layout))?;
            Ok(Tensor::from_storage(out.into_storage(), Layout::contiguous(shape)))
        })
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        let len = inputs[0].shape().dims()[self.dim];
        Ok(vec![Some(grad.g_narrow(self.dim, self.start, len)?), None])
    }
}

/// Repeats size-1 dims (a stride-0 view) to reach `shape`.
#[derive(Clone, Debug)]
pub struct BroadcastAs(pub Shape);

impl Op for BroadcastAs {
    fn name(&self) -> &'static str {
        "broadcast_as"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        Ok(x.with_layout(x.layout().broadcast_as(&self.0, "broadcast_as")?))
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(grad.g_sum_to_like(inputs[0])?)])
    }
}

/// Broadcasts input 0 to the shape of input 1.
#[derive(Clone, Copy, Debug)]
pub struct BroadcastLike;

impl Op for BroadcastLike {
    fn name(&self) -> &'static str {
        "broadcast_like"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        Ok(x.with_layout(x.layout().broadcast_as(inputs[1].shape(), "broadcast_like")?))
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(grad.g_sum_to_like(inputs[0])?), None])
    }
}

/// Sums input 0 over the dims in which it was broadcast from input 1's shape.
#[derive(Clone, Copy, Debug)]
pub struct SumToLike;

impl Op for SumToLike {
    fn name(&self) -> &'static str {
        "sum_to_like"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        sum_to_shape(inputs[0], inputs[1].shape())
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(grad.g_broadcast_like(inputs[0])?), None])
    }
}

impl Tensor {
    /// Same elements, new shape; a view when the layout allows, else a copy.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        apply(Reshape(shape), &[self])
    }

    /// Merges dims `start..=end` into one.
    pub fn flatten<D: Dim>(&self, start: D, end: D) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape(1);
        }
        let (s, e) = (self.shape().dim_index(start, "flatten")?, self.shape().dim_index(end, "flatten")?);
        if s > e {
            return Err(Error::index("flatten", format!("start dim {s} is after end dim {e} for shape {}", self.shape())));
        }
        let d = self.dims();
        let mut dims = d[..s].to_vec();
        dims.push(d[s..=e].iter().fold(1, |acc: usize, &n| acc.saturating_mul(n)));
        dims.extend_from_slice(&d[e + 1..]);
        self.reshape(dims)
    }

    pub fn flatten_all(&self) -> Result<Tensor> {
        self.reshape(self.elem_count())
    }

    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        apply(Permute { perm: perm.to_vec() }, &[self])
    }

    /// Swaps two dims (a view).
    pub fn transpose<D: Dim>(&self, d0: D, d1: D) -> Result<Tensor> {
        let (a, b) = (self.shape().dim_index(d0, "transpose")?, self.shape().dim_index(d1, "transpose")?);
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Swaps the last two dims.
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::shape("t", format!("needs at least 2 dims, got shape {}", self.shape())));
        }
        self.transpose(-2isize, -1isize)
    }

    /// `len` elements of `dim` starting at `start` (a view).
    pub fn narrow<D: Dim>(&self, dim: D, start: usize, len: usize) -> Result<Tensor> {
        let dim = self.shape().dim_index(dim, "narrow")?;
        apply(Narrow { dim, start, len }, &[self])
    }

    /// Repeats size-1 dims (and adds leading dims) to reach `shape`, without copying.
    pub fn broadcast_as(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        apply(BroadcastAs(shape), &[self])
    }

    /// PyTorch's name for [`Tensor::broadcast_as`].
    pub fn expand(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        self.broadcast_as(shape)
    }

    /// Removes dim `d`, which must have size 1.
    pub fn squeeze<D: Dim>(&self, d: D) -> Result<Tensor> {
        let d = self.shape().dim_index(d, "squeeze")?;
        if self.dims()[d] != 1 {
            return Err(Error::shape("squeeze", format!("dimension {d} of {} has size {}, not 1", self.shape(), self.dims()[d])));
        }
        let mut dims = self.dims().to_vec();
        dims.remove(d);
        self.reshape(dims)
    }

    /// Inserts a size-1 dim at position `d` (0..=rank).
    pub fn unsqueeze(&self, d: usize) -> Result<Tensor> {
        if d > self.rank() {
            return Err(Error::index(
                "unsqueeze",
                format!("position {d} is out of range for shape {} (0..={})", self.shape(), self.rank()),
            ));
        }
        let mut dims = self.dims().to_vec();
        dims.insert(d, 1);
        self.reshape(dims)
    }

    /// Sums broadcast dims away to reach `shape` (the adjoint of broadcasting).
    pub fn sum_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        // A stride-0 view carries the target shape without allocating it (the target may be huge).
        let target = Tensor::zeros((), self.dtype())?.broadcast_as(shape)?;
        self.g_sum_to_like(&target)
    }
}
