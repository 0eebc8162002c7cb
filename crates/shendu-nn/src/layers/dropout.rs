//! Dropout layers. Masks come from shendu's default generator, so `manual_seed` and a
//! checkpointed generator state (`default_rng_state`) make them reproducible.

use shendu_core::{with_default_rng, Tensor};

use crate::{Error, Mode, Module, Param, Result};

fn check_p(layer: &str, p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::layer(layer, format!("drop probability p = {p} must be in [0, 1]")));
    }
    Ok(())
}

/// Inverted dropout: in train mode each element is zeroed with probability `p` and the rest are
/// scaled by `1 / (1 - p)` (so eval needs no rescaling); in eval mode the identity. `p = 1`
/// zeroes everything, as PyTorch.
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::Dropout, Mode, Module};
/// let drop = Dropout::new(0.5).unwrap();
/// let x = Tensor::ones(&[4, 4], DType::F32).unwrap();
/// assert_eq!(drop.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 16]);
/// let y = drop.forward(&x, Mode::Train).unwrap().to_vec::<f32>().unwrap();
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dropout {
    p: f64,
}

impl Dropout {
    /// Errors unless `p` is in `[0, 1]`.
    pub fn new(p: f64) -> Result<Dropout> {
        check_p("Dropout", p)?;
        Ok(Dropout { p })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if !mode.is_train() || self.p == 0.0 {
            return Ok(x.clone());
        }
        if self.p == 1.0 {
            return Ok(x.mul_scalar(0.0)?);
        }
        Ok(with_default_rng(|rng| x.dropout(self.p, true, rng))?)
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}

    fn type_name(&self) -> &'static str {
        "Dropout"
    }
}

/// Channel dropout on `[N, C, H, W]`: in train mode whole channel planes are zeroed with
/// probability `p` and the rest scaled by `1 / (1 - p)` (PyTorch's `Dropout2d`, for
/// convolutional features whose neighbouring pixels are correlated); in eval mode the identity.
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::Dropout2d, Mode, Module};
/// let y = Dropout2d::new(0.5).unwrap().forward(&Tensor::ones(&[2, 8, 3, 3], DType::F32).unwrap(), Mode::Train).unwrap();
/// let v = y.to_vec::<f32>().unwrap();
/// assert!(v.chunks(9).all(|plane| plane.iter().all(|&e| e == plane[0])));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dropout2d {
    p: f64,
}

impl Dropout2d {
    /// Errors unless `p` is in `[0, 1]`.
    pub fn new(p: f64) -> Result<Dropout2d> {
        check_p("Dropout2d", p)?;
        Ok(Dropout2d { p })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl Module for Dropout2d {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if x.rank() != 4 {
            return Err(Error::layer("Dropout2d", format!("input {} must be 4-d [N, C, H, W]", x.shape())));
        }
        if !mode.is_train() || self.p == 0.0 {
            return Ok(x.clone());
        }
        if self.p == 1.0 {
            return Ok(x.mul_scalar(0.0)?);
        }
        let (n, c) = (x.dims()[0], x.dims()[1]);
        let mask = with_default_rng(|rng| Tensor::dropout_mask(&[n, c, 1, 1], self.p, x.dtype(), rng))?;
        Ok(x.mul(&mask)?)
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}

    fn type_name(&self) -> &'static str {
        "Dropout2d"
    }
}
