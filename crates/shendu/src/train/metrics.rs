//! The metrics log: one JSON object per line (JSONL), one line per epoch, appended as training
//! goes so that a killed run keeps what it measured.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::{CliError, CliResult};

/// The figures of one finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub step: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// Wall time of the epoch's training part.
    pub seconds: f64,
    pub samples_per_second: f64,
}

/// Appends records to `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    /// A log at `path`; `fresh` truncates an existing file (a new run), else lines are appended
    /// (a resumed run), after dropping any lines past `keep_epochs` left by the interrupted run.
    pub fn open(path: &Path, fresh: bool, keep_epochs: usize) -> CliResult<(MetricsLog, Vec<EpochRecord>)> {
        let mut kept = Vec::new();
        if !fresh {
            if let Ok(text) = std::fs::read_to_string(path) {
                kept =
                    text.lines().filter_map(|l| serde_json::from_str::<EpochRecord>(l).ok()).filter(|r| r.epoch <= keep_epochs).collect();
            }
        }
        let mut text = String::new();
        for r in &kept {
            text.push_str(&serde_json::to_string(r).map_err(|e| CliError::internal(e.to_string()))?);
            text.push('\n');
        }
        std::fs::write(path, text).map_err(|e| CliError::internal(format!("{}: cannot write: {e}", path.display())))?;
        Ok((MetricsLog { path: path.to_path_buf() }, kept))
    }

    /// Appends one epoch's line.
    pub fn append(&self, r: &EpochRecord) -> CliResult<()> {
        let line = serde_json::to_string(r).map_err(|e| CliError::internal(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| CliError::internal(format!("{}: cannot open: {e}", self.path.display())))?;
        writeln!(f, "{line}").map_err(|e| CliError::internal(format!("{}: cannot write: {e}", self.path.display())))
    }
}
