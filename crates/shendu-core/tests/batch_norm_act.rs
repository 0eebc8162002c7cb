//! Batch norm with a fused activation equals batch norm followed by the standalone activation:
//! output, input gradient and parameter gradients, in f32 through the AVX2 sums and in the
//! portable loops, on 1 and 2 threads, on planes whose lengths leave vector tails. (The f64
//! gradients against finite differences are rows of `gradcheck.rs`.)

use shendu_core::cpu::simd::set_simd_enabled;
use shendu_core::{set_num_threads, BatchNormActivation, DType, Rng, Tensor, Var};

fn randn(shape: &[usize], rng: &mut Rng, scale: f64, shift: f64) -> Tensor {
    let v: Vec<f64> = (0..shape.iter().product::<usize>()).map(|_| rng.normal() * scale + shift).collect();
    Tensor::from_vec(v, shape).unwrap().to_dtype(DType::F32).unwrap()
}

/// `[y, gx, gw, gb]` of `sum(f(x, w, b) * r)`.
fn run(x: &Tensor, w: &Tensor, b: &Tensor, r: &Tensor, f: &dyn Fn(&Tensor, &Tensor, &Tensor) -> Tensor) -> [Vec<f64>; 4] {
    let (xv, wv, bv) = (Var::new(x.clone()), Var::new(w.clone()), Var::new(b.clone()));
    let y = f(xv.as_tensor(), wv.as_tensor(), bv.as_tensor());
    y.mul(r).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |v: &Var| v.grad().unwrap().to_vec_f64().unwrap();
    [y.to_vec_f64().unwrap(), grad(&xv), grad(&wv), grad(&bv)]
}

fn standalone(y: &Tensor, act: BatchNormActivation) -> Tensor {
    act.apply(y).unwrap()
}

#[test]
fn fused_activation_matches_batch_norm_then_activation() {
    let acts = [BatchNormActivation::Relu, BatchNormActivation::Relu6, BatchNormActivation::Leaky(0.1), BatchNormActivation::Identity];
    // Planes of 25 and 49 values (vector tails), a 16x16 plane (several 256-value blocks over
    // the batch), and [N, C].
    let shapes: [&[usize]; 4] = [&[8, 16, 5, 5], &[4, 8, 7, 7], &[3, 5, 16, 16], &[64, 3]];
    let mut rng = Rng::new(11);
    for shape in shapes {
        let c = shape[1];
        let x = randn(shape, &mut rng, 2.0, 0.5);
        // Weights and biases that put every channel's outputs on both sides of 0 and of 6.
        let w = randn(&[c], &mut rng, 2.0, 2.5);
        let b = randn(&[c], &mut rng, 1.0, 2.0);
        let r = randn(shape, &mut rng, 1.0, 0.0);
        for act in acts {
            for (simd, threads) in [(true, 1), (true, 2), (false, 1), (false, 2)] {
                set_simd_enabled(simd);
                set_num_threads(threads);
                let fused = run(&x, &w, &b, &r, &|x, w, b| x.batch_norm_act(w, b, 1e-5, act).unwrap());
                let apart = run(&x, &w, &b, &r, &|x, w, b| standalone(&x.batch_norm_train(w, b, 1e-5).unwrap(), act));
                for (what, (f, a)) in ["y", "gx", "gw", "gb"].iter().zip(fused.iter().zip(&apart)) {
                    let scale = a.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
                    let worst = f.iter().zip(a).map(|(f, a)| (f - a).abs()).fold(0.0, f64::max);
                    assert!(
                        worst <= 2e-6 * scale,
                        "{act:?} {shape:?} simd {simd} {threads} threads {what}: worst {worst} at scale {scale}"
                    );
                }
                if act == BatchNormActivation::Relu6 {
                    let sat = fused[0].iter().filter(|&&v| v == 6.0).count();
                    let zero = fused[0].iter().filter(|&&v| v == 0.0).count();
                    assert!(sat > 0 && zero > 0, "{shape:?}: the test data must reach both kinks ({sat} at 6, {zero} at 0)");
                }
            }
        }
    }
    set_simd_enabled(true);
    set_num_threads(1);
}

/// Eval-mode batch norm: the one-pass op (no gradient recorded) equals the composed ops it
/// records when a gradient is needed, for every activation, batches of one included; and the
/// composed path's input gradient is the per-channel scale gated by the activation.
#[test]
fn eval_pass_matches_the_composed_ops() {
    let mut rng = Rng::new(5);
    let acts = [BatchNormActivation::Identity, BatchNormActivation::Relu, BatchNormActivation::Relu6, BatchNormActivation::Leaky(0.1)];
    for shape in [&[4usize, 5, 3, 3][..], &[1, 4], &[3, 4, 7], &[2, 6, 9, 9]] {
        let c = shape[1];
        let x = randn(shape, &mut rng, 3.0, 0.5);
        let (w, b) = (randn(&[c], &mut rng, 2.0, 1.5), randn(&[c], &mut rng, 1.0, 2.0));
        let mean = randn(&[c], &mut rng, 0.5, 0.0);
        let var = randn(&[c], &mut rng, 0.3, 0.0).sqr().unwrap().add_scalar(0.2).unwrap();
        for act in acts {
            let fast = x.batch_norm_eval(&w, &b, &mean, &var, 1e-5, act).unwrap();
            assert!(!fast.requires_grad());
            let xv = Var::new(x.clone());
            let slow = xv.as_tensor().batch_norm_eval(&w, &b, &mean, &var, 1e-5, act).unwrap();
            let (f, s) = (fast.to_vec_f64().unwrap(), slow.to_vec_f64().unwrap());
            let worst = f.iter().zip(&s).map(|(f, s)| (f - s).abs() / (1.0 + s.abs())).fold(0.0, f64::max);
            assert!(worst < 1e-6, "{act:?} {shape:?}: worst relative difference {worst}");
            if act == BatchNormActivation::Relu6 {
                assert!(f.contains(&6.0) && f.contains(&0.0), "{shape:?}: the data must reach both kinks");
            }
            // d(sum y)/dx = w / sqrt(var + eps) where the activation passes the gradient.
            slow.sum_all().unwrap().backward().unwrap();
            let gx = xv.grad().unwrap().to_vec_f64().unwrap();
            let (wv, vv) = (w.to_vec_f64().unwrap(), var.to_vec_f64().unwrap());
            let plane: usize = shape[2..].iter().product();
            for (i, (&g, &y)) in gx.iter().zip(&s).enumerate() {
                let ch = i / plane % c;
                let pass = match act {
                    BatchNormActivation::Identity => 1.0,
                    BatchNormActivation::Relu => f64::from(y > 0.0),
                    BatchNormActivation::Relu6 => f64::from(y > 0.0 && y < 6.0),
                    BatchNormActivation::Leaky(s) => {
                        if y > 0.0 {
                            1.0
                        } else {
                            s
                        }
                    }
                };
                let want = pass * wv[ch] / (vv[ch] + 1e-5).sqrt();
                assert!((g - want).abs() < 1e-5 * (1.0 + want.abs()), "{act:?} {shape:?} gx[{i}] = {g}, want {want}");
            }
        }
    }
}

/// A gradient that arrives as a channel slice (the batch norm's output concatenated along the
/// channels, as in ShuffleNet's branches) gives exactly the gradients of the same loss on the
/// output alone (the rule copies the strided gradient once and both gradient ops read the copy).
#[test]
fn gradient_arriving_as_a_channel_slice() {
    let mut rng = Rng::new(5);
    let (n, c, extra) = (4, 6, 3);
    let x = randn(&[n, c, 5, 5], &mut rng, 2.0, 0.5);
    let w = randn(&[c], &mut rng, 2.0, 2.5);
    let b = randn(&[c], &mut rng, 1.0, 2.0);
    let u = randn(&[n, extra, 5, 5], &mut rng, 1.0, 0.0);
    let r = randn(&[n, c + extra, 5, 5], &mut rng, 1.0, 0.0);
    let r_own = r.narrow(1, 0, c).unwrap().contiguous().unwrap();
    for act in [BatchNormActivation::Identity, BatchNormActivation::Relu6] {
        for threads in [1, 2] {
            set_num_threads(threads);
            let sliced = run(&x, &w, &b, &r, &|x, w, b| {
                let y = x.batch_norm_act(w, b, 1e-5, act).unwrap();
                Tensor::cat(&[&y, &u], 1).unwrap()
            });
            let alone = run(&x, &w, &b, &r_own, &|x, w, b| x.batch_norm_act(w, b, 1e-5, act).unwrap());
            for (what, (s, a)) in ["gx", "gw", "gb"].iter().zip(sliced[1..].iter().zip(&alone[1..])) {
                // Equal up to the summation order: the other tests of this file switch the
                // SIMD paths off and on while this one runs.
                let scale = a.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
                let worst = s.iter().zip(a).map(|(s, a)| (s - a).abs()).fold(0.0, f64::max);
                assert!(worst <= 2e-6 * scale, "{act:?} {threads} threads {what}: worst {worst} at scale {scale}");
            }
        }
    }
    set_num_threads(1);
}
