//! The NetSpec builder's forward values against independent references: each case is a small
//! spec here and the same network in tests/reference/netspec_reference.py (Darknet's layer loops
//! translated literally, PyTorch for conv, batch norm and linear), whose weights, inputs and
//! outputs are in tests/reference/netspec_reference.safetensors (float64).

use std::collections::HashMap;

use shendu_core::{DType, Tensor};
use shendu_nn::{Mode, Module, ModuleExt};
use shendu_vision::netspec::{
    decode_yolo, Activation, Connected, Conv, Crop, Layer, LayerSpec, NetOptions, NetSpec, Network, Pool, Reorg, Route, Shortcut,
    ShortcutWeights, WeightsNormalization, Yolo,
};

struct Reference(HashMap<String, Tensor>);

impl Reference {
    fn load() -> Reference {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/netspec_reference.safetensors");
        let (tensors, _) = shendu_nn::state::load_safetensors(path).unwrap();
        Reference(tensors.into_iter().collect())
    }

    fn get(&self, case: &str, key: &str) -> Tensor {
        let name = format!("{case}.{key}");
        self.0.get(&name).unwrap_or_else(|| panic!("reference has no {name}")).clone()
    }

    /// Builds `spec` in f64 and sets every parameter from the reference (all must be there).
    fn network(&self, case: &str, spec: &NetSpec) -> Network {
        let net = spec.build(DType::F64).unwrap();
        for (name, p) in net.named_params() {
            if name.ends_with("num_batches_tracked") {
                continue;
            }
            p.set(&self.get(case, &format!("p.{name}"))).unwrap_or_else(|e| panic!("{case} {name}: {e}"));
        }
        net
    }
}

fn close(case: &str, got: &Tensor, want: &Tensor, tol: f64) {
    assert_eq!(got.dims(), want.dims(), "{case}: shape");
    let (g, w) = (got.to_vec_f64().unwrap(), want.to_vec_f64().unwrap());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{case}: element {i}: got {a}, want {b}");
    }
}

fn spec(c: usize, h: usize, w: usize, layers: Vec<Layer>) -> NetSpec {
    let mut s = NetSpec::new(NetOptions::input(c, h, w));
    for l in layers {
        s.push(LayerSpec::new(l));
    }
    s
}

/// Runs a one-chain case in eval mode and compares the output.
fn check_eval(r: &Reference, case: &str, s: &NetSpec) -> Network {
    let net = r.network(case, s);
    let y = net.forward(&r.get(case, "input"), Mode::Eval).unwrap();
    close(case, &y, &r.get(case, "output"), 1e-10);
    net
}

#[test]
fn conv_bn_leaky_train_and_eval() {
    let r = Reference::load();
    let s = spec(3, 6, 6, vec![Layer::Conv(Conv::new(4, 3, 1).pad().bn().activation(Activation::Leaky))]);
    let net = check_eval(&r, "conv_bn_leaky", &s);
    let y = net.forward(&r.get("conv_bn_leaky", "input"), Mode::Train).unwrap();
    close("conv_bn_leaky train", &y, &r.get("conv_bn_leaky", "output_train"), 1e-10);
    let params: HashMap<String, _> = net.named_params().into_iter().collect();
    close("running mean", &params["0.bn.running_mean"].value(), &r.get("conv_bn_leaky", "running_mean_after"), 1e-10);
    close("running var", &params["0.bn.running_var"].value(), &r.get("conv_bn_leaky", "running_var_after"), 1e-10);
}

#[test]
fn connected_bn_train_and_eval() {
    let r = Reference::load();
    let mut fc = Connected::new(3).activation(Activation::Leaky);
    fc.batch_normalize = true;
    let s = spec(2, 2, 2, vec![Layer::Connected(fc)]);
    let net = check_eval(&r, "connected_bn", &s);
    let y = net.forward(&r.get("connected_bn", "input"), Mode::Train).unwrap();
    close("connected_bn train", &y, &r.get("connected_bn", "output_train"), 1e-10);
}

#[test]
fn darknet_pools() {
    let r = Reference::load();
    for (case, c, h, layer) in [
        ("maxpool_2s1", 2, 5, Layer::MaxPool(Pool::new(2, 1))),
        ("maxpool_2s2_odd", 2, 5, Layer::MaxPool(Pool::new(2, 2))),
        ("maxpool_3s2", 2, 6, Layer::MaxPool(Pool::new(3, 2))),
        ("local_avgpool_3s2", 2, 6, Layer::LocalAvgPool(Pool::new(3, 2))),
        ("local_avgpool_2s1", 2, 5, Layer::LocalAvgPool(Pool::new(2, 1))),
    ] {
        check_eval(&r, case, &spec(c, h, h, vec![layer]));
    }
}

/// Route groups and slices, weighted shortcuts (per channel with softmax, per feature with relu),
/// upsample, reorg, channel shuffle, global avgpool, scale_channels, dropout, crop, batchnorm,
/// mish, connected, softmax with temperature and cost, in one network.
#[test]
fn mixed_network() {
    let r = Reference::load();
    let shortcut = |from: Vec<usize>, weights, activation| Layer::Shortcut(Shortcut { from, activation, weights });
    let layers = vec![
        Layer::Conv(Conv::new(4, 1, 1).activation(Activation::Linear)),
        Layer::Conv(Conv::new(4, 3, 1).pad().activation(Activation::Leaky)),
        shortcut(vec![0], ShortcutWeights::PerChannel { normalization: WeightsNormalization::Softmax }, Activation::Linear),
        shortcut(vec![0, 1], ShortcutWeights::PerFeature { normalization: WeightsNormalization::Relu }, Activation::Leaky),
        Layer::Route(Route { layers: vec![3, 0], groups: 2, group_id: 1, slice: None }),
        Layer::Route(Route { layers: vec![4, 1], groups: 1, group_id: 0, slice: Some((2, 6)) }),
        Layer::Upsample { stride: 2, scale: 1.0 },
        Layer::Reorg(Reorg { stride: 2, reverse: false }),
        Layer::ChannelShuffle { groups: 4 },
        Layer::AvgPool,
        Layer::ScaleChannels { from: 8, activation: Activation::Logistic },
        Layer::Dropout { probability: 0.3 },
        Layer::Crop(Crop { crop_height: 4, crop_width: 4, flip: false }),
        Layer::BatchNorm,
        Layer::Activation(Activation::Mish),
        Layer::Connected(Connected::new(5).activation(Activation::Linear)),
        Layer::Softmax { groups: 1, temperature: 2.0 },
        Layer::Cost { kind: shendu_vision::netspec::CostKind::Sse, scale: 1.0 },
    ];
    let s = spec(3, 6, 6, layers);
    let net = check_eval(&r, "mixed", &s);
    let logits = net.forward_logits(&r.get("mixed", "input"), Mode::Eval).unwrap();
    close("mixed logits", &logits, &r.get("mixed", "logits"), 1e-10);
}

#[test]
fn small_layers() {
    let r = Reference::load();
    check_eval(&r, "reorg_fwd", &spec(8, 4, 4, vec![Layer::Reorg(Reorg { stride: 2, reverse: false })]));
    check_eval(&r, "reorg_reverse", &spec(8, 3, 3, vec![Layer::Reorg(Reorg { stride: 2, reverse: true })]));
    check_eval(&r, "upsample_neg", &spec(2, 5, 5, vec![Layer::Upsample { stride: -2, scale: 0.5 }]));
    check_eval(&r, "upsample_scale", &spec(2, 3, 2, vec![Layer::Upsample { stride: 3, scale: 0.25 }]));
    check_eval(&r, "softmax_groups", &spec(4, 2, 2, vec![Layer::Softmax { groups: 4, temperature: 0.5 }]));
    let mut crop = spec(2, 7, 6, vec![Layer::Crop(Crop { crop_height: 4, crop_width: 3, flip: true })]);
    crop.layers[0].extra.push(("noadjust".into(), "1".into()));
    check_eval(&r, "crop_noadjust", &crop);
    let mut geom = Conv::new(4, 3, 1).padding(1).dilation(2).groups(2).activation(Activation::Linear).no_bias();
    geom.stride_x = 2;
    check_eval(&r, "conv_geom", &spec(4, 9, 9, vec![Layer::Conv(geom)]));
}

#[test]
fn dirac_conv() {
    let r = Reference::load();
    check_eval(&r, "dirac", &spec(3, 5, 5, vec![Layer::Conv(Conv::new(4, 3, 1).pad().dirac().activation(Activation::Relu))]));
}

#[test]
fn yolo_head_and_boxes() {
    let r = Reference::load();
    let yolo = Yolo { classes: 2, mask: vec![1, 2], anchors: vec![(1.0, 1.5), (2.0, 3.0), (3.5, 2.0)], scale_x_y: 1.05 };
    let s = spec(3, 4, 4, vec![Layer::Conv(Conv::new(14, 1, 1).activation(Activation::Linear)), Layer::Yolo(yolo.clone())]);
    let net = check_eval(&r, "yolo", &s);
    let x = r.get("yolo", "input");
    let out = net.forward(&x, Mode::Eval).unwrap();
    let dets = decode_yolo(&out, &yolo, 4, 4, 0.3).unwrap();
    let boxes = r.get("yolo", "boxes").to_vec_f64().unwrap();
    let objs = r.get("yolo", "objectness").to_vec_f64().unwrap();
    let probs = r.get("yolo", "probs").to_vec_f64().unwrap();
    assert_eq!(dets[0].len(), objs.len());
    for (k, d) in dets[0].iter().enumerate() {
        let b = [d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h];
        for j in 0..4 {
            assert!((b[j] as f64 - boxes[4 * k + j]).abs() < 1e-5, "box {k}: {b:?}");
        }
        assert!((d.objectness as f64 - objs[k]).abs() < 1e-6);
        for j in 0..2 {
            assert!((d.probs[j] as f64 - probs[2 * k + j]).abs() < 1e-6, "probs {k}: {:?}", d.probs);
        }
    }
    // Network::detect finds the same boxes, tagged with the yolo layer.
    let found = net.detect(&x, 0.3).unwrap();
    assert_eq!(found[0].len(), dets[0].len());
    assert!(found[0].iter().all(|d| d.layer == 1));
}

#[test]
fn activations() {
    let r = Reference::load();
    for (a, name) in Activation::ALL {
        check_eval(&r, &format!("act_{name}"), &spec(1, 4, 6, vec![Layer::Activation(a)]));
    }
}
