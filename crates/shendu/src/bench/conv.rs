//! W2 (conv2d forward, forward+backward) and W3 (depthwise conv2d forward) of BENCH.md.

/// W2: N=32, Cin=Cout=64, 28x28, 3x3, stride 1, pad 1.
pub const CONV_SHAPE: ([usize; 4], [usize; 4]) = ([32, 64, 28, 28], [64, 64, 3, 3]);
/// W3: N=32, C=128, 28x28, 3x3 depthwise (groups = 128), pad 1.
pub const DWCONV_SHAPE: ([usize; 4], [usize; 4]) = ([32, 128, 28, 28], [128, 1, 3, 3]);
/// Forward flops of W2 (2 x N x Cout x H x W x Cin x 9), as the peers count them.
pub const CONV_FWD_FLOP: f64 = 2.0 * 32.0 * 64.0 * 28.0 * 28.0 * 64.0 * 9.0;
/// Forward flops of W3.
pub const DW_FWD_FLOP: f64 = 2.0 * 32.0 * 128.0 * 28.0 * 28.0 * 9.0;

pub use imp::*;

mod imp {
    use shendu_core::{Conv2dParams, DType, Padding, Result, Tensor, Var};

    /// Stride 1, padding 1 on every side, no dilation: the parameters of W2 and W3.
    pub fn params(groups: usize) -> Conv2dParams {
        Conv2dParams { stride: (1, 1), padding: Padding::Explicit { top: 1, bottom: 1, left: 1, right: 1 }, dilation: (1, 1), groups }
    }

    /// Input and weight of W2 (weights scaled 0.05 as the PyTorch peer's).
    pub fn conv_inputs() -> Result<(Tensor, Tensor)> {
        shendu_core::manual_seed(0);
        let (xs, ws) = super::CONV_SHAPE;
        Ok((Tensor::randn(xs, DType::F32)?, Tensor::randn(ws, DType::F32)?.mul_scalar(0.05)?))
    }

    /// Input and weight of W3 (weights scaled 0.3).
    pub fn dwconv_inputs() -> Result<(Tensor, Tensor)> {
        shendu_core::manual_seed(0);
        let (xs, ws) = super::DWCONV_SHAPE;
        Ok((Tensor::randn(xs, DType::F32)?, Tensor::randn(ws, DType::F32)?.mul_scalar(0.3)?))
    }

    /// The timed forward: `conv2d(x, w)` with pad 1 and the given groups, recording no history.
    pub fn forward(x: &Tensor, w: &Tensor, groups: usize) -> Result<Tensor> {
        let _g = shendu_core::no_grad();
        x.conv2d(w, &params(groups))
    }

    /// The timed forward+backward of W2: the forward with `x` and `w` as trainable leaves, then
    /// the backward seeded with `gy`, returning the gradients of the input and of the weight.
    pub fn forward_backward(x: &Var, w: &Var, gy: &Tensor) -> Result<(Tensor, Tensor)> {
        let y = x.conv2d(w, &params(1))?;
        let grads = y.backward_with_grad(gy, false)?;
        x.zero_grad();
        w.zero_grad();
        let missing = || shendu_core::Error::invalid("bench", "conv2d backward gave no gradient for the input or the weight");
        let gx = grads.get(x).cloned().ok_or_else(missing)?;
        let gw = grads.get(w).cloned().ok_or_else(missing)?;
        Ok((gx, gw))
    }
}
