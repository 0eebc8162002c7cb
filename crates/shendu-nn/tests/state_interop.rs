//! Acceptance: a state dict written by PyTorch (`reference/gen_state.py`) is read with its
//! names, dtypes, shapes and exact values, and loaded into a shendu model of the same names.

use std::collections::{BTreeMap, HashMap};

use half::{bf16, f16};
use shendu_core::{DType, Tensor};
use shendu_nn::layers::Linear;
use shendu_nn::state::{load_module, load_safetensors, load_state_dict, save_module, state_dict};
use shendu_nn::{join_name, Mode, Module, ModuleExt, Param, Result, Sequential};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/torch_state.safetensors");

fn arange(n: usize, scale: f64, shift: f64) -> Vec<f64> {
    (0..n).map(|i| i as f64 * scale + shift).collect()
}

#[test]
fn reads_torch_names_dtypes_shapes_and_values() {
    let (tensors, meta) = load_safetensors(FILE).unwrap();
    let want_meta: BTreeMap<String, String> =
        [("format", "pt"), ("source", "gen_state.py"), ("epoch", "12")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(meta, want_meta);
    let by: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    assert_eq!(by.len(), 12);
    let check = |name: &str, dtype: DType, dims: &[usize], values: Vec<f64>| {
        let t = by.get(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!((t.dtype(), t.dims()), (dtype, dims), "{name}");
        assert_eq!(t.to_vec_f64().unwrap(), values, "{name}");
    };
    check("features.0.weight", DType::F32, &[3, 4], arange(12, 0.25, -1.0));
    check("features.0.bias", DType::F32, &[3], vec![0.5, -0.5, 1.5]);
    check("features.1.weight", DType::F32, &[3], vec![1.0; 3]);
    check("features.1.bias", DType::F32, &[3], vec![0.0; 3]);
    check("features.1.running_mean", DType::F32, &[3], arange(3, 0.125, 0.0));
    check("features.1.running_var", DType::F32, &[3], arange(3, 1.0, 1.0));
    check("features.1.num_batches_tracked", DType::I64, &[], vec![7.0]);
    check("classifier.weight", DType::F16, &[2, 3], arange(6, 0.5, -1.25));
    check("classifier.bias", DType::BF16, &[2], vec![0.5, -2.0]);
    // 1e-3 is not a dyadic fraction: compare the f64 bits exactly.
    check("extra.scale", DType::F64, &[2, 2], arange(4, 0.125, 1e-3));
    check("extra.mask", DType::U8, &[5], vec![0.0, 1.0, 255.0, 3.0, 4.0]);
    check("extra.index", DType::I64, &[3], vec![-3.0, 0.0, 2147483647.0]);
    // The half types are read as themselves, not through f32.
    assert_eq!(by["classifier.weight"].to_vec::<f16>().unwrap()[0], f16::from_f64(-1.25));
    assert_eq!(by["classifier.bias"].to_vec::<bf16>().unwrap()[1], bf16::from_f64(-2.0));
}

/// BatchNorm1d's state without its forward: two weights and three buffers.
struct NormState {
    weight: Param,
    bias: Param,
    running_mean: Param,
    running_var: Param,
    num_batches_tracked: Param,
}

impl NormState {
    fn new(n: usize) -> NormState {
        NormState {
            weight: Param::new(Tensor::ones(&[n], DType::F32).unwrap()),
            bias: Param::new(Tensor::zeros(&[n], DType::F32).unwrap()),
            running_mean: Param::buffer(Tensor::zeros(&[n], DType::F32).unwrap()),
            running_var: Param::buffer(Tensor::ones(&[n], DType::F32).unwrap()),
            num_batches_tracked: Param::buffer(Tensor::scalar(0i64)),
        }
    }
}

impl Module for NormState {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        Ok(x.clone())
    }
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        f(&join_name(prefix, "weight"), &self.weight);
        f(&join_name(prefix, "bias"), &self.bias);
        f(&join_name(prefix, "running_mean"), &self.running_mean);
        f(&join_name(prefix, "running_var"), &self.running_var);
        f(&join_name(prefix, "num_batches_tracked"), &self.num_batches_tracked);
    }
    fn type_name(&self) -> &'static str {
        "NormState"
    }
}

fn linear_model() -> Sequential {
    Sequential::new()
        .push_named("features", Sequential::new().push(Linear::new(4, 3, DType::F32).unwrap()))
        .push_named("classifier", Linear::new(3, 2, DType::F32).unwrap())
}

#[test]
fn loads_into_a_linear_model_non_strict() {
    let model = linear_model();
    let e = load_module(FILE, &model, true).unwrap_err().to_string();
    // Listed in file order, which PyTorch's writer sorts by dtype width and name.
    assert!(
        e.starts_with(FILE) && e.contains("Unexpected key(s) in state_dict: \"features.1.num_batches_tracked\", \"extra.scale\""),
        "{e}"
    );

    let report = load_module(FILE, &model, false).unwrap();
    assert_eq!(report.loaded, ["features.0.weight", "features.0.bias", "classifier.weight", "classifier.bias"]);
    assert!(report.missing.is_empty());
    assert_eq!(report.unexpected.len(), 8);
    assert_eq!(
        report.converted,
        [("classifier.weight".to_string(), DType::F16, DType::F32), ("classifier.bias".to_string(), DType::BF16, DType::F32)]
    );
    let text = report.to_string();
    assert!(text.contains("\"features.1.num_batches_tracked\"") && text.contains("converted classifier.bias: bf16 -> f32"), "{text}");

    let params: HashMap<String, Param> = model.named_params().into_iter().collect();
    assert_eq!(params["features.0.weight"].value().to_vec_f64().unwrap(), arange(12, 0.25, -1.0));
    assert_eq!(params["classifier.weight"].value().to_vec_f64().unwrap(), arange(6, 0.5, -1.25));
    assert_eq!(params["classifier.bias"].value().to_vec::<f32>().unwrap(), vec![0.5, -2.0]);
    // The loaded model computes with the torch weights: x = ones gives W·1 + b.
    let y = model.forward(&Tensor::ones(&[1, 4], DType::F32).unwrap(), Mode::Eval).unwrap();
    let h: Vec<f64> = (0..3).map(|r| (0..4).map(|c| (r * 4 + c) as f64 * 0.25 - 1.0).sum::<f64>() + [0.5, -0.5, 1.5][r]).collect();
    let want: Vec<f32> =
        (0..2).map(|r| ((0..3).map(|c| ((r * 3 + c) as f64 * 0.5 - 1.25) * h[c]).sum::<f64>() + [0.5, -2.0][r]) as f32).collect();
    assert_eq!(y.to_vec::<f32>().unwrap(), want);
}

#[test]
fn loads_buffers_strictly_and_saves_back() {
    let model = Sequential::new()
        .push_named("features", Sequential::new().push(Linear::new(4, 3, DType::F32).unwrap()).push(NormState::new(3)))
        .push_named("classifier", Linear::new(3, 2, DType::F32).unwrap());
    let (tensors, _) = load_safetensors(FILE).unwrap();
    let torch_part: Vec<(String, Tensor)> = tensors.into_iter().filter(|(n, _)| !n.starts_with("extra.")).collect();
    let report = load_state_dict(&model, &torch_part, true).unwrap();
    assert_eq!(report.loaded.len(), 9);
    let params: HashMap<String, Param> = model.named_params().into_iter().collect();
    assert_eq!(params["features.1.num_batches_tracked"].value().to_vec::<i64>().unwrap(), vec![7]);
    assert_eq!(params["features.1.running_var"].value().to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);

    // shendu writes it back; a fresh model reads it strictly, every value equal.
    let dir = std::env::temp_dir().join(format!("shendu-state-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    save_module(&path, &model, &BTreeMap::from([("epoch".to_string(), "13".to_string())])).unwrap();
    let copy = Sequential::new()
        .push_named("features", Sequential::new().push(Linear::new(4, 3, DType::F32).unwrap()).push(NormState::new(3)))
        .push_named("classifier", Linear::new(3, 2, DType::F32).unwrap());
    assert!(load_module(&path, &copy, true).unwrap().is_exact());
    for ((n, a), (_, b)) in state_dict(&model).iter().zip(state_dict(&copy)) {
        assert_eq!(a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap(), "{n}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
