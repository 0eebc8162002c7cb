//! The pieces of `examples/linear_regression.rs`: the classic TensorFlow linear-regression
//! example (one gradient-descent update per training sample) and the same model fitted
//! PyTorch-style (full batch, smooth-L1 loss), plus the plot of both fits.

use std::path::Path;

use plotters::prelude::*;
use shendu_core::{DType, Result, Tensor, Var};

/// Training inputs of the TensorFlow example.
pub const TRAIN_X: [f64; 17] = [3.3, 4.4, 5.5, 6.71, 6.93, 4.168, 9.779, 6.182, 7.59, 2.167, 7.042, 10.791, 5.313, 7.997, 5.654, 9.27, 3.1];
/// Training targets.
pub const TRAIN_Y: [f64; 17] = [1.7, 2.76, 2.09, 3.19, 1.694, 1.573, 3.366, 2.596, 2.53, 1.221, 2.827, 3.465, 1.65, 2.904, 2.42, 2.94, 1.3];
/// Test inputs.
pub const TEST_X: [f64; 8] = [6.83, 4.668, 8.9, 7.91, 5.7, 8.7, 3.1, 2.1];
/// Test targets.
pub const TEST_Y: [f64; 8] = [1.84, 2.273, 3.2, 2.831, 2.92, 3.24, 1.35, 1.03];

pub const LEARNING_RATE: f64 = 0.01;
pub const EPOCHS: usize = 1000;
/// Epochs between progress lines.
pub const DISPLAY_STEP: usize = 50;
/// float32 as the TensorFlow and PyTorch originals.
pub const DTYPE: DType = DType::F32;

/// A fitted (or initial) line `y = w x + b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    pub w: f64,
    pub b: f64,
}

/// W and b drawn from a standard normal after `manual_seed(seed)` (as `rng.randn()` in the
/// TensorFlow example), rounded to [`DTYPE`].
pub fn initial_line(seed: u64) -> Result<Line> {
    shendu_core::manual_seed(seed);
    let wb = Tensor::randn([2], DTYPE)?.to_vec_f64()?;
    Ok(Line { w: wb[0], b: wb[1] })
}

/// A 1-D tensor of [`DTYPE`] holding `v`.
pub fn vector(v: &[f64]) -> Result<Tensor> {
    Tensor::from_slice(v, [v.len()])?.to_dtype(DTYPE)
}

fn params(init: Line) -> Result<(Var, Var)> {
    Ok((Var::new(vector(&[init.w])?), Var::new(vector(&[init.b])?)))
}

fn line_of(w: &Var, b: &Var) -> Result<Line> {
    Ok(Line { w: w.to_vec_f64()?[0], b: b.to_vec_f64()?[0] })
}

/// `sum((w x + b - y)^2) / (2 n_cost)`: the TensorFlow example's cost, with `n_cost` the
/// training-set size even when fed a single sample.
fn half_mse(w: &Tensor, b: &Tensor, x: &Tensor, y: &Tensor, n_cost: usize) -> Result<Tensor> {
    x.mul(w)?.add(b)?.sub(y)?.sqr()?.sum_all()?.mul_scalar(0.5 / n_cost as f64)
}

/// Smooth L1 (beta 1), mean: `0.5 d^2` where `|d| < 1`, else `|d| - 0.5`; written as
/// `0.5 c^2 + |d| - c` with `c = min(|d|, 1)`, which has the same value and gradient.
fn smooth_l1(w: &Tensor, b: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let a = x.mul(w)?.add(b)?.sub(y)?.abs()?;
    let c = a.clamp(0.0, 1.0)?;
    c.sqr()?.mul_scalar(0.5)?.add(&a)?.sub(&c)?.mean_all()
}

/// The TensorFlow example's cost of `line` over a data set: `sum((pred - y)^2) / (2 n)`.
pub fn half_mse_cost(line: Line, xs: &[f64], ys: &[f64]) -> Result<f64> {
    let _g = shendu_core::no_grad();
    half_mse(&vector(&[line.w])?, &vector(&[line.b])?, &vector(xs)?, &vector(ys)?, xs.len())?.to_f64()
}

/// The mean smooth-L1 loss (beta 1) of `line` over a data set.
pub fn smooth_l1_cost(line: Line, xs: &[f64], ys: &[f64]) -> Result<f64> {
    let _g = shendu_core::no_grad();
    smooth_l1(&vector(&[line.w])?, &vector(&[line.b])?, &vector(xs)?, &vector(ys)?)?.to_f64()
}

/// Gradient descent with one update per training sample, in order: for each `(x, y)` the cost
/// node `(w x + b - y)^2 / (2 n)` (n = the training-set size) is differentiated and
/// `w -= lr * dw`, `b -= lr * db`. `after_epoch(epoch, line)` runs after every epoch (from 1).
pub fn train_per_sample(
    init: Line,
    xs: &[f64],
    ys: &[f64],
    lr: f64,
    epochs: usize,
    mut after_epoch: impl FnMut(usize, Line) -> Result<()>,
) -> Result<Line> {
    let n = xs.len();
    let (w, b) = params(init)?;
    let samples = xs.iter().zip(ys).map(|(&x, &y)| Ok((vector(&[x])?, vector(&[y])?))).collect::<Result<Vec<_>>>()?;
    for epoch in 1..=epochs {
        for (x, y) in &samples {
            let cost = half_mse(&w, &b, x, y, n)?;
            step(&cost, &w, &b, lr)?;
        }
        after_epoch(epoch, line_of(&w, &b)?)?;
    }
    line_of(&w, &b)
}

/// PyTorch-style: every epoch one SGD step on the mean smooth-L1 loss over the whole training set.
pub fn train_full_batch_smooth_l1(
    init: Line,
    xs: &[f64],
    ys: &[f64],
    lr: f64,
    epochs: usize,
    mut after_epoch: impl FnMut(usize, Line) -> Result<()>,
) -> Result<Line> {
    let (w, b) = params(init)?;
    let (x, y) = (vector(xs)?, vector(ys)?);
    for epoch in 1..=epochs {
        let loss = smooth_l1(&w, &b, &x, &y)?;
        step(&loss, &w, &b, lr)?;
        after_epoch(epoch, line_of(&w, &b)?)?;
    }
    line_of(&w, &b)
}

/// One SGD update of `w` and `b` down the gradient of `loss`.
fn step(loss: &Tensor, w: &Var, b: &Var, lr: f64) -> Result<()> {
    let grads = loss.backward()?;
    for p in [w, b] {
        if let Some(g) = grads.get(p) {
            p.sub_assign(&g.mul_scalar(lr)?)?;
        }
        p.zero_grad();
    }
    Ok(())
}

/// Writes a PNG with the training and test points and one line per `(label, line)`.
pub fn plot(path: &Path, lines: &[(&str, Line)]) -> std::result::Result<(), Box<dyn std::error::Error>> {
    super::register_font()?;
    let root = BitMapBackend::new(path, (800, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let xs = TRAIN_X.iter().chain(&TEST_X);
    let (x0, x1) = (0.0, xs.fold(0.0f64, |m, &v| m.max(v)) + 1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption("Linear regression (shendu)", ("sans-serif", 28))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, 0.0..4.0)?;
    chart.configure_mesh().x_desc("x").y_desc("y").draw()?;
    let points = |xs: &'static [f64], ys: &'static [f64], color: RGBColor| {
        xs.iter().zip(ys).map(move |(&x, &y)| Circle::new((x, y), 5, color.filled()))
    };
    chart.draw_series(points(&TRAIN_X, &TRAIN_Y, RED))?.label("training data").legend(|(x, y)| Circle::new((x + 10, y), 5, RED.filled()));
    chart.draw_series(points(&TEST_X, &TEST_Y, BLUE))?.label("test data").legend(|(x, y)| Circle::new((x + 10, y), 5, BLUE.filled()));
    let colors = [RGBColor(0, 150, 0), RGBColor(150, 0, 150), RGBColor(200, 120, 0)];
    for (i, (label, l)) in lines.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new([x0, x1].map(|x| (x, l.w * x + l.b)), color.stroke_width(2)))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).position(SeriesLabelPosition::UpperLeft).draw()?;
    root.present()?;
    Ok(())
}
