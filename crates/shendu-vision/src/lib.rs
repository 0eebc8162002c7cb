//! shendu-vision: ready-made networks by name.
//!
//! ```
//! use shendu_core::{DType, Tensor};
//! use shendu_nn::{Mode, Module};
//! let net = shendu_vision::zoo::build("lenet", &shendu_vision::zoo::ModelOptions::mnist()).unwrap();
//! let y = net.forward(&Tensor::zeros(&[2, 1, 28, 28], DType::F32).unwrap(), Mode::Eval).unwrap();
//! assert_eq!(y.dims(), &[2, 10]);
//! ```

pub mod darknet;
pub mod netspec;
pub mod zoo;
