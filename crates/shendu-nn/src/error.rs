//! The errors of shendu-nn: tensor errors from the core, plus files and configuration.

use std::path::PathBuf;

/// Everything that can go wrong in shendu-nn.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor op failed (shapes, dtypes); the message names the op and the shapes.
    #[error(transparent)]
    Core(#[from] shendu_core::Error),
    /// A layer was configured or called wrongly; `layer` is its dotted path or type.
    #[error("{layer}: {msg}")]
    Layer { layer: String, msg: String },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A file was read but its contents are wrong (truncated, corrupt, mismatched).
    #[error("{}: {msg}", path.display())]
    Format { path: PathBuf, msg: String },
    /// A state dict did not fit a module: `report` lists every missing, unexpected and
    /// mismatched name at once; `path` is the file it came from, if any.
    #[error("{}", load_message(path.as_deref(), report))]
    Load { path: Option<PathBuf>, report: String },
    /// An option has a value outside its domain (negative learning rate, momentum above 1, ...).
    #[error("{name}: {msg}")]
    Config { name: String, msg: String },
}

impl Error {
    pub fn layer(layer: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Layer { layer: layer.into(), msg: msg.into() }
    }
    pub fn config(name: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Config { name: name.into(), msg: msg.into() }
    }
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Error {
        Error::Format { path: path.into(), msg: msg.into() }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
}

fn load_message(path: Option<&std::path::Path>, report: &str) -> String {
    match path {
        Some(p) => format!("{}: {report}", p.display()),
        None => report.to_string(),
    }
}

pub type Result<T> = std::result::Result<T, Error>;
