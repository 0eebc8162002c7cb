//! Optimizers beyond the PyTorch reference steps: config validation, frozen and gradient-less
//! parameters, tied weights, state save/load resuming bit-identically, training a small model,
//! and gradient clipping details.

use shendu_core::{DType, Tensor};
use shendu_nn::clip::{clip_grad_norm, clip_grad_value};
use shendu_nn::layers::Linear;
use shendu_nn::loss::{cross_entropy, CrossEntropyOpts};
use shendu_nn::optim::*;
use shendu_nn::{Error, Mode, Module, ModuleExt, Param};

fn param(v: &[f64]) -> Param {
    Param::new(Tensor::from_slice(v, &[v.len()]).unwrap())
}

fn config_name<T>(r: shendu_nn::Result<T>) -> String {
    match r {
        Err(Error::Config { name, .. }) => name,
        Err(e) => panic!("expected a config error, got {e}"),
        Ok(_) => panic!("expected a config error"),
    }
}

#[test]
fn configs_are_validated() {
    let p = || vec![("w".to_string(), param(&[1.0]))];
    assert_eq!(config_name(Sgd::new(p(), SgdConfig { lr: -0.1, ..Default::default() })), "lr");
    assert_eq!(config_name(Sgd::new(p(), SgdConfig { lr: f64::NAN, ..Default::default() })), "lr");
    assert_eq!(config_name(Sgd::new(p(), SgdConfig { momentum: 1.0, ..Default::default() })), "momentum");
    assert_eq!(config_name(Sgd::new(p(), SgdConfig { momentum: -0.5, ..Default::default() })), "momentum");
    assert_eq!(config_name(Sgd::new(p(), SgdConfig { nesterov: true, ..Default::default() })), "nesterov");
    assert_eq!(config_name(Sgd::new(p(), SgdConfig { nesterov: true, momentum: 0.9, dampening: 0.1, ..Default::default() })), "nesterov");
    assert_eq!(config_name(Sgd::new(p(), SgdConfig { weight_decay: -1.0, ..Default::default() })), "weight_decay");
    assert_eq!(config_name(Adam::new(p(), AdamConfig { betas: (1.0, 0.999), ..Default::default() })), "betas");
    assert_eq!(config_name(Adam::new(p(), AdamConfig { betas: (0.9, -0.1), ..Default::default() })), "betas");
    assert_eq!(config_name(Adam::new(p(), AdamConfig { eps: -1e-8, ..Default::default() })), "eps");
    assert_eq!(config_name(AdamW::new(p(), AdamWConfig { lr: -1.0, ..Default::default() })), "lr");
    assert_eq!(config_name(RmsProp::new(p(), RmsPropConfig { alpha: 1.5, ..Default::default() })), "alpha");
    assert_eq!(config_name(RmsProp::new(p(), RmsPropConfig { momentum: 1.0, ..Default::default() })), "momentum");
    let e = Sgd::new(p(), SgdConfig { lr: -0.1, ..Default::default() }).err().unwrap().to_string();
    assert!(e.starts_with("lr: ") && e.contains("-0.1"), "{e}");
    let ints = vec![("steps".to_string(), Param::new(Tensor::from_slice(&[1i64], &[1]).unwrap()))];
    assert_eq!(config_name(Adam::new(ints, AdamConfig::default())), "params");
    let dup = vec![("w".to_string(), param(&[1.0])), ("w".to_string(), param(&[2.0]))];
    assert_eq!(config_name(Sgd::new(dup, SgdConfig::default())), "params");
}

/// Gradient 2 * p for each parameter (loss = sum of squares).
fn backward_squares(params: &[&Param]) {
    let mut total: Option<Tensor> = None;
    for p in params {
        let s = p.tensor().sqr().unwrap().sum_all().unwrap();
        total = Some(match total {
            None => s,
            Some(t) => t.add(&s).unwrap(),
        });
    }
    total.unwrap().backward().unwrap();
}

#[test]
fn frozen_and_gradless_params_are_skipped() {
    let (a, b, c) = (param(&[1.0, 2.0]), param(&[3.0]), param(&[4.0]));
    let mut opt = Sgd::new(
        vec![("a".into(), a.clone()), ("b".into(), b.clone()), ("c".into(), c.clone())],
        SgdConfig { lr: 0.5, ..Default::default() },
    )
    .unwrap();
    backward_squares(&[&a, &b]);
    b.freeze();
    opt.step().unwrap();
    assert_eq!(a.value().to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
    assert_eq!(b.value().to_vec::<f64>().unwrap(), vec![3.0]);
    assert_eq!(c.value().to_vec::<f64>().unwrap(), vec![4.0]);
    let steps: Vec<(String, i64)> =
        opt.state().into_iter().filter(|(n, _)| n.starts_with("step.")).map(|(n, t)| (n, t.to_scalar::<i64>().unwrap())).collect();
    assert_eq!(steps, vec![("step.a".to_string(), 1), ("step.b".to_string(), 0), ("step.c".to_string(), 0)]);
    // The step ran outside autograd: the parameter is still a plain leaf and grad mode is back on.
    assert!(shendu_core::is_grad_enabled());
    opt.zero_grad();
    assert!(a.grad().is_none());
}

#[test]
fn tied_weights_are_updated_once() {
    let w = param(&[1.0]);
    let mut opt =
        Sgd::new(vec![("enc.w".into(), w.clone()), ("dec.w".into(), w.clone())], SgdConfig { lr: 0.25, ..Default::default() }).unwrap();
    backward_squares(&[&w]);
    opt.step().unwrap();
    assert_eq!(w.value().to_vec::<f64>().unwrap(), vec![0.5]);
    let names: Vec<String> = opt.state().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["step.enc.w"]);
}

#[test]
fn state_names_follow_the_config() {
    let names = |opt: &dyn Optimizer| opt.state().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    let p = || vec![("fc1.weight".to_string(), param(&[1.0, 2.0]))];
    let adam = Adam::new(p(), AdamConfig { amsgrad: true, ..Default::default() }).unwrap();
    assert_eq!(names(&adam), ["step.fc1.weight", "exp_avg.fc1.weight", "exp_avg_sq.fc1.weight", "max_exp_avg_sq.fc1.weight"]);
    let sgd = Sgd::new(p(), SgdConfig { momentum: 0.9, ..Default::default() }).unwrap();
    assert_eq!(names(&sgd), ["step.fc1.weight", "momentum_buffer.fc1.weight"]);
    let rms = RmsProp::new(p(), RmsPropConfig { momentum: 0.9, centered: true, ..Default::default() }).unwrap();
    assert_eq!(names(&rms), ["step.fc1.weight", "square_avg.fc1.weight", "momentum_buffer.fc1.weight", "grad_avg.fc1.weight"]);
    assert_eq!((adam.name(), sgd.name(), rms.name()), ("Adam", "SGD", "RMSprop"));
    let st = adam.state();
    assert_eq!(st[1].1.dims(), &[2]);
    assert_eq!(st[0].1.dtype(), DType::I64);
}

/// Two params, loss sum((p - target)^2 * k) with changing targets so every state buffer matters.
fn train_steps(opt: &mut dyn Optimizer, ps: &[Param], from: usize, n: usize) {
    for s in from..from + n {
        opt.zero_grad();
        let mut total: Option<Tensor> = None;
        for (j, p) in ps.iter().enumerate() {
            let target = (s as f64 * 0.37 + j as f64).sin();
            let l = p.tensor().add_scalar(-target).unwrap().sqr().unwrap().mul_scalar(1.0 + j as f64).unwrap().sum_all().unwrap();
            total = Some(match total {
                None => l,
                Some(t) => t.add(&l).unwrap(),
            });
        }
        total.unwrap().backward().unwrap();
        opt.step().unwrap();
    }
}

fn fresh(kind: usize, dtype: DType) -> (Box<dyn Optimizer>, Vec<Param>) {
    let ps = vec![
        Param::new(Tensor::from_slice(&[0.5, -1.0, 2.0], &[3]).unwrap().to_dtype(dtype).unwrap()),
        Param::new(Tensor::from_slice(&[1.5, 0.25], &[2, 1]).unwrap().to_dtype(dtype).unwrap()),
    ];
    let named = vec![("a.weight".to_string(), ps[0].clone()), ("a.bias".to_string(), ps[1].clone())];
    let opt: Box<dyn Optimizer> = match kind {
        0 => Box::new(
            Sgd::new(named, SgdConfig { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.01, ..Default::default() }).unwrap(),
        ),
        1 => Box::new(Adam::new(named, AdamConfig { lr: 0.05, amsgrad: true, weight_decay: 0.01, ..Default::default() }).unwrap()),
        2 => Box::new(AdamW::new(named, AdamWConfig { lr: 0.05, ..Default::default() }).unwrap()),
        _ => Box::new(RmsProp::new(named, RmsPropConfig { lr: 0.01, momentum: 0.5, centered: true, ..Default::default() }).unwrap()),
    };
    (opt, ps)
}

#[test]
fn state_round_trip_resumes_bit_identically() {
    for dtype in [DType::F64, DType::F32] {
        for kind in 0..4 {
            let (mut a, pa) = fresh(kind, dtype);
            train_steps(a.as_mut(), &pa, 0, 3);
            let saved_state = a.state();
            let saved_params: Vec<Tensor> = pa.iter().map(|p| p.value().copy().unwrap()).collect();
            train_steps(a.as_mut(), &pa, 3, 4);

            let (mut b, pb) = fresh(kind, dtype);
            for (p, v) in pb.iter().zip(&saved_params) {
                p.set(v).unwrap();
            }
            b.load_state(&saved_state).unwrap();
            train_steps(b.as_mut(), &pb, 3, 4);
            for (x, y) in pa.iter().zip(&pb) {
                assert_eq!(x.value().to_vec_f64().unwrap(), y.value().to_vec_f64().unwrap(), "{} {dtype}", a.name());
            }
            for ((n1, t1), (n2, t2)) in a.state().iter().zip(b.state()) {
                assert_eq!(n1, &n2);
                assert_eq!(t1.to_vec_f64().unwrap(), t2.to_vec_f64().unwrap(), "{n1}");
            }
        }
    }
}

#[test]
fn load_state_errors_name_the_entry() {
    let (mut opt, _) = fresh(1, DType::F64);
    let good = opt.state();
    let err = |st: &[(String, Tensor)], opt: &mut Box<dyn Optimizer>| match opt.load_state(st) {
        Err(Error::Config { name, msg }) => format!("{name}: {msg}"),
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    };
    let missing: Vec<_> = good.iter().filter(|(n, _)| n != "exp_avg_sq.a.bias").cloned().collect();
    let m = err(&missing, &mut opt);
    assert!(m.starts_with("exp_avg_sq.a.bias") && m.contains("missing"), "{m}");
    let mut wrong = good.clone();
    wrong[1].1 = Tensor::zeros(&[4], DType::F64).unwrap();
    let m = err(&wrong, &mut opt);
    assert!(m.starts_with("exp_avg.a.weight") && m.contains("[3]") && m.contains("[4]"), "{m}");
    let mut extra = good.clone();
    extra.push(("momentum_buffer.a.weight".into(), Tensor::zeros(&[3], DType::F64).unwrap()));
    let m = err(&extra, &mut opt);
    assert!(m.starts_with("momentum_buffer.a.weight") && m.contains("unexpected"), "{m}");
    // Nothing was changed by the failed loads; the good state still loads.
    opt.load_state(&good).unwrap();
    // An Adam state does not fit SGD.
    let (mut sgd, _) = fresh(0, DType::F64);
    assert!(sgd.load_state(&good).is_err());
}

#[test]
fn lr_can_be_changed_between_steps() {
    let w = param(&[1.0]);
    let mut opt = Sgd::new(vec![("w".into(), w.clone())], SgdConfig::default()).unwrap();
    assert_eq!(opt.lr(), 0.01);
    opt.set_lr(0.25);
    assert_eq!(opt.lr(), 0.25);
    backward_squares(&[&w]);
    opt.step().unwrap();
    assert_eq!(w.value().to_vec::<f64>().unwrap(), vec![0.5]);
}

#[test]
fn adam_trains_a_small_classifier_in_f32() {
    shendu_core::manual_seed(7);
    let net = Linear::new(4, 3, DType::F32).unwrap();
    let mut opt = Adam::new(net.trainable_params(), AdamConfig { lr: 0.05, ..Default::default() }).unwrap();
    // Class = index of the largest of the first three features.
    let x = Tensor::randn(&[64, 4], DType::F32).unwrap();
    let xs = x.to_vec::<f32>().unwrap();
    let y: Vec<i64> = xs.chunks(4).map(|r| (0..3).max_by(|&i, &j| r[i].total_cmp(&r[j])).unwrap() as i64).collect();
    let y = Tensor::from_vec(y, &[64]).unwrap();
    let mut losses = vec![];
    for _ in 0..150 {
        opt.zero_grad();
        let l = cross_entropy(&net.forward(&x, Mode::Train).unwrap(), &y, &CrossEntropyOpts::default()).unwrap();
        losses.push(l.to_f64().unwrap());
        l.backward().unwrap();
        opt.step().unwrap();
    }
    assert!(losses[149] < losses[0] * 0.3, "loss {} -> {}", losses[0], losses[149]);
    let acc = shendu_nn::loss::accuracy(&net.forward(&x, Mode::Eval).unwrap(), &y).unwrap();
    assert!(acc > 0.9, "accuracy {acc}");
}

#[test]
fn clipping_details() {
    let a = param(&[3.0, 0.0]);
    let b = param(&[0.0, -4.0]);
    let frozen = param(&[100.0]);
    frozen.freeze();
    let ps = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone()), ("f".to_string(), frozen.clone())];
    // grad = 2 p: [6, 0] and [0, -8], norm 10, max |g| 8.
    backward_squares(&[&a, &b, &frozen]);
    assert!(frozen.grad().is_none());
    let total = clip_grad_norm(&ps, 100.0, 2.0).unwrap();
    assert!((total - 10.0).abs() < 1e-12);
    assert_eq!(a.grad().unwrap().to_vec::<f64>().unwrap(), vec![6.0, 0.0], "no clipping below max_norm");
    assert_eq!(clip_grad_norm(&ps, 4.0, f64::INFINITY).unwrap(), 8.0);
    let g = b.grad().unwrap().to_vec::<f64>().unwrap();
    assert!((g[1] + 4.0).abs() < 1e-5, "{g:?}");
    clip_grad_value(&ps, 1.0).unwrap();
    assert_eq!(a.grad().unwrap().to_vec::<f64>().unwrap(), vec![1.0, 0.0]);
    assert!(matches!(clip_grad_norm(&ps, 1.0, 0.0), Err(Error::Config { name, .. }) if name == "norm_type"));
    assert!(matches!(clip_grad_value(&ps, -1.0), Err(Error::Config { name, .. }) if name == "clip_value"));
    // Non-finite gradients give a non-finite total, as PyTorch (no error by default).
    a.var().set_grad(Some(Tensor::from_slice(&[f64::NAN, 0.0], &[2]).unwrap())).unwrap();
    assert!(clip_grad_norm(&ps, 1.0, 2.0).unwrap().is_nan());
    assert!(a.var().set_grad(Some(Tensor::zeros(&[3], DType::F64).unwrap())).is_err());
    a.var().set_grad(None).unwrap();
    assert!(a.grad().is_none());
}
