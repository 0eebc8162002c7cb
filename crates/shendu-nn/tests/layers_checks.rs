//! The layers' behaviour beyond the PyTorch numbers: dropout statistics and reproducibility,
//! parameter names and kinds, initialisation ranges, and errors (never panics) on bad input.

use shendu_core::{manual_seed, DType, Padding, Tensor, Var};
use shendu_nn::layers::*;
use shendu_nn::{Error, Mode, Module, ModuleExt, ParamKind, Sequential};

fn names(m: &dyn Module) -> Vec<String> {
    m.named_params().into_iter().map(|(n, _)| n).collect()
}

fn ones(shape: &[usize]) -> Tensor {
    Tensor::ones(shape, DType::F32).unwrap()
}

/// The error must be a Layer error of `layer` whose message holds every one of `parts`.
fn assert_layer_err<T>(r: shendu_nn::Result<T>, layer: &str, parts: &[&str]) {
    match r {
        Err(Error::Layer { layer: l, msg }) => {
            assert_eq!(l, layer, "{msg}");
            for p in parts {
                assert!(msg.contains(p), "{layer} error {msg:?} does not mention {p:?}");
            }
        }
        Err(e) => panic!("expected a {layer} layer error, got {e}"),
        Ok(_) => panic!("expected a {layer} layer error, got Ok"),
    }
}

#[test]
fn dropout_is_identity_in_eval_and_inverted_in_train() {
    let x = ones(&[200, 500]);
    let d = Dropout::new(0.3).unwrap();
    let y = d.forward(&x, Mode::Eval).unwrap();
    assert!(y.same_storage(&x));
    manual_seed(11);
    let v = d.forward(&x, Mode::Train).unwrap().to_vec::<f32>().unwrap();
    let n = v.len() as f64;
    let zeros = v.iter().filter(|&&e| e == 0.0).count() as f64 / n;
    let mean = v.iter().map(|&e| e as f64).sum::<f64>() / n;
    assert!((zeros - 0.3).abs() < 0.01, "zero fraction {zeros}");
    assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
    assert!(v.iter().all(|&e| e == 0.0 || (e - 1.0 / 0.7).abs() < 1e-6));
    // p = 0 and p = 1 are PyTorch's edge cases.
    assert_eq!(Dropout::new(0.0).unwrap().forward(&x, Mode::Train).unwrap().to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
    assert!(Dropout::new(1.0).unwrap().forward(&x, Mode::Train).unwrap().to_vec::<f32>().unwrap().iter().all(|&e| e == 0.0));
    assert_layer_err(Dropout::new(1.5), "Dropout", &["1.5"]);
    assert_layer_err(Dropout::new(-0.1), "Dropout", &["-0.1"]);
}

#[test]
fn dropout_follows_the_default_generator() {
    let x = Tensor::randn(&[64, 33], DType::F64).unwrap();
    let d = Dropout::new(0.5).unwrap();
    manual_seed(5);
    let a = d.forward(&x, Mode::Train).unwrap().to_vec::<f64>().unwrap();
    let b = d.forward(&x, Mode::Train).unwrap().to_vec::<f64>().unwrap();
    assert_ne!(a, b, "two draws must differ");
    manual_seed(5);
    assert_eq!(d.forward(&x, Mode::Train).unwrap().to_vec::<f64>().unwrap(), a);
    // A checkpointed generator state resumes the same masks.
    let state = shendu_core::default_rng_state();
    let c = d.forward(&x, Mode::Train).unwrap().to_vec::<f64>().unwrap();
    shendu_core::set_default_rng_state(state);
    assert_eq!(d.forward(&x, Mode::Train).unwrap().to_vec::<f64>().unwrap(), c);
}

#[test]
fn dropout_gradient_is_the_mask() {
    manual_seed(3);
    let x = Var::new(ones(&[10, 10]));
    let y = Dropout::new(0.4).unwrap().forward(&x, Mode::Train).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
}

#[test]
fn dropout2d_drops_whole_channels() {
    manual_seed(9);
    let d = Dropout2d::new(0.5).unwrap();
    let v = d.forward(&ones(&[16, 32, 4, 4]), Mode::Train).unwrap().to_vec::<f32>().unwrap();
    let planes: Vec<f32> = v.chunks(16).map(|p| p[0]).collect();
    assert!(v.chunks(16).all(|p| p.iter().all(|&e| e == p[0])));
    assert!(planes.iter().all(|&e| e == 0.0 || e == 2.0));
    let zeros = planes.iter().filter(|&&e| e == 0.0).count() as f64 / planes.len() as f64;
    assert!((zeros - 0.5).abs() < 0.1, "zero fraction {zeros}");
    assert!(d.forward(&ones(&[2, 3, 4, 4]), Mode::Eval).unwrap().to_vec::<f32>().unwrap().iter().all(|&e| e == 1.0));
    assert_layer_err(d.forward(&ones(&[2, 3]), Mode::Train), "Dropout2d", &["[2, 3]"]);
}

#[test]
fn parameter_names_and_kinds_follow_pytorch() {
    assert_eq!(names(&Conv2d::new(3, 4, 3, DType::F32).unwrap()), ["weight", "bias"]);
    assert_eq!(names(&Conv2dConfig::new(3, 4, 3).bias(false).build(DType::F32).unwrap()), ["weight"]);
    assert_eq!(names(&ConvTranspose2d::new(3, 4, 3, DType::F32).unwrap()), ["weight", "bias"]);
    assert_eq!(names(&Embedding::new(5, 2, DType::F32).unwrap()), ["weight"]);
    let bn = BatchNorm2d::new(6, DType::F32).unwrap();
    assert_eq!(names(&bn), ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
    let kinds: Vec<ParamKind> = bn.named_params().into_iter().map(|(_, p)| p.kind()).collect();
    assert_eq!(kinds, [ParamKind::Weight, ParamKind::Weight, ParamKind::Buffer, ParamKind::Buffer, ParamKind::Buffer]);
    assert_eq!(
        names(&BatchNormConfig::new(4).affine(false).build_1d(DType::F32).unwrap()),
        ["running_mean", "running_var", "num_batches_tracked"]
    );
    assert!(names(&BatchNormConfig::new(4).affine(false).track_running_stats(false).build_1d(DType::F32).unwrap()).is_empty());
    let net = Sequential::new()
        .push(Conv2d::new(3, 8, 3, DType::F32).unwrap())
        .push(BatchNorm2d::new(8, DType::F32).unwrap())
        .push(Relu)
        .push(MaxPool2d::new(2))
        .push(Flatten::new());
    assert_eq!(names(&net), ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked"]);
    assert_eq!(net.trainable_params().len(), 4);
    assert_eq!(net.forward(&ones(&[2, 3, 10, 10]), Mode::Train).unwrap().dims(), &[2, 8 * 4 * 4]);
}

#[test]
fn initialisation_follows_pytorch() {
    manual_seed(1);
    let max_abs = |t: &Tensor| t.to_vec_f64().unwrap().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    // fan_in = in / groups * kh * kw
    let conv = Conv2dConfig::new(8, 16, 3).groups(4).build(DType::F64).unwrap();
    assert_eq!(conv.weight.dims(), &[16, 2, 3, 3]);
    let bound = 1.0 / 18f64.sqrt();
    assert!(max_abs(&conv.weight.value()) <= bound && max_abs(&conv.weight.value()) > 0.8 * bound);
    assert!(max_abs(&conv.bias.as_ref().unwrap().value()) <= bound);
    // ConvTranspose2d's fan_in comes from its weight's second dim: out / groups * kh * kw.
    let up = ConvTranspose2dConfig::new(4, 6, 3).groups(2).build(DType::F64).unwrap();
    assert_eq!(up.weight.dims(), &[4, 3, 3, 3]);
    let bound = 1.0 / 27f64.sqrt();
    assert!(max_abs(&up.weight.value()) <= bound && max_abs(&up.weight.value()) > 0.8 * bound);
    let emb = Embedding::new(1000, 16, DType::F64).unwrap().weight.value().to_vec_f64().unwrap();
    let sd = (emb.iter().map(|v| v * v).sum::<f64>() / emb.len() as f64).sqrt();
    assert!((sd - 1.0).abs() < 0.03, "embedding std {sd}");
    let bn = BatchNorm2d::new(3, DType::F32).unwrap();
    assert_eq!(bn.weight.as_ref().unwrap().value().to_vec::<f32>().unwrap(), [1.0; 3]);
    assert_eq!(bn.bias.as_ref().unwrap().value().to_vec::<f32>().unwrap(), [0.0; 3]);
    let r = bn.running.as_ref().unwrap();
    assert_eq!(r.mean.value().to_vec::<f32>().unwrap(), [0.0; 3]);
    assert_eq!(r.var.value().to_vec::<f32>().unwrap(), [1.0; 3]);
    assert_eq!(r.num_batches_tracked.dims(), &[] as &[usize]);
    assert_eq!(r.num_batches_tracked.dtype(), DType::I64);
}

#[test]
fn batch_norm_eval_and_untracked() {
    let bn = BatchNorm2d::new(2, DType::F64).unwrap();
    // Eval before any training: running stats (0, 1) make it nearly the identity.
    let x = Tensor::randn(&[3, 2, 4, 4], DType::F64).unwrap();
    let y = bn.forward(&x, Mode::Eval).unwrap().to_vec_f64().unwrap();
    let scale = 1.0 / (1.0 + 1e-5f64).sqrt();
    assert!(x.to_vec_f64().unwrap().iter().zip(&y).all(|(a, b)| (a * scale - b).abs() < 1e-12));
    // Eval does not touch the buffers.
    assert_eq!(bn.running.as_ref().unwrap().num_batches_tracked.value().to_scalar::<i64>().unwrap(), 0);
    // Without running stats eval normalises with the batch.
    let free = BatchNormConfig::new(2).track_running_stats(false).build_2d(DType::F64).unwrap();
    let y = free.forward(&x.affine(3.0, 5.0).unwrap(), Mode::Eval).unwrap();
    let m = y.mean(&[0, 2, 3], false).unwrap().to_vec_f64().unwrap();
    assert!(m.iter().all(|v| v.abs() < 1e-12), "{m:?}");
}

/// `forward_act` is `forward` then the activation, in train mode (the fused op, running
/// statistics updated the same) and in eval mode (one pass under no_grad, composed ops while
/// gradients are recorded), for 2d and 1d.
#[test]
fn batch_norm_forward_act_is_forward_then_activation() {
    use shendu_core::BatchNormActivation as Act;
    let x = Tensor::randn(&[4, 3, 5, 5], DType::F32).unwrap().affine(2.0, 0.7).unwrap();
    let x1 = Tensor::randn(&[16, 3], DType::F32).unwrap().affine(2.0, 0.7).unwrap();
    for (act, name) in [(Act::Relu, "relu"), (Act::Relu6, "relu6"), (Act::Leaky(0.1), "leaky"), (Act::Identity, "identity")] {
        let standalone = |y: Tensor| act.apply(&y).unwrap();
        let close = |a: &Tensor, b: &Tensor, what: &str| {
            let (a, b) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
            let worst = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-6, "{name} {what}: worst difference {worst}");
        };
        let (fused, apart) = (BatchNorm2d::new(3, DType::F32).unwrap(), BatchNorm2d::new(3, DType::F32).unwrap());
        for mode in [Mode::Train, Mode::Train, Mode::Eval] {
            let y = fused.forward_act(&x.mul_scalar(3.0).unwrap(), mode, act).unwrap();
            close(&y, &standalone(apart.forward(&x.mul_scalar(3.0).unwrap(), mode).unwrap()), &format!("2d {mode:?}"));
        }
        // Eval under no_grad takes the one-pass op; with the parameters' gradients recorded,
        // the composed ops (above).
        let fast = {
            let _g = shendu_core::no_grad();
            fused.forward_act(&x, Mode::Eval, act).unwrap()
        };
        close(&fast, &standalone(apart.forward(&x, Mode::Eval).unwrap()), "2d eval under no_grad");
        let (rf, ra) = (fused.running.as_ref().unwrap(), apart.running.as_ref().unwrap());
        close(&rf.mean.value(), &ra.mean.value(), "running mean");
        close(&rf.var.value(), &ra.var.value(), "running var");
        let (fused, apart) = (BatchNorm1d::new(3, DType::F32).unwrap(), BatchNorm1d::new(3, DType::F32).unwrap());
        for mode in [Mode::Train, Mode::Eval] {
            close(&fused.forward_act(&x1, mode, act).unwrap(), &standalone(apart.forward(&x1, mode).unwrap()), &format!("1d {mode:?}"));
        }
    }
}

#[test]
fn wrong_channels_are_layer_errors_naming_both_shapes() {
    let conv = Conv2dConfig::new(4, 8, 3).groups(2).build(DType::F32).unwrap();
    assert_layer_err(conv.forward(&ones(&[1, 3, 8, 8]), Mode::Train), "Conv2d", &["[1, 3, 8, 8]", "[8, 2, 3, 3]"]);
    assert_layer_err(conv.forward(&ones(&[4, 8, 8]), Mode::Train), "Conv2d", &["[4, 8, 8]", "[8, 2, 3, 3]"]);
    let up = ConvTranspose2d::new(4, 2, 3, DType::F32).unwrap();
    assert_layer_err(up.forward(&ones(&[1, 2, 5, 5]), Mode::Train), "ConvTranspose2d", &["[1, 2, 5, 5]", "[4, 2, 3, 3]"]);
    let bn = BatchNorm2d::new(6, DType::F32).unwrap();
    assert_layer_err(bn.forward(&ones(&[2, 5, 3, 3]), Mode::Train), "BatchNorm2d", &["[2, 5, 3, 3]", "[6]"]);
    assert_layer_err(bn.forward(&ones(&[2, 6]), Mode::Train), "BatchNorm2d", &["[2, 6]"]);
    let bn1 = BatchNorm1d::new(6, DType::F32).unwrap();
    assert_layer_err(bn1.forward(&ones(&[2, 5, 7]), Mode::Eval), "BatchNorm1d", &["[2, 5, 7]", "[6]"]);
    assert_layer_err(bn1.forward(&ones(&[2, 6, 3, 3]), Mode::Eval), "BatchNorm1d", &["[2, 6, 3, 3]"]);
    // One value per channel cannot be normalised in training (PyTorch refuses too).
    assert_layer_err(bn1.forward(&ones(&[1, 6]), Mode::Train), "BatchNorm1d", &["[1, 6]"]);
    assert!(bn1.forward(&ones(&[1, 6]), Mode::Eval).is_ok());
}

#[test]
fn bad_configs_are_layer_errors_naming_the_values() {
    assert_layer_err(Conv2dConfig::new(6, 4, 3).groups(4).build(DType::F32), "Conv2d", &["in_channels 6", "groups 4"]);
    assert_layer_err(Conv2dConfig::new(4, 6, 3).groups(4).build(DType::F32), "Conv2d", &["out_channels 6", "groups 4"]);
    assert_layer_err(Conv2dConfig::new(4, 6, 0).build(DType::F32), "Conv2d", &["kernel"]);
    assert_layer_err(Conv2dConfig::new(4, 6, 3).stride(0).build(DType::F32), "Conv2d", &["stride"]);
    assert_layer_err(Conv2dConfig::new(4, 6, 3).groups(0).build(DType::F32), "Conv2d", &["groups"]);
    assert_layer_err(Conv2dConfig::new(4, 6, 3).dilation(0).build(DType::F32), "Conv2d", &["dilation"]);
    assert_layer_err(
        ConvTranspose2dConfig::new(4, 6, 3).stride(2).output_padding(2).build(DType::F32),
        "ConvTranspose2d",
        &["output_padding (2, 2)"],
    );
    assert_layer_err(BatchNormConfig::new(0).build_2d(DType::F32), "BatchNorm2d", &["num_features"]);
    assert_layer_err(BatchNormConfig::new(3).momentum(Some(1.5)).build_1d(DType::F32), "BatchNorm1d", &["1.5"]);
    assert_layer_err(BatchNormConfig::new(3).build_1d(DType::I64), "BatchNorm1d", &["i64"]);
    assert_layer_err(ChannelShuffle::new(0), "ChannelShuffle", &["groups"]);
    assert_layer_err(Upsample::scale(0.0, UpsampleMode::Nearest), "Upsample", &["0"]);
    assert_layer_err(Upsample::size(0, 3, UpsampleMode::Nearest), "Upsample", &["(0, 3)"]);
    assert_layer_err(Embedding::new(0, 3, DType::F32), "Embedding", &["num_embeddings 0"]);
}

#[test]
fn other_bad_inputs_are_errors() {
    let emb = Embedding::new(10, 3, DType::F32).unwrap();
    let ids = Tensor::from_vec(vec![1i64, 10, 2], &[3]).unwrap();
    assert_layer_err(emb.forward(&ids, Mode::Train), "Embedding", &["index 10", "10 entries"]);
    let ids = Tensor::from_vec(vec![-1i64], &[1]).unwrap();
    assert_layer_err(emb.forward(&ids, Mode::Train), "Embedding", &["index -1"]);
    assert_layer_err(emb.forward(&ones(&[3]), Mode::Train), "Embedding", &["i64"]);
    assert_eq!(emb.forward(&Tensor::from_vec(vec![4i64], &[] as &[usize]).unwrap(), Mode::Eval).unwrap().dims(), &[3]);
    let shuffle = ChannelShuffle::new(4).unwrap();
    assert_layer_err(shuffle.forward(&ones(&[1, 6, 2, 2]), Mode::Eval), "ChannelShuffle", &["6 channels", "groups 4"]);
    assert_layer_err(Flatten::new().forward(&ones(&[3]), Mode::Eval), "Flatten", &["[3]"]);
    assert_layer_err(MaxPool2d::new(2).forward(&ones(&[2, 4, 4]), Mode::Eval), "MaxPool2d", &["[2, 4, 4]"]);
    assert_layer_err(MaxPool2d::new(0).forward(&ones(&[1, 2, 4, 4]), Mode::Eval), "MaxPool2d", &["kernel"]);
    assert_layer_err(AvgPool2d::new(2).forward(&ones(&[4, 4]), Mode::Eval), "AvgPool2d", &["[4, 4]"]);
    assert_layer_err(AdaptiveAvgPool2d::new(0, 1).forward(&ones(&[1, 1, 4, 4]), Mode::Eval), "AdaptiveAvgPool2d", &["(0, 1)"]);
    assert_layer_err(GlobalAvgPool2d::new().forward(&ones(&[1, 4]), Mode::Eval), "GlobalAvgPool2d", &["[1, 4]"]);
    assert_layer_err(
        Upsample::scale(0.2, UpsampleMode::Nearest).unwrap().forward(&ones(&[1, 1, 4, 4]), Mode::Eval),
        "Upsample",
        &["[1, 1, 4, 4]"],
    );
    // A kernel larger than the input is the core's shape error, not a panic.
    let conv = Conv2d::new(1, 1, 5, DType::F32).unwrap();
    assert!(matches!(conv.forward(&ones(&[1, 1, 3, 3]), Mode::Eval), Err(Error::Core(_))));
    // Same padding keeps ceil(in / stride).
    let same = Conv2dConfig::new(1, 2, 4).stride(3).padding(Padding::Same).build(DType::F32).unwrap();
    assert_eq!(same.forward(&ones(&[1, 1, 10, 7]), Mode::Eval).unwrap().dims(), &[1, 2, 4, 3]);
}

#[test]
fn flatten_and_channel_shuffle_shapes() {
    let x = ones(&[2, 3, 4, 5]);
    assert_eq!(Flatten::range(0, 1).forward(&x, Mode::Eval).unwrap().dims(), &[6, 4, 5]);
    assert_eq!(Flatten::range(2, 3).forward(&x, Mode::Eval).unwrap().dims(), &[2, 3, 20]);
    // Shuffling twice with g and C/g is the identity.
    let x = Tensor::randn(&[2, 6, 3, 3], DType::F64).unwrap();
    let y = ChannelShuffle::new(2).unwrap().forward(&x, Mode::Eval).unwrap();
    let z = ChannelShuffle::new(3).unwrap().forward(&y, Mode::Eval).unwrap();
    assert_eq!(z.to_vec_f64().unwrap(), x.to_vec_f64().unwrap());
}
