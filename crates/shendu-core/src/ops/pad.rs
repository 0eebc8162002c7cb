//! Padding of the trailing dims: constant, reflect and replicate borders. Every mode is a map
//! from each padded index to a source index (or to the constant), so the forward is a gather
//! and the backward of reflect/replicate a scatter-add into the source positions.

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::cpu::index::{self as kernels, Accumulate};
use crate::pool::PooledVec;
use crate::{with_any, Error, Result, Shape, Tensor};

/// What fills the border added by [`Tensor::pad`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadMode {
    /// A constant value (converted to the tensor's dtype).
    Constant(f64),
    /// The mirror image without repeating the edge: `[1, 2, 3]` padded by 2 on the left gives
    /// `[3, 2, 1, 2, 3]`. Each pad must be smaller than its dimension.
    Reflect,
    /// Copies of the edge entry: `[1, 2, 3]` padded by 2 on the left gives `[1, 1, 1, 2, 3]`.
    Replicate,
}

/// Pads the trailing dims: `pads[0]` is `(before, after)` for the last dim, `pads[1]` for the
/// one before it, and so on (PyTorch's `F.pad` order).
#[derive(Clone, Debug)]
pub struct Pad {
    pub pads: Vec<(usize, usize)>,
    pub mode: PadMode,
}

/// The padded shape and, per dim, the source index of each padded index (`None` for a constant
/// border), or the error users see.
fn pad_maps(shape: &Shape, pads: &[(usize, usize)], mode: PadMode, op: &'static str) -> Result<(Shape, Vec<Vec<Option<usize>>>)> {
    let dims = shape.dims();
    let rank = dims.len();
    if pads.len() > rank {
        return Err(Error::shape(op, format!("{} (before, after) pairs given for input {shape} of rank {rank}", pads.len())));
    }
    let pair = |d: usize| {
        if rank - 1 - d < pads.len() {
            pads[rank - 1 - d]
        } else {
            (0, 0)
        }
    };
    // Sizes first, so that absurd pads fail before any map is allocated.
    let mut out_dims = Vec::with_capacity(rank);
    for (d, &n) in dims.iter().enumerate() {
        let (lo, hi) = pair(d);
        match mode {
            PadMode::Reflect if lo >= n.max(1) || hi >= n.max(1) => {
                return Err(Error::invalid(
                    op,
                    format!("reflect padding ({lo}, {hi}) of dimension {d} must be smaller than its size {n} (input {shape})"),
                ))
            }
            PadMode::Replicate if n == 0 && (lo > 0 || hi > 0) => {
                return Err(Error::invalid(op, format!("replicate padding of dimension {d} needs a non-empty dimension (input {shape})")))
            }
            _ => {}
        }
        out_dims.push(lo.checked_add(n).and_then(|v| v.checked_add(hi)));
    }
    let total = out_dims.iter().try_fold(1usize, |a, &d| d.and_then(|d| a.checked_mul(d)));
    // Sizes past isize::MAX would overflow the offsets of the views the op takes.
    if total.is_none_or(|t| t > isize::MAX as usize) || out_dims.iter().any(|d| d.is_none_or(|d| d > isize::MAX as usize)) {
        return Err(Error::invalid(op, format!("padding {pads:?} of input {shape} gives too many elements")));
    }
    let out_dims: Vec<usize> = out_dims.into_iter().map(|d| d.unwrap_or(0)).collect();
    if total == Some(0) {
        // Nothing to map; skipping the maps also keeps a huge pad of an empty tensor cheap.
        return Ok((Shape::new(out_dims), vec![Vec::new(); rank]));
    }
    let maps = dims
        .iter()
        .zip(&out_dims)
        .enumerate()
        .map(|(d, (&n, &len))| {
            let (lo, last) = (pair(d).0 as isize, n as isize - 1);
            (0..len as isize)
                .map(|i| {
                    let j = i - lo;
                    match mode {
                        PadMode::Constant(_) => (0..=last).contains(&j).then_some(j as usize),
                        PadMode::Reflect => {
                            let r = if j < 0 {
                                -j
                            } else if j > last {
                                2 * last - j
                            } else {
                                j
                            };
                            Some(r as usize)
                        }
                        PadMode::Replicate => Some(j.clamp(0, last) as usize),
                    }
                })
                .collect()
        })
        .collect();
    Ok((Shape::new(out_dims), maps))
}

impl Op for Pad {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        let (shape, maps) = pad_maps(x.shape(), &self.pads, self.mode, "pad")?;
        if x.rank() == 0 {
            return Ok(x.with_layout(x.layout().clone()));
        }
        let fill = match self.mode {
            PadMode::Constant(v) => v,
            _ => 0.0,
        };
        with_any!(x.dtype(), |T| {
            let mut out = PooledVec::<T>::uninit(shape.elem_count());
            let fill = <T as crate::dtype::WithDType>::from_f64(fill);
            x.with_slice("pad", |s: &[T], l| kernels::pad_gather(s, l, &maps, fill, out.as_mut_slice()))?;
            Ok(Tensor::from_pooled(out, shape))
        })
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        if let PadMode::Constant(_) = self.mode {
            // The constant border has no source: the gradient is the interior, a view.
            let shape = inputs[0].shape();
            let rank = shape.rank();
            let mut g = grad.clone();
            for (i, &(lo, hi)) in self.pads.iter().enumerate() {
                if lo > 0 || hi > 0 {
                    let d = rank - 1 - i;
                    g = g.g_narrow(d, lo, shape.dims()[d])?;
                }
            }
            return Ok(vec![Some(g)]);
        }
        Ok(vec![Some(T::apply(PadBackward { pads: self.pads.clone(), mode: self.mode }, &[grad, inputs[0]])?)])
    }
}

/// The adjoint of a reflect or replicate [`Pad`]: sums the padded gradient (input 0) back into
/// the source positions, giving a tensor shaped like input 1.
#[derive(Clone, Debug)]
pub struct PadBackward {
    pub pads: Vec<(usize, usize)>,
    pub mode: PadMode,
}

impl Op for PadBackward {
    fn name(&self) -> &'static str {
        "pad_backward"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (g, like) = (inputs[0], inputs[1]);
        let (shape, maps) = pad_maps(like.shape(), &self.pads, self.mode, "pad_backward")?;
        if g.shape() != &shape {
            return Err(Error::shape(
                "pad_backward",
                format!("gradient {} does not match the padded shape {shape} of input {}", g.shape(), like.shape()),
            ));
        }
        if like.rank() == 0 {
            return Ok(g.with_layout(g.layout().clone()));
        }
        let strides = like.shape().contiguous_strides();
        with_any!(g.dtype(), |T| {
            let mut out = PooledVec::<T>::filled(like.elem_count(), <T as Accumulate>::zero());
            g.with_contiguous("pad_backward", |s: &[T]| kernels::pad_scatter_add(s, &maps, out.as_mut_slice(), &strides))?;
            Ok(Tensor::from_pooled(out, like.shape().clone()))
        })
    }
    fn backward<T: GradOps>(&self, _inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(T::apply(Pad { pads: self.pads.clone(), mode: self.mode }, &[grad])?), None])
    }
}

impl Tensor {
    /// Pads the trailing dims. `pads[0]` is `(before, after)` for the last dim, `pads[1]` for
    /// the second-to-last, and so on (PyTorch's `F.pad` order); dims without a pair are left
    /// alone. Works for every dtype; differentiable in every mode (reflect and replicate sum
    /// the border's gradient into the entries it copies).
    ///
    /// ```
    /// use shendu_core::{PadMode, Tensor};
    /// let x = Tensor::from_vec(vec![1f32, 2., 3.], &[3]).unwrap();
    /// let r = x.pad(&[(2, 1)], PadMode::Reflect).unwrap();
    /// assert_eq!(r.to_vec::<f32>().unwrap(), vec![3., 2., 1., 2., 3., 2.]);
    /// let c = x.pad(&[(1, 0)], PadMode::Constant(-1.0)).unwrap();
    /// assert_eq!(c.to_vec::<f32>().unwrap(), vec![-1., 1., 2., 3.]);
    /// ```
    pub fn pad(&self, pads: &[(usize, usize)], mode: PadMode) -> Result<Tensor> {
        // Validate even when nothing is added, so a bad call fails the same way every time.
        pad_maps(self.shape(), pads, mode, "pad")?;
        if pads.iter().all(|&p| p == (0, 0)) {
            return Ok(self.clone());
        }
        apply(Pad { pads: pads.to_vec(), mode }, &[self])
    }
}
