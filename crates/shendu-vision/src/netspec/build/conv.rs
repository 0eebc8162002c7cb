//! The layers with weights: `[convolutional]` (plain or DiracNet) and `[connected]`, each with
//! its optional batch norm and then its activation.

use shendu_core::{BatchNormActivation, Conv2dParams, DType, Padding, Tensor};
use shendu_nn::layers::{BatchNorm1d, BatchNorm2d, BatchNormConfig};
use shendu_nn::{init, join_name, Mode, Module, Param, Result};

use super::ops::activate;
use crate::netspec::{Activation, Chw, Connected, Conv};

/// A conv layer's parameters. DiracNet's convs (Zagoruyko & Komodakis 2017) use the weight
/// `diag(alpha)·I + diag(beta)·W/‖W‖`: `I` the identity (Dirac delta) kernel, `‖W‖` the norm
/// of each output filter, as in the authors' `diracconv.py`.
pub(super) struct ConvNode {
    pub weight: Param,
    /// DiracNet's per-filter `alpha` and `beta`, and the identity kernel.
    pub dirac: Option<(Param, Param, Tensor)>,
    pub bias: Option<Param>,
    pub bn: Option<BatchNorm2d>,
}

impl ConvNode {
    pub fn new(c: &Conv, x: Chw, dtype: DType) -> Result<ConvNode> {
        let shape = [c.filters, x.c / c.groups, c.size, c.size];
        let weight = Param::new(init::torch_default_weight(&shape, dtype)?);
        let dirac = if c.dirac {
            let alpha = Param::new(Tensor::ones(&[c.filters], dtype)?);
            let beta = Param::new(Tensor::full(&[c.filters], 0.1, dtype)?);
            Some((alpha, beta, dirac_delta(&shape, dtype)?))
        } else {
            None
        };
        let fan_in = shape[1] * c.size * c.size;
        let bias = if c.bias && !c.batch_normalize { Some(Param::new(init::torch_default_bias(c.filters, fan_in, dtype)?)) } else { None };
        let bn = if c.batch_normalize { Some(BatchNormConfig::new(c.filters).build_2d(dtype)?) } else { None };
        Ok(ConvNode { weight, dirac, bias, bn })
    }

    /// The kernel the convolution uses.
    fn kernel(&self) -> Result<Tensor> {
        let w = self.weight.tensor();
        let Some((alpha, beta, delta)) = &self.dirac else { return Ok(w) };
        let f = w.dims()[0];
        // F.normalize: each filter over its norm, the norm kept at least 1e-12.
        let norm = w.sqr()?.sum(&[1, 2, 3], true)?.sqrt()?.clamp(1e-12, f64::INFINITY)?;
        let a = alpha.tensor().reshape(&[f, 1, 1, 1])?;
        let b = beta.tensor().reshape(&[f, 1, 1, 1])?;
        Ok(delta.mul(&a)?.add(&w.div(&norm)?.mul(&b)?)?)
    }

    pub fn forward(&self, c: &Conv, x: &Tensor, mode: Mode) -> Result<Tensor> {
        // Darknet pads `padding` cells of the dilated kernel: `padding * dilation` on each side.
        let p = c.padding * c.dilation;
        let params = Conv2dParams {
            stride: (c.stride_y, c.stride_x),
            padding: Padding::symmetric(p),
            dilation: (c.dilation, c.dilation),
            groups: c.groups,
        };
        let mut y = x.conv2d(&self.kernel()?, &params)?;
        if let Some(b) = &self.bias {
            y = y.add(&b.tensor().reshape(&[1, c.filters, 1, 1])?)?;
        }
        if let Some(bn) = &self.bn {
            if let Some(act) = fusable(c.activation) {
                return bn.forward_act(&y, mode, act);
            }
            y = bn.forward(&y, mode)?;
        }
        activate(c.activation, &y)
    }

    /// In `NetSpec::params` order: weight, alpha, beta, bias, then the batch norm.
    pub fn visit(&self, own: &str, bn_name: &str, f: &mut dyn FnMut(&str, &Param)) {
        f(&join_name(own, "weight"), &self.weight);
        if let Some((alpha, beta, _)) = &self.dirac {
            f(&join_name(own, "alpha"), alpha);
            f(&join_name(own, "beta"), beta);
        }
        if let Some(b) = &self.bias {
            f(&join_name(own, "bias"), b);
        }
        if let Some(bn) = &self.bn {
            bn.visit_params(bn_name, f);
        }
    }
}

/// The activations batch norm can apply in its own passes.
fn fusable(a: Activation) -> Option<BatchNormActivation> {
    match a {
        Activation::Linear => Some(BatchNormActivation::Identity),
        Activation::Relu => Some(BatchNormActivation::Relu),
        Activation::Relu6 => Some(BatchNormActivation::Relu6),
        Activation::Leaky => Some(BatchNormActivation::Leaky(0.1)),
        _ => None,
    }
}

/// The kernel that maps input channel `d` to output channel `d` unchanged (`torch.nn.init.dirac_`):
/// 1 at the centre tap of `[d, d]` for `d < min(filters, channels)`, 0 elsewhere.
fn dirac_delta(shape: &[usize; 4], dtype: DType) -> Result<Tensor> {
    let [f, c, k, _] = *shape;
    let mut v = vec![0f64; f * c * k * k];
    for d in 0..f.min(c) {
        v[((d * c + d) * k + k / 2) * k + k / 2] = 1.0;
    }
    Ok(Tensor::from_vec(v, &shape[..])?.to_dtype(dtype)?)
}

/// A connected layer's parameters: PyTorch's `Linear` weight `[out, in]` on the flattened input.
pub(super) struct ConnectedNode {
    pub weight: Param,
    pub bias: Option<Param>,
    pub bn: Option<BatchNorm1d>,
}

impl ConnectedNode {
    pub fn new(c: &Connected, x: Chw, dtype: DType) -> Result<ConnectedNode> {
        let weight = Param::new(init::torch_default_weight(&[c.output, x.len()], dtype)?);
        let bias = if c.bias && !c.batch_normalize { Some(Param::new(init::torch_default_bias(c.output, x.len(), dtype)?)) } else { None };
        let bn = if c.batch_normalize { Some(BatchNormConfig::new(c.output).build_1d(dtype)?) } else { None };
        Ok(ConnectedNode { weight, bias, bn })
    }

    /// `[N, C, H, W]` in, `[N, output, 1, 1]` out.
    pub fn forward(&self, c: &Connected, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let n = x.dims()[0];
        let mut y = x.reshape(&[n, x.elem_count() / n.max(1)])?.matmul(&self.weight.tensor().t()?)?;
        if let Some(b) = &self.bias {
            y = y.add(&b.tensor())?;
        }
        let y = match (&self.bn, fusable(c.activation)) {
            (Some(bn), Some(act)) => bn.forward_act(&y, mode, act)?,
            (Some(bn), None) => activate(c.activation, &bn.forward(&y, mode)?)?,
            (None, _) => activate(c.activation, &y)?,
        };
        Ok(y.reshape(&[n, c.output, 1, 1])?)
    }

    pub fn visit(&self, own: &str, bn_name: &str, f: &mut dyn FnMut(&str, &Param)) {
        f(&join_name(own, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(&join_name(own, "bias"), b);
        }
        if let Some(bn) = &self.bn {
            bn.visit_params(bn_name, f);
        }
    }
}
