//! The metrics log: one JSON object per line (JSONL), one line per epoch (and with `--log-stats`
//! per-layer statistics lines, `"kind": "stats"`), appended as training goes so that a killed
//! run keeps what it measured.

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
        let mut text = String::new();
        if !fresh {
            if let Ok(old) = std::fs::read_to_string(path) {
                for line in old.lines() {
                    // Epoch lines and `--log-stats` lines both carry their epoch.
                    let epoch = serde_json::from_str::<serde_json::Value>(line).ok().and_then(|v| v.get("epoch")?.as_u64());
                    if epoch.is_none_or(|e| e as usize > keep_epochs) {
                        continue;
                    }
                    if let Ok(r) = serde_json::from_str::<EpochRecord>(line) {
                        kept.push(r);
                    }
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        std::fs::write(path, text).map_err(|e| CliError::internal(format!("{}: cannot write: {e}", path.display())))?;
        Ok((MetricsLog { path: path.to_path_buf() }, kept))
    }

    /// Appends one epoch's line.
    pub fn append(&self, r: &EpochRecord) -> CliResult<()> {
        self.append_line(r)
    }

    /// Appends any record as one line (`--log-stats` records).
    pub fn append_line<T: Serialize>(&self, r: &T) -> CliResult<()> {
        let line = serde_json::to_string(r).map_err(|e| CliError::internal(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| CliError::internal(format!("{}: cannot open: {e}", self.path.display())))?;
        writeln!(f, "{line}").map_err(|e| CliError::internal(format!("{}: cannot write: {e}", self.path.display())))
    }
}
