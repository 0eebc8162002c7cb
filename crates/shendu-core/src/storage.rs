//! The flat buffer behind one or more tensors. Views share a `Storage` through an `Arc`.

use half::{bf16, f16};

use crate::dtype::{DType, WithDType};
use crate::pool::PooledVec;

/// A CPU buffer of one dtype.
#[derive(Debug)]
pub enum Storage {
    F32(PooledVec<f32>),
    F64(PooledVec<f64>),
    F16(PooledVec<f16>),
    BF16(PooledVec<bf16>),
    U8(PooledVec<u8>),
    I64(PooledVec<i64>),
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::F16(_) => DType::F16,
            Storage::BF16(_) => DType::BF16,
            Storage::U8(_) => DType::U8,
            Storage::I64(_) => DType::I64,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
            Storage::F16(v) => v.len(),
            Storage::BF16(v) => v.len(),
            Storage::U8(v) => v.len(),
            Storage::I64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A pooled buffer of `len` elements with unspecified contents.
    pub fn uninit<T: WithDType + crate::pool::PoolElem>(len: usize) -> PooledVec<T> {
        PooledVec::uninit(len)
    }

    /// Typed view of the buffer; `None` when the dtype differs.
    pub fn as_slice<T: WithDType>(&self) -> Option<&[T]> {
        T::slice(self)
    }

    pub fn as_mut_slice<T: WithDType>(&mut self) -> Option<&mut [T]> {
        T::slice_mut(self)
    }
}

/// Wraps a pooled buffer into the storage variant of its element type.
pub trait IntoStorage {
    fn into_storage(self) -> Storage;
}

macro_rules! into_storage {
    ($($t:ty => $v:ident),*) => {$(
        impl IntoStorage for PooledVec<$t> {
            fn into_storage(self) -> Storage {
                Storage::$v(self)
            }
        }
    )*};
}
into_storage!(f32 => F32, f64 => F64, f16 => F16, bf16 => BF16, u8 => U8, i64 => I64);
