//! The zoo's `NetSpec`s against torchvision (timm for DPN-92; torchvision's classes reshaped for
//! the 28x28 models): the same parameter names and
//! shapes in the same order, the same parameter counts; every model's shapes at its natural
//! input; the papers' parameter counts for the models torchvision lacks.

use shendu_nn::ModuleExt;
use shendu_vision::netspec::{Chw, Layer, NetSpec, ParamKind};
use shendu_vision::zoo::{self, ModelOptions, MODELS};

fn reference() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/torchvision_params.json");
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn spec(name: &str) -> NetSpec {
    zoo::spec(name, &ModelOptions::for_model(name).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Multiply-accumulates of one image's forward pass through the convs and connected layers.
fn macs(spec: &NetSpec) -> usize {
    let shapes = spec.shapes().unwrap();
    spec.layers
        .iter()
        .zip(&shapes)
        .map(|(l, s)| match &l.layer {
            Layer::Conv(c) => s.output.len() * (s.input.c / c.groups) * c.size * c.size,
            Layer::Connected(c) => c.output * s.input.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn torchvision_names_shapes_and_counts() {
    let reference = reference();
    let models = reference["models"].as_object().unwrap();
    assert_eq!(models.len(), 13);
    for (name, want) in models {
        let spec = spec(name);
        let params = spec.params().unwrap();
        let want_sd = want["state_dict"].as_array().unwrap();
        let got: Vec<(String, Vec<usize>)> = params.iter().map(|p| (p.name.clone(), p.shape.clone())).collect();
        let expected: Vec<(String, Vec<usize>)> = want_sd
            .iter()
            .map(|e| {
                let shape = e["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                (e["name"].as_str().unwrap().to_string(), shape)
            })
            .collect();
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g, e, "{name}: state-dict entry {i} differs");
        }
        assert_eq!(got.len(), expected.len(), "{name}: {} tensors, torchvision has {}", got.len(), expected.len());
        let count = want["param_count"].as_u64().unwrap() as usize;
        assert_eq!(spec.param_count().unwrap(), count, "{name}: parameter count");
        // num_batches_tracked is a counter, running stats are buffers, the rest is trained.
        for p in &params {
            let kind = if p.name.ends_with("num_batches_tracked") {
                ParamKind::Counter
            } else if p.name.ends_with("running_mean") || p.name.ends_with("running_var") {
                ParamKind::Buffer
            } else {
                ParamKind::Weight
            };
            assert_eq!(p.kind, kind, "{name}: {}", p.name);
        }
    }
}

#[test]
fn every_model_fits_its_natural_input() {
    for (name, _) in MODELS {
        let opts = ModelOptions::for_model(name).unwrap();
        let spec = spec(name);
        assert_eq!(spec.output_shape().unwrap(), Chw::new(opts.classes, 1, 1), "{name}");
        let count = spec.param_count().unwrap();
        eprintln!("{name:>20}: {:>10} parameters, {:>8.1} MMACs at {:?}", count, macs(&spec) as f64 / 1e6, opts.input_hw);
        // Other class counts and input channels reach the first and last layers.
        let other = ModelOptions { in_channels: 2, classes: 7, ..opts };
        let s = zoo::spec(name, &other).unwrap();
        assert_eq!(s.output_shape().unwrap(), Chw::new(7, 1, 1), "{name}");
        let (h, w) = opts.input_hw;
        let first = &s.params().unwrap()[0];
        let want = if matches!(s.layers[first.layer].layer, Layer::Connected(_)) { 2 * h * w } else { 2 };
        assert_eq!(first.shape[1], want, "{name}");
    }
}

#[test]
fn papers_parameter_counts() {
    // He et al. 2016 Table 6 (option A): 0.27M and 0.85M; these are the exact counts of that
    // architecture with batch norm and a 10-class fc.
    assert_eq!(spec("resnet20").param_count().unwrap(), 269_722);
    assert_eq!(spec("resnet56").param_count().unwrap(), 853_018);
    // Zagoruyko & Komodakis: WRN-28-10 36.5M (their code: 36,479,194 on CIFAR-10).
    assert_eq!(spec("wrn28_10").param_count().unwrap(), 36_479_194);
    // Huang et al.: DenseNet-BC (L=100, k=12) 0.8M.
    let densenet_bc = spec("densenet_bc100").param_count().unwrap();
    assert_eq!(densenet_bc, 769_162);
    // Howard et al. Table 8: 1.0 MobileNet-224 4.2M.
    let v1 = spec("mobilenet_v1").param_count().unwrap();
    assert_eq!((v1 as f64 / 1e5).round(), 42.0, "{v1}");
    // Megvii's ShuffleNetV1 1.0x g=3: 1.9M.
    let v1 = spec("shufflenet_v1").param_count().unwrap();
    assert_eq!((v1 as f64 / 1e5).round(), 19.0, "{v1}");
    // DiracNet-18 in ReLU form: ResNet-18's convs less its three 1x1 projections, plus a and b.
    let dirac = spec("diracnet18").param_count().unwrap();
    assert_eq!((dirac as f64 / 1e5).round(), 115.0, "{dirac}");
    // Option B adds the two 1x1 projections with their batch norms.
    let b = zoo::cifar_resnet(&ModelOptions::cifar10(), 20, zoo::CifarShortcut::B).unwrap();
    assert_eq!(b.param_count().unwrap(), 269_722 + 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64);
}

#[test]
fn lenet_and_mlp_specs_name_what_the_modules_hold() {
    let opts = ModelOptions::mnist();
    for (spec, module) in [
        (zoo::lenet5_spec(&opts).unwrap(), Box::new(zoo::lenet5(&opts).unwrap()) as Box<dyn shendu_nn::Module>),
        (zoo::mlp_spec(&opts, &[512, 512]).unwrap(), Box::new(zoo::mlp(&opts, &[512, 512]).unwrap())),
    ] {
        let want: Vec<(String, Vec<usize>)> = module.named_params().iter().map(|(n, p)| (n.clone(), p.value().dims().to_vec())).collect();
        let got: Vec<(String, Vec<usize>)> = spec.params().unwrap().into_iter().map(|p| (p.name, p.shape)).collect();
        assert_eq!(got, want);
    }
}

#[test]
fn mnist_models_are_small() {
    for name in ["mobilenet_v2_mnist", "shufflenet_v2_mnist"] {
        let spec = spec(name);
        let shapes = spec.shapes().unwrap();
        // Three downsamplings: the last conv sees 4x4.
        let last_conv = spec.layers.iter().rposition(|l| matches!(l.layer, Layer::Conv(_))).unwrap();
        assert_eq!((shapes[last_conv].output.h, shapes[last_conv].output.w), (4, 4), "{name}");
        assert!(macs(&spec) < 12_000_000, "{name}: {} MACs", macs(&spec));
    }
}

#[test]
fn options_and_errors() {
    let imagenet = ModelOptions::imagenet();
    // depth and width replace what the name implies.
    let r50 = zoo::spec("resnet18", &ModelOptions { depth: Some(50), ..imagenet.clone() }).unwrap();
    assert_eq!(r50.param_count().unwrap(), zoo::spec("resnet50", &imagenet).unwrap().param_count().unwrap());
    let wide = zoo::spec("resnet50", &ModelOptions { width: Some(2.0), ..imagenet.clone() }).unwrap();
    assert_eq!(wide.params().unwrap(), zoo::spec("wide_resnet50_2", &imagenet).unwrap().params().unwrap());
    let x05 = zoo::spec("shufflenet_v2_x1_0", &ModelOptions { width: Some(0.5), ..imagenet.clone() }).unwrap();
    assert_eq!(x05, zoo::spec("shufflenet_v2_x0_5", &imagenet).unwrap());
    let r32 = zoo::spec("resnet20", &ModelOptions { depth: Some(32), ..ModelOptions::cifar10() }).unwrap();
    assert_eq!(r32.param_count().unwrap(), 464_154);

    let err = |name: &str, opts: ModelOptions| zoo::spec(name, &opts).unwrap_err().to_string();
    let e = err("resnet18", ModelOptions { depth: Some(19), ..imagenet.clone() });
    assert!(e.contains("depth 19") && e.contains("18, 34, 50"), "{e}");
    let e = err("resnet18", ModelOptions { width: Some(2.0), ..imagenet.clone() });
    assert!(e.contains("basic blocks"), "{e}");
    let e = err("dpn92", ModelOptions { width: Some(2.0), ..imagenet.clone() });
    assert!(e.contains("dpn92") && e.contains("no width"), "{e}");
    let e = err("resnet20", ModelOptions { depth: Some(21), ..ModelOptions::cifar10() });
    assert!(e.contains("6n + 2"), "{e}");
    let e = err("mobilenet_v2", ModelOptions { width: Some(-1.0), ..imagenet.clone() });
    assert!(e.contains("positive"), "{e}");
    let e = err("alexnet", imagenet);
    assert!(e.contains("unknown model 'alexnet'") && e.contains("resnet18"), "{e}");
    // Too small an input is the spec's located shape error, not a panic.
    let tiny = zoo::spec("lenet", &ModelOptions { input_hw: (8, 8), ..ModelOptions::mnist() }).unwrap();
    let e = tiny.shapes().unwrap_err().to_string();
    assert!(e.contains("layer") && e.contains("does not fit"), "{e}");
}

/// Writes every zoo spec as JSON for `tests/reference/check_zoo_forward.py`, which runs the
/// specs in PyTorch with the reference models' weights and compares the outputs (a check of
/// what the layers compute, which names and shapes alone cannot give). Run with
/// `cargo test -p shendu-vision --test zoo dump_specs -- --ignored` (writes
/// `target/zoo_specs.json`).
#[test]
#[ignore]
fn dump_specs() {
    use serde_json::json;
    use shendu_vision::netspec::Activation;
    let act = |a: Activation| a.name();
    let mut models = serde_json::Map::new();
    for (name, _) in MODELS {
        let spec = spec(name);
        let layers: Vec<serde_json::Value> = spec
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let named = json!({"name": spec.layer_name(i), "bn_name": spec.bn_name(i)});
                let mut v = match &l.layer {
                    Layer::Conv(c) => json!({"type": "conv", "filters": c.filters, "size": c.size, "stride": c.stride_x,
                        "padding": c.padding, "groups": c.groups, "dilation": c.dilation, "act": act(c.activation),
                        "bn": c.batch_normalize, "bias": c.bias, "dirac": c.dirac}),
                    Layer::Connected(c) => {
                        json!({"type": "fc", "out": c.output, "act": act(c.activation), "bias": c.bias, "bn": c.batch_normalize})
                    }
                    Layer::MaxPool(p) => json!({"type": "maxpool", "size": p.size, "stride": p.stride_x, "padding": p.padding}),
                    Layer::LocalAvgPool(p) => json!({"type": "local_avgpool", "size": p.size, "stride": p.stride_x, "padding": p.padding}),
                    Layer::AvgPool => json!({"type": "avgpool"}),
                    Layer::Route(r) => {
                        json!({"type": "route", "layers": r.layers, "groups": r.groups, "group_id": r.group_id, "slice": r.slice})
                    }
                    Layer::Shortcut(s) => json!({"type": "shortcut", "from": s.from, "act": act(s.activation)}),
                    Layer::Dropout { .. } => json!({"type": "dropout"}),
                    Layer::BatchNorm => json!({"type": "batchnorm"}),
                    Layer::Activation(a) => json!({"type": "activation", "act": act(*a)}),
                    Layer::ChannelShuffle { groups } => json!({"type": "channel_shuffle", "groups": groups}),
                    other => panic!("{name}: layer {i} [{}] is not dumped", other.section()),
                };
                v.as_object_mut().unwrap().extend(named.as_object().unwrap().clone());
                v
            })
            .collect();
        let input = spec.net.input_shape();
        models.insert(name.to_string(), json!({"input": [input.c, input.h, input.w], "layers": layers}));
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/zoo_specs.json");
    std::fs::write(path, serde_json::to_string(&models).unwrap()).unwrap();
}

/// A safetensors file with torchvision's resnet18 state dict (names and shapes from the
/// reference, values made up per tensor, `num_batches_tracked` as i64 scalars as PyTorch writes
/// them) loads strictly into the built network, and the values land where their names say.
#[test]
fn resnet18_torchvision_state_dict_loads_strictly() {
    use shendu_core::{DType, Tensor};
    let reference = reference();
    let entries = reference["models"]["resnet18"]["state_dict"].as_array().unwrap();
    let mut tensors = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let name = e["name"].as_str().unwrap().to_string();
        let shape: Vec<usize> = e["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let t = if name.ends_with("num_batches_tracked") {
            Tensor::scalar(i as i64)
        } else {
            Tensor::full(&shape[..], i as f64 / 100.0, DType::F32).unwrap()
        };
        tensors.push((name, t));
    }
    let dir = std::env::temp_dir().join(format!("shendu-zoo-resnet18-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("resnet18.safetensors");
    shendu_nn::state::save_safetensors(&path, &tensors, &Default::default()).unwrap();

    let net = zoo::build("resnet18", &ModelOptions::for_model("resnet18").unwrap()).unwrap();
    let report = shendu_nn::state::load_module(&path, &net, true).unwrap();
    assert!(report.is_exact(), "{report:?}");
    let params = net.named_params();
    for (i, (name, _)) in tensors.iter().enumerate().filter(|(_, (n, _))| !n.ends_with("num_batches_tracked")) {
        let (_, p) = params.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} not in the network"));
        let v = p.value().to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec::<f64>().unwrap();
        assert!(v.iter().all(|&x| (x - i as f64 / 100.0).abs() < 1e-6), "{name} did not receive its values");
    }
    // One name missing: strict loading refuses and names it.
    let fewer: Vec<_> = tensors.iter().filter(|(n, _)| n != "layer3.1.bn2.running_var").cloned().collect();
    shendu_nn::state::save_safetensors(&path, &fewer, &Default::default()).unwrap();
    let err = shendu_nn::state::load_module(&path, &net, true).unwrap_err().to_string();
    assert!(err.contains("layer3.1.bn2.running_var"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
