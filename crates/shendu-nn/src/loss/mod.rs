//! Loss functions with PyTorch's semantics (`torch.nn.functional`), built of differentiable core
//! ops so that `loss.backward()` gives the gradients of every input that needs one.
//!
//! ```
//! use shendu_core::Tensor;
//! use shendu_nn::loss::{cross_entropy, CrossEntropyOpts};
//! let logits = Tensor::from_vec(vec![2.0f64, 0.5, -1.0, 0.1, 0.2, 3.0], &[2, 3]).unwrap();
//! let targets = Tensor::from_vec(vec![0i64, 2], &[2]).unwrap();
//! let loss = cross_entropy(&logits, &targets, &CrossEntropyOpts::default()).unwrap();
//! assert!((loss.to_f64().unwrap() - 0.175456380589).abs() < 1e-12); // PyTorch: 0.17545638058931123
//! ```

mod classification;

pub use classification::{
    accuracy, binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, kl_div, nll_loss, CrossEntropyOpts, KlReduction,
};

use shendu_core::{DType, Tensor};

use crate::Result;

/// How per-element losses are combined (PyTorch's `reduction=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean over elements (over target weights where a loss has class weights).
    #[default]
    Mean,
    /// The sum over elements.
    Sum,
    /// No reduction: one loss per element (per sample for classification losses).
    None,
}

impl Reduction {
    pub(crate) fn apply(self, x: Tensor) -> Result<Tensor> {
        Ok(match self {
            Reduction::Mean => x.mean_all()?,
            Reduction::Sum => x.sum_all()?,
            Reduction::None => x,
        })
    }
}

/// Checks that `input` is f32/f64 (or f16/bf16) and `target` has its shape and dtype.
fn check_pair(loss: &'static str, input: &Tensor, target: &Tensor) -> Result<()> {
    check_float(loss, "input", input)?;
    if input.shape() != target.shape() {
        return Err(shendu_core::Error::shape(
            loss,
            format!("input {} and target {} have different shapes", input.shape(), target.shape()),
        )
        .into());
    }
    if input.dtype() != target.dtype() {
        return Err(shendu_core::Error::dtype(
            loss,
            format!("input {} has dtype {} but target has dtype {}", input.shape(), input.dtype(), target.dtype()),
        )
        .into());
    }
    Ok(())
}

fn check_float(loss: &'static str, what: &str, t: &Tensor) -> Result<()> {
    match t.dtype() {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => Ok(()),
        d => Err(shendu_core::Error::dtype(loss, format!("{what} {} has dtype {d}; a float dtype is needed", t.shape())).into()),
    }
}

/// Mean squared error: `(input - target)^2`, reduced.
///
/// ```
/// use shendu_core::Tensor;
/// use shendu_nn::loss::{mse_loss, Reduction};
/// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
/// let b = Tensor::from_vec(vec![0.0f32, 4.0], &[2]).unwrap();
/// assert_eq!(mse_loss(&a, &b, Reduction::Mean).unwrap().to_f64().unwrap(), 2.5);
/// ```
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    check_pair("mse_loss", input, target)?;
    reduction.apply(input.sub(target)?.sqr()?)
}

/// Mean absolute error: `|input - target|`, reduced (gradient 0 where they are equal, as PyTorch).
pub fn l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    check_pair("l1_loss", input, target)?;
    reduction.apply(input.sub(target)?.abs()?)
}

/// Huber-like loss: `0.5 d^2 / beta` where `|d| < beta`, else `|d| - 0.5 beta`, with
/// `d = input - target` (PyTorch's `smooth_l1_loss`; `beta` 0 is the L1 loss).
pub fn smooth_l1_loss(input: &Tensor, target: &Tensor, beta: f64, reduction: Reduction) -> Result<Tensor> {
    check_pair("smooth_l1_loss", input, target)?;
    if !(beta >= 0.0 && beta.is_finite()) {
        return Err(crate::Error::config("beta", format!("smooth_l1_loss: beta must be finite and >= 0, got {beta}")));
    }
    let d = input.sub(target)?;
    let a = d.abs()?;
    if beta == 0.0 {
        return reduction.apply(a);
    }
    let quadratic = d.sqr()?.mul_scalar(0.5 / beta)?;
    let linear = a.add_scalar(-0.5 * beta)?;
    reduction.apply(a.lt_scalar(beta)?.where_cond(&quadratic, &linear)?)
}
