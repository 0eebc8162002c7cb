//! The one error type of shendu-core. Every variant names the op that failed and, for shape
//! problems, the shapes involved, so that a message alone tells the user what to fix.

use crate::DType;

/// Errors returned by tensor operations.
///
/// ```
/// use shendu_core::Tensor;
/// let a = Tensor::zeros(&[64, 1000], shendu_core::DType::F32).unwrap();
/// let b = Tensor::zeros(&[100, 10], shendu_core::DType::F32).unwrap();
/// let e = a.matmul(&b).unwrap_err();
/// assert!(e.to_string().starts_with("matmul: lhs [64, 1000] and rhs [100, 10]"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Shapes that do not fit the op's rule.
    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },
    /// A dtype the op does not accept, or two inputs whose dtypes differ.
    #[error("{op}: {msg}")]
    DType { op: &'static str, msg: String },
    /// Inputs on different devices, or a device this build cannot use.
    #[error("{op}: {msg}")]
    Device { op: &'static str, msg: String },
    /// An index or dimension out of range.
    #[error("{op}: {msg}")]
    Index { op: &'static str, msg: String },
    /// An argument with a value the op cannot use (negative size, zero stride, ...).
    #[error("{op}: {msg}")]
    Invalid { op: &'static str, msg: String },
    /// Autograd misuse: backward of a non-scalar without a seed, a tensor that needs no grad, ...
    #[error("{op}: {msg}")]
    Autograd { op: &'static str, msg: String },
}

impl Error {
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape { op, msg: msg.into() }
    }
    pub fn index(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Index { op, msg: msg.into() }
    }
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Invalid { op, msg: msg.into() }
    }
    pub fn device(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Device { op, msg: msg.into() }
    }
    pub fn autograd(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Autograd { op, msg: msg.into() }
    }
    pub fn dtype(op: &'static str, msg: impl Into<String>) -> Self {
        Error::DType { op, msg: msg.into() }
    }
    /// The usual dtype error: the op has no kernel for this dtype.
    pub fn unsupported_dtype(op: &'static str, dtype: DType, wants: &str) -> Self {
        Error::dtype(op, format!("dtype {dtype} is not supported (expects {wants})"))
    }
    /// The usual mixed-dtype error for ops of several inputs.
    pub fn dtype_mismatch(op: &'static str, lhs: DType, rhs: DType) -> Self {
        Error::dtype(op, format!("lhs has dtype {lhs} and rhs has dtype {rhs}; cast one with to_dtype"))
    }

    /// The op this error came from.
    pub fn op(&self) -> &'static str {
        match self {
            Error::Shape { op, .. }
            | Error::DType { op, .. }
            | Error::Device { op, .. }
            | Error::Index { op, .. }
            | Error::Invalid { op, .. }
            | Error::Autograd { op, .. } => op,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `bail!(Shape, "matmul", "lhs {} ...", a)` returns early with an error of that kind.
#[macro_export]
macro_rules! bail {
    ($kind:ident, $op:expr, $($arg:tt)*) => {
        return Err($crate::Error::$kind { op: $op, msg: format!($($arg)*) })
    };
}
