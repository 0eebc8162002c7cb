//! The errors of shendu-ml. Invalid input (empty data, k larger than the sample count,
//! probabilities that do not sum to 1, a malformed CSV field) is `Invalid` or `Field`, so that
//! callers such as the CLI can tell it from an internal failure.

/// Everything that can go wrong in shendu-ml.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor op failed.
    #[error(transparent)]
    Core(#[from] shendu_core::Error),
    /// An argument the algorithm cannot use; `op` names the function.
    #[error("{op}: {msg}")]
    Invalid { op: &'static str, msg: String },
    /// A text field that cannot be used; `line` and `column` count from 1.
    #[error("{path}:{line}:{column}: {msg}")]
    Field { path: String, line: usize, column: usize, msg: String },
    /// Reading a file failed.
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
}

impl Error {
    /// An `Invalid` error.
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Error {
        Error::Invalid { op, msg: msg.into() }
    }
}

/// The result type of shendu-ml.
pub type Result<T> = std::result::Result<T, Error>;
