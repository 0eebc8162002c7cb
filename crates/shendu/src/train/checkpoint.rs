//! Checkpoints: one safetensors file holding the model's state dict, the optimizer's state
//! (names prefixed `optimizer.`) and the run's metadata, written atomically so that a crash or a
//! SIGKILL mid-write leaves the previous checkpoint intact.
//!
//! Metadata keys: `format` ([`FORMAT`]), `model` (zoo name), `classes`, `input` (`CxHxW`),
//! `epoch` (epochs completed), `step` (optimizer steps taken), `rng_state` (the default
//! generator, four u64), `config` (the [`super::TrainConfig`] as JSON), `test_accuracy`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use shendu_core::Tensor;
use shendu_nn::state;
use shendu_nn::Module;
use shendu_vision::zoo::{self, ModelOptions};

use crate::cli::{CliError, CliResult};

/// The value of the `format` metadata key of a shendu checkpoint.
pub const FORMAT: &str = "shendu-checkpoint/1";
/// The prefix of optimizer-state entries in a checkpoint.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";

/// A checkpoint read back: model tensors, optimizer tensors (prefix removed), metadata.
pub struct Checkpoint {
    pub model: Vec<(String, Tensor)>,
    pub optimizer: Vec<(String, Tensor)>,
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Reads a checkpoint or a plain weights file (then `optimizer` is empty).
    pub fn load(path: &Path) -> CliResult<Checkpoint> {
        let (tensors, metadata) = state::load_safetensors(path)?;
        let (mut model, mut optimizer) = (Vec::new(), Vec::new());
        for (name, t) in tensors {
            match name.strip_prefix(OPTIMIZER_PREFIX) {
                Some(rest) => optimizer.push((rest.to_string(), t)),
                None => model.push((name, t)),
            }
        }
        Ok(Checkpoint { model, optimizer, metadata })
    }

    /// A metadata value parsed as `T`, or an error naming the file and the key.
    pub fn meta<T: std::str::FromStr>(&self, path: &Path, key: &str) -> CliResult<T> {
        let raw = self
            .metadata
            .get(key)
            .ok_or_else(|| CliError::bad(format!("{}: checkpoint has no '{key}' in its metadata", path.display())))?;
        raw.parse().map_err(|_| CliError::bad(format!("{}: metadata '{key}' = '{raw}' is not valid", path.display())))
    }

    /// Builds the zoo model this file was trained as (or `model_override`) and loads the weights
    /// strictly. Returns the model and its name.
    pub fn build_model(&self, path: &Path, model_override: Option<&str>) -> CliResult<(Box<dyn Module>, String)> {
        let name = match (model_override, self.metadata.get("model")) {
            (Some(m), _) => m.to_string(),
            (None, Some(m)) => m.clone(),
            (None, None) => {
                return Err(CliError::bad(format!("{}: the file does not say which model it holds; pass --model", path.display())))
            }
        };
        let mut opts = ModelOptions::mnist();
        if let Some(c) = self.metadata.get("classes") {
            opts.classes =
                c.parse().map_err(|_| CliError::bad(format!("{}: metadata 'classes' = '{c}' is not a number", path.display())))?;
        }
        if let Some(input) = self.metadata.get("input") {
            let dims: Vec<usize> = input.split('x').filter_map(|d| d.parse().ok()).collect();
            if let [c, h, w] = dims[..] {
                opts.in_channels = c;
                opts.input_hw = (h, w);
            }
        }
        let model = zoo::build(&name, &opts)?;
        state::load_state_dict(&model, &self.model, true).map_err(|e| CliError::bad(format!("{}: {e}", path.display())))?;
        Ok((model, name))
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory. The previous file stays whole until the rename.
///
/// `SHENDU_TEST_CHECKPOINT_PAUSE_MS` (tests only) pauses halfway through writing the temporary
/// file when it replaces an existing one, so a test can SIGKILL the process mid-write and check
/// that the previous checkpoint survives.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> CliResult<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "checkpoint".into());
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        let half = bytes.len() / 2;
        f.write_all(&bytes[..half])?;
        let pause = std::env::var("SHENDU_TEST_CHECKPOINT_PAUSE_MS").ok().and_then(|v| v.parse::<u64>().ok());
        if let (Some(ms), true) = (pause, path.exists()) {
            f.flush()?;
            eprintln!("shendu: checkpoint write paused ({})", path.display());
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        f.write_all(&bytes[half..])?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::internal(format!("{}: cannot write: {e}", path.display()))
    })
}

/// Serialises model and optimizer state with `metadata` and writes it atomically.
pub fn save(path: &Path, model: &dyn Module, optimizer: &[(String, Tensor)], metadata: &BTreeMap<String, String>) -> CliResult<()> {
    let mut tensors = state::state_dict(model);
    tensors.extend(optimizer.iter().map(|(n, t)| (format!("{OPTIMIZER_PREFIX}{n}"), t.clone())));
    let bytes = state::to_safetensors_bytes(&tensors, metadata)?;
    write_atomic(path, &bytes)
}
