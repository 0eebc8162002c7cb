//! Joining and splitting along a dim: cat, stack, split, chunk. Splits are views (narrow);
//! cat copies, and its backward narrows the gradient per input.

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::cpu::elementwise::SendPtr;
use crate::cpu::threads::parallel_ranges;
use crate::ops::copy::copy_strided;
use crate::pool::PooledVec;
use crate::{with_any, Dim, Error, Layout, Result, Shape, Tensor};

/// Elements copied per parallel task.
const PAR_ELEMS: usize = 1 << 15;

/// Concatenation of all inputs along `dim`.
#[derive(Clone, Copy, Debug)]
pub struct Cat {
    pub dim: usize,
}

/// The output shape of `cat`, or the error naming the first input that does not fit.
fn cat_shape(inputs: &[&Tensor], dim: usize, op: &'static str) -> Result<Shape> {
    let Some(first) = inputs.first() else {
        return Err(Error::invalid(op, "needs at least one tensor, got an empty list"));
    };
    if dim >= first.rank() {
        return Err(Error::index(op, format!("dimension {dim} is out of range for input 0 {} of rank {}", first.shape(), first.rank())));
    }
    let mut dims = first.dims().to_vec();
    dims[dim] = 0;
    for (i, t) in inputs.iter().enumerate() {
        if t.dtype() != first.dtype() {
            return Err(Error::dtype(
                op,
                format!("input {i} {} has dtype {} but input 0 {} has dtype {}", t.shape(), t.dtype(), first.shape(), first.dtype()),
            ));
        }
        if t.device() != first.device() {
            return Err(Error::device(op, format!("input {i} {} is on {} but input 0 is on {}", t.shape(), t.device(), first.device())));
        }
        let same = t.rank() == first.rank() && (0..t.rank()).all(|d| d == dim || t.dims()[d] == first.dims()[d]);
        if !same {
            return Err(Error::shape(
                op,
                format!(
                    "input {i} has shape {} but input 0 has shape {}: sizes must match except in dimension {dim}",
                    t.shape(),
                    first.shape()
                ),
            ));
        }
        dims[dim] += t.dims()[dim];
    }
    Ok(Shape::new(dims))
}

impl Op for Cat {
    fn name(&self) -> &'static str {
        "cat"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let dim = self.dim;
        let shape = cat_shape(inputs, dim, "cat")?;
        let outer: usize = shape.dims()[..dim].iter().product();
        let inner: usize = shape.dims()[dim + 1..].iter().product();
        let out_row = shape.dims()[dim] * inner;
        with_any!(inputs[0].dtype(), |T| {
            let mut out = PooledVec::<T>::uninit(shape.elem_count());
            let mut start = 0;
            for x in inputs {
                let len = x.dims()[dim];
                let block = len * inner;
                let dst_layout = Layout::contiguous(shape.clone()).narrow(dim, start, len, "cat")?;
                x.with_slice("cat", |s: &[T], l| match l.contiguous_range() {
                    Some(_) if block == 0 => {}
                    // Contiguous input: one memcpy per outer index.
                    Some(r) => {
                        let (s, dst) = (&s[r], SendPtr(out.as_mut_slice().as_mut_ptr()));
                        let at = start * inner;
                        parallel_ranges(outer, PAR_ELEMS / block + 1, |range| {
                            for o in range {
                                // SAFETY: each outer index writes its own block of `out`.
                                let d = unsafe { dst.slice_mut(o * out_row + at..o * out_row + at + block) };
                                d.copy_from_slice(&s[o * block..(o + 1) * block]);
                            }
                        });
                    }
                    None => copy_strided(s, l, out.as_mut_slice(), &dst_layout),
                })?;
                start += len;
            }
            Ok(Tensor::from_pooled(out, shape.clone()))
        })
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        let mut start = 0;
        let mut grads = Vec::with_capacity(inputs.len());
        for x in inputs {
            let len = x.shape().dims()[self.dim];
            grads.push(Some(grad.g_narrow(self.dim, start, len)?));
            start += len;
        }
        Ok(grads)
    }
}

impl Tensor {
    /// Joins tensors along an existing `dim`; all must share dtype and every other size.
    /// Differentiable in every input.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let a = Tensor::from_vec(vec![1f32, 2.], &[1, 2]).unwrap();
    /// let b = Tensor::from_vec(vec![3f32, 4., 5., 6.], &[2, 2]).unwrap();
    /// let c = Tensor::cat(&[&a, &b], 0).unwrap();
    /// assert_eq!(c.dims(), &[3, 2]);
    /// assert_eq!(Tensor::cat(&[&a, &a], -1).unwrap().to_vec::<f32>().unwrap(), vec![1., 2., 1., 2.]);
    /// ```
    pub fn cat<D: Dim>(tensors: &[&Tensor], dim: D) -> Result<Tensor> {
        let Some(first) = tensors.first() else {
            return Err(Error::invalid("cat", "needs at least one tensor, got an empty list"));
        };
        let dim = first.shape().dim_index(dim, "cat")?;
        apply(Cat { dim }, tensors)
    }

    /// Joins tensors of one shape along a new dim inserted at `dim` (`0..=rank`; negative
    /// counts from the back of the result). Differentiable in every input.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let a = Tensor::from_vec(vec![1f32, 2.], &[2]).unwrap();
    /// let b = Tensor::from_vec(vec![3f32, 4.], &[2]).unwrap();
    /// let s = Tensor::stack(&[&a, &b], 1).unwrap();
    /// assert_eq!(s.dims(), &[2, 2]);
    /// assert_eq!(s.to_vec::<f32>().unwrap(), vec![1., 3., 2., 4.]);
    /// ```
    pub fn stack<D: Dim>(tensors: &[&Tensor], dim: D) -> Result<Tensor> {
        let Some(first) = tensors.first() else {
            return Err(Error::invalid("stack", "needs at least one tensor, got an empty list"));
        };
        // The new dim may also go after the last one: resolve against rank + 1.
        let dim = dim.resolve(first.rank() + 1, "stack").map_err(|e| match e {
            Error::Index { op, msg } => {
                Error::Index { op, msg: format!("{msg} (the result of stacking inputs of shape {})", first.shape()) }
            }
            e => e,
        })?;
        for (i, t) in tensors.iter().enumerate() {
            if t.shape() != first.shape() {
                return Err(Error::shape(
                    "stack",
                    format!("input {i} has shape {} but input 0 has shape {}; all must match", t.shape(), first.shape()),
                ));
            }
            if t.dtype() != first.dtype() {
                return Err(Error::dtype(
                    "stack",
                    format!("input {i} {} has dtype {} but input 0 has dtype {}", t.shape(), t.dtype(), first.dtype()),
                ));
            }
        }
        let expanded = tensors.iter().map(|t| t.unsqueeze(dim)).collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = expanded.iter().collect();
        apply(Cat { dim }, &refs)
    }

    /// Splits along `dim` into views of `split_size` entries each (the last may be shorter).
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::arange(0.0, 5.0, 1.0, shendu_core::DType::F32).unwrap();
    /// let parts = x.split(2, 0).unwrap();
    /// assert_eq!(parts.iter().map(|p| p.dims()[0]).collect::<Vec<_>>(), vec![2, 2, 1]);
    /// ```
    pub fn split<D: Dim>(&self, split_size: usize, dim: D) -> Result<Vec<Tensor>> {
        let dim = self.shape().dim_index(dim, "split")?;
        let n = self.dims()[dim];
        if split_size == 0 {
            return Err(Error::invalid("split", format!("split_size must be positive (dimension {dim} of {} has size {n})", self.shape())));
        }
        let sizes: Vec<usize> = (0..n).step_by(split_size).map(|s| split_size.min(n - s)).collect();
        self.split_with_sizes(&sizes, dim)
    }

    /// Splits along `dim` into views of the given sizes, which must sum to the dim's size.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::zeros(&[2, 6], shendu_core::DType::F32).unwrap();
    /// let parts = x.split_with_sizes(&[1, 5], -1).unwrap();
    /// assert_eq!(parts[1].dims(), &[2, 5]);
    /// ```
    pub fn split_with_sizes<D: Dim>(&self, sizes: &[usize], dim: D) -> Result<Vec<Tensor>> {
        let dim = self.shape().dim_index(dim, "split_with_sizes")?;
        let n = self.dims()[dim];
        let total = sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
        if total != Some(n) {
            return Err(Error::shape(
                "split_with_sizes",
                format!("sizes {sizes:?} do not sum to the size {n} of dimension {dim} (input {})", self.shape()),
            ));
        }
        let mut start = 0;
        sizes
            .iter()
            .map(|&len| {
                let part = self.narrow(dim, start, len);
                start += len;
                part
            })
            .collect()
    }

    /// Splits along `dim` into at most `chunks` views of equal size (the last may be shorter),
    /// as PyTorch's `chunk`: each has `ceil(size / chunks)` entries.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::zeros(&[5, 2], shendu_core::DType::F32).unwrap();
    /// let parts = x.chunk(3, 0).unwrap();
    /// assert_eq!(parts.iter().map(|p| p.dims()[0]).collect::<Vec<_>>(), vec![2, 2, 1]);
    /// ```
    pub fn chunk<D: Dim>(&self, chunks: usize, dim: D) -> Result<Vec<Tensor>> {
        let dim = self.shape().dim_index(dim, "chunk")?;
        if chunks == 0 {
            return Err(Error::invalid("chunk", format!("chunks must be positive (input {})", self.shape())));
        }
        let n = self.dims()[dim];
        if n == 0 {
            // PyTorch gives `chunks` empty parts; an absurd count must fail, not abort.
            let mut parts = Vec::new();
            parts.try_reserve_exact(chunks).map_err(|_| {
                Error::invalid("chunk", format!("{chunks} chunks of the empty dimension {dim} of {} are too many", self.shape()))
            })?;
            for _ in 0..chunks {
                parts.push(self.narrow(dim, 0, 0)?);
            }
            return Ok(parts);
        }
        self.split(n.div_ceil(chunks), dim)
    }
}
