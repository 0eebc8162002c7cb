//! Pooling layers on `[N, C, H, W]`: max, average, adaptive average and global average.

use shendu_core::{Padding, Tensor};

use crate::{Error, Mode, Module, Param, Result};

fn check_4d(layer: &str, x: &Tensor) -> Result<()> {
    if x.rank() != 4 {
        return Err(Error::layer(layer, format!("input {} must be 4-d [N, C, H, W]", x.shape())));
    }
    Ok(())
}

fn check_window(layer: &str, kernel: (usize, usize), stride: (usize, usize)) -> Result<()> {
    if kernel.0 == 0 || kernel.1 == 0 || stride.0 == 0 || stride.1 == 0 {
        return Err(Error::layer(layer, format!("kernel {kernel:?} and stride {stride:?} must be at least 1 in each dimension")));
    }
    Ok(())
}

/// Max pooling (PyTorch's `MaxPool2d`): the stride defaults to the kernel, padding counts as
/// `-inf`, the gradient goes to the first maximum of each window.
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::MaxPool2d, Mode, Module};
/// let pool = MaxPool2d::new(2).ceil_mode(true);
/// assert_eq!(pool.forward(&Tensor::ones(&[1, 3, 5, 5], DType::F32).unwrap(), Mode::Eval).unwrap().dims(), &[1, 3, 3, 3]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// (height, width) of the window.
    pub kernel: (usize, usize),
    /// (height, width) step between windows.
    pub stride: (usize, usize),
    /// How the input is padded.
    pub padding: Padding,
    /// (height, width) spacing of the window's taps.
    pub dilation: (usize, usize),
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
}

impl MaxPool2d {
    /// A square window with stride equal to the window, no padding.
    pub fn new(kernel: usize) -> MaxPool2d {
        MaxPool2d { kernel: (kernel, kernel), stride: (kernel, kernel), padding: Padding::Valid, dilation: (1, 1), ceil_mode: false }
    }
    /// A `kh` x `kw` window.
    pub fn kernel_hw(self, kh: usize, kw: usize) -> Self {
        MaxPool2d { kernel: (kh, kw), ..self }
    }
    /// The same stride along height and width.
    pub fn stride(self, s: usize) -> Self {
        MaxPool2d { stride: (s, s), ..self }
    }
    /// Strides along height and width.
    pub fn stride_hw(self, sh: usize, sw: usize) -> Self {
        MaxPool2d { stride: (sh, sw), ..self }
    }
    /// How the input is padded.
    pub fn padding(self, padding: Padding) -> Self {
        MaxPool2d { padding, ..self }
    }
    /// The same dilation along height and width.
    pub fn dilation(self, d: usize) -> Self {
        MaxPool2d { dilation: (d, d), ..self }
    }
    /// Round the output size up (a last window starting in the end padding is dropped).
    pub fn ceil_mode(self, ceil_mode: bool) -> Self {
        MaxPool2d { ceil_mode, ..self }
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        check_4d("MaxPool2d", x)?;
        check_window("MaxPool2d", self.kernel, self.stride)?;
        Ok(x.max_pool2d(self.kernel, self.stride, self.padding, self.dilation, self.ceil_mode)?)
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
    fn type_name(&self) -> &'static str {
        "MaxPool2d"
    }
}

/// Average pooling (PyTorch's `AvgPool2d`): the stride defaults to the kernel;
/// `count_include_pad` (default true, as PyTorch) divides by the window size including zero
/// padding, otherwise by the number of input elements in the window.
///
/// ```
/// use shendu_core::{DType, Padding, Tensor};
/// use shendu_nn::{layers::AvgPool2d, Mode, Module};
/// let pool = AvgPool2d::new(3).stride(1).padding(Padding::symmetric(1)).count_include_pad(false);
/// let y = pool.forward(&Tensor::ones(&[1, 1, 4, 4], DType::F32).unwrap(), Mode::Eval).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.0; 16]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// (height, width) of the window.
    pub kernel: (usize, usize),
    /// (height, width) step between windows.
    pub stride: (usize, usize),
    /// How the input is padded.
    pub padding: Padding,
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
    /// Divide by the full window, padding included.
    pub count_include_pad: bool,
}

impl AvgPool2d {
    /// A square window with stride equal to the window, no padding.
    pub fn new(kernel: usize) -> AvgPool2d {
        AvgPool2d { kernel: (kernel, kernel), stride: (kernel, kernel), padding: Padding::Valid, ceil_mode: false, count_include_pad: true }
    }
    /// A `kh` x `kw` window.
    pub fn kernel_hw(self, kh: usize, kw: usize) -> Self {
        AvgPool2d { kernel: (kh, kw), ..self }
    }
    /// The same stride along height and width.
    pub fn stride(self, s: usize) -> Self {
        AvgPool2d { stride: (s, s), ..self }
    }
    /// Strides along height and width.
    pub fn stride_hw(self, sh: usize, sw: usize) -> Self {
        AvgPool2d { stride: (sh, sw), ..self }
    }
    /// How the input is padded.
    pub fn padding(self, padding: Padding) -> Self {
        AvgPool2d { padding, ..self }
    }
    /// Round the output size up (a last window starting in the end padding is dropped).
    pub fn ceil_mode(self, ceil_mode: bool) -> Self {
        AvgPool2d { ceil_mode, ..self }
    }
    /// Divide by the full window, padding included (PyTorch's default), or by the input
    /// elements in it.
    pub fn count_include_pad(self, count_include_pad: bool) -> Self {
        AvgPool2d { count_include_pad, ..self }
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        check_4d("AvgPool2d", x)?;
        check_window("AvgPool2d", self.kernel, self.stride)?;
        Ok(x.avg_pool2d(self.kernel, self.stride, self.padding, self.ceil_mode, self.count_include_pad)?)
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
    fn type_name(&self) -> &'static str {
        "AvgPool2d"
    }
}

/// Average pooling to a fixed output size (PyTorch's `AdaptiveAvgPool2d`): output row `i`
/// averages input rows `floor(i*H/oh) .. ceil((i+1)*H/oh)`.
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::AdaptiveAvgPool2d, Mode, Module};
/// let y = AdaptiveAvgPool2d::new(2, 3).forward(&Tensor::ones(&[1, 4, 7, 9], DType::F32).unwrap(), Mode::Eval).unwrap();
/// assert_eq!(y.dims(), &[1, 4, 2, 3]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    /// (height, width) of the output.
    pub output_size: (usize, usize),
}

impl AdaptiveAvgPool2d {
    /// Output `[N, C, out_h, out_w]`.
    pub fn new(out_h: usize, out_w: usize) -> AdaptiveAvgPool2d {
        AdaptiveAvgPool2d { output_size: (out_h, out_w) }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        check_4d("AdaptiveAvgPool2d", x)?;
        let (oh, ow) = self.output_size;
        if oh == 0 || ow == 0 {
            return Err(Error::layer("AdaptiveAvgPool2d", format!("output size ({oh}, {ow}) must be at least 1 in each dimension")));
        }
        Ok(x.adaptive_avg_pool2d(self.output_size)?)
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
    fn type_name(&self) -> &'static str {
        "AdaptiveAvgPool2d"
    }
}

/// The mean of each channel plane. By default `[N, C, H, W] -> [N, C]`, ready for a `Linear`
/// head (PyTorch's `AdaptiveAvgPool2d(1)` followed by `Flatten`); with `keepdim(true)`
/// `[N, C, 1, 1]`.
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::GlobalAvgPool2d, Mode, Module};
/// let x = Tensor::ones(&[2, 5, 3, 3], DType::F32).unwrap();
/// assert_eq!(GlobalAvgPool2d::new().forward(&x, Mode::Eval).unwrap().dims(), &[2, 5]);
/// assert_eq!(GlobalAvgPool2d::new().keepdim(true).forward(&x, Mode::Eval).unwrap().dims(), &[2, 5, 1, 1]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalAvgPool2d {
    /// Keep `[N, C, 1, 1]` rather than `[N, C]`.
    pub keepdim: bool,
}

impl GlobalAvgPool2d {
    /// Output `[N, C]`.
    pub fn new() -> GlobalAvgPool2d {
        GlobalAvgPool2d { keepdim: false }
    }
    /// Keep the output `[N, C, 1, 1]`.
    pub fn keepdim(self, keepdim: bool) -> Self {
        GlobalAvgPool2d { keepdim }
    }
}

impl Module for GlobalAvgPool2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        check_4d("GlobalAvgPool2d", x)?;
        let y = x.global_avg_pool2d()?;
        if self.keepdim {
            return Ok(y);
        }
        Ok(y.reshape(&x.dims()[..2])?)
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
    fn type_name(&self) -> &'static str {
        "GlobalAvgPool2d"
    }
}
