//! State dicts: the named tensors of a module, saved to and loaded from safetensors files,
//! loaded back by name, or transferred between models whose names differ.
//!
//! ```
//! use std::collections::BTreeMap;
//! use shendu_core::DType;
//! use shendu_nn::{layers::Linear, state, Sequential};
//! let dir = std::env::temp_dir().join(format!("shendu-doc-state-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("model.safetensors");
//! let a = Sequential::new().push(Linear::new(4, 2, DType::F32).unwrap());
//! state::save_module(&path, &a, &BTreeMap::new()).unwrap();
//! let b = Sequential::new().push(Linear::new(4, 2, DType::F32).unwrap());
//! let report = state::load_module(&path, &b, true).unwrap();
//! assert_eq!(report.loaded, ["0.weight", "0.bias"]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod load;
mod safetensors;
mod transfer;

use std::collections::BTreeMap;
use std::path::Path;

pub use load::{load_state_dict, state_dict, LoadReport};
/// The regex type of [`TransferRule::Regex`].
pub use regex::Regex;
pub use safetensors::{from_safetensors_bytes, load_safetensors, save_safetensors, to_safetensors_bytes, Metadata, NamedTensors};
pub use transfer::{plan_transfer, transfer, TransferPlan, TransferRule};

use crate::{Error, Module, ParamKind, Result};

/// Saves the module's state dict (every parameter and buffer by dotted name) with `metadata`,
/// atomically (see [`save_safetensors`]).
pub fn save_module<M: Module + ?Sized>(path: impl AsRef<Path>, module: &M, metadata: &BTreeMap<String, String>) -> Result<()> {
    save_safetensors(path, &state_dict(module), metadata)
}

/// Loads a safetensors file into the module by name ([`load_state_dict`]); errors name the file.
/// Use [`load_safetensors`] and [`load_state_dict`] to see the metadata too.
pub fn load_module<M: Module + ?Sized>(path: impl AsRef<Path>, module: &M, strict: bool) -> Result<LoadReport> {
    let path = path.as_ref();
    let (tensors, _) = load_safetensors(path)?;
    load_state_dict(module, &tensors, strict).map_err(|e| match e {
        Error::Load { path: None, report } => Error::Load { path: Some(path.to_path_buf()), report },
        other => other,
    })
}

/// Whether `name` lies under `prefix` in the dotted hierarchy: `features.1` covers
/// `features.1.weight` but not `features.10.weight`; the empty prefix covers everything.
fn under(name: &str, prefix: &str) -> bool {
    let prefix = prefix.strip_suffix('.').unwrap_or(prefix);
    prefix.is_empty() || name == prefix || (name.starts_with(prefix) && name[prefix.len()..].starts_with('.'))
}

/// Freezes every weight whose name satisfies `pred` (buffers are never trained anyway) and
/// returns their names, in module order.
pub fn freeze_where<M: Module + ?Sized>(module: &M, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names = Vec::new();
    module.visit_params("", &mut |name, p| {
        if p.kind() == ParamKind::Weight && pred(name) {
            p.freeze();
            names.push(name.to_string());
        }
    });
    names
}

/// Unfreezes every weight whose name satisfies `pred`; returns their names.
pub fn unfreeze_where<M: Module + ?Sized>(module: &M, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names = Vec::new();
    module.visit_params("", &mut |name, p| {
        if p.kind() == ParamKind::Weight && pred(name) {
            p.unfreeze();
            names.push(name.to_string());
        }
    });
    names
}

/// Freezes the weights under the dotted `prefix` (`"features"`, `"features.0"`; `""` for all)
/// and returns their names. Unlike a plain string prefix, `features.1` does not cover
/// `features.10`.
///
/// ```
/// use shendu_core::DType;
/// use shendu_nn::{layers::Linear, state, ModuleExt, Sequential};
/// let net = Sequential::new().push(Linear::new(2, 2, DType::F32).unwrap()).push(Linear::new(2, 1, DType::F32).unwrap());
/// assert_eq!(state::freeze(&net, "0"), ["0.weight", "0.bias"]);
/// assert_eq!(net.trainable_params().len(), 2);
/// assert_eq!(state::unfreeze(&net, ""), ["0.weight", "0.bias", "1.weight", "1.bias"]);
/// ```
pub fn freeze<M: Module + ?Sized>(module: &M, prefix: &str) -> Vec<String> {
    freeze_where(module, |n| under(n, prefix))
}

/// Unfreezes the weights under the dotted `prefix` and returns their names.
pub fn unfreeze<M: Module + ?Sized>(module: &M, prefix: &str) -> Vec<String> {
    unfreeze_where(module, |n| under(n, prefix))
}

#[cfg(test)]
mod tests {
    use super::under;

    #[test]
    fn prefixes_follow_dots() {
        assert!(under("features.1.weight", "features.1"));
        assert!(under("features.1.weight", "features.1."));
        assert!(!under("features.10.weight", "features.1"));
        assert!(under("anything", ""));
        assert!(under("fc", "fc"));
    }
}
