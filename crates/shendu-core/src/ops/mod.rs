//! Every op, one file per family. Inside a file each op is one block: its shape rule, its
//! forward (calling `cpu/` kernels), its backward rule (generic over `GradOps`), and the
//! `Tensor` method users call.

pub mod batch_norm;
pub mod binary;
pub mod compare;
pub mod concat;
pub mod conv;
pub mod conv_transpose;
pub mod copy;
pub mod dropout;
pub mod indexing;
pub mod matmul;
pub mod movement;
pub mod pad;
pub mod pool;
pub mod reduce;
pub mod softmax;
pub mod unary;
pub mod upsample;

use crate::{DType, Result, Tensor};

/// Runs a float kernel: f32/f64 directly, f16/bf16 through f32 (and back), others rejected by
/// the kernel's own dtype check.
pub(crate) fn via_f32_if_half(x: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    match x.dtype() {
        DType::F16 | DType::BF16 => {
            let _g = crate::no_grad();
            f(&x.to_dtype(DType::F32)?)?.to_dtype(x.dtype())
        }
        _ => f(x),
    }
}
