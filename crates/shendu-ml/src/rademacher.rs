//! Empirical Rademacher complexity `R_S(H) = E_sigma [ sup_{h in H} (1/m) sum_i sigma_i h(x_i) ]`
//! of a sample of size m, estimated by Monte Carlo over the signs sigma (each ±1 with
//! probability 1/2), with a normal-approximation confidence interval.
//!
//! Two classes: a finite set of hypotheses given by their predictions on the sample, and linear
//! predictors `x -> w·x` with `||w||_2 <= B`, whose supremum is exact for each draw
//! (Cauchy-Schwarz: `B ||sum_i sigma_i x_i|| / m`) and whose complexity is bounded by
//! `B R / sqrt(m)` with `R = max_i ||x_i||`.

use shendu_core::Rng;

use crate::{Error, Result};

/// A Monte Carlo estimate with its confidence interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// The mean over the draws.
    pub mean: f64,
    /// The standard error of the mean.
    pub std_err: f64,
    /// The interval `mean ± z · std_err` at `confidence`.
    pub lo: f64,
    pub hi: f64,
    pub confidence: f64,
    pub draws: usize,
}

/// Monte Carlo settings.
#[derive(Clone, Debug)]
pub struct McConfig {
    /// Number of sign vectors drawn (>= 2).
    pub draws: usize,
    pub seed: u64,
    /// Two-sided confidence level of the interval, in (0, 1).
    pub confidence: f64,
}

impl Default for McConfig {
    fn default() -> Self {
        McConfig { draws: 10_000, seed: 0, confidence: 0.95 }
    }
}

/// The linear class's estimate with the bound beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearEstimate {
    pub estimate: Estimate,
    /// `B R / sqrt(m)`.
    pub bound: f64,
    /// `R = max_i ||x_i||`.
    pub radius: f64,
}

/// The z with `P(|N(0,1)| <= z) = confidence`, by bisection on `erfc`.
pub fn normal_quantile(confidence: f64) -> f64 {
    let target = 1.0 - confidence; // two-sided tail mass: erfc(z / sqrt 2)
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if libm::erfc(mid / std::f64::consts::SQRT_2) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

fn check(op: &'static str, m: usize, config: &McConfig) -> Result<()> {
    if m == 0 {
        return Err(Error::invalid(op, "the sample is empty"));
    }
    if config.draws < 2 {
        return Err(Error::invalid(op, format!("{} draws: at least 2 are needed for an interval", config.draws)));
    }
    if !(config.confidence > 0.0 && config.confidence < 1.0) {
        return Err(Error::invalid(op, format!("confidence {} must lie strictly between 0 and 1", config.confidence)));
    }
    Ok(())
}

/// Draws `config.draws` sign vectors and summarises `value(sigma)`.
fn monte_carlo(m: usize, config: &McConfig, mut value: impl FnMut(&[f64]) -> f64) -> Estimate {
    let mut rng = Rng::new(config.seed);
    let mut sigma = vec![0.0; m];
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    for _ in 0..config.draws {
        for chunk in sigma.chunks_mut(64) {
            let bits = rng.next_u64();
            for (j, s) in chunk.iter_mut().enumerate() {
                *s = if (bits >> j) & 1 == 1 { 1.0 } else { -1.0 };
            }
        }
        let v = value(&sigma);
        sum += v;
        sum_sq += v * v;
    }
    let n = config.draws as f64;
    let mean = sum / n;
    let var = ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0);
    let std_err = (var / n).sqrt();
    let half = normal_quantile(config.confidence) * std_err;
    Estimate { mean, std_err, lo: mean - half, hi: mean + half, confidence: config.confidence, draws: config.draws }
}

/// The empirical Rademacher complexity of a finite class: `predictions` holds `n_hyp` rows of
/// `m` values, row h being `h(x_1), ..., h(x_m)`.
pub fn finite_class(predictions: &[f64], n_hyp: usize, m: usize, config: &McConfig) -> Result<Estimate> {
    const OP: &str = "rademacher::finite_class";
    check(OP, m, config)?;
    if n_hyp == 0 || predictions.len() != n_hyp * m {
        return Err(Error::invalid(OP, format!("{} predictions do not make {n_hyp} hypotheses on {m} samples", predictions.len())));
    }
    if predictions.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(OP, "a prediction is not finite"));
    }
    Ok(monte_carlo(m, config, |sigma| {
        predictions.chunks_exact(m).map(|h| h.iter().zip(sigma).map(|(a, b)| a * b).sum::<f64>()).fold(f64::NEG_INFINITY, f64::max)
            / m as f64
    }))
}

/// Massart's bound for a finite class: `max_h ||h||_2 · sqrt(2 ln |H|) / m`.
pub fn massart_bound(predictions: &[f64], n_hyp: usize, m: usize) -> f64 {
    let r = predictions.chunks_exact(m.max(1)).map(|h| h.iter().map(|v| v * v).sum::<f64>().sqrt()).fold(0.0, f64::max);
    r * (2.0 * (n_hyp.max(1) as f64).ln()).sqrt() / m.max(1) as f64
}

fn check_linear(op: &'static str, x: &[f64], m: usize, d: usize, b: f64) -> Result<()> {
    if m == 0 || d == 0 || x.len() != m * d {
        return Err(Error::invalid(op, format!("{} values do not make a sample of {m} points with {d} features", x.len())));
    }
    if !(b.is_finite() && b >= 0.0) {
        return Err(Error::invalid(op, format!("the norm bound B = {b} must be finite and non-negative")));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(op, "a feature value is not finite"));
    }
    Ok(())
}

fn linear_value(x: &[f64], d: usize, b: f64, sigma: &[f64], acc: &mut [f64]) -> f64 {
    acc.iter_mut().for_each(|a| *a = 0.0);
    for (xi, s) in x.chunks_exact(d).zip(sigma) {
        acc.iter_mut().zip(xi).for_each(|(a, v)| *a += s * v);
    }
    b * acc.iter().map(|a| a * a).sum::<f64>().sqrt() / sigma.len() as f64
}

/// The empirical Rademacher complexity of `{x -> w·x : ||w||_2 <= b}` on the `m` points of `x`
/// (row-major, `d` features), with the bound `b R / sqrt(m)`.
pub fn linear_class(x: &[f64], m: usize, d: usize, b: f64, config: &McConfig) -> Result<LinearEstimate> {
    const OP: &str = "rademacher::linear_class";
    check(OP, m, config)?;
    check_linear(OP, x, m, d, b)?;
    let mut acc = vec![0.0; d];
    let estimate = monte_carlo(m, config, |sigma| linear_value(x, d, b, sigma, &mut acc));
    let radius = x.chunks_exact(d).map(|xi| xi.iter().map(|v| v * v).sum::<f64>().sqrt()).fold(0.0, f64::max);
    Ok(LinearEstimate { estimate, bound: b * radius / (m as f64).sqrt(), radius })
}

/// The exact expectation for the linear class, averaging over all `2^m` sign vectors
/// (`m <= 24`).
pub fn linear_class_exact(x: &[f64], m: usize, d: usize, b: f64) -> Result<f64> {
    const OP: &str = "rademacher::linear_class_exact";
    check_linear(OP, x, m, d, b)?;
    if m > 24 {
        return Err(Error::invalid(OP, format!("m = {m}: enumerating 2^m sign vectors is limited to m <= 24")));
    }
    let mut acc = vec![0.0; d];
    let mut sigma = vec![0.0; m];
    let mut total = 0.0;
    for pattern in 0u64..1 << m {
        for (j, s) in sigma.iter_mut().enumerate() {
            *s = if (pattern >> j) & 1 == 1 { 1.0 } else { -1.0 };
        }
        total += linear_value(x, d, b, &sigma, &mut acc);
    }
    Ok(total / (1u64 << m) as f64)
}

/// The predictions of all `2^m` sign patterns on `m` points (row h is the binary expansion of h),
/// the class that shatters the sample: its complexity is exactly 1.
pub fn all_sign_patterns(m: usize) -> Result<Vec<f64>> {
    if m == 0 || m > 20 {
        return Err(Error::invalid("rademacher::all_sign_patterns", format!("m = {m}: 1 <= m <= 20 is supported")));
    }
    Ok((0u64..1 << m).flat_map(|h| (0..m).map(move |j| if (h >> j) & 1 == 1 { 1.0 } else { -1.0 })).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An interval wide enough (5.3 sigma) that the property tests never fail by chance.
    fn strict(seed: u64) -> McConfig {
        McConfig { draws: 4000, seed, confidence: 0.9999999 }
    }

    #[test]
    fn quantiles() {
        assert!((normal_quantile(0.95) - 1.959963984540054).abs() < 1e-9);
        assert!((normal_quantile(0.99) - 2.5758293035489).abs() < 1e-9);
    }

    #[test]
    fn bad_input() {
        let c = McConfig::default();
        assert!(finite_class(&[], 0, 0, &c).is_err());
        assert!(finite_class(&[1.0, 2.0, 3.0], 2, 2, &c).is_err());
        assert!(linear_class(&[1.0], 1, 1, -1.0, &c).is_err());
        assert!(linear_class(&[1.0], 1, 1, 1.0, &McConfig { confidence: 1.0, ..c }).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn linear_estimate_agrees_with_exact(m in 1usize..10, d in 1usize..4, seed in 0u64..1000, b in 0.1f64..3.0,
                                             raw in prop::collection::vec(-2.0f64..2.0, 40)) {
            let x = &raw[..m * d];
            let est = linear_class(x, m, d, b, &strict(seed)).unwrap();
            let exact = linear_class_exact(x, m, d, b).unwrap();
            prop_assert!(est.estimate.lo - 1e-12 <= exact && exact <= est.estimate.hi + 1e-12,
                "exact {} outside [{}, {}]", exact, est.estimate.lo, est.estimate.hi);
            prop_assert!(exact <= est.bound + 1e-12);
        }

        #[test]
        fn constant_hypothesis_is_about_zero(m in 1usize..200, c in -3.0f64..3.0, seed in 0u64..1000) {
            let est = finite_class(&vec![c; m], 1, m, &strict(seed)).unwrap();
            prop_assert!(est.lo <= 0.0 && 0.0 <= est.hi, "[{}, {}]", est.lo, est.hi);
            prop_assert!(est.mean.abs() <= 0.1 * c.abs());
        }

        #[test]
        fn all_sign_patterns_give_one(m in 1usize..11, seed in 0u64..1000) {
            let h = all_sign_patterns(m).unwrap();
            let est = finite_class(&h, 1 << m, m, &McConfig { draws: 200, seed, confidence: 0.95 }).unwrap();
            prop_assert!((est.mean - 1.0).abs() < 1e-12);
            prop_assert!(est.std_err < 1e-12);
        }
    }
}
