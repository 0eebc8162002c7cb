//! Weight initialisers, drawn from shendu's default generator (seed it with
//! `shendu_core::manual_seed`). Fans follow PyTorch: for a weight `[out, in, k...]`,
//! fan_in = in * prod(k) and fan_out = out * prod(k).
//!
//! ```
//! use shendu_core::DType;
//! shendu_core::manual_seed(1);
//! let w = shendu_nn::init::kaiming_uniform(&[64, 32, 3, 3], shendu_nn::init::gain_relu(), DType::F32).unwrap();
//! let bound = (6.0f32 / (32.0 * 9.0)).sqrt();
//! assert!(w.to_vec::<f32>().unwrap().iter().all(|v| v.abs() <= bound));
//! ```

use shendu_core::{DType, Shape, Tensor};

use crate::{Error, Result};

/// `(fan_in, fan_out)` of a weight shape, PyTorch's `_calculate_fan_in_and_fan_out`.
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::config("init", format!("fan in and fan out need a weight of rank 2 or more, got {shape:?}")));
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

/// The gain for ReLU, sqrt(2).
pub fn gain_relu() -> f64 {
    2f64.sqrt()
}

/// The gain for leaky ReLU with `slope`: sqrt(2 / (1 + slope^2)).
pub fn gain_leaky_relu(slope: f64) -> f64 {
    (2.0 / (1.0 + slope * slope)).sqrt()
}

/// Uniform on [-bound, bound].
pub fn uniform(shape: impl Into<Shape>, bound: f64, dtype: DType) -> Result<Tensor> {
    Ok(Tensor::rand(shape, dtype)?.affine(2.0 * bound, -bound)?)
}

/// Normal with mean 0 and standard deviation `std`.
pub fn normal(shape: impl Into<Shape>, std: f64, dtype: DType) -> Result<Tensor> {
    Ok(Tensor::randn(shape, dtype)?.mul_scalar(std)?)
}

/// He et al.: uniform with bound gain * sqrt(3 / fan_in) (mode fan_in).
pub fn kaiming_uniform(shape: &[usize], gain: f64, dtype: DType) -> Result<Tensor> {
    let (fan_in, _) = fans(shape)?;
    uniform(shape, gain * (3.0 / fan_in as f64).sqrt(), dtype)
}

/// He et al.: normal with std gain / sqrt(fan_in) (mode fan_in).
pub fn kaiming_normal(shape: &[usize], gain: f64, dtype: DType) -> Result<Tensor> {
    let (fan_in, _) = fans(shape)?;
    normal(shape, gain / (fan_in as f64).sqrt(), dtype)
}

/// Glorot & Bengio: uniform with bound gain * sqrt(6 / (fan_in + fan_out)).
pub fn xavier_uniform(shape: &[usize], gain: f64, dtype: DType) -> Result<Tensor> {
    let (fan_in, fan_out) = fans(shape)?;
    uniform(shape, gain * (6.0 / (fan_in + fan_out) as f64).sqrt(), dtype)
}

/// Glorot & Bengio: normal with std gain * sqrt(2 / (fan_in + fan_out)).
pub fn xavier_normal(shape: &[usize], gain: f64, dtype: DType) -> Result<Tensor> {
    let (fan_in, fan_out) = fans(shape)?;
    normal(shape, gain * (2.0 / (fan_in + fan_out) as f64).sqrt(), dtype)
}

/// PyTorch's default for Linear and Conv weights: kaiming_uniform with a = sqrt(5), which is a
/// uniform bound of 1 / sqrt(fan_in).
pub fn torch_default_weight(shape: &[usize], dtype: DType) -> Result<Tensor> {
    let (fan_in, _) = fans(shape)?;
    uniform(shape, 1.0 / (fan_in as f64).sqrt(), dtype)
}

/// PyTorch's default for Linear and Conv biases: uniform with bound 1 / sqrt(fan_in) of the weight.
pub fn torch_default_bias(len: usize, fan_in: usize, dtype: DType) -> Result<Tensor> {
    let bound = if fan_in > 0 { 1.0 / (fan_in as f64).sqrt() } else { 0.0 };
    uniform(&[len], bound, dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(t: &Tensor) -> (f64, f64) {
        let v = t.to_vec_f64().unwrap();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn fans_follow_pytorch() {
        assert_eq!(fans(&[10, 20]).unwrap(), (20, 10));
        assert_eq!(fans(&[64, 32, 3, 3]).unwrap(), (288, 576));
        assert!(fans(&[5]).is_err());
    }

    #[test]
    fn spreads_match_the_formulas() {
        shendu_core::manual_seed(7);
        let shape = [256, 128, 3, 3];
        let (_, sd) = moments(&kaiming_normal(&shape, gain_relu(), DType::F64).unwrap());
        assert!((sd - (2.0f64 / 1152.0).sqrt()).abs() / sd < 0.02, "kaiming_normal std {sd}");
        let (_, sd) = moments(&kaiming_uniform(&shape, gain_relu(), DType::F64).unwrap());
        assert!((sd - (2.0f64 / 1152.0).sqrt()).abs() / sd < 0.02, "kaiming_uniform std {sd}");
        let (_, sd) = moments(&xavier_normal(&shape, 1.0, DType::F64).unwrap());
        assert!((sd - (2.0f64 / (1152.0 + 2304.0)).sqrt()).abs() / sd < 0.02, "xavier_normal std {sd}");
        let (m, sd) = moments(&xavier_uniform(&shape, 1.0, DType::F64).unwrap());
        assert!(m.abs() < 1e-3 && (sd - (2.0f64 / (1152.0 + 2304.0)).sqrt()).abs() / sd < 0.02);
        let w = torch_default_weight(&[100, 400], DType::F32).unwrap();
        assert!(w.to_vec::<f32>().unwrap().iter().all(|v| v.abs() <= 0.05));
    }
}
