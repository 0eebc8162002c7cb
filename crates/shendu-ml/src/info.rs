//! Information theory of discrete distributions: entropy, cross-entropy, relative entropy (KL),
//! Jensen-Shannon divergence and mutual information, in bits or nats.
//!
//! Conventions: `0 · log 0 = 0`; `D(P||Q)` and `H(P, Q)` are `+inf` (not NaN) where
//! `Q = 0 < P`. A [`Distribution`] keeps log-probabilities beside the probabilities so that
//! one built from logits (by a stable log-softmax) never takes the log of an underflowed 0.

use crate::{Error, Result};

/// The unit of information.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// Bits (log base 2).
    Two,
    /// Nats (natural log).
    E,
}

impl Base {
    /// Converts a value in nats into this base.
    fn convert_nats(self, v: f64) -> f64 {
        match self {
            Base::Two => v / std::f64::consts::LN_2,
            Base::E => v,
        }
    }
}

/// How far from 1 the sum of given probabilities may be before it is an error.
pub const SUM_TOLERANCE: f64 = 1e-6;

/// A probability vector with its natural logs (`-inf` where the probability is 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Distribution {
    p: Vec<f64>,
    logp: Vec<f64>,
}

impl Distribution {
    /// From probabilities: non-negative, finite, summing to 1 within [`SUM_TOLERANCE`], or any
    /// positive sum when `normalize` is set (then they are divided by their sum).
    pub fn from_probs(p: &[f64], normalize: bool) -> Result<Distribution> {
        const OP: &str = "Distribution::from_probs";
        if p.is_empty() {
            return Err(Error::invalid(OP, "no probabilities given"));
        }
        if let Some((i, v)) = p.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < 0.0) {
            return Err(Error::invalid(OP, format!("probability {i} is {v}; probabilities must be finite and non-negative")));
        }
        let sum: f64 = p.iter().sum();
        let p: Vec<f64> = if normalize {
            if sum <= 0.0 {
                return Err(Error::invalid(OP, "the probabilities sum to 0 and cannot be normalised"));
            }
            p.iter().map(|v| v / sum).collect()
        } else {
            if (sum - 1.0).abs() > SUM_TOLERANCE {
                return Err(Error::invalid(OP, format!("the probabilities sum to {sum}, not 1 (normalise them to accept this)")));
            }
            p.to_vec()
        };
        let logp = p.iter().map(|v| v.ln()).collect();
        Ok(Distribution { p, logp })
    }

    /// The softmax of `logits` (finite), with log-probabilities by a stable log-softmax.
    pub fn from_logits(logits: &[f64]) -> Result<Distribution> {
        const OP: &str = "Distribution::from_logits";
        if logits.is_empty() {
            return Err(Error::invalid(OP, "no logits given"));
        }
        if let Some((i, v)) = logits.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::invalid(OP, format!("logit {i} is {v}; logits must be finite")));
        }
        let max = logits.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
        let logp: Vec<f64> = logits.iter().map(|l| l - lse).collect();
        Ok(Distribution { p: logp.iter().map(|l| l.exp()).collect(), logp })
    }

    /// The probabilities.
    pub fn probs(&self) -> &[f64] {
        &self.p
    }
    /// The natural logs of the probabilities.
    pub fn log_probs(&self) -> &[f64] {
        &self.logp
    }
    /// The number of outcomes.
    pub fn len(&self) -> usize {
        self.p.len()
    }
    /// Whether there are no outcomes (never true for a constructed distribution).
    pub fn is_empty(&self) -> bool {
        self.p.is_empty()
    }
}

fn same_support(op: &'static str, p: &Distribution, q: &Distribution) -> Result<()> {
    if p.len() != q.len() {
        return Err(Error::invalid(op, format!("P has {} outcomes but Q has {}", p.len(), q.len())));
    }
    Ok(())
}

/// `H(P) = -sum p log p`.
pub fn entropy(p: &Distribution, base: Base) -> f64 {
    let h: f64 = p.p.iter().zip(&p.logp).filter(|(pi, _)| **pi > 0.0).map(|(pi, l)| -pi * l).sum();
    base.convert_nats(h.max(0.0))
}

/// `H(P, Q) = -sum p log q` (`+inf` where `Q = 0 < P`).
pub fn cross_entropy(p: &Distribution, q: &Distribution, base: Base) -> Result<f64> {
    same_support("cross_entropy", p, q)?;
    let h: f64 = p.p.iter().zip(&q.logp).filter(|(pi, _)| **pi > 0.0).map(|(pi, lq)| -pi * lq).sum();
    Ok(base.convert_nats(h))
}

/// `D(P||Q) = sum p (log p - log q)` (`+inf` where `Q = 0 < P`).
pub fn kl_divergence(p: &Distribution, q: &Distribution, base: Base) -> Result<f64> {
    same_support("kl_divergence", p, q)?;
    let d: f64 = p.p.iter().zip(&p.logp).zip(&q.logp).filter(|((pi, _), _)| **pi > 0.0).map(|((pi, lp), lq)| pi * (lp - lq)).sum();
    // Rounding can leave a tiny negative value for P ≈ Q; the divergence is never negative.
    Ok(base.convert_nats(d.max(0.0)))
}

/// `JS(P, Q) = D(P||M)/2 + D(Q||M)/2` with `M = (P + Q)/2`; symmetric, at most `ln 2` nats
/// (1 bit).
pub fn js_divergence(p: &Distribution, q: &Distribution, base: Base) -> Result<f64> {
    same_support("js_divergence", p, q)?;
    let half = |a: &Distribution, b: &Distribution| -> f64 {
        a.p.iter()
            .zip(&a.logp)
            .zip(&b.p)
            .filter(|((ai, _), _)| **ai > 0.0)
            .map(|((ai, la), bi)| ai * (la - ((ai + bi) / 2.0).ln()))
            .sum::<f64>()
    };
    let js = (half(p, q) + half(q, p)) / 2.0;
    Ok(base.convert_nats(js.clamp(0.0, std::f64::consts::LN_2)))
}

/// Mutual information `I(X;Y) = sum p(x,y) log(p(x,y) / (p(x) p(y)))` of a joint table given
/// row-major with `rows` values of X and `cols` of Y; the table must sum to 1 (or is normalised
/// when `normalize` is set).
pub fn mutual_information(joint: &[f64], rows: usize, cols: usize, normalize: bool, base: Base) -> Result<f64> {
    if rows * cols != joint.len() || joint.is_empty() {
        return Err(Error::invalid("mutual_information", format!("{} values do not make a {rows} x {cols} joint table", joint.len())));
    }
    let pxy = Distribution::from_probs(joint, normalize)?;
    let px: Vec<f64> = (0..rows).map(|r| pxy.p[r * cols..(r + 1) * cols].iter().sum()).collect();
    let py: Vec<f64> = (0..cols).map(|c| (0..rows).map(|r| pxy.p[r * cols + c]).sum()).collect();
    let mut mi = 0.0;
    for (r, pr) in px.iter().enumerate() {
        for (c, pc) in py.iter().enumerate() {
            let v = pxy.p[r * cols + c];
            if v > 0.0 {
                mi += v * (pxy.logp[r * cols + c] - pr.ln() - pc.ln());
            }
        }
    }
    Ok(base.convert_nats(mi.max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dist(raw: &[f64]) -> Distribution {
        Distribution::from_probs(raw, true).unwrap()
    }

    #[test]
    fn known_values_and_conventions() {
        let fair = dist(&[1.0, 1.0]);
        assert!((entropy(&fair, Base::Two) - 1.0).abs() < 1e-12);
        assert_eq!(entropy(&dist(&[1.0, 0.0]), Base::E), 0.0);
        let p = dist(&[0.5, 0.5]);
        let q = dist(&[1.0, 0.0]);
        assert_eq!(kl_divergence(&p, &q, Base::Two).unwrap(), f64::INFINITY);
        assert_eq!(cross_entropy(&p, &q, Base::Two).unwrap(), f64::INFINITY);
        // Q = 0 where P = 0 too contributes nothing.
        assert!((kl_divergence(&q, &p, Base::Two).unwrap() - 1.0).abs() < 1e-12);
        assert!((js_divergence(&p, &q, Base::E).unwrap() - js_divergence(&q, &p, Base::E).unwrap()).abs() < 1e-15);
        let disjoint = js_divergence(&dist(&[1.0, 0.0]), &dist(&[0.0, 1.0]), Base::Two).unwrap();
        assert!((disjoint - 1.0).abs() < 1e-12);
        // Independent X, Y: 0 bits; Y = X on a fair coin: 1 bit.
        assert!(mutual_information(&[0.25; 4], 2, 2, false, Base::Two).unwrap().abs() < 1e-12);
        assert!((mutual_information(&[0.5, 0.0, 0.0, 0.5], 2, 2, false, Base::Two).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_probabilities_and_extreme_logits() {
        let e = Distribution::from_probs(&[0.5, 0.6], false).unwrap_err().to_string();
        assert!(e.contains("sum to 1.1"), "{e}");
        assert!(Distribution::from_probs(&[0.5, -0.1, 0.6], true).is_err());
        assert!(Distribution::from_probs(&[], true).is_err());
        let d = Distribution::from_logits(&[1000.0, 0.0, -1000.0]).unwrap();
        assert_eq!(d.log_probs()[2], -2000.0);
        assert_eq!(d.probs()[0], 1.0);
        let u = Distribution::from_logits(&[0.0, 0.0, -1000.0]).unwrap();
        // P has mass 0 (underflowed) on outcome 2 but its log is finite: KL(u || d) is finite.
        assert!(kl_divergence(&u, &d, Base::E).unwrap().is_finite());
    }

    fn probs(n: usize) -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(prop_oneof![Just(0.0), 1e-6f64..1.0], n).prop_filter("positive mass", |v| v.iter().sum::<f64>() > 1e-3)
    }

    proptest! {
        #[test]
        fn kl_is_cross_entropy_minus_entropy((a, b) in (1usize..12).prop_flat_map(|n| (probs(n), probs(n)))) {
            let (p, q) = (dist(&a), dist(&b));
            for base in [Base::Two, Base::E] {
                let kl = kl_divergence(&p, &q, base).unwrap();
                let diff = cross_entropy(&p, &q, base).unwrap() - entropy(&p, base);
                prop_assert!(kl >= 0.0);
                if kl.is_finite() {
                    prop_assert!((kl - diff).abs() <= 1e-9 * (1.0 + diff.abs()), "kl {} vs H(P,Q)-H(P) {}", kl, diff);
                } else {
                    prop_assert_eq!(diff, f64::INFINITY);
                }
            }
        }

        #[test]
        fn js_symmetric_and_bounded((a, b) in (1usize..12).prop_flat_map(|n| (probs(n), probs(n)))) {
            let (p, q) = (dist(&a), dist(&b));
            let pq = js_divergence(&p, &q, Base::E).unwrap();
            let qp = js_divergence(&q, &p, Base::E).unwrap();
            prop_assert!((pq - qp).abs() < 1e-12);
            prop_assert!((0.0..=std::f64::consts::LN_2).contains(&pq));
            prop_assert!(js_divergence(&p, &q, Base::Two).unwrap() <= 1.0);
            prop_assert!(js_divergence(&p, &p, Base::E).unwrap() < 1e-12);
        }

        #[test]
        fn kl_from_logits_matches_probabilities(a in prop::collection::vec(-5.0f64..5.0, 2..8), shift in -50.0f64..50.0) {
            // Shifting the logits leaves the distribution alone.
            let p = Distribution::from_logits(&a).unwrap();
            let shifted: Vec<f64> = a.iter().map(|v| v + shift).collect();
            let q = Distribution::from_logits(&shifted).unwrap();
            prop_assert!(kl_divergence(&p, &q, Base::E).unwrap() < 1e-10);
        }
    }

    #[test]
    fn kl_is_asymmetric() {
        let p = dist(&[0.9, 0.1]);
        let q = dist(&[0.5, 0.5]);
        let (pq, qp) = (kl_divergence(&p, &q, Base::E).unwrap(), kl_divergence(&q, &p, Base::E).unwrap());
        assert!((pq - 0.3680642071684971).abs() < 1e-12, "{pq}");
        assert!((qp - 0.5108256237659907).abs() < 1e-12, "{qp}");
    }
}
