//! CPU kernels. Ops in `ops/` check shapes and dtypes, then call these on plain slices.

#[cfg(target_arch = "x86_64")]
pub(crate) mod channel_sums;
pub mod conv;
mod conv_flat;
mod conv_pointwise;
mod conv_threads;
pub mod depthwise;
pub(crate) mod depthwise_lanes;
mod depthwise_strided;
pub mod elementwise;
pub(crate) mod fork_join;
pub mod gemm;
#[doc(hidden)]
pub mod gemm_nt;
pub mod im2col;
pub mod index;
pub mod pool;
#[cfg(target_arch = "x86_64")]
pub mod sgemm;
pub mod simd;
pub mod thread_context;
pub mod threads;
pub mod winograd;
#[cfg(target_arch = "x86_64")]
mod winograd4;
#[cfg(target_arch = "x86_64")]
mod winograd4_wgrad;
#[cfg(target_arch = "x86_64")]
mod winograd_avx2;
pub mod winograd_wgrad;
