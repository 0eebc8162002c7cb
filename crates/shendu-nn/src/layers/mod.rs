//! Layers: each file one family, each layer a struct implementing [`crate::Module`].

mod activation;
mod linear;

pub use activation::{Activation, Elu, Gelu, LeakyRelu, Mish, Relu, Relu6, Selu, Sigmoid, Silu, Softplus, Tanh};
pub use linear::Linear;
