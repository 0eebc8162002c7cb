//! Matrix product: 2-D and batched, with broadcast batch dims, on strided inputs.

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::cpu::elementwise::SendPtr;
use crate::cpu::gemm::{gemm, GemmElem, MatMut, MatRef};
use crate::cpu::threads;
use crate::dtype::WithDType;
use crate::pool::PooledVec;
use crate::{with_float, Error, Layout, Result, Shape, Tensor};

/// `lhs [..., m, k] · rhs [..., k, n] -> [..., m, n]`.
#[derive(Clone, Copy, Debug)]
pub struct Matmul;

/// The output shape and the broadcast batch shape, or the error users see.
fn matmul_shapes(a: &Shape, b: &Shape) -> Result<(Shape, Shape)> {
    let (ad, bd) = (a.dims(), b.dims());
    if ad.len() < 2 || bd.len() < 2 {
        return Err(Error::shape("matmul", format!("lhs {a} and rhs {b}: both need at least 2 dims")));
    }
    let (m, k) = (ad[ad.len() - 2], ad[ad.len() - 1]);
    let (k2, n) = (bd[bd.len() - 2], bd[bd.len() - 1]);
    if k != k2 {
        return Err(Error::shape("matmul", format!("lhs {a} and rhs {b}: inner dimensions {k} and {k2} differ")));
    }
    let batch = Shape::from(&ad[..ad.len() - 2])
        .broadcast_with(&Shape::from(&bd[..bd.len() - 2]), "matmul")
        .map_err(|_| Error::shape("matmul", format!("lhs {a} and rhs {b}: batch dimensions cannot be broadcast")))?;
    let mut out = batch.dims().to_vec();
    out.extend([m, n]);
    Ok((Shape::new(out), batch))
}

/// Storage offsets of each batch matrix of `l` broadcast to `batch`.
fn batch_offsets(l: &Layout, batch: &Shape) -> Result<Vec<usize>> {
    let r = l.dims().len();
    let bl = Layout::new(Shape::from(&l.dims()[..r - 2]), l.strides()[..r - 2].to_vec(), l.offset());
    Ok(bl.broadcast_as(batch, "matmul")?.offsets())
}

fn matmul_kernel<T: WithDType + GemmElem + crate::pool::PoolElem>(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (out_shape, batch) = matmul_shapes(a.shape(), b.shape())?;
    let (ad, bd) = (a.dims(), b.dims());
    let (m, k, n) = (ad[ad.len() - 2], ad[ad.len() - 1], bd[bd.len() - 1]);
    let (la, lb) = (a.layout(), b.layout());
    let (a_off, b_off) = (batch_offsets(la, &batch)?, batch_offsets(lb, &batch)?);
    let st = |l: &Layout| {
        let s = l.strides();
        (s[s.len() - 2] as isize, s[s.len() - 1] as isize)
    };
    let ((ars, acs), (brs, bcs)) = (st(la), st(lb));
    let mut out = PooledVec::<T>::uninit(out_shape.elem_count());
    let ga = a.storage();
    let gb = b.storage();
    let (sa, sb) = match (ga.as_slice::<T>(), gb.as_slice::<T>()) {
        (Some(x), Some(y)) => (x, y),
        _ => return Err(Error::dtype_mismatch("matmul", a.dtype(), b.dtype())),
    };
    let dst = SendPtr(out.as_mut_slice().as_mut_ptr());
    let (pa, pb) = (SendPtr(sa.as_ptr() as *mut T), SendPtr(sb.as_ptr() as *mut T));
    let one = |i: usize, allow_threads: bool| {
        // SAFETY: offsets come from the layouts, which are in bounds of their storages; each
        // batch writes its own m*n block of `out`.
        unsafe {
            gemm(
                m,
                n,
                k,
                MatMut { ptr: dst.get().add(i * m * n), rs: n as isize, cs: 1 },
                false,
                MatRef { ptr: pa.get().add(a_off[i]), rs: ars, cs: acs },
                MatRef { ptr: pb.get().add(b_off[i]), rs: brs, cs: bcs },
                allow_threads,
            )
        }
    };
    let nb = a_off.len();
    if k == 0 {
        out.as_mut_slice().fill(T::ZERO);
    } else if nb >= threads::num_threads() && m * n * k < (1 << 18) && threads::num_threads() > 1 {
        // Many small products: one per thread beats threading inside each.
        threads::parallel_ranges(nb, 1, |r| r.for_each(|i| one(i, false)));
    } else {
        (0..nb).for_each(|i| one(i, true));
    }
    Ok(Tensor::from_pooled(out, out_shape))
}

impl Op for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (a, b) = (inputs[0], inputs[1]);
        matmul_shapes(a.shape(), b.shape())?;
        a.check_same(b, "matmul")?;
        if !a.dtype().is_float() {
            return Err(Error::dtype(
                "matmul",
                format!(
                    "lhs {} and rhs {} have dtype {}; matmul needs a float dtype (f32, f64, f16, bf16)",
                    a.shape(),
                    b.shape(),
                    a.dtype()
                ),
            ));
        }
        let half = matches!(a.dtype(), crate::DType::F16 | crate::DType::BF16);
        if half {
            let _g = crate::no_grad();
            let (a32, b32) = (a.to_dtype(crate::DType::F32)?, b.to_dtype(crate::DType::F32)?);
            return matmul_kernel::<f32>(&a32, &b32)?.to_dtype(a.dtype());
        }
        with_float!(a.dtype(), "matmul", |T| matmul_kernel::<T>(a, b))
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _output: &T, g: &T) -> Result<Vec<Option<T>>> {
        let (a, b) = (inputs[0], inputs[1]);
        // A data operand without history (a first layer's input) gets no gradient: skip it.
        let ga = if a.needs_grad() { Some(g.g_matmul(&b.g_t()?)?.g_sum_to_like(a)?) } else { None };
        if !b.needs_grad() {
            return Ok(vec![ga, None]);
        }
        // A weight used as `w.t()` (Linear's `[out, in]` layout) gets its gradient as
        // (g^T a)^T: the same numbers, written by the gemm in `w`'s own row-major order, so the
        // optimizer later reads it contiguously.
        let gb = if b.is_transposed_matrix() && a.shape().rank() == 2 {
            g.g_t()?.g_matmul(a)?.g_t()?
        } else {
            a.g_t()?.g_matmul(g)?.g_sum_to_like(b)?
        };
        Ok(vec![ga, Some(gb)])
    }
}

impl Tensor {
    /// Matrix product; batch dims broadcast (`[B, m, k] · [k, n]` works).
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        apply(Matmul, &[self, rhs])
    }
}
