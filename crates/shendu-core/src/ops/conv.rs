//! Convolution: `conv2d`, `conv1d` (a conv2d of height 1), and the weight-gradient op their
//! backward rules share with the transposed convolution (ops/conv_transpose.rs).
//!
//! The three ops close under differentiation: the input gradient of a convolution is a
//! transposed convolution with the same kernel, its weight gradient is [`Conv2dWeightGrad`], and
//! the gradients of those two are convolutions again, so second-order gradients work.

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::cpu::conv::{self as kernels, ConvElem, ConvGeom, View4};
use crate::ops::conv_transpose::ConvTranspose2d;
use crate::padding::{conv_output_size, effective_kernel, resolve_pads, PadRule, Padding};
use crate::pool::PooledVec;
use crate::{with_float, DType, Error, Layout, Result, Shape, Tensor};

/// Parameters of [`Tensor::conv2d`]. The default is stride 1, `Valid` padding, dilation 1 and
/// one group, like PyTorch's `F.conv2d`.
///
/// ```
/// use shendu_core::{Conv2dParams, Padding};
/// let p = Conv2dParams::default().with_stride(2).with_pad(1);
/// assert_eq!(p.stride, (2, 2));
/// assert_eq!(p.padding, Padding::symmetric(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// (height, width) strides.
    pub stride: (usize, usize),
    pub padding: Padding,
    /// (height, width) dilations.
    pub dilation: (usize, usize),
    /// Channel groups: input and output channels are split into this many independent parts.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams { stride: (1, 1), padding: Padding::Valid, dilation: (1, 1), groups: 1 }
    }
}

impl Conv2dParams {
    /// The same stride along height and width.
    pub fn with_stride(self, s: usize) -> Self {
        Conv2dParams { stride: (s, s), ..self }
    }
    pub fn with_stride_hw(self, sh: usize, sw: usize) -> Self {
        Conv2dParams { stride: (sh, sw), ..self }
    }
    pub fn with_padding(self, padding: Padding) -> Self {
        Conv2dParams { padding, ..self }
    }
    /// `p` zeros on every side (PyTorch's `padding=p`).
    pub fn with_pad(self, p: usize) -> Self {
        self.with_padding(Padding::symmetric(p))
    }
    pub fn with_dilation(self, d: usize) -> Self {
        Conv2dParams { dilation: (d, d), ..self }
    }
    pub fn with_dilation_hw(self, dh: usize, dw: usize) -> Self {
        Conv2dParams { dilation: (dh, dw), ..self }
    }
    pub fn with_groups(self, groups: usize) -> Self {
        Conv2dParams { groups, ..self }
    }
}

/// A convolution's stride, explicit pads `[top, bottom, left, right]`, dilation and groups:
/// what the ops carry once `Same` has been resolved for a given input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub stride: (usize, usize),
    pub pads: [usize; 4],
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl ConvSpec {
    /// Checks the scalar parameters.
    pub(crate) fn check(&self, op: &'static str) -> Result<()> {
        let (s, d) = (self.stride, self.dilation);
        if s.0 == 0 || s.1 == 0 {
            return Err(Error::invalid(op, format!("stride ({}, {}) must be at least 1", s.0, s.1)));
        }
        if d.0 == 0 || d.1 == 0 {
            return Err(Error::invalid(op, format!("dilation ({}, {}) must be at least 1", d.0, d.1)));
        }
        if self.groups == 0 {
            return Err(Error::invalid(op, "groups must be at least 1"));
        }
        // The kernels index with isize; larger strides or dilations would overflow them.
        if [s.0, s.1, d.0, d.1].iter().any(|&v| v > isize::MAX as usize) {
            return Err(Error::invalid(op, format!("stride ({}, {}) or dilation ({}, {}) is too large", s.0, s.1, d.0, d.1)));
        }
        Ok(())
    }

    fn pads_str(&self) -> String {
        let p = self.pads;
        format!("pads (top {}, bottom {}, left {}, right {})", p[0], p[1], p[2], p[3])
    }

    /// The output size of a convolution of `x` by `w` (both 4-d), or the error users see.
    #[allow(clippy::too_many_arguments)]
    fn out_hw(&self, op: &'static str, x: &Shape, w: &Shape, h: usize, wd: usize, kh: usize, kw: usize) -> Result<(usize, usize)> {
        let (s, d, p) = (self.stride, self.dilation, self.pads);
        let oh = conv_output_size(h, kh, s.0, d.0, PadRule::Explicit(p[0], p[1]));
        let ow = conv_output_size(wd, kw, s.1, d.1, PadRule::Explicit(p[2], p[3]));
        match (oh, ow) {
            (Ok(oh), Ok(ow)) => Ok((oh, ow)),
            (Err(e), _) | (_, Err(e)) if matches!(e, Error::Invalid { .. }) => {
                Err(Error::invalid(op, format!("input {x}, weight {w}, {}: {e}", self.pads_str())))
            }
            _ => Err(Error::shape(
                op,
                format!(
                    "kernel {kh}x{kw} with dilation ({}, {}) spans {}x{} but input {x} with {} is only {}x{} (weight {w})",
                    d.0,
                    d.1,
                    effective_kernel(kh, d.0),
                    effective_kernel(kw, d.1),
                    self.pads_str(),
                    h.saturating_add(p[0]).saturating_add(p[1]),
                    wd.saturating_add(p[2]).saturating_add(p[3])
                ),
            )),
        }
    }
}

fn dims4(op: &'static str, what: &str, s: &Shape, layout: &str) -> Result<[usize; 4]> {
    s.dims_n::<4>(op).map_err(|_| Error::shape(op, format!("{what} {s} must be 4-d {layout}")))
}

/// Shape rule of `conv2d`: the kernel geometry, or the error naming op and shapes.
pub(crate) fn conv_geom(op: &'static str, x: &Shape, w: &Shape, spec: &ConvSpec) -> Result<ConvGeom> {
    spec.check(op)?;
    let [n, cin, h, wd] = dims4(op, "input", x, "[N, C, H, W]")?;
    let [cout, cin_g, kh, kw] = dims4(op, "weight", w, "[C_out, C_in / groups, kH, kW]")?;
    let groups = spec.groups;
    if cin % groups != 0 {
        return Err(Error::shape(op, format!("input {x} has {cin} channels, which groups {groups} does not divide (weight {w})")));
    }
    if cout % groups != 0 {
        return Err(Error::shape(op, format!("weight {w} has {cout} output channels, which groups {groups} does not divide (input {x})")));
    }
    if cin_g.checked_mul(groups) != Some(cin) {
        return Err(Error::shape(
            op,
            format!("input {x} has {cin} channels but weight {w} with groups {groups} expects {}", cin_g as u128 * groups as u128),
        ));
    }
    if kh == 0 || kw == 0 {
        return Err(Error::shape(op, format!("weight {w} has an empty kernel")));
    }
    let (oh, ow) = spec.out_hw(op, x, w, h, wd, kh, kw)?;
    if !fits(&[n, cout, oh, ow]) {
        return Err(Error::invalid(op, format!("output [{n}, {cout}, {oh}, {ow}] of input {x} and weight {w} is too large")));
    }
    Ok(geom(n, cin, h, wd, cout, kh, kw, oh, ow, spec))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn geom(
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    spec: &ConvSpec,
) -> ConvGeom {
    ConvGeom {
        n,
        cin,
        h,
        w,
        cout,
        kh,
        kw,
        oh,
        ow,
        sh: spec.stride.0,
        sw: spec.stride.1,
        dh: spec.dilation.0,
        dw: spec.dilation.1,
        pt: spec.pads[0],
        pl: spec.pads[2],
        groups: spec.groups,
    }
}

/// The strided view of a 4-d layout.
pub(crate) fn view4(l: &Layout) -> View4 {
    let s = l.strides();
    View4 { offset: l.offset(), strides: [s[0], s[1], s[2], s[3]] }
}

/// Runs `f` on two float tensors of one dtype: f32/f64 directly, f16/bf16 through f32.
pub(crate) fn via_f32_pair(op: &'static str, a: &Tensor, b: &Tensor, f: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor>) -> Result<Tensor> {
    a.check_same(b, op)?;
    match a.dtype() {
        DType::F16 | DType::BF16 => {
            let _g = crate::no_grad();
            f(&a.to_dtype(DType::F32)?, &b.to_dtype(DType::F32)?)?.to_dtype(a.dtype())
        }
        _ => f(a, b),
    }
}

fn conv_forward<T: ConvElem>(x: &Tensor, w: &Tensor, g: &ConvGeom) -> Result<Tensor> {
    let mut out = PooledVec::<T>::uninit(g.n * g.cout * g.oh * g.ow);
    x.with_slice("conv2d", |xs: &[T], xl| {
        w.with_contiguous("conv2d", |ws: &[T]| kernels::forward(xs, view4(xl), ws, g, out.as_mut_slice()))
    })??;
    Ok(Tensor::from_pooled(out, Shape::from(vec![g.n, g.cout, g.oh, g.ow])))
}

/// 2-D convolution (cross-correlation, as in PyTorch) of `[N, C_in, H, W]` by
/// `[C_out, C_in / groups, kH, kW]` with explicit pads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub spec: ConvSpec,
}

impl Op for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let g = conv_geom("conv2d", inputs[0].shape(), inputs[1].shape(), &self.spec)?;
        via_f32_pair("conv2d", inputs[0], inputs[1], |x, w| with_float!(x.dtype(), "conv2d", |T| conv_forward::<T>(x, w, &g)))
    }
    fn backward<G: GradOps>(&self, inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        let (x, w) = (inputs[0], inputs[1]);
        let (xs, ws, gs) = (x.shape(), w.shape(), grad.shape());
        let (xd, wd, gd) = (xs.dims(), ws.dims(), gs.dims());
        let output_padding = (
            transpose_output_padding(
                "conv2d backward",
                xd[2],
                gd[2],
                wd[2],
                self.spec.stride.0,
                self.spec.dilation.0,
                self.spec.pads[0],
                self.spec.pads[1],
            )?,
            transpose_output_padding(
                "conv2d backward",
                xd[3],
                gd[3],
                wd[3],
                self.spec.stride.1,
                self.spec.dilation.1,
                self.spec.pads[2],
                self.spec.pads[3],
            )?,
        );
        // A data input without history (a first layer's images) gets no gradient: skip it.
        let gx = if x.needs_grad() { Some(G::apply(ConvTranspose2d { spec: self.spec, output_padding }, &[grad, w])?) } else { None };
        let gw =
            if w.needs_grad() { Some(G::apply(Conv2dWeightGrad { spec: self.spec, kernel: (wd[2], wd[3]) }, &[x, grad])?) } else { None };
        Ok(vec![gx, gw])
    }
}

/// The output padding that makes a transposed convolution of an `inp`-long input `target` long:
/// `target = (inp - 1)*s - pb - pe + d*(k-1) + 1 + output_padding`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transpose_output_padding(
    op: &'static str,
    target: usize,
    inp: usize,
    k: usize,
    s: usize,
    d: usize,
    pb: usize,
    pe: usize,
) -> Result<usize> {
    let base = (inp.max(1) - 1) * s + effective_kernel(k, d);
    (target + pb + pe).checked_sub(base).ok_or_else(|| {
        Error::shape(op, format!("a transposed convolution of size {inp} (kernel {k}, stride {s}, dilation {d}, pads {pb} and {pe}) cannot give size {target}"))
    })
}

/// The gradient of a convolution's weight: inputs `x [N, C_in, H, W]` and the output gradient
/// `gy [N, C_out, oH, oW]`, output `[C_out, C_in / groups, kH, kW]`. `gy` may be shorter than
/// the convolution's output (the transposed convolution's weight gradient uses that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dWeightGrad {
    pub spec: ConvSpec,
    /// (kH, kW).
    pub kernel: (usize, usize),
}

impl Conv2dWeightGrad {
    fn geom(&self, x: &Shape, gy: &Shape) -> Result<ConvGeom> {
        const OP: &str = "conv2d_weight_grad";
        self.spec.check(OP)?;
        let [n, cin, h, w] = dims4(OP, "input", x, "[N, C, H, W]")?;
        let [n2, cout, oh, ow] = dims4(OP, "output gradient", gy, "[N, C, H, W]")?;
        let (kh, kw, groups) = (self.kernel.0, self.kernel.1, self.spec.groups);
        if n != n2 || cin % groups != 0 || cout % groups != 0 || kh == 0 || kw == 0 {
            return Err(Error::shape(OP, format!("input {x} and output gradient {gy} do not fit groups {groups}, kernel {kh}x{kw}")));
        }
        let wshape = Shape::from(vec![cout, cin / groups, kh, kw]);
        let (fh, fw) = self.spec.out_hw(OP, x, &wshape, h, w, kh, kw)?;
        if oh > fh || ow > fw {
            return Err(Error::shape(OP, format!("output gradient {gy} is larger than the convolution output {fh}x{fw} of input {x}")));
        }
        Ok(geom(n, cin, h, w, cout, kh, kw, oh, ow, &self.spec))
    }
}

fn weight_grad<T: ConvElem>(x: &Tensor, gy: &Tensor, g: &ConvGeom) -> Result<Tensor> {
    let shape = Shape::from(vec![g.cout, g.cin / g.groups, g.kh, g.kw]);
    let mut out = PooledVec::<T>::uninit(shape.elem_count());
    x.with_slice("conv2d_weight_grad", |xs: &[T], xl| {
        gy.with_contiguous("conv2d_weight_grad", |gs: &[T]| kernels::backward_weight(xs, view4(xl), gs, g, out.as_mut_slice()))
    })??;
    Ok(Tensor::from_pooled(out, shape))
}

impl Op for Conv2dWeightGrad {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let g = self.geom(inputs[0].shape(), inputs[1].shape())?;
        via_f32_pair("conv2d_weight_grad", inputs[0], inputs[1], |x, gy| {
            with_float!(x.dtype(), "conv2d_weight_grad", |T| weight_grad::<T>(x, gy, &g))
        })
    }
    fn backward<G: GradOps>(&self, inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        // gw = <gy, conv(x, .)>, linear in both: d/dx = conv_transpose(gy, ggw), d/dgy = conv(x, ggw).
        let (x, gy) = (inputs[0], inputs[1]);
        let (xs, gs) = (x.shape(), gy.shape());
        let (xd, gd) = (xs.dims(), gs.dims());
        let (s, d, p) = (self.spec.stride, self.spec.dilation, self.spec.pads);
        let output_padding = (
            transpose_output_padding("conv2d_weight_grad backward", xd[2], gd[2], self.kernel.0, s.0, d.0, p[0], p[1])?,
            transpose_output_padding("conv2d_weight_grad backward", xd[3], gd[3], self.kernel.1, s.1, d.1, p[2], p[3])?,
        );
        let gx = G::apply(ConvTranspose2d { spec: self.spec, output_padding }, &[gy, grad])?;
        let ggy = narrow_hw(G::apply(Conv2d { spec: self.spec }, &[x, grad])?, gd[2], gd[3])?;
        Ok(vec![Some(gx), Some(ggy)])
    }
}

/// Cuts dims 2 and 3 down to `h` and `w` (a no-op when they already fit).
pub(crate) fn narrow_hw<G: GradOps>(t: G, h: usize, w: usize) -> Result<G> {
    let d = t.shape().dims().to_vec();
    let t = if d[2] > h { t.g_narrow(2, 0, h)? } else { t };
    if d[3] > w {
        t.g_narrow(3, 0, w)
    } else {
        Ok(t)
    }
}

impl Tensor {
    /// 2-D convolution (cross-correlation) of an `[N, C_in, H, W]` input by a
    /// `[C_out, C_in / groups, kH, kW]` weight, giving `[N, C_out, oH, oW]`. No bias: add one with
    /// a broadcast `add` of a `[1, C_out, 1, 1]` tensor. Output sizes follow
    /// [`crate::padding`].
    ///
    /// ```
    /// use shendu_core::{Conv2dParams, Tensor};
    /// let x = Tensor::ones(&[1, 1, 4, 4], shendu_core::DType::F32).unwrap();
    /// let w = Tensor::ones(&[2, 1, 3, 3], shendu_core::DType::F32).unwrap();
    /// let y = x.conv2d(&w, &Conv2dParams::default().with_pad(1)).unwrap();
    /// assert_eq!(y.dims(), &[1, 2, 4, 4]);
    /// assert_eq!(y.to_vec::<f32>().unwrap()[..4], [4.0, 6.0, 6.0, 4.0]);
    /// ```
    pub fn conv2d(&self, weight: &Tensor, params: &Conv2dParams) -> Result<Tensor> {
        let spec = resolve_spec("conv2d", self.shape(), weight.shape(), params)?;
        apply(Conv2d { spec }, &[self, weight])
    }

    /// 1-D convolution of `[N, C_in, L]` by `[C_out, C_in / groups, k]`, giving
    /// `[N, C_out, oL]`; computed as a [`Tensor::conv2d`] of height 1. `padding` is `Same`,
    /// `Valid` or explicit with only left and right pads ([`Padding::horizontal`]).
    pub fn conv1d(&self, weight: &Tensor, stride: usize, padding: Padding, dilation: usize, groups: usize) -> Result<Tensor> {
        const OP: &str = "conv1d";
        if self.rank() != 3 {
            return Err(Error::shape(OP, format!("input {} must be 3-d [N, C, L] (weight {})", self.shape(), weight.shape())));
        }
        if weight.rank() != 3 {
            return Err(Error::shape(
                OP,
                format!("weight {} must be 3-d [C_out, C_in / groups, k] (input {})", weight.shape(), self.shape()),
            ));
        }
        if let Padding::Explicit { top, bottom, .. } = padding {
            if top != 0 || bottom != 0 {
                return Err(Error::invalid(OP, format!("padding {padding:?} has top/bottom pads; use Padding::horizontal(left, right)")));
            }
        }
        let params = Conv2dParams { stride: (1, stride), padding, dilation: (1, dilation), groups };
        let (x, w) = (self.unsqueeze(2)?, weight.unsqueeze(2)?);
        let spec = resolve_spec(OP, x.shape(), w.shape(), &params)?;
        // Name the 1-d op and shapes in errors from the 2-d shape rule.
        conv_geom(OP, x.shape(), w.shape(), &spec)
            .map_err(|e| Error::shape(OP, format!("{e} (as 2-d; input {}, weight {})", self.shape(), weight.shape())))?;
        apply(Conv2d { spec }, &[&x, &w])?.squeeze(2)
    }
}

/// Whether a tensor of these dims can be allocated at all (in bytes of the widest dtype).
pub(crate) fn fits(dims: &[usize]) -> bool {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_some_and(|n| n <= isize::MAX as usize / 8)
}

/// Resolves `params` (including TensorFlow `Same` pads for this input size) into explicit pads.
pub(crate) fn resolve_spec(op: &'static str, x: &Shape, w: &Shape, params: &Conv2dParams) -> Result<ConvSpec> {
    let spec = ConvSpec { stride: params.stride, pads: [0; 4], dilation: params.dilation, groups: params.groups };
    spec.check(op)?;
    let [_, _, h, wd] = dims4(op, "input", x, "[N, C, H, W]")?;
    let [_, _, kh, kw] = dims4(op, "weight", w, "[C_out, C_in / groups, kH, kW]")?;
    let (t, b) = resolve_pads(h, kh, params.stride.0, params.dilation.0, params.padding.rule_h());
    let (l, r) = resolve_pads(wd, kw, params.stride.1, params.dilation.1, params.padding.rule_w());
    Ok(ConvSpec { pads: [t, b, l, r], ..spec })
}
