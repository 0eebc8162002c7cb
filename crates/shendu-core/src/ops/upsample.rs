//! Resizing `[N, C, H, W]` tensors: nearest and bilinear, with PyTorch's coordinate rules.
//! Both are linear, so each op's gradient is its adjoint and the adjoint's gradient is the op.

use crate::autograd::{apply, GradOps, Op};
use crate::cpu::pool::{self as kernels, Lerp};
use crate::ops::via_f32_if_half;
use crate::pool::PooledVec;
use crate::{with_float, DType, Error, Result, Shape, Tensor};

/// The interpolation rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interp {
    /// PyTorch's `mode="nearest"`: source `floor(o * in/out)`.
    Nearest,
    /// PyTorch's `mode="bilinear"` with its `align_corners` flag.
    Bilinear { align_corners: bool },
}

impl Interp {
    fn name(self) -> &'static str {
        match self {
            Interp::Nearest => "upsample_nearest2d",
            Interp::Bilinear { .. } => "upsample_bilinear2d",
        }
    }
    fn tables(self, dtype: DType, n_out: usize, size: usize) -> Vec<Lerp> {
        match self {
            Interp::Nearest => kernels::nearest_table(n_out, size),
            Interp::Bilinear { align_corners } => match dtype {
                DType::F64 => kernels::linear_table::<f64>(n_out, size, align_corners),
                _ => kernels::linear_table::<f32>(n_out, size, align_corners),
            },
        }
    }
}

fn check(op: &'static str, x: &Shape, size: (usize, usize)) -> Result<[usize; 4]> {
    let d = x.dims_n::<4>(op).map_err(|_| Error::shape(op, format!("input {x} must be 4-d [N, C, H, W]")))?;
    if size.0 == 0 || size.1 == 0 || d[2] == 0 || d[3] == 0 {
        return Err(Error::shape(op, format!("output size ({}, {}) and the spatial size of input {x} must be non-zero", size.0, size.1)));
    }
    if !crate::ops::conv::fits(&[d[0], d[1], size.0, size.1]) || !crate::ops::conv::fits(&[size.0, size.1, 4]) {
        return Err(Error::invalid(op, format!("output size ({}, {}) of input {x} is too large", size.0, size.1)));
    }
    Ok(d)
}

/// Resizes to `size = (oh, ow)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upsample2d {
    pub size: (usize, usize),
    pub mode: Interp,
}

/// The adjoint of [`Upsample2d`]: inputs `gy` (`[N, C, oh, ow]`) and `like` (input-shaped;
/// only its shape is read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upsample2dBackward {
    pub size: (usize, usize),
    pub mode: Interp,
}

impl Op for Upsample2d {
    fn name(&self) -> &'static str {
        match self.mode {
            Interp::Nearest => "upsample_nearest2d",
            Interp::Bilinear { .. } => "upsample_bilinear2d",
        }
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let op = self.mode.name();
        let [n, c, h, w] = check(op, inputs[0].shape(), self.size)?;
        let (oh, ow) = self.size;
        via_f32_if_half(inputs[0], |x| {
            with_float!(x.dtype(), op, |T| {
                let (ty, tx) = (self.mode.tables(x.dtype(), oh, h), self.mode.tables(x.dtype(), ow, w));
                let mut out = PooledVec::<T>::uninit(n * c * oh * ow);
                x.with_contiguous(op, |s: &[T]| {
                    kernels::interpolate(s, n * c, h, w, &ty, &tx, self.mode == Interp::Nearest, out.as_mut_slice())
                })?;
                Ok(Tensor::from_pooled(out, Shape::from(vec![n, c, oh, ow])))
            })
        })
    }
    fn backward<G: GradOps>(&self, inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        Ok(vec![Some(G::apply(Upsample2dBackward { size: self.size, mode: self.mode }, &[grad, inputs[0]])?)])
    }
}

impl Op for Upsample2dBackward {
    fn name(&self) -> &'static str {
        match self.mode {
            Interp::Nearest => "upsample_nearest2d_backward",
            Interp::Bilinear { .. } => "upsample_bilinear2d_backward",
        }
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let op = self.name();
        let (gy, like) = (inputs[0], inputs[1]);
        let [n, c, h, w] = check(op, like.shape(), self.size)?;
        let (oh, ow) = self.size;
        if gy.dims() != [n, c, oh, ow] {
            return Err(Error::shape(
                op,
                format!("gradient {} must have shape [{n}, {c}, {oh}, {ow}] for input {}", gy.shape(), like.shape()),
            ));
        }
        via_f32_if_half(gy, |gy| {
            with_float!(gy.dtype(), op, |T| {
                let (ty, tx) = (self.mode.tables(gy.dtype(), oh, h), self.mode.tables(gy.dtype(), ow, w));
                let mut out = PooledVec::<T>::uninit(n * c * h * w);
                gy.with_contiguous(op, |s: &[T]| {
                    kernels::interpolate_backward(s, n * c, h, w, &ty, &tx, self.mode == Interp::Nearest, out.as_mut_slice())
                })?;
                Ok(Tensor::from_pooled(out, like.shape().clone()))
            })
        })
    }
    fn backward<G: GradOps>(&self, _inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        Ok(vec![Some(G::apply(Upsample2d { size: self.size, mode: self.mode }, &[grad])?), None])
    }
}

impl Tensor {
    /// Nearest-neighbour resize of `[N, C, H, W]` to `[N, C, oh, ow]` (PyTorch's
    /// `interpolate(mode="nearest")`: output `o` copies input `floor(o * H/oh)`).
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::from_vec(vec![1f32, 2., 3., 4.], &[1, 1, 2, 2]).unwrap();
    /// let y = x.upsample_nearest2d((2, 4)).unwrap();
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![1., 1., 2., 2., 3., 3., 4., 4.]);
    /// ```
    pub fn upsample_nearest2d(&self, size: (usize, usize)) -> Result<Tensor> {
        apply(Upsample2d { size, mode: Interp::Nearest }, &[self])
    }

    /// Bilinear resize of `[N, C, H, W]` to `[N, C, oh, ow]` (PyTorch's
    /// `interpolate(mode="bilinear", align_corners=...)`). With `align_corners` the corner pixels
    /// of input and output coincide (`src = o * (H-1)/(oh-1)`); without, pixel centres are
    /// scaled (`src = (o + 0.5) * H/oh - 0.5`, clamped at 0).
    pub fn upsample_bilinear2d(&self, size: (usize, usize), align_corners: bool) -> Result<Tensor> {
        apply(Upsample2d { size, mode: Interp::Bilinear { align_corners } }, &[self])
    }
}
