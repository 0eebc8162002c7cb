//! The subcommands of the `shendu` binary. Each lives in its own file with its clap `Args` struct
//! and a `run` function; this module holds what they share: the error type with its exit code.

pub mod bench;
pub mod debug;
pub mod doctor;
pub mod entropy;
pub mod eval;
pub mod gd;
pub mod kmeans;
pub mod knn;
pub mod loaded;
pub mod ml;
pub mod plot;
pub mod predict;
pub mod rademacher;
pub mod summary;
pub mod test_cmd;
pub mod train;
pub mod train_settings;
pub mod weights;
pub mod weights_copy;

use std::fmt;

/// Why a command failed, which decides the exit code: 2 for bad input (a flag, a file, a shape
/// the user gave), 1 for an internal failure.
#[derive(Debug)]
pub enum CliError {
    BadInput(String),
    Internal(String),
}

impl CliError {
    pub fn bad(msg: impl Into<String>) -> CliError {
        CliError::BadInput(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> CliError {
        CliError::Internal(msg.into())
    }
    /// The process exit code: 2 for bad input, 1 for internal failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::BadInput(_) => 2,
            CliError::Internal(_) => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::BadInput(m) | CliError::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

impl From<shendu_nn::Error> for CliError {
    fn from(e: shendu_nn::Error) -> CliError {
        match e {
            // A tensor op failing on inputs the command already validated is our bug.
            shendu_nn::Error::Core(inner) => CliError::Internal(inner.to_string()),
            other => CliError::BadInput(other.to_string()),
        }
    }
}

impl From<shendu_data::Error> for CliError {
    fn from(e: shendu_data::Error) -> CliError {
        match e {
            shendu_data::Error::Core(inner) => CliError::Internal(inner.to_string()),
            other => CliError::BadInput(other.to_string()),
        }
    }
}

impl From<shendu_core::Error> for CliError {
    fn from(e: shendu_core::Error) -> CliError {
        CliError::Internal(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::Internal(e.to_string())
    }
}

pub type CliResult<T> = Result<T, CliError>;
