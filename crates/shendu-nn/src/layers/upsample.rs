//! `Upsample`: nearest or bilinear resizing of `[N, C, H, W]` by a scale factor or to a size.

use shendu_core::Tensor;

use crate::{Error, Mode, Module, Param, Result};

/// The interpolation of an [`Upsample`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsampleMode {
    /// Output pixel `o` copies input `floor(o * in / out)`.
    Nearest,
    /// Bilinear; `align_corners` as PyTorch's flag.
    Bilinear {
        /// Corner pixels of input and output coincide.
        align_corners: bool,
    },
}

/// The output size rule of an [`Upsample`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpsampleTarget {
    /// `(floor(H * sh), floor(W * sw))`.
    Scale(f64, f64),
    /// A fixed `(oh, ow)`.
    Size(usize, usize),
}

/// Resizes `[N, C, H, W]` (PyTorch's `Upsample` / `interpolate`). Source coordinates are
/// computed from the ratio of input to output size, which is PyTorch's rule for integer scale
/// factors and for `recompute_scale_factor=True`; for a fractional factor PyTorch's default
/// uses `1 / scale` instead and may pick slightly different source pixels.
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::{Upsample, UpsampleMode}, Mode, Module};
/// let up = Upsample::scale(2.0, UpsampleMode::Bilinear { align_corners: false }).unwrap();
/// assert_eq!(up.forward(&Tensor::ones(&[1, 3, 4, 5], DType::F32).unwrap(), Mode::Eval).unwrap().dims(), &[1, 3, 8, 10]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Upsample {
    /// How the output size is found.
    pub target: UpsampleTarget,
    /// The interpolation.
    pub mode: UpsampleMode,
}

impl Upsample {
    /// The same scale factor along height and width.
    pub fn scale(factor: f64, mode: UpsampleMode) -> Result<Upsample> {
        Upsample::scale_hw(factor, factor, mode)
    }

    /// Scale factors `(sh, sw)`; each must be positive and finite.
    pub fn scale_hw(sh: f64, sw: f64, mode: UpsampleMode) -> Result<Upsample> {
        if !(sh > 0.0 && sh.is_finite() && sw > 0.0 && sw.is_finite()) {
            return Err(Error::layer("Upsample", format!("scale factors ({sh}, {sw}) must be positive and finite")));
        }
        Ok(Upsample { target: UpsampleTarget::Scale(sh, sw), mode })
    }

    /// A fixed output size `(oh, ow)`.
    pub fn size(oh: usize, ow: usize, mode: UpsampleMode) -> Result<Upsample> {
        if oh == 0 || ow == 0 {
            return Err(Error::layer("Upsample", format!("output size ({oh}, {ow}) must be at least 1 in each dimension")));
        }
        Ok(Upsample { target: UpsampleTarget::Size(oh, ow), mode })
    }

    /// The output `(oh, ow)` for an input of `(h, w)`.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        match self.target {
            UpsampleTarget::Size(oh, ow) => (oh, ow),
            // Saturating float-to-int casts: absurd sizes fail the op's size check instead.
            UpsampleTarget::Scale(sh, sw) => ((h as f64 * sh).floor() as usize, (w as f64 * sw).floor() as usize),
        }
    }
}

impl Module for Upsample {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        if x.rank() != 4 {
            return Err(Error::layer("Upsample", format!("input {} must be 4-d [N, C, H, W]", x.shape())));
        }
        let size = self.output_size(x.dims()[2], x.dims()[3]);
        if size.0 == 0 || size.1 == 0 {
            return Err(Error::layer(
                "Upsample",
                format!("input {} scaled by {:?} gives an empty output {size:?}", x.shape(), self.target),
            ));
        }
        Ok(match self.mode {
            UpsampleMode::Nearest => x.upsample_nearest2d(size)?,
            UpsampleMode::Bilinear { align_corners } => x.upsample_bilinear2d(size, align_corners)?,
        })
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
    fn type_name(&self) -> &'static str {
        "Upsample"
    }
}
