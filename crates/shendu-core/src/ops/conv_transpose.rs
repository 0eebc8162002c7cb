//! Transposed convolution (PyTorch's `conv_transpose2d`): the adjoint of `conv2d` in its input,
//! used by decoders and upsampling layers, and by `conv2d`'s backward rule for the input
//! gradient.

use crate::autograd::{apply, GradOps, Op};
use crate::cpu::conv::{self as kernels, ConvElem, ConvGeom};
use crate::ops::conv::{fits, geom, narrow_hw, via_f32_pair, Conv2d, Conv2dWeightGrad, ConvSpec};
use crate::padding::effective_kernel;
use crate::pool::PooledVec;
use crate::{with_float, Error, Result, Shape, Tensor};

/// Parameters of [`Tensor::conv_transpose2d`], PyTorch's semantics: the output is
/// `(in - 1)*stride - pad_begin - pad_end + dilation*(k - 1) + output_padding + 1` along each
/// dimension. The default is stride 1, no padding, no output padding, dilation 1, one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dParams {
    /// (height, width) strides.
    pub stride: (usize, usize),
    /// (top, bottom, left, right): rows and columns cut from the full transposed output.
    pub padding: (usize, usize, usize, usize),
    /// Extra (height, width) added at the bottom/right, to pick among the input sizes a strided
    /// convolution maps to the same output size; each must be below the stride or dilation.
    pub output_padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Default for ConvTranspose2dParams {
    fn default() -> Self {
        ConvTranspose2dParams { stride: (1, 1), padding: (0, 0, 0, 0), output_padding: (0, 0), dilation: (1, 1), groups: 1 }
    }
}

impl ConvTranspose2dParams {
    pub fn with_stride(self, s: usize) -> Self {
        ConvTranspose2dParams { stride: (s, s), ..self }
    }
    /// `p` on every side (PyTorch's `padding=p`).
    pub fn with_pad(self, p: usize) -> Self {
        ConvTranspose2dParams { padding: (p, p, p, p), ..self }
    }
    pub fn with_output_padding(self, oh: usize, ow: usize) -> Self {
        ConvTranspose2dParams { output_padding: (oh, ow), ..self }
    }
    pub fn with_dilation(self, d: usize) -> Self {
        ConvTranspose2dParams { dilation: (d, d), ..self }
    }
    pub fn with_groups(self, groups: usize) -> Self {
        ConvTranspose2dParams { groups, ..self }
    }
}

/// Transposed convolution of `[N, C_in, H, W]` by `[C_in, C_out / groups, kH, kW]`. `spec` holds
/// the pads of the convolution it is the adjoint of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2d {
    pub spec: ConvSpec,
    pub output_padding: (usize, usize),
}

impl ConvTranspose2d {
    /// The geometry of the convolution whose input gradient this is.
    fn geom(&self, x: &Shape, w: &Shape) -> Result<ConvGeom> {
        const OP: &str = "conv_transpose2d";
        self.spec.check(OP)?;
        let [n, cin, h, wd] = x.dims_n::<4>(OP).map_err(|_| Error::shape(OP, format!("input {x} must be 4-d [N, C, H, W]")))?;
        let [wc, cout_g, kh, kw] =
            w.dims_n::<4>(OP).map_err(|_| Error::shape(OP, format!("weight {w} must be 4-d [C_in, C_out / groups, kH, kW]")))?;
        let groups = self.spec.groups;
        if wc != cin {
            return Err(Error::shape(OP, format!("input {x} has {cin} channels but weight {w} expects {wc} (its first dim)")));
        }
        if cin % groups != 0 {
            return Err(Error::shape(OP, format!("input {x} has {cin} channels, which groups {groups} does not divide (weight {w})")));
        }
        if kh == 0 || kw == 0 {
            return Err(Error::shape(OP, format!("weight {w} has an empty kernel")));
        }
        let (s, d, p, op) = (self.spec.stride, self.spec.dilation, self.spec.pads, self.output_padding);
        let size = |inp: usize, k: usize, s: usize, d: usize, pb: usize, pe: usize, op: usize| -> Option<usize> {
            // The uncropped output is the padded input of the adjoint convolution: it must fit isize.
            let full = (inp.max(1) - 1).checked_mul(s)?.checked_add(effective_kernel(k, d))?.checked_add(op)?;
            let full = Some(full).filter(|&f| f <= isize::MAX as usize)?;
            full.checked_sub(pb.checked_add(pe)?).filter(|&v| v > 0 && inp > 0 && v <= isize::MAX as usize)
        };
        let (Some(oh), Some(ow)) = (size(h, kh, s.0, d.0, p[0], p[1], op.0), size(wd, kw, s.1, d.1, p[2], p[3], op.1)) else {
            return Err(Error::shape(
                OP,
                format!(
                    "input {x} with weight {w}, stride ({}, {}), dilation ({}, {}), pads {:?} and output padding ({}, {}) gives an empty output (or one too large to index)",
                    s.0, s.1, d.0, d.1, p, op.0, op.1
                ),
            ));
        };
        let cout = cout_g.checked_mul(groups).filter(|&c| fits(&[n, c, oh, ow]));
        let Some(cout) = cout else {
            return Err(Error::invalid(OP, format!("output of input {x} and weight {w} with groups {groups} is too large ({oh}x{ow})")));
        };
        // The convolution runs from the output (its input) back to this op's input.
        Ok(geom(n, cout, oh, ow, cin, kh, kw, h, wd, &self.spec))
    }
}

fn transpose_forward<T: ConvElem>(x: &Tensor, w: &Tensor, g: &ConvGeom) -> Result<Tensor> {
    let mut out = PooledVec::<T>::uninit(g.n * g.cin * g.h * g.w);
    x.with_contiguous("conv_transpose2d", |xs: &[T]| {
        w.with_contiguous("conv_transpose2d", |ws: &[T]| kernels::backward_data(xs, ws, g, out.as_mut_slice()))
    })??;
    Ok(Tensor::from_pooled(out, Shape::from(vec![g.n, g.cin, g.h, g.w])))
}

impl Op for ConvTranspose2d {
    fn name(&self) -> &'static str {
        "conv_transpose2d"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let g = self.geom(inputs[0].shape(), inputs[1].shape())?;
        via_f32_pair("conv_transpose2d", inputs[0], inputs[1], |x, w| {
            with_float!(x.dtype(), "conv_transpose2d", |T| transpose_forward::<T>(x, w, &g))
        })
    }
    fn backward<G: GradOps>(&self, inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        let (x, w) = (inputs[0], inputs[1]);
        let (xs, ws) = (x.shape(), w.shape());
        let (xd, wd) = (xs.dims(), ws.dims());
        // y = conv2d-adjoint(x): gx = conv2d(gy, w) (cut to x's size when output padding reaches
        // past a stride), gw = the convolution weight gradient with gy as its input.
        let gx = if x.needs_grad() { Some(narrow_hw(G::apply(Conv2d { spec: self.spec }, &[grad, w])?, xd[2], xd[3])?) } else { None };
        let gw =
            if w.needs_grad() { Some(G::apply(Conv2dWeightGrad { spec: self.spec, kernel: (wd[2], wd[3]) }, &[grad, x])?) } else { None };
        Ok(vec![gx, gw])
    }
}

impl Tensor {
    /// Transposed 2-D convolution (PyTorch's `conv_transpose2d`) of `[N, C_in, H, W]` by
    /// `[C_in, C_out / groups, kH, kW]`, giving `[N, C_out, oH, oW]` with
    /// `oH = (H - 1)*stride - top - bottom + dilation*(kH - 1) + output_padding + 1`. No bias.
    ///
    /// ```
    /// use shendu_core::{ConvTranspose2dParams, Tensor};
    /// let x = Tensor::ones(&[1, 1, 2, 2], shendu_core::DType::F32).unwrap();
    /// let w = Tensor::ones(&[1, 1, 2, 2], shendu_core::DType::F32).unwrap();
    /// let y = x.conv_transpose2d(&w, &ConvTranspose2dParams::default().with_stride(2)).unwrap();
    /// assert_eq!(y.dims(), &[1, 1, 4, 4]);
    /// ```
    pub fn conv_transpose2d(&self, weight: &Tensor, params: &ConvTranspose2dParams) -> Result<Tensor> {
        const OP: &str = "conv_transpose2d";
        let (s, d, op) = (params.stride, params.dilation, params.output_padding);
        if op.0 >= s.0.max(d.0) || op.1 >= s.1.max(d.1) {
            return Err(Error::invalid(
                OP,
                format!(
                    "output padding ({}, {}) must be smaller than the stride ({}, {}) or the dilation ({}, {}) (input {}, weight {})",
                    op.0,
                    op.1,
                    s.0,
                    s.1,
                    d.0,
                    d.1,
                    self.shape(),
                    weight.shape()
                ),
            ));
        }
        let p = params.padding;
        let spec = ConvSpec { stride: s, pads: [p.0, p.1, p.2, p.3], dilation: d, groups: params.groups };
        apply(ConvTranspose2d { spec, output_padding: op }, &[self, weight])
    }
}
