//! `Linear`: y = x W^T + b, with PyTorch's weight layout `[out, in]`.

use shendu_core::{DType, Tensor};

use crate::{init, join_name, Error, Mode, Module, Param, Result};

/// A fully connected layer. Parameters `weight` `[out, in]` and `bias` `[out]`, initialised as
/// PyTorch does (uniform with bound 1/sqrt(in)).
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::Linear, Mode, Module};
/// let fc = Linear::new(3, 2, DType::F32).unwrap();
/// assert_eq!(fc.forward(&Tensor::ones(&[4, 3], DType::F32).unwrap(), Mode::Eval).unwrap().dims(), &[4, 2]);
/// ```
pub struct Linear {
    pub weight: Param,
    pub bias: Option<Param>,
}

impl Linear {
    /// A layer with bias and PyTorch's default initialisation.
    pub fn new(in_features: usize, out_features: usize, dtype: DType) -> Result<Linear> {
        let weight = init::torch_default_weight(&[out_features, in_features], dtype)?;
        let bias = init::torch_default_bias(out_features, in_features, dtype)?;
        Ok(Linear { weight: Param::new(weight), bias: Some(Param::new(bias)) })
    }

    /// A layer from given tensors: weight `[out, in]`, bias `[out]`.
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Result<Linear> {
        if weight.rank() != 2 {
            return Err(Error::layer("Linear", format!("weight must be [out, in], got {}", weight.shape())));
        }
        if let Some(b) = &bias {
            if b.dims() != [weight.dims()[0]] {
                return Err(Error::layer("Linear", format!("bias {} does not match weight {}", b.shape(), weight.shape())));
            }
        }
        Ok(Linear { weight: Param::new(weight), bias: bias.map(Param::new) })
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let in_f = self.in_features();
        if x.rank() == 0 || x.dims()[x.rank() - 1] != in_f {
            return Err(Error::layer(
                "Linear",
                format!("input {} does not end in {in_f} features (weight {})", x.shape(), self.weight.shape()),
            ));
        }
        let y = x.matmul(&self.weight.tensor().t()?)?;
        Ok(match &self.bias {
            Some(b) => y.add(&b.tensor())?,
            None => y,
        })
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        f(&join_name(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(&join_name(prefix, "bias"), b);
        }
    }

    fn type_name(&self) -> &'static str {
        "Linear"
    }
}
