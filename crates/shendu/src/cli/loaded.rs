//! A trained model read back from a checkpoint or weights file, with what its metadata says about
//! the inputs it expects: shared by `shendu test` and `shendu predict`.
//!
//! Three ways to a network: a Darknet cfg (`--cfg`) with a Darknet `.weights` file or a
//! safetensors file; a checkpoint that describes itself (metadata `netspec_cfg`, the cfg text of
//! the NetSpec it was trained as); or a zoo model named by the metadata `model` (or `--model`).
//! Networks built from a NetSpec return their logits (before a trailing `[softmax]`), like the
//! zoo models, so the commands apply the softmax exactly once.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shendu_core::DType;
use shendu_data::{Normalize, Transform};
use shendu_nn::{state, Module};
use shendu_vision::darknet;
use shendu_vision::netspec::NetSpec;

use super::{CliError, CliResult};
use crate::train::checkpoint::Checkpoint;

/// The metadata key holding the cfg text (`darknet::to_cfg`) of the NetSpec a checkpoint's
/// network was built from.
pub const NETSPEC_CFG_KEY: &str = "netspec_cfg";

/// A model built from a cfg, a checkpoint's `netspec_cfg` or the zoo, loaded strictly from a
/// file.
pub struct LoadedModel {
    /// The weights file it came from.
    pub path: PathBuf,
    /// The file that describes the network (the cfg with `--cfg`, else the weights file): errors
    /// about the input shape name it.
    pub described_by: PathBuf,
    pub model: Box<dyn Module>,
    /// The zoo name it was built as, or the cfg it was built from.
    pub name: String,
    /// Channels, height, width of one input (the cfg's `[net]`, else metadata `input`, default
    /// `1x28x28`).
    pub input: (usize, usize, usize),
    /// The number of classes (the cfg's output size, else metadata `classes`, default 10).
    pub classes: usize,
    /// `(mean, std)` applied to pixels in [0, 1] before the model (metadata `normalize`).
    /// Darknet `.weights` have none: Darknet feeds bytes / 255.
    pub normalize: Option<(f32, f32)>,
    /// A name per class: metadata `labels` (comma separated) when it has one per class, else
    /// the class indices.
    pub labels: Vec<String>,
    pub metadata: BTreeMap<String, String>,
}

impl LoadedModel {
    /// Reads `path`, builds the model and loads the weights strictly: from the cfg `cfg` when
    /// given (`path` is then a Darknet `.weights` or a safetensors file, told apart by content),
    /// else from the file's `netspec_cfg` metadata, else the zoo model its metadata names (or
    /// `model_override`, the `--model` flag, which also wins over `netspec_cfg`). Every error
    /// names the file or the flag and is one line.
    pub fn open(path: &Path, model_override: Option<&str>, cfg: Option<&Path>) -> CliResult<LoadedModel> {
        Self::open_inner(path, model_override, cfg).map_err(single_line)
    }

    fn open_inner(path: &Path, model_override: Option<&str>, cfg: Option<&Path>) -> CliResult<LoadedModel> {
        if path.is_dir() {
            return Err(CliError::bad(format!("{}: is a directory, not a weights file", path.display())));
        }
        if let Some(cfg) = cfg {
            return Self::open_cfg(path, cfg);
        }
        if !is_safetensors(path)? {
            return Err(CliError::bad(format!(
                "{}: not a safetensors checkpoint; for a Darknet .weights file pass the network's --cfg FILE",
                path.display()
            )));
        }
        let ckpt = Checkpoint::load(path)?;
        if let (Some(text), None) = (ckpt.metadata.get(NETSPEC_CFG_KEY), model_override) {
            let origin = "<checkpoint>:netspec_cfg";
            let parsed = darknet::parse_cfg(text, Some(origin))
                .map_err(|e| CliError::bad(format!("{}: metadata '{NETSPEC_CFG_KEY}': {e}", path.display())))?;
            print_notes(&parsed.notes);
            let name = ckpt.metadata.get("model").cloned().unwrap_or_else(|| NETSPEC_CFG_KEY.to_string());
            return Self::from_spec(&parsed.spec, path, path, name, Weights::Checkpoint(ckpt));
        }
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
        let normalize = metadata_normalize(&ckpt.metadata, path)?;
        let (model, name) = ckpt.build_model(path, model_override).map_err(|e| match (e, model_override) {
            // The zoo names the flag; here the name came from the file.
            (CliError::BadInput(m), None) if m.starts_with("--model: ") => {
                CliError::bad(format!("{}: metadata 'model': {}; pass --model", path.display(), &m["--model: ".len()..]))
            }
            (e, _) => e,
        })?;
        let labels = labels(&ckpt.metadata, classes);
        Ok(LoadedModel {
            path: path.to_path_buf(),
            described_by: path.to_path_buf(),
            model,
            name,
            input,
            classes,
            normalize,
            labels,
            metadata: ckpt.metadata,
        })
    }

    /// The network of the cfg file `cfg` with the weights of `path` (Darknet or safetensors).
    fn open_cfg(path: &Path, cfg: &Path) -> CliResult<LoadedModel> {
        let parsed = darknet::read_cfg(cfg)?;
        print_notes(&parsed.notes);
        let weights = if is_safetensors(path)? { Weights::Checkpoint(Checkpoint::load(path)?) } else { Weights::Darknet };
        Self::from_spec(&parsed.spec, path, cfg, cfg.display().to_string(), weights)
    }

    /// Builds `spec` in f32, loads `weights` into it and reads the input and classes off the spec.
    fn from_spec(spec: &NetSpec, path: &Path, described_by: &Path, name: String, weights: Weights) -> CliResult<LoadedModel> {
        let out = spec.output_shape()?;
        if out.h * out.w != 1 {
            return Err(CliError::bad(format!(
                "{}: the network outputs {out} (C x H x W) per image; a classifier outputs C x 1 x 1 class scores",
                described_by.display()
            )));
        }
        let mut net = spec.build(DType::F32)?;
        net.set_logits_output(true);
        let metadata = match weights {
            Weights::Darknet => {
                darknet::weights::load_weights(path, &net, None)?;
                BTreeMap::new()
            }
            Weights::Checkpoint(ckpt) => {
                state::load_state_dict(&net, &ckpt.model, true).map_err(|e| CliError::bad(format!("{}: {e}", path.display())))?;
                ckpt.metadata
            }
        };
        let classes = out.c;
        Ok(LoadedModel {
            path: path.to_path_buf(),
            described_by: described_by.to_path_buf(),
            model: Box::new(net),
            name,
            input: (spec.net.channels, spec.net.height, spec.net.width),
            classes,
            normalize: metadata_normalize(&metadata, path)?,
            labels: labels(&metadata, classes),
            metadata,
        })
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

/// Where the weights of a network built from a NetSpec come from.
enum Weights {
    /// A Darknet `.weights` file: read by the network's layout.
    Darknet,
    /// A safetensors file already read: loaded strictly by name.
    Checkpoint(Checkpoint),
}

/// Darknet's notes about a cfg (unused keys and the like), one per line on stderr.
fn print_notes(notes: &[String]) {
    for note in notes {
        eprintln!("{note}");
    }
}

/// Whether `path` holds a safetensors file (an 8-byte little-endian header length that fits the
/// file, then `{`) rather than a Darknet `.weights` file (three int32 version numbers first).
/// A file that cannot be opened is an error naming it.
pub fn is_safetensors(path: &Path) -> CliResult<bool> {
    let bad = |e: std::io::Error| CliError::bad(format!("{}: {e}", path.display()));
    let mut f = std::fs::File::open(path).map_err(bad)?;
    let len = f.metadata().map_err(bad)?.len();
    let mut head = Vec::with_capacity(9);
    f.by_ref().take(9).read_to_end(&mut head).map_err(bad)?;
    let Some((size, rest)) = head.split_first_chunk::<8>() else { return Ok(false) };
    Ok(rest.first() == Some(&b'{') && u64::from_le_bytes(*size) <= len - 8)
}

/// The metadata `normalize`, checked.
fn metadata_normalize(metadata: &BTreeMap<String, String>, path: &Path) -> CliResult<Option<(f32, f32)>> {
    match metadata.get("normalize") {
        None => Ok(None),
        Some(raw) => Ok(Some(parse_normalize(raw).ok_or_else(|| {
            CliError::bad(format!(
                "{}: metadata 'normalize' = '{raw}' is not MEAN,STD with a finite mean and a std above 0",
                path.display()
            ))
        })?)),
    }
}

/// The metadata `labels` when it has one per class, else the class indices.
fn labels(metadata: &BTreeMap<String, String>, classes: usize) -> Vec<String> {
    match metadata.get("labels").map(|l| l.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>()) {
        Some(l) if l.len() == classes => l,
        _ => (0..classes).map(|c| c.to_string()).collect(),
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
