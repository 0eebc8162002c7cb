//! Activations as layers, so that they sit in a `Sequential` and show in summaries.

use shendu_core::Tensor;

use crate::{Mode, Module, Param, Result};

/// Any of the activations by value (what a config file names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    Relu6,
    LeakyRelu(f64),
    Elu(f64),
    Selu,
    Gelu,
    Silu,
    Mish,
    Sigmoid,
    Tanh,
    Softplus,
    Identity,
}

impl Activation {
    /// Applies the activation to `x`.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Relu => x.relu()?,
            Activation::Relu6 => x.relu6()?,
            Activation::LeakyRelu(s) => x.leaky_relu(s)?,
            Activation::Elu(a) => x.elu(a)?,
            Activation::Selu => x.selu()?,
            Activation::Gelu => x.gelu()?,
            Activation::Silu => x.silu()?,
            Activation::Mish => x.mish()?,
            Activation::Sigmoid => x.sigmoid()?,
            Activation::Tanh => x.tanh()?,
            Activation::Softplus => x.softplus()?,
            Activation::Identity => x.clone(),
        })
    }
}

impl Module for Activation {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        self.apply(x)
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
    fn type_name(&self) -> &'static str {
        "Activation"
    }
}

macro_rules! activation_layers {
    ($($(#[$doc:meta])* $name:ident => $act:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;
        impl Module for $name {
            fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
                $act.apply(x)
            }
            fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
            fn type_name(&self) -> &'static str {
                stringify!($name)
            }
        }
    )*};
}

activation_layers! {
    /// max(x, 0).
    Relu => Activation::Relu;
    /// min(max(x, 0), 6) (MobileNet).
    Relu6 => Activation::Relu6;
    /// Scaled ELU (self-normalising networks).
    Selu => Activation::Selu;
    /// GELU, the erf form.
    Gelu => Activation::Gelu;
    /// x * sigmoid(x) (swish).
    Silu => Activation::Silu;
    /// x * tanh(softplus(x)).
    Mish => Activation::Mish;
    /// 1 / (1 + exp(-x)).
    Sigmoid => Activation::Sigmoid;
    /// tanh(x).
    Tanh => Activation::Tanh;
    /// log(1 + exp(x)).
    Softplus => Activation::Softplus;
}

/// x for x > 0, slope * x otherwise.
#[derive(Clone, Copy, Debug)]
pub struct LeakyRelu(pub f64);

impl Module for LeakyRelu {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        Activation::LeakyRelu(self.0).apply(x)
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
    fn type_name(&self) -> &'static str {
        "LeakyRelu"
    }
}

/// x for x > 0, alpha * (exp(x) - 1) otherwise.
#[derive(Clone, Copy, Debug)]
pub struct Elu(pub f64);

impl Module for Elu {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        Activation::Elu(self.0).apply(x)
    }
    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
    fn type_name(&self) -> &'static str {
        "Elu"
    }
}
