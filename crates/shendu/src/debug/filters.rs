//! Tensor filters for `run -f FILTER`: predicates over the tensors a phase of a step made, as
//! tfdbg's `has_inf_or_nan`. The first tensor (in the order the step made them) that trips the
//! filter is reported.

use std::fmt;

use super::session::Named;
use super::view::num;
use crate::cli::{CliError, CliResult};
use crate::stats::TensorStats;

/// The filters' names, for help and completion.
pub const FILTERS: &[&str] = &["has_inf_or_nan", "large_grad", "dead_relu"];

/// Default threshold of `large_grad`.
pub const LARGE_GRAD: f64 = 1e3;

/// Fraction of zeros above which a ReLU output counts as dead.
pub const DEAD_FRACTION: f64 = 0.99;

/// A tensor filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Any NaN or infinity, in any tensor.
    HasInfOrNan,
    /// A gradient (`...:grad`) whose L2 norm exceeds the threshold.
    LargeGrad(f64),
    /// A ReLU layer's output with more than 99% zeros.
    DeadRelu,
}

impl Filter {
    /// `has_inf_or_nan`, `large_grad`, `large_grad:T`, `dead_relu`.
    pub fn parse(text: &str) -> CliResult<Filter> {
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (text, None),
        };
        match (name, arg) {
            ("has_inf_or_nan", None) => Ok(Filter::HasInfOrNan),
            ("dead_relu", None) => Ok(Filter::DeadRelu),
            ("large_grad", None) => Ok(Filter::LargeGrad(LARGE_GRAD)),
            ("large_grad", Some(t)) => match t.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(Filter::LargeGrad(v)),
                _ => Err(CliError::bad(format!("filter {text}: the threshold '{t}' is not a non-negative number"))),
            },
            _ => Err(CliError::bad(format!("unknown filter '{text}'; filters: {}, large_grad:THRESHOLD", FILTERS.join(", ")))),
        }
    }

    /// Why `t` trips this filter, or `None`.
    pub fn check(&self, t: &Named) -> CliResult<Option<String>> {
        let applies = match self {
            Filter::HasInfOrNan => true,
            Filter::LargeGrad(_) => t.name.ends_with(":grad"),
            Filter::DeadRelu => t.kind.as_deref().is_some_and(|k| k.to_lowercase().contains("relu") && !k.to_lowercase().contains("leaky")),
        };
        if !applies {
            return Ok(None);
        }
        let s = TensorStats::of(&t.tensor)?;
        Ok(match self {
            Filter::HasInfOrNan if s.nonfinite() > 0 => {
                Some(format!("{} of its {} values are NaN or infinite", s.nonfinite(), t.tensor.elem_count()))
            }
            Filter::LargeGrad(limit) if s.norm > *limit || s.nonfinite() > 0 => Some(if s.nonfinite() > 0 {
                format!("its norm is not finite ({} NaN or infinite values)", s.nonfinite())
            } else {
                format!("its L2 norm {} is above {}", num(s.norm), num(*limit))
            }),
            Filter::DeadRelu if s.zero_fraction() > DEAD_FRACTION => {
                Some(format!("{:.2}% of its values are zero", 100.0 * s.zero_fraction()))
            }
            _ => None,
        })
    }

    /// The first of `tensors` that trips the filter, with the reason.
    pub fn first_trip<'a>(&self, tensors: &'a [Named]) -> CliResult<Option<(&'a Named, String)>> {
        for t in tensors {
            if let Some(why) = self.check(t)? {
                return Ok(Some((t, why)));
            }
        }
        Ok(None)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::HasInfOrNan => f.write_str("has_inf_or_nan"),
            Filter::LargeGrad(t) => write!(f, "large_grad:{t}"),
            Filter::DeadRelu => f.write_str("dead_relu"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shendu_core::Tensor;

    fn named(name: &str, kind: Option<&str>, v: Vec<f32>) -> Named {
        let n = v.len();
        Named { name: name.into(), layer: None, kind: kind.map(String::from), param: false, tensor: Tensor::from_vec(v, &[n]).unwrap() }
    }

    #[test]
    fn parse_names_and_thresholds() {
        assert_eq!(Filter::parse("has_inf_or_nan").unwrap(), Filter::HasInfOrNan);
        assert_eq!(Filter::parse("large_grad").unwrap(), Filter::LargeGrad(1e3));
        assert_eq!(Filter::parse("large_grad:5").unwrap(), Filter::LargeGrad(5.0));
        assert!(Filter::parse("large_grad:x").is_err());
        assert!(Filter::parse("nan").unwrap_err().to_string().contains("has_inf_or_nan"));
    }

    #[test]
    fn filters_pick_the_first_matching_tensor() {
        let ts = vec![
            named("a:output", Some("Linear"), vec![0.0; 200]),
            named("b:output", Some("Relu"), vec![0.0; 200]),
            named("b:grad", None, vec![30.0, 40.0]),
            named("c:output", Some("Linear"), vec![1.0, f32::NAN]),
        ];
        let first = |f: Filter| f.first_trip(&ts).unwrap().map(|(t, _)| t.name.clone());
        assert_eq!(first(Filter::HasInfOrNan).as_deref(), Some("c:output"));
        assert_eq!(first(Filter::DeadRelu).as_deref(), Some("b:output"));
        assert_eq!(first(Filter::LargeGrad(49.0)).as_deref(), Some("b:grad"));
        assert_eq!(first(Filter::LargeGrad(51.0)), None);
    }
}
