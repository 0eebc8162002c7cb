//! The builder's contract: parameter names, shapes and order equal `NetSpec::params`, input
//! checks, seeded initialisation, liveness, logits, and gradients reaching every weight.

use shendu_core::{DType, Tensor};
use shendu_nn::{Mode, Module, ModuleExt, ParamKind as NnKind};

use super::liveness;
use crate::netspec::{
    decode_region, Activation, Connected, Conv, CostKind, Crop, Layer, LayerSpec, NetOptions, NetSpec, ParamKind, Pool, Region, Reorg,
    Route, Shortcut, ShortcutWeights, WeightsNormalization, Yolo,
};

/// A network with every layer kind (input 3 x 16 x 16, output 10 classes).
fn every_kind() -> NetSpec {
    let mut s = NetSpec::new(NetOptions::input(3, 16, 16));
    let mut push = |l: Layer| s.push(LayerSpec::new(l));
    push(Layer::Conv(Conv::new(8, 3, 1).pad().bn().activation(Activation::Leaky)));
    push(Layer::MaxPool(Pool::new(2, 2)));
    push(Layer::LocalAvgPool(Pool::new(3, 1)));
    push(Layer::Conv(Conv::new(8, 3, 1).pad().dirac().activation(Activation::Relu)));
    push(Layer::Conv(Conv::new(8, 1, 1).no_bias().activation(Activation::Relu)));
    push(Layer::Shortcut(Shortcut {
        from: vec![3],
        activation: Activation::Linear,
        weights: ShortcutWeights::PerChannel { normalization: WeightsNormalization::Softmax },
    }));
    push(Layer::Route(Route::concat(vec![5, 2])));
    push(Layer::ChannelShuffle { groups: 2 });
    push(Layer::BatchNorm);
    push(Layer::Activation(Activation::Swish));
    push(Layer::Reorg(Reorg { stride: 2, reverse: false }));
    push(Layer::Upsample { stride: 2, scale: 1.0 });
    push(Layer::Conv(Conv::new(8, 1, 1).activation(Activation::Linear)));
    push(Layer::AvgPool);
    push(Layer::ScaleChannels { from: 12, activation: Activation::Linear });
    push(Layer::Dropout { probability: 0.5 });
    push(Layer::Crop(Crop { crop_height: 6, crop_width: 6, flip: true }));
    push(Layer::Yolo(Yolo { classes: 3, mask: vec![0], anchors: vec![(2.0, 3.0)], scale_x_y: 1.0 }));
    push(Layer::Region(Region { classes: 3, coords: 4, num: 1, anchors: vec![(1.0, 1.0)], softmax: true }));
    push(Layer::Route(Route::concat(vec![16])));
    push(Layer::Shortcut(Shortcut {
        from: vec![16],
        activation: Activation::Mish,
        weights: ShortcutWeights::PerFeature { normalization: WeightsNormalization::Relu },
    }));
    let mut fc = Connected::new(10).activation(Activation::Linear);
    fc.batch_normalize = true;
    push(Layer::Connected(fc));
    push(Layer::Softmax { groups: 1, temperature: 1.0 });
    push(Layer::Cost { kind: CostKind::Sse, scale: 1.0 });
    s.layers[0].name = Some("stem.conv".into());
    s.layers[0].bn_name = Some("stem.bn".into());
    s.layers[8].name = Some("norm".into());
    s
}

#[test]
fn params_are_the_specs_in_order() {
    let spec = every_kind();
    let net = spec.build(DType::F32).unwrap();
    let want = spec.params().unwrap();
    let got = net.named_params();
    let got_names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    let want_names: Vec<&str> = want.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(got_names, want_names);
    for ((name, p), w) in got.iter().zip(&want) {
        assert_eq!(p.dims(), w.shape.as_slice(), "{name}");
        let kind = match w.kind {
            ParamKind::Weight => NnKind::Weight,
            ParamKind::Buffer | ParamKind::Counter => NnKind::Buffer,
        };
        assert_eq!(p.kind(), kind, "{name}");
    }
    assert_eq!(net.param_count(), spec.param_count().unwrap());
    assert!(got_names.contains(&"stem.bn.running_var") && got_names.contains(&"3.alpha") && got_names.contains(&"20.weight"));
}

#[test]
fn forward_shapes_logits_and_input_errors() {
    let spec = every_kind();
    let mut net = spec.build(DType::F32).unwrap();
    let x = Tensor::randn(&[2, 3, 16, 16], DType::F32).unwrap();
    let p = net.forward(&x, Mode::Eval).unwrap();
    assert_eq!(p.dims(), &[2, 10]);
    let sums: Vec<f32> = p.sum(&[1], false).unwrap().to_vec().unwrap();
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
    assert_eq!(net.logits_layer(), Some(21));
    let logits = net.forward_logits(&x, Mode::Eval).unwrap();
    net.set_logits_output(true);
    assert_eq!(net.forward(&x, Mode::Eval).unwrap().to_vec::<f32>().unwrap(), logits.to_vec::<f32>().unwrap());
    assert_eq!(net.forward(&x, Mode::Train).unwrap().dims(), &[2, 10]);

    let outs = net.forward_layers(&x, Mode::Eval, &[17, 12]).unwrap();
    assert_eq!(outs[0].dims(), &[2, 8, 6, 6]);
    assert_eq!(outs[1].dims(), &[2, 8, 8, 8]);
    assert_eq!(net.detection_layers(), vec![17, 18]);
    assert_eq!(net.detect(&x, 0.0).unwrap()[1].len(), 2 * 36);

    let e = net.forward(&Tensor::zeros(&[2, 3, 15, 16], DType::F32).unwrap(), Mode::Eval).unwrap_err().to_string();
    assert!(e.contains("[net]") && e.contains("3 x 16 x 16") && e.contains("[2, 3, 15, 16]"), "{e}");
    let e = net.forward(&Tensor::zeros(&[2, 3, 16, 16], DType::F64).unwrap(), Mode::Eval).unwrap_err().to_string();
    assert!(e.contains("f64") && e.contains("f32"), "{e}");
    assert!(spec.build(DType::U8).is_err());
}

#[test]
fn a_seed_gives_the_same_weights() {
    let spec = every_kind();
    let values = |seed: u64| -> Vec<Vec<f32>> {
        shendu_core::manual_seed(seed);
        let net = spec.build(DType::F32).unwrap();
        net.named_params()
            .into_iter()
            .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
            .map(|(_, p)| p.value().to_vec::<f32>().unwrap())
            .collect()
    };
    assert_eq!(values(3), values(3));
    assert_ne!(values(3), values(4));
    // Torch's defaults: conv weights within 1/sqrt(fan_in), dirac alpha 1 and beta 0.1.
    shendu_core::manual_seed(3);
    let net = spec.build(DType::F32).unwrap();
    let params: std::collections::HashMap<String, _> = net.named_params().into_iter().collect();
    let bound = 1.0 / (3.0f32 * 9.0).sqrt();
    assert!(params["stem.conv.weight"].value().to_vec::<f32>().unwrap().iter().all(|v| v.abs() <= bound));
    assert_eq!(params["3.alpha"].value().to_vec::<f32>().unwrap(), vec![1.0; 8]);
    assert_eq!(params["3.beta"].value().to_vec::<f32>().unwrap(), vec![0.1; 8]);
    assert_eq!(params["5.weight"].value().to_vec::<f32>().unwrap(), vec![1.0; 16]);
    assert_eq!(params["stem.bn.running_var"].value().to_vec::<f32>().unwrap(), vec![1.0; 8]);
}

#[test]
fn outputs_are_kept_until_their_last_reader() {
    let spec = every_kind();
    let (frees, kept) = liveness(&spec);
    // Layer 2 is read by the route at 6; 3 by the shortcut at 5; 12 by scale_channels at 14;
    // 16 by the route at 19 and the shortcut at 20; 5 by the route at 6.
    let kept_layers: Vec<usize> = kept.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i).collect();
    assert_eq!(kept_layers, vec![2, 3, 5, 12, 16]);
    assert_eq!(frees[5], vec![3]);
    assert_eq!(frees[6], vec![2, 5]);
    assert_eq!(frees[20], vec![16]);
    assert!(frees[19].is_empty());
}

#[test]
fn one_step_lowers_the_loss_and_every_weight_gets_a_gradient() {
    shendu_core::manual_seed(11);
    let mut spec = every_kind();
    // Dropout off so the two losses compare the same function.
    spec.layers[15].layer = Layer::Dropout { probability: 0.0 };
    let mut net = spec.build(DType::F64).unwrap();
    net.set_logits_output(true);
    let x = Tensor::randn(&[4, 3, 16, 16], DType::F64).unwrap();
    let target = Tensor::from_vec(vec![1i64, 4, 7, 9], 4).unwrap();
    let loss_of = |net: &super::Network| -> Tensor {
        let logits = net.forward(&x, Mode::Train).unwrap();
        let logp = logits.log_softmax(1).unwrap();
        logp.gather(1, &target.reshape(&[4, 1]).unwrap()).unwrap().mean_all().unwrap().neg().unwrap()
    };
    let loss = loss_of(&net);
    loss.backward().unwrap();
    for (name, p) in net.trainable_params() {
        let g = p.grad().unwrap_or_else(|| panic!("{name} has no gradient"));
        let v = g.to_vec_f64().unwrap();
        assert!(v.iter().all(|e| e.is_finite()), "{name}");
        assert!(v.iter().any(|e| *e != 0.0), "{name}: all-zero gradient");
        p.set(&p.value().sub(&g.mul_scalar(0.05).unwrap()).unwrap()).unwrap();
    }
    net.zero_grad();
    let after = loss_of(&net).to_f64().unwrap();
    let before = loss.to_f64().unwrap();
    assert!(after < before, "loss {before} -> {after}");
}

#[test]
fn build_errors_name_the_layer() {
    let mut s = NetSpec::new(NetOptions::input(6, 4, 4));
    s.push(LayerSpec::new(Layer::Reorg(Reorg { stride: 2, reverse: false })));
    let e = s.build(DType::F32).err().unwrap().to_string();
    assert!(e.contains("layer 0 [reorg]") && e.contains("divisible by 4"), "{e}");
}

#[test]
fn region_boxes() {
    let region = Region { classes: 2, coords: 4, num: 1, anchors: vec![(2.0, 1.0)], softmax: true };
    // One 1x1 cell: x, y, w, h, objectness, two class scores.
    let out = Tensor::from_vec(vec![0.5f32, 0.25, 0.0, 0.0, 0.8, 0.75, 0.25], &[1, 7, 1, 1]).unwrap();
    let d = decode_region(&out, &region, 0.5).unwrap();
    assert_eq!(d[0].len(), 1);
    assert_eq!((d[0][0].bbox.x, d[0][0].bbox.y, d[0][0].bbox.w, d[0][0].bbox.h), (0.5, 0.25, 2.0, 1.0));
    assert_eq!(d[0][0].probs, vec![0.6, 0.0]);
    assert!(decode_region(&out, &region, 0.9).unwrap()[0].is_empty());
}
