//! Layers that only move values: `Flatten`, `ChannelShuffle`.

use shendu_core::Tensor;

use crate::{Error, Mode, Module, Param, Result};

/// Merges dims `start_dim..=end_dim` into one (PyTorch's `Flatten`: by default 1 to the last,
/// so `[N, C, H, W] -> [N, C*H*W]`).
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::Flatten, Mode, Module};
/// let x = Tensor::ones(&[2, 3, 4, 5], DType::F32).unwrap();
/// assert_eq!(Flatten::new().forward(&x, Mode::Eval).unwrap().dims(), &[2, 60]);
/// assert_eq!(Flatten::range(1, 2).forward(&x, Mode::Eval).unwrap().dims(), &[2, 12, 5]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flatten {
    /// The first dim merged.
    pub start_dim: usize,
    /// None is the last dim.
    pub end_dim: Option<usize>,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten::new()
    }
}

impl Flatten {
    /// From dim 1 to the last.
    pub fn new() -> Flatten {
        Flatten { start_dim: 1, end_dim: None }
    }
    /// From `start_dim` to `end_dim`, both included.
    pub fn range(start_dim: usize, end_dim: usize) -> Flatten {
        Flatten { start_dim, end_dim: Some(end_dim) }
    }
}

impl Module for Flatten {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let end = self.end_dim.unwrap_or(x.rank().saturating_sub(1));
        if self.start_dim >= x.rank() || end >= x.rank() || self.start_dim > end {
            return Err(Error::layer(
                "Flatten",
                format!("dims {}..={end} are not a range of the dims of input {}", self.start_dim, x.shape()),
            ));
        }
        Ok(x.flatten(self.start_dim, end)?)
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
    fn type_name(&self) -> &'static str {
        "Flatten"
    }
}

/// ShuffleNet's channel shuffle on `[N, C, H, W]`: channels viewed as `[groups, C / groups]`
/// are transposed, so that the next grouped convolution sees channels of every group.
///
/// ```
/// use shendu_core::Tensor;
/// use shendu_nn::{layers::ChannelShuffle, Mode, Module};
/// let x = Tensor::from_vec((0..6).map(|v| v as f32).collect::<Vec<_>>(), &[1, 6, 1, 1]).unwrap();
/// let y = ChannelShuffle::new(2).unwrap().forward(&x, Mode::Eval).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![0., 3., 1., 4., 2., 5.]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelShuffle {
    groups: usize,
}

impl ChannelShuffle {
    /// Errors when `groups` is 0.
    pub fn new(groups: usize) -> Result<ChannelShuffle> {
        if groups == 0 {
            return Err(Error::layer("ChannelShuffle", "groups must be at least 1"));
        }
        Ok(ChannelShuffle { groups })
    }

    /// The number of groups the channels are split into.
    pub fn groups(&self) -> usize {
        self.groups
    }
}

impl Module for ChannelShuffle {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let g = self.groups;
        if x.rank() != 4 {
            return Err(Error::layer("ChannelShuffle", format!("input {} must be 4-d [N, C, H, W]", x.shape())));
        }
        let [n, c, h, w] = [x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]];
        if !c.is_multiple_of(g) {
            return Err(Error::layer("ChannelShuffle", format!("input {} has {c} channels, which groups {g} does not divide", x.shape())));
        }
        Ok(x.reshape(&[n, g, c / g, h, w])?.transpose(1, 2)?.reshape(&[n, c, h, w])?)
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
    fn type_name(&self) -> &'static str {
        "ChannelShuffle"
    }
}
