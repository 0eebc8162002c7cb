//! Element types. f32 is first-class; f64 serves exact reproductions and gradient checks;
//! f16/bf16 are storage types computed in f32; u8 and i64 hold images, labels and indices.

use half::{bf16, f16};

use crate::storage::Storage;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    U8,
    I64,
}

impl DType {
    pub const ALL: [DType; 6] = [DType::F32, DType::F64, DType::F16, DType::BF16, DType::U8, DType::I64];

    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::F16 | DType::BF16 => 2,
            DType::U8 => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// PyTorch's name for the dtype, used in Display and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::U8 => "u8",
            DType::I64 => "i64",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Rust type that can be stored in a tensor.
pub trait WithDType: crate::pool::PoolElem + Sync + PartialOrd + std::fmt::Debug {
    const DTYPE: DType;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn slice(s: &Storage) -> Option<&[Self]>;
    fn slice_mut(s: &mut Storage) -> Option<&mut [Self]>;
    fn into_storage(v: Vec<Self>) -> Storage;
    fn pooled_into_storage(v: crate::pool::PooledVec<Self>) -> Storage;
}

macro_rules! with_dtype {
    ($t:ty, $variant:ident, $from:expr, $to:expr) => {
        impl WithDType for $t {
            const DTYPE: DType = DType::$variant;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                $from(v)
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                $to(self)
            }
            fn slice(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$variant(v) => Some(v.as_slice()),
                    _ => None,
                }
            }
            fn slice_mut(s: &mut Storage) -> Option<&mut [Self]> {
                match s {
                    Storage::$variant(v) => Some(v.as_mut_slice()),
                    _ => None,
                }
            }
            fn into_storage(v: Vec<Self>) -> Storage {
                Storage::$variant(crate::pool::PooledVec::from_vec(v))
            }
            fn pooled_into_storage(v: crate::pool::PooledVec<Self>) -> Storage {
                Storage::$variant(v)
            }
        }
    };
}

with_dtype!(f32, F32, |v: f64| v as f32, |v: f32| v as f64);
with_dtype!(f64, F64, |v: f64| v, |v: f64| v);
with_dtype!(f16, F16, f16::from_f64, |v: f16| v.to_f64());
with_dtype!(bf16, BF16, bf16::from_f64, |v: bf16| v.to_f64());
with_dtype!(u8, U8, |v: f64| v as u8, |v: u8| v as f64);
with_dtype!(i64, I64, |v: f64| v as i64, |v: i64| v as f64);

/// Float types with native kernels (f32 and f64). f16/bf16 are computed through f32.
pub trait Float: WithDType + num_traits::Float + std::iter::Sum + Default + std::ops::AddAssign + std::ops::MulAssign {
    const ZERO: Self;
    const ONE: Self;
    fn erf(self) -> Self;
}
impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn erf(self) -> Self {
        libm::erff(self)
    }
}
impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn erf(self) -> Self {
        libm::erf(self)
    }
}

/// Runs `$body` with `$T` bound to the Rust type of a native float dtype (f32, f64), or
/// returns the usual dtype error naming `$op`.
#[macro_export]
macro_rules! with_float {
    ($dtype:expr, $op:expr, |$T:ident| $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            other => Err($crate::Error::unsupported_dtype($op, other, "f32 or f64")),
        }
    };
}

/// Runs `$body` with `$T` bound to the Rust type of any dtype.
#[macro_export]
macro_rules! with_any {
    ($dtype:expr, |$T:ident| $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::DType::F16 => {
                type $T = half::f16;
                $body
            }
            $crate::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
            $crate::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::DType::I64 => {
                type $T = i64;
                $body
            }
        }
    };
}
