//! CPU kernels. Ops in `ops/` check shapes and dtypes, then call these on plain slices.

pub mod elementwise;
pub mod gemm;
pub mod index;
pub mod threads;
