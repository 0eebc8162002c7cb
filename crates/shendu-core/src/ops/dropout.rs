//! Inverted dropout: in training, multiply by a mask of 0 and 1/(1-p), so evaluation needs no
//! rescaling; in evaluation, the identity. The product with the mask is an ordinary `mul`, so
//! the gradient is the same mask.

use crate::dtype::WithDType;
use crate::pool::PooledVec;
use crate::{with_any, DType, Error, Result, Rng, Shape, Tensor};

fn check_p(op: &'static str, p: f64) -> Result<()> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::invalid(op, format!("drop probability p = {p} must be in [0, 1)")));
    }
    Ok(())
}

fn mask(op: &'static str, shape: Shape, p: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    check_p(op, p)?;
    if !dtype.is_float() {
        return Err(Error::unsupported_dtype(op, dtype, "a float dtype"));
    }
    let scale = 1.0 / (1.0 - p);
    with_any!(dtype, |T| {
        let (zero, keep) = (T::from_f64(0.0), T::from_f64(scale));
        let mut out = PooledVec::<T>::uninit(shape.elem_count());
        for o in out.as_mut_slice() {
            *o = if rng.bernoulli(p) { zero } else { keep };
        }
        Ok(Tensor::from_pooled(out, shape))
    })
}

impl Tensor {
    /// A dropout mask of `shape`: each entry independently 0 with probability `p`, else
    /// `1 / (1 - p)`. `p` must be in `[0, 1)` and `dtype` a float dtype.
    ///
    /// ```
    /// use shendu_core::{DType, Rng, Tensor};
    /// let m = Tensor::dropout_mask(&[1000], 0.5, DType::F32, &mut Rng::new(0)).unwrap();
    /// assert!(m.to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0 || v == 2.0));
    /// ```
    pub fn dropout_mask(shape: impl Into<Shape>, p: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
        mask("dropout_mask", shape.into(), p, dtype, rng)
    }

    /// Inverted dropout: with `train`, zeroes each entry with probability `p` and scales the
    /// rest by `1 / (1 - p)`; without, returns `self` unchanged. `p` must be in `[0, 1)`.
    /// The gradient is the same mask.
    ///
    /// ```
    /// use shendu_core::{DType, Rng, Tensor};
    /// let x = Tensor::ones(&[4, 4], DType::F32).unwrap();
    /// let mut rng = Rng::new(7);
    /// let y = x.dropout(0.25, true, &mut rng).unwrap();
    /// assert!(y.to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
    /// assert_eq!(x.dropout(0.25, false, &mut rng).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 16]);
    /// ```
    pub fn dropout(&self, p: f64, train: bool, rng: &mut Rng) -> Result<Tensor> {
        check_p("dropout", p)?;
        if !train || p == 0.0 {
            return Ok(self.clone());
        }
        let m = mask("dropout", self.shape().clone(), p, self.dtype(), rng)?;
        self.mul(&m)
    }
}
