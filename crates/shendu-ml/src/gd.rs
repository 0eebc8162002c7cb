//! Gradient descent for a linear model `y ≈ theta·x`, written out by hand in the notebook's three
//! variants, all in f64. Rows `x_i` carry their own leading 1 (the bias feature); theta starts at
//! zero; after every iteration the loss `sum_i (y_i - theta·x_i)^2 / 2` over all samples is
//! computed and the loop stops as soon as `|loss| < threshold` (or after `max_iter` iterations).
//!
//! Why does `sweep` need the fewest iterations? Measured on the notebook's data (m = 5, alpha
//! 0.01, threshold 60; `examples/gradient_descent.rs` draws the curves): sweep 1553 iterations,
//! batch 8195, sgd 8344 (seed 0). One sweep iteration makes m = 5 updates, each a full step of
//! alpha along one sample's gradient; a batch iteration makes a single step along the *mean*
//! gradient, i.e. alpha/m times the summed one, so it moves about 1/m as far; an sgd iteration is
//! one single-sample step. Near the optimum all three follow the same slow direction of the
//! ill-conditioned problem, so the counts scale with the updates per iteration: sweep needs about
//! 1/5 of the others (8195 / 1553 = 5.3). Counted in single-sample gradient evaluations the order
//! turns round: sweep 7765, sgd 8344, batch 40975.

use shendu_core::Rng;

use crate::{Error, Result};

/// Which samples one iteration updates with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// One pass over the samples in order, updating after each.
    Sweep,
    /// One update with a single sample drawn uniformly at random (seeded).
    Sgd,
    /// One update with the mean gradient over all samples.
    Batch,
}

impl Method {
    /// Parses `sweep`, `sgd` or `batch`.
    pub fn parse(s: &str) -> Result<Method> {
        match s {
            "sweep" => Ok(Method::Sweep),
            "sgd" => Ok(Method::Sgd),
            "batch" => Ok(Method::Batch),
            _ => Err(Error::invalid("gd", format!("unknown method '{s}': expected sweep, sgd or batch"))),
        }
    }
    /// The method's name as `parse` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Method::Sweep => "sweep",
            Method::Sgd => "sgd",
            Method::Batch => "batch",
        }
    }
}

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct GdConfig {
    pub method: Method,
    /// Learning rate alpha (> 0).
    pub lr: f64,
    /// Stop as soon as `|loss| < threshold`.
    pub threshold: f64,
    /// Stop after this many iterations at the latest (>= 1).
    pub max_iter: usize,
    /// Seed of the sample draws of `sgd`.
    pub seed: u64,
}

impl Default for GdConfig {
    fn default() -> Self {
        GdConfig { method: Method::Sweep, lr: 0.01, threshold: 60.0, max_iter: 100_000, seed: 0 }
    }
}

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct GdResult {
    pub theta: Vec<f64>,
    /// The loss after the last iteration.
    pub loss: f64,
    pub iterations: usize,
    /// The loss after each iteration (`losses[i]` after iteration `i + 1`).
    pub losses: Vec<f64>,
    /// Whether the loss fell below the threshold (false: stopped at `max_iter`).
    pub converged: bool,
}

impl GdResult {
    /// The notebook's two output lines: `Done: theta0 : %f, ..., error : %f ` and `iterations: %d`.
    pub fn notebook_output(&self) -> String {
        let thetas: String = self.theta.iter().enumerate().map(|(k, t)| format!("theta{k} : {t:.6}, ")).collect();
        format!("Done: {thetas}error : {:.6} \niterations: {}", self.loss, self.iterations)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `sum_i (y_i - theta·x_i)^2 / 2`.
pub fn loss(x: &[f64], cols: usize, y: &[f64], theta: &[f64]) -> f64 {
    x.chunks_exact(cols).zip(y).map(|(xi, yi)| (yi - dot(theta, xi)).powi(2) / 2.0).sum()
}

/// Runs gradient descent on `rows` samples `x` (row-major, `cols` features each, the leading 1
/// included) with targets `y`.
pub fn fit(x: &[f64], cols: usize, y: &[f64], config: &GdConfig) -> Result<GdResult> {
    let m = y.len();
    if m == 0 || cols == 0 {
        return Err(Error::invalid("gd", "no data: at least one sample with at least one feature is needed"));
    }
    if x.len() != m * cols {
        return Err(Error::invalid("gd", format!("{} values in x do not make {m} rows of {cols} features", x.len())));
    }
    if !(config.lr.is_finite() && config.lr > 0.0) {
        return Err(Error::invalid("gd", format!("learning rate {} must be a positive finite number", config.lr)));
    }
    if config.threshold.is_nan() {
        return Err(Error::invalid("gd", "threshold is NaN"));
    }
    if config.max_iter == 0 {
        return Err(Error::invalid("gd", "max_iter must be at least 1"));
    }
    let alpha = config.lr;
    let mut theta = vec![0.0; cols];
    let mut rng = Rng::new(config.seed);
    let mut losses = Vec::new();
    let mut grad = vec![0.0; cols];
    for it in 1..=config.max_iter {
        match config.method {
            Method::Sweep => {
                for (xi, yi) in x.chunks_exact(cols).zip(y) {
                    let diff = dot(&theta, xi) - yi;
                    theta.iter_mut().zip(xi).for_each(|(t, v)| *t -= alpha * diff * v);
                }
            }
            Method::Sgd => {
                let i = rng.below(m as u64) as usize;
                let xi = &x[i * cols..(i + 1) * cols];
                let diff = dot(&theta, xi) - y[i];
                theta.iter_mut().zip(xi).for_each(|(t, v)| *t -= alpha * diff * v);
            }
            Method::Batch => {
                grad.iter_mut().for_each(|g| *g = 0.0);
                for (xi, yi) in x.chunks_exact(cols).zip(y) {
                    let diff = dot(&theta, xi) - yi;
                    grad.iter_mut().zip(xi).for_each(|(g, v)| *g += diff * v);
                }
                theta.iter_mut().zip(&grad).for_each(|(t, g)| *t -= alpha * g / m as f64);
            }
        }
        let l = loss(x, cols, y, &theta);
        if !l.is_finite() {
            return Err(Error::invalid(
                "gd",
                format!("{} diverged at iteration {it}: the loss is {l}; use a smaller learning rate than {alpha}", config.method.name()),
            ));
        }
        losses.push(l);
        if l.abs() < config.threshold {
            return Ok(GdResult { theta, loss: l, iterations: it, losses, converged: true });
        }
    }
    let l = *losses.last().unwrap_or(&f64::NAN);
    Ok(GdResult { theta, loss: l, iterations: config.max_iter, losses, converged: false })
}

/// The notebook's data: rows `{1, x1, x2}` and targets.
pub const NOTEBOOK_X: [[f64; 3]; 5] = [[1.0, 0.0, 3.0], [1.0, 1.0, 3.0], [1.0, 2.0, 3.0], [1.0, 3.0, 2.0], [1.0, 4.0, 4.0]];
/// See [`NOTEBOOK_X`].
pub const NOTEBOOK_Y: [f64; 5] = [95.364, 97.217205, 75.195834, 60.105519, 49.342380];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_errors() {
        let x = NOTEBOOK_X.concat();
        let c = |lr| GdConfig { lr, ..GdConfig::default() };
        assert!(fit(&x, 3, &NOTEBOOK_Y, &c(0.0)).is_err());
        assert!(fit(&[], 3, &[], &c(0.01)).is_err());
        let e = fit(&x, 3, &NOTEBOOK_Y, &GdConfig { threshold: 0.0, ..c(10.0) }).unwrap_err().to_string();
        assert!(e.contains("diverged"), "{e}");
    }

    #[test]
    fn output_format() {
        let r = GdResult { theta: vec![1.0, 2.5], loss: 3.0, iterations: 7, losses: vec![], converged: true };
        assert_eq!(r.notebook_output(), "Done: theta0 : 1.000000, theta1 : 2.500000, error : 3.000000 \niterations: 7");
    }
}
