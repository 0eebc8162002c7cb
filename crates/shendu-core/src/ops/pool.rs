//! 2-D pooling: max (with PyTorch's first-max-wins gradient), average, adaptive average and
//! global average, on `[N, C, H, W]`.
//!
//! Each op and its gradient form a pair of ops that are each other's adjoints, so gradients of
//! gradients work: max pooling's gradient scatters to the argmax of each window and the scatter's
//! gradient gathers from it; the averages are linear.

use crate::autograd::{apply, GradOps, Op};
use crate::cpu::pool::{self as kernels, MaxMode, Win};
use crate::dtype::Float;
use crate::ops::conv::{fits, via_f32_pair};
use crate::ops::via_f32_if_half;
use crate::padding::{pool_output_size, resolve_pads, PadRule, Padding};
use crate::pool::PooledVec;
use crate::{with_float, Error, Result, Shape, Tensor};

/// A pool's kernel, stride, explicit pads `[top, bottom, left, right]`, dilation and rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub pads: [usize; 4],
    pub dilation: (usize, usize),
    pub ceil_mode: bool,
}

fn dims4(op: &'static str, x: &Shape) -> Result<[usize; 4]> {
    x.dims_n::<4>(op).map_err(|_| Error::shape(op, format!("input {x} must be 4-d [N, C, H, W]")))
}

impl PoolSpec {
    /// Resolves `padding` for input `x` and checks the window fits (graph mode builds its
    /// pool nodes' specs here too, once the shapes are known).
    pub(crate) fn new(
        op: &'static str,
        x: &Shape,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: Padding,
        dilation: (usize, usize),
        ceil_mode: bool,
    ) -> Result<PoolSpec> {
        let [_, _, h, w] = dims4(op, x)?;
        if kernel.0 == 0 || kernel.1 == 0 || stride.0 == 0 || stride.1 == 0 || dilation.0 == 0 || dilation.1 == 0 {
            return Err(Error::invalid(
                op,
                format!("kernel {kernel:?}, stride {stride:?} and dilation {dilation:?} must all be at least 1 (input {x})"),
            ));
        }
        let (t, b) = resolve_pads(h, kernel.0, stride.0, dilation.0, padding.rule_h());
        let (l, r) = resolve_pads(w, kernel.1, stride.1, dilation.1, padding.rule_w());
        // TensorFlow's Same already rounds up.
        let ceil_mode = ceil_mode && padding != Padding::Same;
        let spec = PoolSpec { kernel, stride, pads: [t, b, l, r], dilation, ceil_mode };
        spec.out_hw(op, x)?;
        Ok(spec)
    }

    /// `[n, c, h, w]` and the output size, or the error naming op and shapes.
    fn out_hw(&self, op: &'static str, x: &Shape) -> Result<([usize; 4], usize, usize)> {
        let d = dims4(op, x)?;
        let (k, s, dl, p) = (self.kernel, self.stride, self.dilation, self.pads);
        let oh = pool_output_size(d[2], k.0, s.0, dl.0, PadRule::Explicit(p[0], p[1]), self.ceil_mode);
        let ow = pool_output_size(d[3], k.1, s.1, dl.1, PadRule::Explicit(p[2], p[3]), self.ceil_mode);
        match (oh, ow) {
            (Ok(oh), Ok(ow)) => Ok((d, oh, ow)),
            _ => Err(Error::shape(
                op,
                format!(
                    "kernel {}x{} with dilation {:?} does not fit input {x} padded by {:?} (top, bottom, left, right)",
                    k.0, k.1, dl, p
                ),
            )),
        }
    }

    fn windows(&self, h: usize, w: usize, oh: usize, ow: usize, include_pad: bool) -> (Vec<Win>, Vec<Win>) {
        let (k, s, d, p) = (self.kernel, self.stride, self.dilation, self.pads);
        (
            kernels::pool_windows(oh, h, k.0, s.0, d.0, p[0], p[1], include_pad),
            kernels::pool_windows(ow, w, k.1, s.1, d.1, p[2], p[3], include_pad),
        )
    }
}

/// Runs a one-input plane kernel: `f(x, out)` on contiguous data.
fn plane_op<T: Float>(op: &'static str, x: &Tensor, out_shape: Shape, f: impl FnOnce(&[T], &mut [T])) -> Result<Tensor> {
    let mut out = PooledVec::<T>::uninit(out_shape.elem_count());
    x.with_contiguous(op, |s: &[T]| f(s, out.as_mut_slice()))?;
    Ok(Tensor::from_pooled(out, out_shape))
}

// ---- max pool ------------------------------------------------------------------------------

/// Max pooling. Windows that hold only padding give `-inf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    pub spec: PoolSpec,
}

/// Max pooling's gradient: inputs `x` and `gy` (output-shaped); `gy` added at each window's
/// first maximum of `x`, giving an `x`-shaped result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dScatter {
    pub spec: PoolSpec,
}

/// Inputs `x` and `src` (both input-shaped): `src` at each window's first maximum of `x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dGather {
    pub spec: PoolSpec,
}

fn max_pool_run(op: &'static str, spec: &PoolSpec, x: &Tensor, src: Option<&Tensor>, mode: MaxMode) -> Result<Tensor> {
    let (d, oh, ow) = spec.out_hw(op, x.shape())?;
    let [n, c, h, w] = d;
    let (wy, wx) = spec.windows(h, w, oh, ow, false);
    let out_shape = if mode == MaxMode::Scatter { x.shape().clone() } else { Shape::from(vec![n, c, oh, ow]) };
    let run = |x: &Tensor, src: &Tensor| {
        with_float!(x.dtype(), op, |T| {
            let mut out = PooledVec::<T>::uninit(out_shape.elem_count());
            x.with_contiguous(op, |xs: &[T]| {
                src.with_contiguous(op, |ss: &[T]| kernels::max_pool(xs, ss, n * c, h, w, &wy, &wx, mode, out.as_mut_slice()))
            })??;
            Ok(Tensor::from_pooled(out, out_shape.clone()))
        })
    };
    match src {
        None => via_f32_if_half(x, |x| run(x, x)),
        Some(s) => {
            let want = if mode == MaxMode::Scatter { Shape::from(vec![n, c, oh, ow]) } else { x.shape().clone() };
            if s.shape() != &want {
                return Err(Error::shape(op, format!("second input {} must have shape {want} for input {}", s.shape(), x.shape())));
            }
            via_f32_pair(op, x, s, run)
        }
    }
}

impl Op for MaxPool2d {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        max_pool_run("max_pool2d", &self.spec, inputs[0], None, MaxMode::Forward)
    }
    fn backward<G: GradOps>(&self, inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        Ok(vec![Some(G::apply(MaxPool2dScatter { spec: self.spec }, &[inputs[0], grad])?)])
    }
}

impl Op for MaxPool2dScatter {
    fn name(&self) -> &'static str {
        "max_pool2d_backward"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        max_pool_run("max_pool2d_backward", &self.spec, inputs[0], Some(inputs[1]), MaxMode::Scatter)
    }
    fn backward<G: GradOps>(&self, inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        // The argmax positions are piecewise constant in x.
        Ok(vec![None, Some(G::apply(MaxPool2dGather { spec: self.spec }, &[inputs[0], grad])?)])
    }
}

impl Op for MaxPool2dGather {
    fn name(&self) -> &'static str {
        "max_pool2d_gather"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        max_pool_run("max_pool2d_gather", &self.spec, inputs[0], Some(inputs[1]), MaxMode::Gather)
    }
    fn backward<G: GradOps>(&self, inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        Ok(vec![None, Some(G::apply(MaxPool2dScatter { spec: self.spec }, &[inputs[0], grad])?)])
    }
}

// ---- average pools -------------------------------------------------------------------------

/// Input dims, output shape and the window tables of an average pool.
type Plan = ([usize; 4], Shape, Vec<Win>, Vec<Win>);

/// How an average pool chooses its windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AvgWindows {
    /// Kernel/stride/padding windows; the flag is `count_include_pad`.
    Pool(PoolSpec, bool),
    /// PyTorch's adaptive windows for an `(oh, ow)` output.
    Adaptive(usize, usize),
}

impl AvgWindows {
    fn op(&self) -> &'static str {
        match self {
            AvgWindows::Pool(..) => "avg_pool2d",
            AvgWindows::Adaptive(..) => "adaptive_avg_pool2d",
        }
    }

    /// Input dims, output shape and the window tables.
    fn plan(&self, op: &'static str, x: &Shape) -> Result<Plan> {
        match *self {
            AvgWindows::Pool(spec, include_pad) => {
                let (d, oh, ow) = spec.out_hw(op, x)?;
                let (wy, wx) = spec.windows(d[2], d[3], oh, ow, include_pad);
                Ok((d, Shape::from(vec![d[0], d[1], oh, ow]), wy, wx))
            }
            AvgWindows::Adaptive(oh, ow) => {
                let d = dims4(op, x)?;
                if oh == 0 || ow == 0 || d[2] == 0 || d[3] == 0 {
                    return Err(Error::shape(op, format!("output size ({oh}, {ow}) and the spatial size of input {x} must be non-zero")));
                }
                if !fits(&[d[0], d[1], oh, ow]) || !fits(&[oh, ow, 4]) {
                    return Err(Error::invalid(op, format!("output size ({oh}, {ow}) of input {x} is too large")));
                }
                Ok((d, Shape::from(vec![d[0], d[1], oh, ow]), kernels::adaptive_windows(oh, d[2]), kernels::adaptive_windows(ow, d[3])))
            }
        }
    }
}

/// Average pooling (fixed or adaptive windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    pub windows: AvgWindows,
}

/// The adjoint of [`AvgPool2d`]: inputs `gy` and `like` (input-shaped; only its shape is read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2dBackward {
    pub windows: AvgWindows,
}

impl Op for AvgPool2d {
    fn name(&self) -> &'static str {
        match self.windows {
            AvgWindows::Pool(..) => "avg_pool2d",
            AvgWindows::Adaptive(..) => "adaptive_avg_pool2d",
        }
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let op = self.windows.op();
        let (d, out_shape, wy, wx) = self.windows.plan(op, inputs[0].shape())?;
        via_f32_if_half(inputs[0], |x| {
            with_float!(x.dtype(), op, |T| plane_op::<T>(op, x, out_shape, |s, o| kernels::avg_pool(
                s,
                d[0] * d[1],
                d[2],
                d[3],
                &wy,
                &wx,
                o
            )))
        })
    }
    fn backward<G: GradOps>(&self, inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        Ok(vec![Some(G::apply(AvgPool2dBackward { windows: self.windows }, &[grad, inputs[0]])?)])
    }
}

impl Op for AvgPool2dBackward {
    fn name(&self) -> &'static str {
        "avg_pool2d_backward"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        const OP: &str = "avg_pool2d_backward";
        let (gy, like) = (inputs[0], inputs[1]);
        let (d, out_shape, wy, wx) = self.windows.plan(OP, like.shape())?;
        if gy.shape() != &out_shape {
            return Err(Error::shape(OP, format!("gradient {} must have shape {out_shape} for input {}", gy.shape(), like.shape())));
        }
        via_f32_if_half(gy, |gy| {
            with_float!(gy.dtype(), OP, |T| plane_op::<T>(OP, gy, like.shape().clone(), |s, o| kernels::avg_pool_backward(
                s,
                d[0] * d[1],
                d[2],
                d[3],
                &wy,
                &wx,
                o
            )))
        })
    }
    fn backward<G: GradOps>(&self, _inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        Ok(vec![Some(G::apply(AvgPool2d { windows: self.windows }, &[grad])?), None])
    }
}

impl Tensor {
    /// Max pooling over `kernel` windows of an `[N, C, H, W]` tensor (PyTorch's `max_pool2d`;
    /// pass `stride = kernel` for its default). Padding counts as `-inf`; `ceil_mode` rounds the
    /// output size up (a last window starting in the end padding is dropped). The gradient goes
    /// to the first maximum of each window.
    ///
    /// ```
    /// use shendu_core::{Padding, Tensor};
    /// let x = Tensor::from_vec((0..16).map(|v| v as f32).collect::<Vec<_>>(), &[1, 1, 4, 4]).unwrap();
    /// let y = x.max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false).unwrap();
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![5.0, 7.0, 13.0, 15.0]);
    /// ```
    pub fn max_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: Padding,
        dilation: (usize, usize),
        ceil_mode: bool,
    ) -> Result<Tensor> {
        let spec = PoolSpec::new("max_pool2d", self.shape(), kernel, stride, padding, dilation, ceil_mode)?;
        apply(MaxPool2d { spec }, &[self])
    }

    /// Average pooling over `kernel` windows (PyTorch's `avg_pool2d`). `count_include_pad`
    /// divides by the window size including zero padding (clipped at the padded input's end);
    /// otherwise by the number of input elements in the window.
    pub fn avg_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: Padding,
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> Result<Tensor> {
        let spec = PoolSpec::new("avg_pool2d", self.shape(), kernel, stride, padding, (1, 1), ceil_mode)?;
        apply(AvgPool2d { windows: AvgWindows::Pool(spec, count_include_pad) }, &[self])
    }

    /// Average pooling to an `(oh, ow)` output: output `i` averages input rows
    /// `floor(i*H/oh) .. ceil((i+1)*H/oh)` (PyTorch's rule; windows may overlap).
    pub fn adaptive_avg_pool2d(&self, output_size: (usize, usize)) -> Result<Tensor> {
        apply(AvgPool2d { windows: AvgWindows::Adaptive(output_size.0, output_size.1) }, &[self])
    }

    /// The mean over each channel plane: `[N, C, H, W] -> [N, C, 1, 1]`.
    pub fn global_avg_pool2d(&self) -> Result<Tensor> {
        self.adaptive_avg_pool2d((1, 1))
    }
}
