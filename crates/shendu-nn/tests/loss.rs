//! Losses beyond the PyTorch reference values: error messages, numerical stability at extreme
//! inputs, finite-difference gradients of option combinations, shapes and `accuracy`.

use shendu_core::{DType, Tensor, Var};
use shendu_nn::loss::*;
use shendu_nn::Error;

fn t64(v: &[f64], dims: &[usize]) -> Tensor {
    Tensor::from_slice(v, dims).unwrap()
}

fn idx(v: &[i64], dims: &[usize]) -> Tensor {
    Tensor::from_slice(v, dims).unwrap()
}

fn msg<T: std::fmt::Debug>(r: shendu_nn::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn shape_and_dtype_errors_name_both_sides() {
    let a = Tensor::zeros(&[2, 3], DType::F32).unwrap();
    let b = Tensor::zeros(&[3, 2], DType::F32).unwrap();
    let m = msg(mse_loss(&a, &b, Reduction::Mean));
    assert!(m.contains("mse_loss") && m.contains("[2, 3]") && m.contains("[3, 2]"), "{m}");
    let m = msg(l1_loss(&a, &a.to_dtype(DType::F64).unwrap(), Reduction::Mean));
    assert!(m.contains("l1_loss") && m.contains("f32") && m.contains("f64"), "{m}");
    let m = msg(smooth_l1_loss(&a, &b, 1.0, Reduction::Sum));
    assert!(m.contains("smooth_l1_loss") && m.contains("[3, 2]"), "{m}");
    assert!(matches!(smooth_l1_loss(&a, &a, -1.0, Reduction::Sum), Err(Error::Config { .. })));
    let m = msg(binary_cross_entropy_with_logits(&a, &b, None, Reduction::Mean));
    assert!(m.contains("binary_cross_entropy_with_logits") && m.contains("[2, 3]") && m.contains("[3, 2]"), "{m}");
    let m = msg(kl_div(&a, &b, KlReduction::BatchMean, false));
    assert!(m.contains("kl_div"), "{m}");
    let i = idx(&[0, 1], &[2]);
    let m = msg(mse_loss(&i, &i, Reduction::Mean));
    assert!(m.contains("float"), "{m}");
}

#[test]
fn cross_entropy_errors() {
    let logits = Tensor::zeros(&[3, 4], DType::F32).unwrap();
    let opts = CrossEntropyOpts::default();
    let m = msg(cross_entropy(&logits, &idx(&[0, 4, 1], &[3]), &opts));
    assert!(m.contains("cross_entropy") && m.contains("target 4") && m.contains("4 classes"), "{m}");
    let m = msg(cross_entropy(&logits, &idx(&[0, -100, 1], &[3]), &opts));
    assert!(m.contains("target -100") && m.contains("position 1"), "{m}");
    let m = msg(cross_entropy(&logits, &idx(&[0, 1], &[2]), &opts));
    assert!(m.contains("[3, 4]") && m.contains("[2]"), "{m}");
    let m = msg(cross_entropy(&logits, &Tensor::zeros(&[3], DType::F32).unwrap(), &opts));
    assert!(m.contains("i64"), "{m}");
    let bad_w = CrossEntropyOpts { weight: Some(Tensor::ones(&[3], DType::F32).unwrap()), ..Default::default() };
    let m = msg(cross_entropy(&logits, &idx(&[0, 1, 2], &[3]), &bad_w));
    assert!(m.contains("weight [3]") && m.contains("[4]"), "{m}");
    let smooth = CrossEntropyOpts { label_smoothing: 1.5, ..Default::default() };
    assert!(
        matches!(cross_entropy(&logits, &idx(&[0, 1, 2], &[3]), &smooth), Err(Error::Config { name, .. }) if name == "label_smoothing")
    );
    let m = msg(nll_loss(&logits, &idx(&[0, 9, 1], &[3]), None, Reduction::Mean));
    assert!(m.contains("nll_loss") && m.contains("target 9") && m.contains("4 classes"), "{m}");
    let m = msg(cross_entropy(&Tensor::scalar(1f32), &idx(&[0], &[1]), &opts));
    assert!(m.contains("class dimension"), "{m}");
}

#[test]
fn binary_cross_entropy_checks_range_and_is_finite_at_0_and_1() {
    let p = t64(&[0.0, 1.0, 0.5, 1.0], &[4]);
    let y = t64(&[1.0, 0.0, 1.0, 1.0], &[4]);
    let m = msg(binary_cross_entropy(&t64(&[1.5], &[1]), &t64(&[1.0], &[1]), None, Reduction::Mean));
    assert!(m.contains("between 0 and 1"), "{m}");
    let x = Var::new(p);
    let l = binary_cross_entropy(&x, &y, None, Reduction::None).unwrap();
    // PyTorch clamps the logs at -100.
    let v = l.to_vec::<f64>().unwrap();
    assert!((v[0] - 100.0).abs() < 1e-9 && (v[1] - 100.0).abs() < 1e-9 && (v[2] - 2f64.ln()).abs() < 1e-15 && v[3] == 0.0, "{v:?}");
    let g = l.sum_all().unwrap().backward().unwrap();
    assert!(g.get(&x).unwrap().to_vec::<f64>().unwrap().iter().all(|g| g.is_finite()));
    let m = msg(binary_cross_entropy(&t64(&[0.5, 0.5], &[2]), &t64(&[1.0, 0.0], &[2]), Some(&t64(&[1.0, 2.0, 3.0], &[3])), Reduction::Sum));
    assert!(m.contains("weight [3]") && m.contains("[2]"), "{m}");
}

#[test]
fn extreme_logits_stay_finite_with_exact_gradients() {
    // Cross entropy: gradient is (softmax - onehot) / N, softmax being exactly one-hot here.
    let x = Var::new(t64(&[1000.0, -1000.0, 0.0, -1000.0, 1000.0, 0.0], &[2, 3]));
    let l = cross_entropy(&x, &idx(&[0, 0], &[2]), &CrossEntropyOpts::default()).unwrap();
    assert!((l.to_f64().unwrap() - 1000.0).abs() < 1e-9, "{}", l.to_f64().unwrap());
    let g = l.backward().unwrap().get(&x).unwrap().to_vec::<f64>().unwrap();
    let want = [0.0, 0.0, 0.0, -0.5, 0.5, 0.0];
    assert!(g.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{g:?}");
    // BCE with logits: gradient sigmoid(x) - y, also at x = 0 (the kink of max(-x, 0)).
    let x = Var::new(t64(&[1000.0, -1000.0, 0.0, 0.0], &[4]));
    let y = t64(&[0.0, 1.0, 1.0, 0.25], &[4]);
    let l = binary_cross_entropy_with_logits(&x, &y, None, Reduction::Sum).unwrap();
    assert!((l.to_f64().unwrap() - (2000.0 + 2.0 * 2f64.ln())).abs() < 1e-9, "{}", l.to_f64().unwrap());
    let g = l.backward().unwrap().get(&x).unwrap().to_vec::<f64>().unwrap();
    let want = [1.0, -1.0, -0.5, 0.25];
    assert!(g.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{g:?}");
}

/// Central differences of `f` at `x` against autograd.
fn gradcheck(x: &[f64], dims: &[usize], f: impl Fn(&Tensor) -> Tensor) {
    let v = Var::new(t64(x, dims));
    let g = f(&v).backward().unwrap().get(&v).unwrap().to_vec::<f64>().unwrap();
    let h = 1e-6;
    for i in 0..x.len() {
        let (mut a, mut b) = (x.to_vec(), x.to_vec());
        a[i] += h;
        b[i] -= h;
        let num = (f(&t64(&a, dims)).to_f64().unwrap() - f(&t64(&b, dims)).to_f64().unwrap()) / (2.0 * h);
        assert!((num - g[i]).abs() < 1e-7 * num.abs().max(1.0), "d/dx[{i}]: numeric {num}, autograd {}", g[i]);
    }
}

#[test]
fn cross_entropy_spatial_with_every_option_has_correct_gradients() {
    // [N=2, C=3, d=2] with class weights, smoothing and an ignored target.
    let x: Vec<f64> = (0..12).map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0).collect();
    let targets = idx(&[2, 7, 0, 1], &[2, 2]);
    for reduction in [Reduction::Mean, Reduction::Sum] {
        let opts = CrossEntropyOpts { weight: Some(t64(&[0.5, 2.0, 1.5], &[3])), label_smoothing: 0.2, ignore_index: Some(7), reduction };
        gradcheck(&x, &[2, 3, 2], |t| cross_entropy(t, &targets, &opts).unwrap());
    }
    let l = cross_entropy(
        &t64(&x, &[2, 3, 2]),
        &targets,
        &CrossEntropyOpts { ignore_index: Some(7), reduction: Reduction::None, ..Default::default() },
    );
    let l = l.unwrap();
    assert_eq!(l.dims(), &[2, 2]);
    assert_eq!(l.to_vec::<f64>().unwrap()[1], 0.0);
}

#[test]
fn cross_entropy_of_one_sample_without_batch_dim() {
    let x = t64(&[1.0, 2.0, 3.0], &[3]);
    let t = Tensor::scalar(2i64);
    let l = cross_entropy(&x, &t, &CrossEntropyOpts { reduction: Reduction::None, ..Default::default() }).unwrap();
    assert_eq!(l.dims(), &[] as &[usize]);
    let want = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln() - 3.0;
    assert!((l.to_f64().unwrap() - want).abs() < 1e-14);
    // The mean over no kept target is 0 / 0, as PyTorch.
    let all_ignored = CrossEntropyOpts { ignore_index: Some(2), ..Default::default() };
    assert!(cross_entropy(&x, &t, &all_ignored).unwrap().to_f64().unwrap().is_nan());
}

#[test]
fn targets_get_gradients_too() {
    let a = Var::new(t64(&[1.0, 2.0], &[2]));
    let b = Var::new(t64(&[0.0, 4.0], &[2]));
    let g = mse_loss(&a, &b, Reduction::Sum).unwrap().backward().unwrap();
    assert_eq!(g.get(&a).unwrap().to_vec::<f64>().unwrap(), vec![2.0, -4.0]);
    assert_eq!(g.get(&b).unwrap().to_vec::<f64>().unwrap(), vec![-2.0, 4.0]);
}

#[test]
fn f32_cross_entropy_matches_f64() {
    let x: Vec<f64> = (0..40).map(|i| ((i * 13 % 17) as f64 - 8.0) / 2.0).collect();
    let t: Vec<i64> = (0..4).map(|i| (i * 3 % 10) as i64).collect();
    let l64 = cross_entropy(&t64(&x, &[4, 10]), &idx(&t, &[4]), &CrossEntropyOpts::default()).unwrap().to_f64().unwrap();
    let x32 = t64(&x, &[4, 10]).to_dtype(DType::F32).unwrap();
    let l32 = cross_entropy(&x32, &idx(&t, &[4]), &CrossEntropyOpts::default()).unwrap();
    assert_eq!(l32.dtype(), DType::F32);
    assert!((l32.to_f64().unwrap() - l64).abs() < 1e-5 * l64.abs().max(1.0));
}

#[test]
fn accuracy_counts_argmax_matches() {
    let logits = t64(&[0.1, 0.9, 0.8, 0.2, 0.3, 0.7, 0.6, 0.4], &[4, 2]);
    assert_eq!(accuracy(&logits, &idx(&[1, 0, 0, 0], &[4])).unwrap(), 0.75);
    // [N, C, d]: argmax over dim 1.
    let l3 = t64(&[0.0, 1.0, 1.0, 0.0], &[1, 2, 2]);
    assert_eq!(accuracy(&l3, &idx(&[1, 1], &[1, 2])).unwrap(), 0.5);
    assert_eq!(accuracy(&Tensor::zeros(&[0, 3], DType::F32).unwrap(), &idx(&[], &[0])).unwrap(), 0.0);
    let m = msg(accuracy(&logits, &idx(&[1, 0], &[2])));
    assert!(m.contains("accuracy") && m.contains("[4, 2]") && m.contains("[2]"), "{m}");
    assert!(accuracy(&t64(&[1.0], &[1]), &idx(&[0], &[1])).is_err());
}
