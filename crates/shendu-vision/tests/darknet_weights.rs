//! Darknet `.weights` I/O: bit-identical round trips, the size check and its messages, old
//! headers, transposed connected weights, `partial`, and the published sizes of real files.

use std::path::{Path, PathBuf};

use shendu_core::{DType, Tensor};
use shendu_nn::ModuleExt;
use shendu_vision::darknet::weights::{
    load_weights, partial, read_weights, save_weights, weights_file_len, weights_from_bytes, weights_layout, weights_to_bytes,
    write_weights, WeightsHeader,
};
use shendu_vision::netspec::{
    Activation, Connected, Conv, Layer, LayerSpec, NetOptions, NetSpec, Network, Pool, Route, Shortcut, ShortcutWeights,
    WeightsNormalization, Yolo,
};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("shendu-weights-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every layer kind that stores weights: conv with and without batch norm, without bias,
/// DiracNet conv, standalone batchnorm, weighted shortcuts, connected with and without batch
/// norm (input 3 x 8 x 8).
fn weighted_spec() -> NetSpec {
    let mut s = NetSpec::new(NetOptions::input(3, 8, 8));
    let mut push = |l: Layer| s.push(LayerSpec::new(l));
    push(Layer::Conv(Conv::new(4, 3, 1).pad().bn().activation(Activation::Leaky)));
    push(Layer::Conv(Conv::new(4, 3, 1).pad().activation(Activation::Leaky)));
    push(Layer::Conv(Conv::new(4, 1, 1).no_bias().activation(Activation::Linear)));
    push(Layer::MaxPool(Pool::new(2, 2)));
    push(Layer::Conv(Conv::new(4, 3, 1).pad().dirac().activation(Activation::Relu)));
    push(Layer::BatchNorm);
    push(Layer::Shortcut(Shortcut {
        from: vec![4],
        activation: Activation::Linear,
        weights: ShortcutWeights::PerChannel { normalization: WeightsNormalization::Softmax },
    }));
    push(Layer::Shortcut(Shortcut {
        from: vec![4],
        activation: Activation::Linear,
        weights: ShortcutWeights::PerFeature { normalization: WeightsNormalization::None },
    }));
    let mut fc = Connected::new(6).activation(Activation::Leaky);
    fc.batch_normalize = true;
    push(Layer::Connected(fc));
    push(Layer::Connected(Connected::new(5).activation(Activation::Linear)));
    s.layers[0].name = Some("stem".into());
    s
}

/// The network with every parameter and buffer set to fresh random values.
fn random_network(spec: &NetSpec, seed: u64) -> Network {
    shendu_core::manual_seed(seed);
    let net = spec.build(DType::F32).unwrap();
    for (name, p) in net.named_params() {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        let v = Tensor::randn(p.dims(), DType::F32).unwrap();
        let v = if name.ends_with("running_var") { v.abs().unwrap() } else { v };
        p.set(&v).unwrap();
    }
    net
}

fn values(net: &Network) -> Vec<(String, Vec<u32>)> {
    net.named_params()
        .into_iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .map(|(n, p)| (n, p.value().to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()))
        .collect()
}

#[test]
fn round_trip_is_bit_identical() {
    let dir = TempDir::new("roundtrip");
    let spec = weighted_spec();
    let a = random_network(&spec, 1);
    let path = dir.path("a.weights");
    save_weights(&path, &a, WeightsHeader::new(12345), None).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, weights_file_len(&spec, &WeightsHeader::new(0), None).unwrap());
    assert_eq!(&bytes[..12], &[0, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0]);
    assert_eq!(u64::from_le_bytes(bytes[12..20].try_into().unwrap()), 12345);

    let b = random_network(&spec, 2);
    assert_ne!(values(&a), values(&b));
    let header = load_weights(&path, &b, None).unwrap();
    assert_eq!(header, WeightsHeader::new(12345));
    assert_eq!(values(&a), values(&b));
    let again = dir.path("b.weights");
    save_weights(&again, &b, header, None).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 2);
}

#[test]
fn file_order_follows_darknet() {
    let spec = weighted_spec();
    let names: Vec<String> = weights_layout(&spec).unwrap().into_iter().map(|e| e.name.unwrap_or_else(|| "<zeros>".into())).collect();
    let want = [
        "stem.bn.bias",
        "stem.bn.weight",
        "stem.bn.running_mean",
        "stem.bn.running_var",
        "stem.weight", // conv + bn
        "1.bias",
        "1.weight", // conv
        "<zeros>",
        "2.weight", // conv without bias
        "4.bias",
        "4.weight",
        "4.alpha",
        "4.beta", // dirac conv
        "5.bias",
        "5.weight",
        "5.running_mean",
        "5.running_var", // AlexeyAB's batchnorm
        "6.weight",
        "7.weight", // weighted shortcuts
        "8.bn.bias",
        "8.weight",
        "8.bn.weight",
        "8.bn.running_mean",
        "8.bn.running_var", // connected + bn
        "9.bias",
        "9.weight",
    ];
    assert_eq!(names, want);
}

#[test]
fn transposed_connected_weights() {
    let spec = weighted_spec();
    let net = random_network(&spec, 3);
    let params: std::collections::HashMap<String, Tensor> = net.named_params().into_iter().map(|(n, p)| (n, p.value())).collect();
    let get = |n: &str| params.get(n).cloned();
    let header = WeightsHeader { major: 1001, minor: 0, revision: 0, seen: 7 };
    let t = weights_to_bytes(&spec, &header, &get, None).unwrap();
    let plain = weights_to_bytes(&spec, &WeightsHeader { major: 0, minor: 2, revision: 0, seen: 7 }, &get, None).unwrap();
    assert_eq!(t.len(), plain.len());
    assert_ne!(t[20..], plain[20..]);
    // The last layer's weight [5, 6*... ] is stored [in, out]: its first stored float is w[0][0],
    // its second w[1][0].
    let w9 = params["9.weight"].to_vec::<f32>().unwrap();
    let inputs = 6;
    let at = t.len() - 4 * w9.len();
    let second = f32::from_le_bytes(t[at + 4..at + 8].try_into().unwrap());
    assert_eq!(second.to_bits(), w9[inputs].to_bits());
    let (h, tensors) = weights_from_bytes(&t, &spec, None, Path::new("t.weights")).unwrap();
    assert_eq!(h, header);
    let back = tensors.iter().find(|(n, _)| n == "9.weight").unwrap();
    assert_eq!(back.1.to_vec::<f32>().unwrap(), w9);
}

#[test]
fn old_header_has_a_32_bit_seen() {
    let spec = weighted_spec();
    let net = random_network(&spec, 4);
    let params: std::collections::HashMap<String, Tensor> = net.named_params().into_iter().map(|(n, p)| (n, p.value())).collect();
    let old = WeightsHeader { major: 0, minor: 1, revision: 0, seen: 640 };
    assert_eq!(old.len(), 16);
    let bytes = weights_to_bytes(&spec, &old, &|n| params.get(n).cloned(), None).unwrap();
    assert_eq!(bytes.len() as u64, weights_file_len(&spec, &old, None).unwrap());
    assert_eq!(weights_file_len(&spec, &old, None).unwrap() + 4, weights_file_len(&spec, &WeightsHeader::new(0), None).unwrap());
    assert_eq!(&bytes[12..16], &640u32.to_le_bytes());
    let (h, tensors) = weights_from_bytes(&bytes, &spec, None, Path::new("old.weights")).unwrap();
    assert_eq!(h, old);
    let stem = tensors.iter().find(|(n, _)| n == "stem.weight").unwrap();
    assert_eq!(stem.1.to_vec::<f32>().unwrap(), params["stem.weight"].to_vec::<f32>().unwrap());
}

#[test]
fn size_errors_name_file_sizes_and_layer() {
    let dir = TempDir::new("sizes");
    let spec = weighted_spec();
    let net = random_network(&spec, 5);
    let path = dir.path("full.weights");
    save_weights(&path, &net, WeightsHeader::new(0), None).unwrap();
    let full = std::fs::read(&path).unwrap();

    // Cut inside the dirac conv (layer 4): header + 4 x (16 + 4*3*9 + 4 + 4*4*9 + 4 + 4*4) = ...
    let layout = weights_layout(&spec).unwrap();
    let before4: usize = layout.iter().filter(|e| e.layer < 4).map(|e| e.len()).sum();
    let cut = 20 + 4 * (before4 + 3);
    let short = dir.path("short.weights");
    std::fs::write(&short, &full[..cut]).unwrap();
    let e = read_weights(&short, &spec, None).unwrap_err().to_string();
    assert!(e.contains("short.weights"), "{e}");
    assert!(e.contains(&format!("{cut} bytes")) && e.contains(&full.len().to_string()), "{e}");
    assert!(e.contains("layer 4 (4) [convolutional]"), "{e}");

    // Cut exactly after layer 2 (what `partial` at 3 writes): the message says so.
    let upto3 = weights_file_len(&spec, &WeightsHeader::new(0), Some(3)).unwrap() as usize;
    std::fs::write(&short, &full[..upto3]).unwrap();
    let e = read_weights(&short, &spec, None).unwrap_err().to_string();
    assert!(e.contains("ends exactly after layer 2") && e.contains("cutoff 3"), "{e}");
    // ... and it loads with that cutoff (and any cutoff up to it).
    assert_eq!(read_weights(&short, &spec, Some(3)).unwrap().1.len(), 8);
    assert!(read_weights(&short, &spec, Some(2)).is_ok());
    let e = read_weights(&short, &spec, Some(5)).unwrap_err().to_string();
    assert!(e.contains("layers 0..5") && e.contains("runs out in layer 4"), "{e}");

    // Extra bytes: written for another network.
    let mut long = full.clone();
    long.extend_from_slice(&[0; 8]);
    std::fs::write(&short, &long).unwrap();
    let e = read_weights(&short, &spec, None).unwrap_err().to_string();
    assert!(e.contains("8 more than") && e.contains("another network"), "{e}");

    // A header alone is too short to be a header.
    let e = weights_from_bytes(&full[..10], &spec, None, Path::new("tiny.weights")).unwrap_err().to_string();
    assert!(e.contains("tiny.weights") && e.contains("too short"), "{e}");
}

#[test]
fn nonzero_biases_for_a_layer_without_bias_are_refused() {
    let spec = weighted_spec();
    let net = random_network(&spec, 6);
    let params: std::collections::HashMap<String, Tensor> = net.named_params().into_iter().map(|(n, p)| (n, p.value())).collect();
    let mut bytes = weights_to_bytes(&spec, &WeightsHeader::new(0), &|n| params.get(n).cloned(), None).unwrap();
    let layout = weights_layout(&spec).unwrap();
    let zeros_at: usize = layout.iter().take_while(|e| e.name.is_some()).map(|e| e.len()).sum();
    bytes[20 + 4 * zeros_at..20 + 4 * zeros_at + 4].copy_from_slice(&1.5f32.to_le_bytes());
    let e = weights_from_bytes(&bytes, &spec, None, Path::new("b.weights")).unwrap_err().to_string();
    assert!(e.contains("layer 2") && e.contains("bias=0"), "{e}");
}

#[test]
fn partial_keeps_the_first_layers_and_resets_seen() {
    let dir = TempDir::new("partial");
    let spec = weighted_spec();
    let net = random_network(&spec, 7);
    let full = dir.path("full.weights");
    save_weights(&full, &net, WeightsHeader::new(999), None).unwrap();
    let cut = dir.path("full.conv.5");
    let h = partial(&spec, &full, &cut, 5).unwrap();
    assert_eq!(h.seen, 0);
    assert_eq!(std::fs::metadata(&cut).unwrap().len(), weights_file_len(&spec, &h, Some(5)).unwrap());
    // Loading it with the cutoff sets layers 0..5 and leaves the rest alone.
    let other = random_network(&spec, 8);
    let before = values(&other);
    load_weights(&cut, &other, Some(5)).unwrap();
    let (a, b) = (values(&net), values(&other));
    let layer_of = |name: &str| -> usize {
        let prefix = name.split('.').next().unwrap();
        if prefix == "stem" {
            0
        } else {
            prefix.parse().unwrap()
        }
    };
    for ((name, got), ((_, want), (_, old))) in b.iter().zip(a.iter().zip(&before)) {
        if layer_of(name) < 5 {
            assert_eq!(got, want, "{name}");
        } else {
            assert_eq!(got, old, "{name}");
        }
    }
    // Writing named tensors gives the same file as saving the network.
    let (_, tensors) = read_weights(&full, &spec, None).unwrap();
    let again = dir.path("again.weights");
    write_weights(&again, &spec, &WeightsHeader::new(999), &tensors, None).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&full).unwrap());
}

/// Darknet's `yolov3-tiny.cfg` and `yolov4-tiny.cfg` as specs.
fn conv(filters: usize, size: usize, stride: usize, linear: bool) -> Layer {
    let c = Conv::new(filters, size, stride).pad();
    Layer::Conv(if linear { c.activation(Activation::Linear) } else { c.bn().activation(Activation::Leaky) })
}

fn yolo(mask: Vec<usize>) -> Layer {
    let anchors = vec![(10.0, 14.0), (23.0, 27.0), (37.0, 58.0), (81.0, 82.0), (135.0, 169.0), (344.0, 319.0)];
    Layer::Yolo(Yolo { classes: 80, mask, anchors, scale_x_y: 1.0 })
}

fn build(layers: Vec<Layer>) -> NetSpec {
    let mut s = NetSpec::new(NetOptions::input(3, 416, 416));
    for l in layers {
        s.push(LayerSpec::new(l));
    }
    s
}

#[test]
fn published_sizes_of_real_weights_files() {
    let mp = |stride| Layer::MaxPool(Pool::new(2, stride));
    let route = |l: Vec<usize>| Layer::Route(Route::concat(l));
    let split = |l| Layer::Route(Route::split(l, 2, 1));
    let up = Layer::Upsample { stride: 2, scale: 1.0 };
    let v3 = build(vec![
        conv(16, 3, 1, false),
        mp(2),
        conv(32, 3, 1, false),
        mp(2),
        conv(64, 3, 1, false),
        mp(2),
        conv(128, 3, 1, false),
        mp(2),
        conv(256, 3, 1, false),
        mp(2),
        conv(512, 3, 1, false),
        mp(1),
        conv(1024, 3, 1, false),
        conv(256, 1, 1, false),
        conv(512, 3, 1, false),
        conv(255, 1, 1, true),
        yolo(vec![3, 4, 5]),
        route(vec![13]),
        conv(128, 1, 1, false),
        up.clone(),
        route(vec![19, 8]),
        conv(256, 3, 1, false),
        conv(255, 1, 1, true),
        yolo(vec![0, 1, 2]),
    ]);
    assert_eq!(weights_file_len(&v3, &WeightsHeader::new(0), None).unwrap(), 35_434_956);
    let v4 = build(vec![
        conv(32, 3, 2, false),
        conv(64, 3, 2, false),
        conv(64, 3, 1, false),
        split(2),
        conv(32, 3, 1, false),
        conv(32, 3, 1, false),
        route(vec![5, 4]),
        conv(64, 1, 1, false),
        route(vec![2, 7]),
        mp(2),
        conv(128, 3, 1, false),
        split(10),
        conv(64, 3, 1, false),
        conv(64, 3, 1, false),
        route(vec![13, 12]),
        conv(128, 1, 1, false),
        route(vec![10, 15]),
        mp(2),
        conv(256, 3, 1, false),
        split(18),
        conv(128, 3, 1, false),
        conv(128, 3, 1, false),
        route(vec![21, 20]),
        conv(256, 1, 1, false),
        route(vec![18, 23]),
        mp(2),
        conv(512, 3, 1, false),
        conv(256, 1, 1, false),
        conv(512, 3, 1, false),
        conv(255, 1, 1, true),
        yolo(vec![3, 4, 5]),
        route(vec![27]),
        conv(128, 1, 1, false),
        up,
        route(vec![33, 23]),
        conv(256, 3, 1, false),
        conv(255, 1, 1, true),
        yolo(vec![1, 2, 3]),
    ]);
    assert_eq!(weights_file_len(&v4, &WeightsHeader::new(0), None).unwrap(), 24_251_276);
}
