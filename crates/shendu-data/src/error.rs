//! The errors of shendu-data. Every message names the file (and line/column for text formats)
//! and says what was found against what was expected, so a message alone tells the user what to fix.

use std::path::PathBuf;

/// Everything that can go wrong while loading or batching data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor op failed while assembling a batch.
    #[error(transparent)]
    Core(#[from] shendu_core::Error),
    /// Reading a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A file was read but its contents are wrong: bad magic number, truncated, trailing bytes,
    /// labels out of range, an undecodable image. `path` is the file (or the name given to
    /// `from_bytes`).
    #[error("{path}: {msg}")]
    Format { path: String, msg: String },
    /// A text field that cannot be used; `line` and `column` count from 1.
    #[error("{path}:{line}:{column}: {msg}")]
    Field { path: String, line: usize, column: usize, msg: String },
    /// Files a dataset needs are not in the directory.
    #[error("{}: {what} not found: looked for {}", dir.display(), looked_for.join(", "))]
    Missing { dir: PathBuf, what: String, looked_for: Vec<String> },
    /// An argument or call the data pipeline cannot use (batch size 0, index out of range,
    /// a transform given the wrong shape).
    #[error("{op}: {msg}")]
    Invalid { op: &'static str, msg: String },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
    pub fn format(path: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Format { path: path.into(), msg: msg.into() }
    }
    pub fn field(path: impl Into<String>, line: usize, column: usize, msg: impl Into<String>) -> Error {
        Error::Field { path: path.into(), line, column, msg: msg.into() }
    }
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Error {
        Error::Invalid { op, msg: msg.into() }
    }
}

/// The result type of shendu-data.
pub type Result<T> = std::result::Result<T, Error>;
