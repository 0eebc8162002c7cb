//! Copies: `contiguous`, `copy`, dtype casts, and the strided copy kernel other ops reuse.

use crate::autograd::{apply, GradOps, Op};
use crate::cpu::elementwise;
use crate::cpu::elementwise::SendPtr;
use crate::cpu::threads::parallel_ranges;
use crate::dtype::WithDType;
use crate::layout::{for_each_row_n, RowWalk};
use crate::pool::PooledVec;
use crate::storage::{IntoStorage, Storage};
use crate::{with_any, DType, Error, Layout, Result, Tensor};

/// Elements below which a strided copy stays on one thread.
const PAR_ELEMS: usize = 1 << 15;

/// Copies `src` (viewed through `src_layout`) into `dst` (through `dst_layout`, same shape).
/// Large copies split their rows between threads, unless `dst_layout` writes some place twice
/// (a broadcast view).
pub(crate) fn copy_strided<T: Copy + Send + Sync>(src: &[T], src_layout: &Layout, dst: &mut [T], dst_layout: &Layout) {
    if src_layout.elem_count() == 0 {
        return;
    }
    assert!(
        src_layout.max_offset() < src.len() && dst_layout.max_offset() < dst.len(),
        "copy_strided: a layout reaches outside its buffer"
    );
    // SAFETY: every element of the walk lies inside `src` and `dst` (checked above against the
    // layouts' furthest offsets); rows run on several threads only where no two elements map
    // to one place of `dst`.
    let copy_row = |dst: *mut T, [os, od]: [usize; 2], [ss, sd]: [usize; 2], n: usize| unsafe {
        if ss == 1 && sd == 1 {
            std::ptr::copy_nonoverlapping(src.as_ptr().add(os), dst.add(od), n);
        } else {
            for k in 0..n {
                *dst.add(od + k * sd) = *src.as_ptr().add(os + k * ss);
            }
        }
    };
    let ptr = SendPtr(dst.as_mut_ptr());
    match RowWalk::new([src_layout, dst_layout]).filter(|_| src_layout.elem_count() >= PAR_ELEMS && !dst_layout.repeats_elements()) {
        Some(walk) if walk.rows() > 1 => parallel_ranges(walk.rows(), PAR_ELEMS.div_ceil(walk.row_len()), |rows| {
            walk.for_rows(rows, |o, s, n| copy_row(ptr.get(), o, s, n));
        }),
        _ => for_each_row_n([src_layout, dst_layout], |o, s, n| copy_row(ptr.get(), o, s, n)),
    }
}

/// Writes the contiguous data of `src` into `dst` through `dst_layout` (same dtype).
pub(crate) fn copy_storage_into(src: &Storage, dst: &mut Storage, dst_layout: &Layout) -> Result<()> {
    let src_layout = Layout::contiguous(dst_layout.shape().clone());
    let (src_dtype, dst_dtype) = (src.dtype(), dst.dtype());
    with_any!(src_dtype, |T| {
        let s = src.as_slice::<T>().ok_or_else(|| Error::dtype("copy", "source dtype changed"))?;
        let d = dst.as_mut_slice::<T>().ok_or_else(|| Error::dtype_mismatch("copy", src_dtype, dst_dtype))?;
        copy_strided(s, &src_layout, d, dst_layout);
        Ok(())
    })
}

/// A contiguous copy of the input (gradient passes through).
#[derive(Clone, Copy, Debug)]
pub struct CopyOp;

impl Op for CopyOp {
    fn name(&self) -> &'static str {
        "copy"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        with_any!(x.dtype(), |T| {
            let out = x.with_slice("copy", |s: &[T], l| elementwise::map(s, l, |v| v))?;
            Ok(Tensor::from_pooled(out, x.shape().clone()))
        })
    }
    fn backward<T: GradOps>(&self, _inputs: &[&T], _output: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(grad.clone())])
    }
}

/// Converts to another dtype; the gradient is cast back.
#[derive(Clone, Copy, Debug)]
pub struct Cast(pub DType);

fn cast_to<U: WithDType + crate::pool::PoolElem>(x: &Tensor) -> Result<Tensor>
where
    PooledVec<U>: IntoStorage,
{
    with_any!(x.dtype(), |T| {
        let out = x.with_slice("to_dtype", |s: &[T], l| elementwise::map(s, l, |v| U::from_f64(v.to_f64())))?;
        Ok(Tensor::from_pooled(out, x.shape().clone()))
    })
}

impl Op for Cast {
    fn name(&self) -> &'static str {
        "to_dtype"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        // f32 <-> half goes through f64 exactly (every f32 and half value is an f64), so the
        // rounding is the single round-to-nearest-even of the target type.
        with_any!(self.0, |U| cast_to::<U>(x))
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _output: &T, grad: &T) -> Result<Vec<Option<T>>> {
        let src = inputs[0].dtype();
        if !src.is_float() {
            return Ok(vec![None]);
        }
        Ok(vec![Some(T::apply(Cast(src), &[grad])?)])
    }
}

impl Tensor {
    /// This tensor if already contiguous, else a contiguous copy.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        apply(CopyOp, &[self])
    }

    /// Always a fresh contiguous copy.
    pub fn copy(&self) -> Result<Tensor> {
        apply(CopyOp, &[self])
    }

    /// The values converted to `dtype` (rounding to nearest; floats to ints truncate toward 0
    /// and saturate).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        apply(Cast(dtype), &[self])
    }
}
