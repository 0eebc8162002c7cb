//! shendu-ml: the classical-learning chapters on shendu-core's kernels.
//!
//! - [`knn`]: k-nearest neighbours (L2, L1, cosine; uniform or distance weights), brute force
//!   with blocked gemm distances.
//! - [`kmeans`]: k-means with greedy k-means++ seeding, Lloyd iterations, n_init restarts and
//!   mini-batch k-means.
//! - [`gd`]: gradient descent for linear models written by hand in three variants (sweep, sgd,
//!   batch).
//! - [`info`]: entropy, cross-entropy, KL and Jensen-Shannon divergences, mutual information.
//! - [`rademacher`]: empirical Rademacher complexity by Monte Carlo, with confidence intervals.
//!
//! ```
//! use shendu_ml::{info, Matrix};
//! let p = info::Distribution::from_probs(&[0.5, 0.5], false).unwrap();
//! assert!((info::entropy(&p, info::Base::Two) - 1.0).abs() < 1e-12);
//! let x = Matrix::new(vec![0.0, 0.0, 1.0, 1.0], 2, 2).unwrap();
//! assert_eq!(x.row(1), &[1.0, 1.0]);
//! ```

mod error;
pub mod gd;
pub mod info;
pub mod kmeans;
pub mod knn;
mod matrix;
pub mod rademacher;
pub mod table;

pub use error::{Error, Result};
pub use matrix::Matrix;
