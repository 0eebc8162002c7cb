//! A trained model read back from a checkpoint or weights file, with what its metadata says about
//! the inputs it expects: shared by `shendu test` and `shendu predict`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shendu_data::{Normalize, Transform};
use shendu_nn::Module;

use super::{CliError, CliResult};
use crate::train::checkpoint::Checkpoint;

/// A model built from the zoo and loaded strictly from a file.
pub struct LoadedModel {
    /// The file it came from.
    pub path: PathBuf,
    pub model: Box<dyn Module>,
    /// The zoo name it was built as.
    pub name: String,
    /// Channels, height, width of one input (metadata `input`, default `1x28x28`).
    pub input: (usize, usize, usize),
    /// The number of classes (metadata `classes`, default 10).
    pub classes: usize,
    /// `(mean, std)` applied to pixels in [0, 1] before the model (metadata `normalize`).
    pub normalize: Option<(f32, f32)>,
    /// A name per class: metadata `labels` (comma separated) when it has one per class, else
    /// the class indices.
    pub labels: Vec<String>,
    pub metadata: BTreeMap<String, String>,
}

impl LoadedModel {
    /// Reads `path`, builds the model its metadata names (or `model_override`, the `--model`
    /// flag) and loads the weights strictly. Every error names the file or the flag and is one
    /// line.
    pub fn open(path: &Path, model_override: Option<&str>) -> CliResult<LoadedModel> {
        Self::open_inner(path, model_override).map_err(single_line)
    }

    fn open_inner(path: &Path, model_override: Option<&str>) -> CliResult<LoadedModel> {
        if path.is_dir() {
            return Err(CliError::bad(format!("{}: is a directory, not a weights file", path.display())));
        }
        let ckpt = Checkpoint::load(path)?;
        let input = match ckpt.metadata.get("input") {
            None => (1, 28, 28),
            Some(raw) => parse_input(raw).ok_or_else(|| {
                CliError::bad(format!("{}: metadata 'input' = '{raw}' is not CHANNELSxHEIGHTxWIDTH (e.g. 1x28x28)", path.display()))
            })?,
        };
        let classes: usize = if ckpt.metadata.contains_key("classes") { ckpt.meta(path, "classes")? } else { 10 };
        if classes == 0 {
            return Err(CliError::bad(format!("{}: metadata 'classes' = 0; a classifier needs at least one class", path.display())));
        }
        let normalize = match ckpt.metadata.get("normalize") {
            None => None,
            Some(raw) => Some(parse_normalize(raw).ok_or_else(|| {
                CliError::bad(format!(
                    "{}: metadata 'normalize' = '{raw}' is not MEAN,STD with a finite mean and a std above 0",
                    path.display()
                ))
            })?),
        };
        let (model, name) = ckpt.build_model(path, model_override).map_err(|e| match (e, model_override) {
            // The zoo names the flag; here the name came from the file.
            (CliError::BadInput(m), None) if m.starts_with("--model: ") => {
                CliError::bad(format!("{}: metadata 'model': {}; pass --model", path.display(), &m["--model: ".len()..]))
            }
            (e, _) => e,
        })?;
        let labels = match ckpt.metadata.get("labels").map(|l| l.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>()) {
            Some(l) if l.len() == classes => l,
            _ => (0..classes).map(|c| c.to_string()).collect(),
        };
        Ok(LoadedModel { path: path.to_path_buf(), model, name, input, classes, normalize, labels, metadata: ckpt.metadata })
    }

    /// The per-sample transform that prepares data as training did (normalization), if any.
    pub fn transform(&self) -> Option<Arc<dyn Transform>> {
        self.normalize.map(|(mean, std)| Arc::new(Normalize { mean: vec![mean], std: vec![std] }) as Arc<dyn Transform>)
    }

    /// Applies the normalization to pixels already scaled to [0, 1], in place.
    pub fn prepare(&self, pixels: &mut [f32]) {
        if let Some((mean, std)) = self.normalize {
            for p in pixels {
                *p = (*p - mean) / std;
            }
        }
    }

    /// The input size as `CxHxW`.
    pub fn input_string(&self) -> String {
        let (c, h, w) = self.input;
        format!("{c}x{h}x{w}")
    }
}

/// `"1x28x28"` as `(1, 28, 28)`; every dimension at least 1.
pub fn parse_input(raw: &str) -> Option<(usize, usize, usize)> {
    let dims: Vec<usize> = raw.split('x').map(|d| d.trim().parse().ok().filter(|&d: &usize| d > 0)).collect::<Option<_>>()?;
    match dims[..] {
        [c, h, w] => Some((c, h, w)),
        _ => None,
    }
}

/// `"0.1307,0.3081"` as `(0.1307, 0.3081)`; the std must be above 0.
pub fn parse_normalize(raw: &str) -> Option<(f32, f32)> {
    let (m, s) = raw.split_once(',')?;
    let (m, s): (f32, f32) = (m.trim().parse().ok()?, s.trim().parse().ok()?);
    (m.is_finite() && s.is_finite() && s > 0.0).then_some((m, s))
}

/// The error with its lines joined by `; `: the command prints one line per failure.
pub fn single_line(e: CliError) -> CliError {
    let join = |m: String| {
        let mut out = String::new();
        for line in m.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !out.is_empty() {
                out.push_str(if out.ends_with(':') { " " } else { "; " });
            }
            out.push_str(line);
        }
        out
    };
    match e {
        CliError::BadInput(m) => CliError::BadInput(join(m)),
        CliError::Internal(m) => CliError::Internal(join(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metadata_values() {
        assert_eq!(parse_input("1x28x28"), Some((1, 28, 28)));
        assert_eq!(parse_input("28x28"), None);
        assert_eq!(parse_input("0x28x28"), None);
        assert_eq!(parse_normalize("0.1307,0.3081"), Some((0.1307, 0.3081)));
        assert_eq!(parse_normalize("0.1,0"), None);
        assert_eq!(parse_normalize("0.1"), None);
        let e = single_line(CliError::bad("f: Error(s):\n\tMissing a.\n\tUnexpected b."));
        assert_eq!(e.to_string(), "f: Error(s): Missing a.; Unexpected b.");
    }
}
