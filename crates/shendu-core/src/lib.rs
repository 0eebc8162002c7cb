//! shendu-core: tensors, eager autograd and CPU kernels.
//!
//! ```
//! use shendu_core::{DType, Tensor, Var};
//! shendu_core::manual_seed(0);
//! let w = Var::new(Tensor::randn(&[3, 2], DType::F64).unwrap());
//! let x = Tensor::ones(&[4, 3], DType::F64).unwrap();
//! let loss = x.matmul(&w).unwrap().relu().unwrap().sum_all().unwrap();
//! let grads = loss.backward().unwrap();
//! assert_eq!(grads.get(&w).unwrap().dims(), &[3, 2]);
//! ```

pub mod autograd;
pub mod cpu;
mod device;
mod display;
mod dtype;
mod error;
pub mod graph;
mod layout;
pub mod numerics;
pub mod ops;
pub mod padding;
pub mod pool;
mod rng;
mod shape;
mod storage;
mod tensor;

pub use autograd::{is_grad_enabled, no_grad, set_grad_enabled, GradExt, GradOps, GradStore, Op, Var};
pub use cpu::threads::{num_threads, set_num_threads};
pub use device::Device;
pub use dtype::{DType, Float, WithDType};
pub use error::{Error, Result};
pub use layout::Layout;
pub use ops::batch_norm::BatchNormActivation;
pub use ops::compare::CmpOp;
pub use ops::conv::Conv2dParams;
pub use ops::conv_transpose::ConvTranspose2dParams;
pub use ops::pad::PadMode;
pub use padding::Padding;
pub use rng::{default_rng_state, manual_seed, set_default_rng_state, with_default_rng, Rng};
pub use shape::{Dim, Shape};
pub use storage::Storage;
pub use tensor::{Tensor, TensorId};
