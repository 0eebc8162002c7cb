//! Gradient clipping, as PyTorch's `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.
//!
//! ```
//! use shendu_core::Tensor;
//! use shendu_nn::{clip::clip_grad_norm, Param};
//! let w = Param::new(Tensor::from_vec(vec![3.0f64, 4.0], &[2]).unwrap());
//! w.tensor().mul_scalar(1.0).unwrap().sum_all().unwrap().backward().unwrap(); // grad [1, 1]
//! let params = vec![("w".to_string(), w.clone())];
//! let total = clip_grad_norm(&params, 1.0, 2.0).unwrap();
//! assert!((total - 2f64.sqrt()).abs() < 1e-12);
//! let g = w.grad().unwrap().to_vec::<f64>().unwrap();
//! assert!((g[0] - 1.0 / (2f64.sqrt() + 1e-6)).abs() < 1e-12);
//! ```

use shendu_core::Tensor;

use crate::{Error, Param, Result};

/// Scales all gradients together so that their joint `norm_type`-norm (2.0, any p > 0, or
/// `f64::INFINITY` for the largest magnitude) is at most `max_norm`. Returns the norm before
/// clipping. As PyTorch, the factor is `max_norm / (total + 1e-6)` clamped to 1, and a
/// non-finite total makes the gradients non-finite rather than failing.
pub fn clip_grad_norm(params: &[(String, Param)], max_norm: f64, norm_type: f64) -> Result<f64> {
    if norm_type.is_nan() || norm_type <= 0.0 {
        return Err(Error::config("norm_type", format!("clip_grad_norm: must be > 0 or infinity, got {norm_type}")));
    }
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::config("max_norm", format!("clip_grad_norm: must be >= 0, got {max_norm}")));
    }
    let grads = collect_grads(params);
    let mut acc = 0.0f64;
    for (_, g) in &grads {
        let v = g.to_vec_f64()?;
        if norm_type == f64::INFINITY {
            acc = v.iter().fold(acc, |m, x| if x.abs() > m || x.is_nan() { x.abs() } else { m });
        } else if norm_type == 2.0 {
            acc += v.iter().map(|x| x * x).sum::<f64>();
        } else if norm_type == 1.0 {
            acc += v.iter().map(|x| x.abs()).sum::<f64>();
        } else {
            acc += v.iter().map(|x| x.abs().powf(norm_type)).sum::<f64>();
        }
    }
    let total = if norm_type == f64::INFINITY || norm_type == 1.0 {
        acc
    } else if norm_type == 2.0 {
        acc.sqrt()
    } else {
        acc.powf(1.0 / norm_type)
    };
    let coef = max_norm / (total + 1e-6);
    // NaN stays NaN (f64::min would turn it into 1 and hide the problem).
    if coef < 1.0 || coef.is_nan() {
        let _no_grad = shendu_core::no_grad();
        for (p, g) in &grads {
            p.var().set_grad(Some(g.mul_scalar(coef)?))?;
        }
    }
    Ok(total)
}

/// Clamps every gradient entry to `[-clip, clip]` in place of the old gradient.
pub fn clip_grad_value(params: &[(String, Param)], clip: f64) -> Result<()> {
    if clip.is_nan() || clip < 0.0 {
        return Err(Error::config("clip_value", format!("clip_grad_value: must be >= 0, got {clip}")));
    }
    let _no_grad = shendu_core::no_grad();
    for (p, g) in collect_grads(params) {
        p.var().set_grad(Some(g.clamp(-clip, clip)?))?;
    }
    Ok(())
}

/// The parameters that have a gradient, each once even if listed twice (tied weights).
fn collect_grads(params: &[(String, Param)]) -> Vec<(&Param, Tensor)> {
    let mut out: Vec<(&Param, Tensor)> = Vec::with_capacity(params.len());
    for (_, p) in params {
        if out.iter().any(|(q, _)| q.same(p)) {
            continue;
        }
        if let Some(g) = p.grad() {
            out.push((p, g));
        }
    }
    out
}
