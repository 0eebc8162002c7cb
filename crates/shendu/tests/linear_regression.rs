//! The linear-regression example's procedures against plain-f64 re-implementations of the same
//! arithmetic (no tensors, no autograd), from the same initial values.

use shendu::examples_support::linear_regression::{
    initial_line, plot, train_full_batch_smooth_l1, train_per_sample, Line, EPOCHS, LEARNING_RATE, TRAIN_X, TRAIN_Y,
};

/// One update per sample in order: the gradient of `(w x + b - y)^2 / (2n)` is `d x / n`, `d / n`.
fn reference_per_sample(init: Line, xs: &[f64], ys: &[f64], lr: f64, epochs: usize) -> Line {
    let n = xs.len() as f64;
    let (mut w, mut b) = (init.w, init.b);
    for _ in 0..epochs {
        for (&x, &y) in xs.iter().zip(ys) {
            let d = w * x + b - y;
            w -= lr * d * x / n;
            b -= lr * d / n;
        }
    }
    Line { w, b }
}

/// Full batch, mean smooth-L1 (beta 1): the derivative per sample is `d` if `|d| < 1` else `sign(d)`.
fn reference_full_batch(init: Line, xs: &[f64], ys: &[f64], lr: f64, epochs: usize) -> Line {
    let n = xs.len() as f64;
    let (mut w, mut b) = (init.w, init.b);
    for _ in 0..epochs {
        let (mut gw, mut gb) = (0.0, 0.0);
        for (&x, &y) in xs.iter().zip(ys) {
            let d: f64 = w * x + b - y;
            let g = if d.abs() < 1.0 { d } else { d.signum() } / n;
            gw += g * x;
            gb += g;
        }
        w -= lr * gw;
        b -= lr * gb;
    }
    Line { w, b }
}

#[test]
fn per_sample_descent_matches_plain_f64() {
    let init = initial_line(42).unwrap();
    let mut epochs_seen = 0;
    let got = train_per_sample(init, &TRAIN_X, &TRAIN_Y, LEARNING_RATE, EPOCHS, |e, _| {
        epochs_seen = e;
        Ok(())
    })
    .unwrap();
    assert_eq!(epochs_seen, EPOCHS);
    let want = reference_per_sample(init, &TRAIN_X, &TRAIN_Y, LEARNING_RATE, EPOCHS);
    assert!((got.w - want.w).abs() < 1e-4 && (got.b - want.b).abs() < 1e-4, "shendu {got:?} vs plain f64 {want:?}");
    // The fit moved well away from the start.
    assert!((got.b - init.b).abs() > 0.5, "{init:?} -> {got:?}");
}

#[test]
fn full_batch_smooth_l1_matches_plain_f64_from_large_residuals() {
    // Starts far off so that the |d| >= 1 branch is exercised as well.
    let init = Line { w: -1.5, b: 2.0 };
    let got = train_full_batch_smooth_l1(init, &TRAIN_X, &TRAIN_Y, LEARNING_RATE, 300, |_, _| Ok(())).unwrap();
    let want = reference_full_batch(init, &TRAIN_X, &TRAIN_Y, LEARNING_RATE, 300);
    assert!((got.w - want.w).abs() < 1e-4 && (got.b - want.b).abs() < 1e-4, "shendu {got:?} vs plain f64 {want:?}");
}

#[test]
fn plot_writes_a_png() {
    let dir = std::env::temp_dir().join(format!("shendu-linreg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("linear_regression.png");
    plot(&path, &[("a", Line { w: 0.25, b: 0.8 }), ("b", Line { w: 0.3, b: 0.5 })]).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 5_000, "{} bytes", bytes.len());
    std::fs::remove_dir_all(&dir).unwrap();
}
