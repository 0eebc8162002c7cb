//! Procedures of the graph-mode examples (`two_layer_net_graph`, `linear_regression_graph`),
//! here so tests can compare them with their eager twins.

use shendu_core::graph::{Graph, Session};
use shendu_core::{DType, Result, Tensor};

use super::linear_regression::{vector, Line, DTYPE};
use super::two_layer_net::Config;

/// The two-layer net of [`super::two_layer_net::train`] as a graph: the same seeded data and
/// weights, loss `sum((relu(x w1) w2 - y)^2)` and update `w -= lr * dw`. Returns every step's
/// loss (before its update) and the compiled plan in words.
pub fn train_graph(cfg: &Config) -> Result<(Vec<f64>, String)> {
    shendu_core::manual_seed(cfg.seed);
    let x_data = Tensor::randn([cfg.batch, cfg.d_in], DType::F32)?;
    let y_data = Tensor::randn([cfg.batch, cfg.d_out], DType::F32)?;
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[None, Some(cfg.d_in)]);
    let y = g.placeholder("y", DType::F32, &[None, Some(cfg.d_out)]);
    let w1 = g.variable("w1", Tensor::randn([cfg.d_in, cfg.hidden], DType::F32)?);
    let w2 = g.variable("w2", Tensor::randn([cfg.hidden, cfg.d_out], DType::F32)?);
    let y_pred = x.matmul(&w1)?.relu()?.matmul(&w2)?;
    let loss = y_pred.sub(&y)?.sqr()?.sum_all()?;
    let grads = g.gradients(&[&loss], &[&w1, &w2])?;
    let mut updates = Vec::new();
    for (w, gw) in [&w1, &w2].into_iter().zip(grads) {
        if let Some(gw) = gw {
            updates.push(w.assign_sub(&gw.mul_scalar(cfg.lr)?)?);
        }
    }
    let train = g.group(&updates.iter().collect::<Vec<_>>())?;
    let mut sess = Session::new(&g);
    let feeds = [(&x, &x_data), (&y, &y_data)];
    let mut out = vec![Tensor::zeros((), DType::F32)?, Tensor::zeros(0, DType::F32)?];
    let mut losses = Vec::with_capacity(cfg.steps);
    for _ in 0..cfg.steps {
        sess.run_into(&[&loss, &train], &feeds, &mut out)?;
        losses.push(out[0].to_f64()?);
    }
    Ok((losses, sess.explain()))
}

/// TensorFlow's linear-regression example in graph mode: `W` and `b` variables, per-sample
/// updates of the cost `(W X + b - Y)^2 / (2 n)` (n the training-set size). Same as
/// [`super::linear_regression::train_per_sample`] in eager mode.
pub fn linear_regression_graph(
    init: Line,
    xs: &[f64],
    ys: &[f64],
    lr: f64,
    epochs: usize,
    mut after_epoch: impl FnMut(usize, Line) -> Result<()>,
) -> Result<Line> {
    let g = Graph::new();
    let x = g.placeholder("X", DTYPE, &[Some(1)]);
    let y = g.placeholder("Y", DTYPE, &[Some(1)]);
    let w = g.variable("W", vector(&[init.w])?);
    let b = g.variable("b", vector(&[init.b])?);
    let pred = x.mul(&w)?.add(&b)?;
    let cost = pred.sub(&y)?.sqr()?.sum_all()?.mul_scalar(0.5 / xs.len() as f64)?;
    let grads = g.gradients(&[&cost], &[&w, &b])?;
    let (Some(gw), Some(gb)) = (grads[0].clone(), grads[1].clone()) else {
        return Err(shendu_core::Error::invalid("linear_regression_graph", "W and b must reach the cost"));
    };
    let optimizer = g.group(&[&w.assign_sub(&gw.mul_scalar(lr)?)?, &b.assign_sub(&gb.mul_scalar(lr)?)?])?;
    let samples = xs.iter().zip(ys).map(|(&x, &y)| Ok((vector(&[x])?, vector(&[y])?))).collect::<Result<Vec<_>>>()?;
    let mut sess = Session::new(&g);
    let mut none = [Tensor::zeros(0, DType::F32)?];
    let line = |g: &Graph| -> Result<Line> { Ok(Line { w: g.value_of(&w)?.to_vec_f64()?[0], b: g.value_of(&b)?.to_vec_f64()?[0] }) };
    for epoch in 1..=epochs {
        for (sx, sy) in &samples {
            sess.run_into(&[&optimizer], &[(&x, sx), (&y, sy)], &mut none)?;
        }
        after_epoch(epoch, line(&g)?)?;
    }
    line(&g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples_support::linear_regression::{initial_line, train_per_sample, LEARNING_RATE, TRAIN_X, TRAIN_Y};
    use crate::examples_support::two_layer_net::train;

    #[test]
    fn graph_two_layer_net_prints_the_eager_losses() {
        let cfg = Config::default();
        let eager = train(&cfg).unwrap();
        let (graph, _) = train_graph(&cfg).unwrap();
        assert_eq!(eager.len(), graph.len());
        for (t, (a, b)) in eager.iter().zip(&graph).enumerate() {
            assert!((a - b).abs() <= 1e-4 * a.abs().max(b.abs()), "step {t}: eager {a:e}, graph {b:e}");
        }
    }

    #[test]
    fn graph_linear_regression_fits_like_eager() {
        let init = initial_line(42).unwrap();
        let eager = train_per_sample(init, &TRAIN_X, &TRAIN_Y, LEARNING_RATE, 100, |_, _| Ok(())).unwrap();
        let graph = linear_regression_graph(init, &TRAIN_X, &TRAIN_Y, LEARNING_RATE, 100, |_, _| Ok(())).unwrap();
        assert!((eager.w - graph.w).abs() < 1e-5 && (eager.b - graph.b).abs() < 1e-5, "{eager:?} vs {graph:?}");
    }
}
