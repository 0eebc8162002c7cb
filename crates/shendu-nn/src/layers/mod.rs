//! Layers: each file one family, each layer a struct implementing [`crate::Module`].

mod activation;
mod conv;
mod dropout;
mod embedding;
mod linear;
mod norm;
mod pool;
mod shape;
mod upsample;

pub use activation::{Activation, Elu, Gelu, LeakyRelu, Mish, Relu, Relu6, Selu, Sigmoid, Silu, Softplus, Tanh};
pub use conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
pub use dropout::{Dropout, Dropout2d};
pub use embedding::Embedding;
pub use linear::Linear;
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig, RunningStats};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d};
pub use shape::{ChannelShuffle, Flatten};
pub use upsample::{Upsample, UpsampleMode, UpsampleTarget};
