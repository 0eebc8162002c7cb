//! `Conv2d` and `ConvTranspose2d` with PyTorch's parameter layouts and default initialisation.
//!
//! Both are built from a config (`Conv2dConfig::new(in, out, k).stride(2).build(dtype)`), because
//! the weight's shape and initial spread depend on the groups and the kernel: the config is
//! validated once, then the weight is drawn once.

use shendu_core::{Conv2dParams, ConvTranspose2dParams, DType, Padding, Tensor};

use crate::{init, join_name, Error, Mode, Module, Param, Result};

/// Checks the settings both convolutions share; `layer` names the layer in the error.
fn check_geometry(
    layer: &str,
    in_channels: usize,
    out_channels: usize,
    kernel: (usize, usize),
    stride: (usize, usize),
    dilation: (usize, usize),
    groups: usize,
) -> Result<()> {
    let bad = |msg: String| Err(Error::layer(layer, msg));
    if in_channels == 0 || out_channels == 0 {
        return bad(format!("in_channels {in_channels} and out_channels {out_channels} must be at least 1"));
    }
    if kernel.0 == 0 || kernel.1 == 0 {
        return bad(format!("kernel size {kernel:?} must be at least 1 in each dimension"));
    }
    if stride.0 == 0 || stride.1 == 0 {
        return bad(format!("stride {stride:?} must be at least 1 in each dimension"));
    }
    if dilation.0 == 0 || dilation.1 == 0 {
        return bad(format!("dilation {dilation:?} must be at least 1 in each dimension"));
    }
    if groups == 0 {
        return bad("groups must be at least 1".to_string());
    }
    if !in_channels.is_multiple_of(groups) {
        return bad(format!("in_channels {in_channels} is not divisible by groups {groups}"));
    }
    if !out_channels.is_multiple_of(groups) {
        return bad(format!("out_channels {out_channels} is not divisible by groups {groups}"));
    }
    Ok(())
}

/// Checks that `x` is `[N, C, H, W]` with `expected` channels.
fn check_input(layer: &str, x: &Tensor, expected: usize, weight: &Param) -> Result<()> {
    if x.rank() != 4 || x.dims()[1] != expected {
        return Err(Error::layer(
            layer,
            format!("input {} must be [N, {expected}, H, W] for weight {} ({expected} input channels)", x.shape(), weight.shape()),
        ));
    }
    Ok(())
}

/// Adds a `[C]` bias to `[N, C, H, W]`.
fn add_bias(y: Tensor, bias: &Option<Param>) -> Result<Tensor> {
    match bias {
        Some(b) => {
            let c = b.dims()[0];
            Ok(y.add(&b.tensor().reshape(&[1, c, 1, 1])?)?)
        }
        None => Ok(y),
    }
}

fn visit_weight_bias(prefix: &str, weight: &Param, bias: &Option<Param>, f: &mut dyn FnMut(&str, &Param)) {
    f(&join_name(prefix, "weight"), weight);
    if let Some(b) = bias {
        f(&join_name(prefix, "bias"), b);
    }
}

/// The settings of a [`Conv2d`]: PyTorch's defaults are stride 1, no padding, dilation 1, one
/// group and a bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Channels of the input.
    pub in_channels: usize,
    /// Channels of the output.
    pub out_channels: usize,
    /// (height, width) of the kernel.
    pub kernel: (usize, usize),
    /// (height, width) step between windows.
    pub stride: (usize, usize),
    /// How the input is padded.
    pub padding: Padding,
    /// (height, width) spacing of the window's taps.
    pub dilation: (usize, usize),
    /// Channel groups; `groups == in_channels` is a depthwise convolution.
    pub groups: usize,
    /// Whether a bias is learned.
    pub bias: bool,
}

impl Conv2dConfig {
    /// A square `kernel`, with PyTorch's defaults for everything else.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Conv2dConfig {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel: (kernel, kernel),
            stride: (1, 1),
            padding: Padding::Valid,
            dilation: (1, 1),
            groups: 1,
            bias: true,
        }
    }
    /// A `kh` x `kw` kernel.
    pub fn kernel_hw(self, kh: usize, kw: usize) -> Self {
        Conv2dConfig { kernel: (kh, kw), ..self }
    }
    /// The same stride along height and width.
    pub fn stride(self, s: usize) -> Self {
        Conv2dConfig { stride: (s, s), ..self }
    }
    /// Strides along height and width.
    pub fn stride_hw(self, sh: usize, sw: usize) -> Self {
        Conv2dConfig { stride: (sh, sw), ..self }
    }
    /// `Same`, `Valid` or explicit (asymmetric allowed) pads.
    pub fn padding(self, padding: Padding) -> Self {
        Conv2dConfig { padding, ..self }
    }
    /// The same dilation along height and width.
    pub fn dilation(self, d: usize) -> Self {
        Conv2dConfig { dilation: (d, d), ..self }
    }
    /// Dilations along height and width.
    pub fn dilation_hw(self, dh: usize, dw: usize) -> Self {
        Conv2dConfig { dilation: (dh, dw), ..self }
    }
    /// Channel groups (`groups == in_channels` is depthwise).
    pub fn groups(self, groups: usize) -> Self {
        Conv2dConfig { groups, ..self }
    }
    /// Whether to learn a bias (PyTorch's default: yes).
    pub fn bias(self, bias: bool) -> Self {
        Conv2dConfig { bias, ..self }
    }

    /// Validates the settings and draws the parameters (PyTorch's default initialisation).
    pub fn build(self, dtype: DType) -> Result<Conv2d> {
        let c = self;
        check_geometry("Conv2d", c.in_channels, c.out_channels, c.kernel, c.stride, c.dilation, c.groups)?;
        let shape = [c.out_channels, c.in_channels / c.groups, c.kernel.0, c.kernel.1];
        let weight = Param::new(init::torch_default_weight(&shape, dtype)?);
        let bias = if c.bias { Some(Param::new(init::torch_default_bias(c.out_channels, init::fans(&shape)?.0, dtype)?)) } else { None };
        Ok(Conv2d { weight, bias, config: c })
    }
}

/// 2-D convolution. Parameters `weight` `[out, in / groups, kh, kw]` and optional `bias`
/// `[out]`, initialised as PyTorch does (uniform with bound 1/sqrt(fan_in)).
///
/// ```
/// use shendu_core::{DType, Padding, Tensor};
/// use shendu_nn::{layers::{Conv2d, Conv2dConfig}, Mode, Module};
/// let conv = Conv2dConfig::new(4, 8, 3).stride(2).padding(Padding::Same).groups(2).build(DType::F32).unwrap();
/// assert_eq!(conv.weight.dims(), &[8, 2, 3, 3]);
/// let y = conv.forward(&Tensor::ones(&[1, 4, 9, 9], DType::F32).unwrap(), Mode::Eval).unwrap();
/// assert_eq!(y.dims(), &[1, 8, 5, 5]);
/// assert!(Conv2dConfig::new(3, 8, 3).groups(2).build(DType::F32).is_err());
/// let plain = Conv2d::new(3, 16, 3, DType::F32).unwrap();
/// assert_eq!(plain.weight.dims(), &[16, 3, 3, 3]);
/// ```
pub struct Conv2d {
    /// The learned weight (PyTorch's layout).
    pub weight: Param,
    /// The learned bias `[out]`, if any.
    pub bias: Option<Param>,
    config: Conv2dConfig,
}

impl Conv2d {
    /// A square-kernel convolution with PyTorch's defaults (stride 1, no padding, bias).
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize, dtype: DType) -> Result<Conv2d> {
        Conv2dConfig::new(in_channels, out_channels, kernel).build(dtype)
    }

    /// The settings it was built with.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    fn params(&self) -> Conv2dParams {
        let c = &self.config;
        Conv2dParams { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups }
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        check_input("Conv2d", x, self.config.in_channels, &self.weight)?;
        let y = x.conv2d(&self.weight.tensor(), &self.params())?;
        add_bias(y, &self.bias)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        visit_weight_bias(prefix, &self.weight, &self.bias, f)
    }

    fn type_name(&self) -> &'static str {
        "Conv2d"
    }
}

/// The settings of a [`ConvTranspose2d`]; PyTorch's defaults are stride 1, no padding, no
/// output padding, dilation 1, one group and a bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dConfig {
    /// Channels of the input.
    pub in_channels: usize,
    /// Channels of the output.
    pub out_channels: usize,
    /// (height, width) of the window.
    pub kernel: (usize, usize),
    /// (height, width) step between windows.
    pub stride: (usize, usize),
    /// (top, bottom, left, right): rows and columns cut from the full transposed output
    /// (PyTorch's `padding=p` is `p` on every side).
    pub padding: (usize, usize, usize, usize),
    /// Extra (height, width) at the bottom/right; each must be below the stride or dilation.
    pub output_padding: (usize, usize),
    /// (height, width) spacing of the window's taps.
    pub dilation: (usize, usize),
    /// Channel groups: input and output channels split into this many independent parts.
    pub groups: usize,
    /// Whether a bias is learned.
    pub bias: bool,
}

impl ConvTranspose2dConfig {
    /// A square `kernel`, with PyTorch's defaults for everything else.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> ConvTranspose2dConfig {
        ConvTranspose2dConfig {
            in_channels,
            out_channels,
            kernel: (kernel, kernel),
            stride: (1, 1),
            padding: (0, 0, 0, 0),
            output_padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
            bias: true,
        }
    }
    /// A `kh` x `kw` window.
    pub fn kernel_hw(self, kh: usize, kw: usize) -> Self {
        ConvTranspose2dConfig { kernel: (kh, kw), ..self }
    }
    /// The same stride along height and width.
    pub fn stride(self, s: usize) -> Self {
        ConvTranspose2dConfig { stride: (s, s), ..self }
    }
    /// Strides along height and width.
    pub fn stride_hw(self, sh: usize, sw: usize) -> Self {
        ConvTranspose2dConfig { stride: (sh, sw), ..self }
    }
    /// `p` on every side (PyTorch's `padding=p`).
    pub fn padding(self, p: usize) -> Self {
        ConvTranspose2dConfig { padding: (p, p, p, p), ..self }
    }
    /// Asymmetric pads: top, bottom, left, right.
    pub fn padding_explicit(self, top: usize, bottom: usize, left: usize, right: usize) -> Self {
        ConvTranspose2dConfig { padding: (top, bottom, left, right), ..self }
    }
    /// The same output padding along height and width.
    pub fn output_padding(self, p: usize) -> Self {
        ConvTranspose2dConfig { output_padding: (p, p), ..self }
    }
    /// Output padding along height and width.
    pub fn output_padding_hw(self, ph: usize, pw: usize) -> Self {
        ConvTranspose2dConfig { output_padding: (ph, pw), ..self }
    }
    /// The same dilation along height and width.
    pub fn dilation(self, d: usize) -> Self {
        ConvTranspose2dConfig { dilation: (d, d), ..self }
    }
    /// Channel groups (`groups == in_channels` is depthwise).
    pub fn groups(self, groups: usize) -> Self {
        ConvTranspose2dConfig { groups, ..self }
    }
    /// Whether to learn a bias (PyTorch's default: yes).
    pub fn bias(self, bias: bool) -> Self {
        ConvTranspose2dConfig { bias, ..self }
    }

    /// Validates the settings and draws the parameters (PyTorch's default initialisation: its
    /// fan_in is `out / groups * kh * kw`, from the weight's second dimension).
    pub fn build(self, dtype: DType) -> Result<ConvTranspose2d> {
        let c = self;
        check_geometry("ConvTranspose2d", c.in_channels, c.out_channels, c.kernel, c.stride, c.dilation, c.groups)?;
        let (op, s, d) = (c.output_padding, c.stride, c.dilation);
        if op.0 >= s.0.max(d.0) || op.1 >= s.1.max(d.1) {
            return Err(Error::layer(
                "ConvTranspose2d",
                format!("output_padding {op:?} must be smaller than the stride {s:?} or the dilation {d:?}"),
            ));
        }
        let shape = [c.in_channels, c.out_channels / c.groups, c.kernel.0, c.kernel.1];
        let weight = Param::new(init::torch_default_weight(&shape, dtype)?);
        let bias = if c.bias { Some(Param::new(init::torch_default_bias(c.out_channels, init::fans(&shape)?.0, dtype)?)) } else { None };
        Ok(ConvTranspose2d { weight, bias, config: c })
    }
}

/// Transposed 2-D convolution (PyTorch's `ConvTranspose2d`). Parameters `weight`
/// `[in, out / groups, kh, kw]` and optional `bias` `[out]`. The output size is
/// `(H - 1)*stride - top - bottom + dilation*(kh - 1) + output_padding + 1`.
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::ConvTranspose2dConfig, Mode, Module};
/// let up = ConvTranspose2dConfig::new(8, 4, 3).stride(2).padding(1).output_padding(1).build(DType::F32).unwrap();
/// assert_eq!(up.weight.dims(), &[8, 4, 3, 3]);
/// let y = up.forward(&Tensor::ones(&[2, 8, 5, 5], DType::F32).unwrap(), Mode::Eval).unwrap();
/// assert_eq!(y.dims(), &[2, 4, 10, 10]);
/// ```
pub struct ConvTranspose2d {
    /// The learned weight (PyTorch's layout).
    pub weight: Param,
    /// The learned bias `[out]`, if any.
    pub bias: Option<Param>,
    config: ConvTranspose2dConfig,
}

impl ConvTranspose2d {
    /// A square-kernel transposed convolution with PyTorch's defaults.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize, dtype: DType) -> Result<ConvTranspose2d> {
        ConvTranspose2dConfig::new(in_channels, out_channels, kernel).build(dtype)
    }

    /// The settings it was built with.
    pub fn config(&self) -> &ConvTranspose2dConfig {
        &self.config
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let c = &self.config;
        check_input("ConvTranspose2d", x, c.in_channels, &self.weight)?;
        let params = ConvTranspose2dParams {
            stride: c.stride,
            padding: c.padding,
            output_padding: c.output_padding,
            dilation: c.dilation,
            groups: c.groups,
        };
        let y = x.conv_transpose2d(&self.weight.tensor(), &params)?;
        add_bias(y, &self.bias)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        visit_weight_bias(prefix, &self.weight, &self.bias, f)
    }

    fn type_name(&self) -> &'static str {
        "ConvTranspose2d"
    }
}
