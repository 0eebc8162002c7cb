//! Summary statistics of a tensor's values, the one computation behind `shendu debug`'s listings,
//! `train --log-stats`, `train --check-numerics` reports and `weights inspect`.

use shendu_core::{Result, Tensor};

/// Statistics of a tensor's values (any dtype, read as f64). Min, max, mean, std and norm are
/// over the finite values; NaN and infinities are only counted, so that one bad value does not
/// hide what the others look like.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorStats {
    /// All elements.
    pub count: usize,
    /// The finite elements, those the statistics below are over.
    pub finite: usize,
    pub nan: usize,
    /// Positive and negative infinities.
    pub inf: usize,
    /// Exact zeros.
    pub zeros: usize,
    /// NaN when no value is finite, as are `max`, `mean` and `std`.
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Population standard deviation (divides by n).
    pub std: f64,
    /// L2 norm of the finite values (0 when there are none).
    pub norm: f64,
}

impl TensorStats {
    /// The statistics of `t`'s values.
    pub fn of(t: &Tensor) -> Result<TensorStats> {
        Ok(TensorStats::of_values(&t.to_vec_f64()?))
    }

    /// The statistics of `values`.
    pub fn of_values(values: &[f64]) -> TensorStats {
        let (mut finite, mut nan, mut inf, mut zeros) = (0usize, 0usize, 0usize, 0usize);
        let (mut sum, mut sum_sq, mut min, mut max) = (0.0f64, 0.0f64, f64::INFINITY, f64::NEG_INFINITY);
        for &x in values {
            if x.is_nan() {
                nan += 1;
            } else if x.is_infinite() {
                inf += 1;
            } else {
                finite += 1;
                sum += x;
                sum_sq += x * x;
                zeros += usize::from(x == 0.0);
                min = min.min(x);
                max = max.max(x);
            }
        }
        let (mut mean, mut std) = (f64::NAN, f64::NAN);
        if finite > 0 {
            let n = finite as f64;
            mean = sum / n;
            // Around the mean (a second pass): sum_sq / n - mean^2 cancels to noise when the
            // spread is small next to the mean.
            std = (values.iter().filter(|x| x.is_finite()).map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
        } else {
            (min, max) = (f64::NAN, f64::NAN);
        }
        TensorStats { count: values.len(), finite, nan, inf, zeros, min, max, mean, std, norm: sum_sq.sqrt() }
    }

    /// NaN and infinite elements.
    pub fn nonfinite(&self) -> usize {
        self.nan + self.inf
    }

    /// Fraction of exact zeros among all elements (0 for an empty tensor).
    pub fn zero_fraction(&self) -> f64 {
        self.zeros as f64 / self.count.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_inf_and_zeros_are_counted_and_left_out() {
        let t = Tensor::from_vec(vec![0.0f32, 2.0, f32::NAN, f32::INFINITY, -2.0, f32::NEG_INFINITY, 0.0, 4.0], &[2, 4]).unwrap();
        let s = TensorStats::of(&t).unwrap();
        assert_eq!((s.count, s.finite, s.nan, s.inf, s.zeros, s.nonfinite()), (8, 5, 1, 2, 2, 3));
        assert_eq!((s.min, s.max, s.mean), (-2.0, 4.0, 0.8));
        // Finite values 0, 2, -2, 0, 4 around 0.8: (0.64 + 1.44 + 7.84 + 0.64 + 10.24) / 5.
        assert!((s.std - (20.8f64 / 5.0).sqrt()).abs() < 1e-12, "{}", s.std);
        assert!((s.norm - 24.0f64.sqrt()).abs() < 1e-12, "{}", s.norm);
        assert_eq!(s.zero_fraction(), 0.25);
        // What `shendu debug` lists: the zero fraction is over all elements.
        let t = Tensor::from_vec(vec![0.0f32, 2.0, f32::NAN, f32::INFINITY, -2.0], &[5]).unwrap();
        let s = TensorStats::of(&t).unwrap();
        assert_eq!((s.min, s.max, s.mean, s.nonfinite()), (-2.0, 2.0, 0.0, 2));
        assert!((s.zero_fraction() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn no_finite_value_gives_nan_statistics() {
        let t = Tensor::from_vec(vec![f64::NAN, f64::INFINITY], &[2]).unwrap();
        let s = TensorStats::of(&t).unwrap();
        assert!(s.min.is_nan() && s.max.is_nan() && s.mean.is_nan() && s.std.is_nan());
        assert_eq!((s.finite, s.nonfinite(), s.norm, s.zero_fraction()), (0, 2, 0.0, 0.0));
        let empty = TensorStats::of_values(&[]);
        assert_eq!((empty.count, empty.zero_fraction()), (0, 0.0));
    }

    #[test]
    fn std_survives_a_large_mean() {
        // One-pass sum_sq / n - mean^2 loses every digit here.
        let s = TensorStats::of_values(&[1e8 + 1.0, 1e8 - 1.0, 1e8 + 1.0, 1e8 - 1.0]);
        assert_eq!(s.std, 1.0);
    }
}
