//! Loading a state dict into a module by name, PyTorch's `load_state_dict`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use shendu_core::{DType, Tensor};

use crate::{Error, Module, ModuleExt, Param, Result};

/// What [`load_state_dict`] did, name by name. Names are in module order, except `unexpected`
/// (in the order of the given tensors).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Parameters and buffers whose values were replaced.
    pub loaded: Vec<String>,
    /// Module names with no tensor of that name: left as they were.
    pub missing: Vec<String>,
    /// Tensor names the module does not have.
    pub unexpected: Vec<String>,
    /// `(name, model shape, file shape)`: not loaded.
    pub shape_mismatch: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// `(name, model dtype, file dtype)` where no conversion applies (an integer tensor for a
    /// float parameter, or the reverse): not loaded.
    pub dtype_mismatch: Vec<(String, DType, DType)>,
    /// `(name, file dtype, model dtype)`: loaded, converted between float dtypes (a f16, bf16 or
    /// f64 checkpoint into f32 parameters). Also listed in `loaded`.
    pub converted: Vec<(String, DType, DType)>,
}

impl LoadReport {
    /// Nothing missing, unexpected or mismatched (conversions are fine).
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.shape_mismatch.is_empty() && self.dtype_mismatch.is_empty()
    }

    /// The lines naming what did not fit, PyTorch's wording, empty when exact.
    fn problem_lines(&self) -> Vec<String> {
        let quoted = |names: &[String]| names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
        let mut lines = Vec::new();
        if !self.missing.is_empty() {
            lines.push(format!("Missing key(s) in state_dict: {}.", quoted(&self.missing)));
        }
        if !self.unexpected.is_empty() {
            lines.push(format!("Unexpected key(s) in state_dict: {}.", quoted(&self.unexpected)));
        }
        for (name, model, file) in &self.shape_mismatch {
            lines.push(format!(
                "size mismatch for {name}: copying a param with shape {file:?} from checkpoint, the shape in current model is {model:?}."
            ));
        }
        for (name, model, file) in &self.dtype_mismatch {
            lines.push(format!("dtype mismatch for {name}: the checkpoint holds {file}, the current model {model} (no conversion between integers and floats)."));
        }
        lines
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loaded {} tensor(s): {} missing, {} unexpected, {} shape mismatch(es), {} dtype mismatch(es), {} converted",
            self.loaded.len(),
            self.missing.len(),
            self.unexpected.len(),
            self.shape_mismatch.len(),
            self.dtype_mismatch.len(),
            self.converted.len()
        )?;
        for line in self.problem_lines() {
            write!(f, "\n  {line}")?;
        }
        for (name, from, to) in &self.converted {
            write!(f, "\n  converted {name}: {from} -> {to}")?;
        }
        Ok(())
    }
}

/// Whether a `file` tensor may be loaded into a `model` parameter, converting if need be.
pub(crate) fn convertible(file: DType, model: DType) -> bool {
    file == model || (file.is_float() && model.is_float())
}

/// The values of every parameter and buffer with its dotted name, in module order (PyTorch's
/// `module.state_dict()`). The tensors are detached views of the current values, not copies.
pub fn state_dict<M: Module + ?Sized>(module: &M) -> Vec<(String, Tensor)> {
    module.named_params().into_iter().map(|(n, p)| (n, p.value())).collect()
}

/// Copies `tensors` into the module's parameters and buffers by name.
///
/// Float tensors of another float dtype are converted (reported in `converted`). With `strict`,
/// any missing, unexpected or mismatched name is an [`Error::Load`] listing all of them, and the
/// module is left untouched: everything is checked before the first value is copied. Without
/// `strict`, whatever fits is loaded and the report says what did not. Duplicate names among
/// `tensors` are an error either way.
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::Linear, state::{load_state_dict, state_dict}, Sequential};
/// let a = Sequential::new().push(Linear::new(3, 2, DType::F32).unwrap());
/// let b = Sequential::new().push(Linear::new(3, 2, DType::F32).unwrap());
/// let report = load_state_dict(&b, &state_dict(&a), true).unwrap();
/// assert_eq!(report.loaded, ["0.weight", "0.bias"]);
/// let mut sd = state_dict(&a);
/// sd[1].0 = "0.bias_renamed".into();
/// let e = load_state_dict(&b, &sd, true).unwrap_err().to_string();
/// assert!(e.contains("Missing key(s) in state_dict: \"0.bias\".") && e.contains("Unexpected key(s) in state_dict: \"0.bias_renamed\"."));
/// ```
pub fn load_state_dict<M: Module + ?Sized>(module: &M, tensors: &[(String, Tensor)], strict: bool) -> Result<LoadReport> {
    let mut by_name: HashMap<&str, &Tensor> = HashMap::with_capacity(tensors.len());
    let mut duplicates = Vec::new();
    for (name, t) in tensors {
        if by_name.insert(name.as_str(), t).is_some() && !duplicates.contains(name) {
            duplicates.push(name.clone());
        }
    }
    if !duplicates.is_empty() {
        return Err(Error::Load {
            path: None,
            report: format!("Error(s) in loading state_dict for {}: duplicate key(s) in the tensors: {duplicates:?}", module.type_name()),
        });
    }
    let params = module.named_params();
    let mut report = LoadReport::default();
    let mut copies: Vec<(&Param, Tensor)> = Vec::new();
    let mut known = HashSet::with_capacity(params.len());
    for (name, p) in &params {
        known.insert(name.as_str());
        let Some(&t) = by_name.get(name.as_str()) else {
            report.missing.push(name.clone());
            continue;
        };
        if t.dims() != p.dims() {
            report.shape_mismatch.push((name.clone(), p.dims().to_vec(), t.dims().to_vec()));
        } else if !convertible(t.dtype(), p.dtype()) {
            report.dtype_mismatch.push((name.clone(), p.dtype(), t.dtype()));
        } else {
            if t.dtype() != p.dtype() {
                report.converted.push((name.clone(), t.dtype(), p.dtype()));
            }
            report.loaded.push(name.clone());
            copies.push((p, t.clone()));
        }
    }
    report.unexpected = tensors.iter().filter(|(n, _)| !known.contains(n.as_str())).map(|(n, _)| n.clone()).collect();
    if strict && !report.is_exact() {
        let mut msg = format!("Error(s) in loading state_dict for {}:", module.type_name());
        for line in report.problem_lines() {
            msg.push_str("\n\t");
            msg.push_str(&line);
        }
        return Err(Error::Load { path: None, report: msg });
    }
    // Convert everything first so that a failure cannot leave the module half loaded.
    let converted: Vec<(&Param, Tensor)> = copies.into_iter().map(|(p, t)| Ok((p, t.to_dtype(p.dtype())?))).collect::<Result<_>>()?;
    for (p, t) in converted {
        p.set(&t)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Linear;
    use crate::Sequential;

    fn net() -> Sequential {
        Sequential::new().push(Linear::new(3, 2, DType::F32).unwrap()).push(Linear::new(2, 1, DType::F32).unwrap())
    }

    #[test]
    fn strict_failure_lists_everything_and_changes_nothing() {
        let a = net();
        let before = state_dict(&a).into_iter().map(|(_, t)| t.to_vec::<f32>().unwrap()).collect::<Vec<_>>();
        let sd = vec![
            ("0.weight".to_string(), Tensor::zeros(&[2, 3], DType::F32).unwrap()),
            ("0.bias".to_string(), Tensor::zeros(&[5], DType::F32).unwrap()),
            ("1.weight".to_string(), Tensor::zeros(&[1, 2], DType::I64).unwrap()),
            ("extra".to_string(), Tensor::zeros(&[1], DType::F32).unwrap()),
        ];
        let e = load_state_dict(&a, &sd, true).unwrap_err().to_string();
        for want in [
            "Missing key(s) in state_dict: \"1.bias\".",
            "Unexpected key(s) in state_dict: \"extra\".",
            "size mismatch for 0.bias: copying a param with shape [5] from checkpoint, the shape in current model is [2].",
            "dtype mismatch for 1.weight: the checkpoint holds i64, the current model f32",
        ] {
            assert!(e.contains(want), "{e}\nlacks {want}");
        }
        let after = state_dict(&a).into_iter().map(|(_, t)| t.to_vec::<f32>().unwrap()).collect::<Vec<_>>();
        assert_eq!(before, after);

        let r = load_state_dict(&a, &sd, false).unwrap();
        assert_eq!(r.loaded, ["0.weight"]);
        assert_eq!(a.named_params()[0].1.value().to_vec::<f32>().unwrap(), vec![0.0; 6]);
        assert_eq!(r.missing, ["1.bias"]);
        assert!(r.to_string().starts_with("loaded 1 tensor(s): 1 missing, 1 unexpected, 1 shape mismatch(es), 1 dtype mismatch(es)"));
    }

    #[test]
    fn converts_half_and_double() {
        let a = net();
        let sd: Vec<(String, Tensor)> = state_dict(&net())
            .into_iter()
            .enumerate()
            .map(|(i, (n, t))| (n, t.to_dtype(if i % 2 == 0 { DType::F16 } else { DType::F64 }).unwrap()))
            .collect();
        let r = load_state_dict(&a, &sd, true).unwrap();
        assert_eq!(r.converted.len(), 4);
        assert_eq!(r.converted[0], ("0.weight".to_string(), DType::F16, DType::F32));
        assert_eq!(a.named_params()[1].1.value().to_vec::<f32>().unwrap(), sd[1].1.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap());
        let dup = vec![sd[0].clone(), sd[0].clone()];
        assert!(load_state_dict(&a, &dup, false).unwrap_err().to_string().contains("duplicate key(s)"));
    }
}
