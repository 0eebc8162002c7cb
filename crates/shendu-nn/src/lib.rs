//! shendu-nn: modules with named parameters, layers, losses, initialisers and optimizers.
//!
//! ```
//! use shendu_core::{DType, Tensor};
//! use shendu_nn::{layers::Linear, Mode, Module, ModuleExt, Sequential};
//! shendu_core::manual_seed(0);
//! let net = Sequential::new().push(Linear::new(4, 3, DType::F32).unwrap()).push(Linear::new(3, 2, DType::F32).unwrap());
//! let y = net.forward(&Tensor::ones(&[5, 4], DType::F32).unwrap(), Mode::Train).unwrap();
//! assert_eq!(y.dims(), &[5, 2]);
//! let names: Vec<String> = net.named_params().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["0.weight", "0.bias", "1.weight", "1.bias"]);
//! ```

pub mod clip;
mod error;
pub mod init;
pub mod layers;
pub mod loss;
mod module;
pub mod optim;
mod param;
pub mod schedule;
mod sequential;
pub mod state;
pub mod tap;

pub use error::{Error, Result};
pub use module::{join_name, Mode, Module, ModuleExt};
pub use param::{Param, ParamKind};
pub use sequential::Sequential;
