//! Padding rules and output sizes of convolutions and pools, in one place.
//!
//! Three rules, per spatial dimension, for an input of size `in`, kernel `k`, stride `s`,
//! dilation `d` (effective kernel `e = d*(k-1) + 1`):
//!
//! | rule | output size | pads |
//! |---|---|---|
//! | TensorFlow `Same` | `ceil(in / s)` | `total = max((out-1)*s + e - in, 0)`, `begin = total/2`, `end = total - begin` (the extra pad goes at the end) |
//! | TensorFlow `Valid` | `ceil((in - e + 1) / s)` | none |
//! | explicit (PyTorch) | `floor((in + begin + end - e) / s) + 1` | as given |
//!
//! `Valid` is the explicit rule with zero pads, and `Same` is the explicit rule with the pads it
//! resolves to, so the kernels only ever see explicit pads. With integer division rounding down
//! the notebook's forms are `Same = (in + s - 1) / s` and `Valid = (in - (k-1) + s - 1) / s`.
//! Pools also have PyTorch's `ceil_mode` (see [`pool_output_size`]).

use crate::{Error, Result};

/// How a 2-D convolution or pool pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Padding {
    /// TensorFlow's `SAME`: output size `ceil(in / stride)`, zeros split evenly with the odd
    /// one at the bottom/right.
    Same,
    /// No padding (TensorFlow's `VALID`, PyTorch's `padding=0`).
    #[default]
    Valid,
    /// Explicit pads, asymmetric allowed (PyTorch's `padding=(p_h, p_w)` is `top = bottom = p_h`,
    /// `left = right = p_w`).
    Explicit { top: usize, bottom: usize, left: usize, right: usize },
}

impl Padding {
    /// `p` on every side (PyTorch's `padding=p`).
    pub fn symmetric(p: usize) -> Padding {
        Padding::Explicit { top: p, bottom: p, left: p, right: p }
    }

    /// `ph` above and below, `pw` left and right (PyTorch's `padding=(ph, pw)`).
    pub fn symmetric2(ph: usize, pw: usize) -> Padding {
        Padding::Explicit { top: ph, bottom: ph, left: pw, right: pw }
    }

    /// Explicit pads in the order top, bottom, left, right.
    pub fn explicit(top: usize, bottom: usize, left: usize, right: usize) -> Padding {
        Padding::Explicit { top, bottom, left, right }
    }

    /// Left and right pads only: the padding of a 1-D convolution.
    pub fn horizontal(left: usize, right: usize) -> Padding {
        Padding::Explicit { top: 0, bottom: 0, left, right }
    }

    /// The rule for the height dimension.
    pub fn rule_h(self) -> PadRule {
        match self {
            Padding::Same => PadRule::Same,
            Padding::Valid => PadRule::Valid,
            Padding::Explicit { top, bottom, .. } => PadRule::Explicit(top, bottom),
        }
    }

    /// The rule for the width dimension.
    pub fn rule_w(self) -> PadRule {
        match self {
            Padding::Same => PadRule::Same,
            Padding::Valid => PadRule::Valid,
            Padding::Explicit { left, right, .. } => PadRule::Explicit(left, right),
        }
    }
}

/// The padding rule of one spatial dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadRule {
    /// TensorFlow's `SAME`.
    Same,
    /// TensorFlow's `VALID` (no padding).
    Valid,
    /// `(begin, end)` pads, PyTorch's floor rule.
    Explicit(usize, usize),
}

fn check_args(op: &'static str, kernel: usize, stride: usize, dilation: usize) -> Result<()> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return Err(Error::invalid(op, format!("kernel size {kernel}, stride {stride} and dilation {dilation} must all be at least 1")));
    }
    Ok(())
}

/// The effective extent of a dilated kernel, `d*(k-1) + 1`.
pub fn effective_kernel(kernel: usize, dilation: usize) -> usize {
    // Saturates: absurd kernels then fail the size checks instead of overflowing.
    dilation.saturating_mul(kernel.saturating_sub(1)).saturating_add(1)
}

/// The TensorFlow `SAME` pads `(begin, end)` of one dimension: the total is whatever makes the
/// last window end at or past the input's end, split with the odd element at the end.
pub fn same_pads(input: usize, kernel: usize, stride: usize, dilation: usize) -> (usize, usize) {
    let out = input.div_ceil(stride.max(1));
    let needed = out.saturating_sub(1).saturating_mul(stride).saturating_add(effective_kernel(kernel, dilation));
    let total = needed.saturating_sub(input);
    (total / 2, total - total / 2)
}

/// Resolves a rule to explicit `(begin, end)` pads.
pub fn resolve_pads(input: usize, kernel: usize, stride: usize, dilation: usize, pad: PadRule) -> (usize, usize) {
    match pad {
        PadRule::Same => same_pads(input, kernel, stride, dilation),
        PadRule::Valid => (0, 0),
        PadRule::Explicit(b, e) => (b, e),
    }
}

/// The output size of a convolution along one dimension (see the module docs for the rules).
///
/// Errors when the stride, dilation or kernel is 0, or when the dilated kernel is larger than
/// the padded input (`Same` never errors: it pads as much as it needs).
///
/// ```
/// use shendu_core::padding::{conv_output_size, PadRule};
/// assert_eq!(conv_output_size(28, 3, 1, 1, PadRule::Explicit(1, 1)).unwrap(), 28);
/// assert_eq!(conv_output_size(28, 3, 2, 1, PadRule::Same).unwrap(), 14);
/// assert_eq!(conv_output_size(28, 5, 1, 1, PadRule::Valid).unwrap(), 24);
/// assert!(conv_output_size(2, 3, 1, 1, PadRule::Valid).is_err());
/// ```
pub fn conv_output_size(input: usize, kernel: usize, stride: usize, dilation: usize, pad: PadRule) -> Result<usize> {
    const OP: &str = "conv_output_size";
    check_args(OP, kernel, stride, dilation)?;
    if pad == PadRule::Same {
        return Ok(input.div_ceil(stride));
    }
    let (b, e) = resolve_pads(input, kernel, stride, dilation, pad);
    let ek = effective_kernel(kernel, dilation);
    // Kernels index with isize: larger extents are rejected rather than overflowed.
    let padded = input.checked_add(b).and_then(|p| p.checked_add(e)).filter(|&p| p <= isize::MAX as usize);
    let Some(padded) = padded.filter(|_| ek <= isize::MAX as usize) else {
        return Err(Error::invalid(
            OP,
            format!("input {input} with pads {b} and {e}, kernel {kernel} and dilation {dilation} is too large to index"),
        ));
    };
    if padded < ek {
        return Err(Error::shape(
            OP,
            format!(
                "kernel {kernel} with dilation {dilation} spans {ek} but the padded input is only {padded} ({input} + pads {b} and {e})"
            ),
        ));
    }
    Ok((padded - ek) / stride + 1)
}

/// The output size of a pool along one dimension: the explicit rule, rounding up instead of
/// down with PyTorch's `ceil_mode`, where a last window that would start in the end padding is
/// dropped.
pub fn pool_output_size(input: usize, kernel: usize, stride: usize, dilation: usize, pad: PadRule, ceil_mode: bool) -> Result<usize> {
    let floor = conv_output_size(input, kernel, stride, dilation, pad)?;
    if !ceil_mode || pad == PadRule::Same {
        return Ok(floor);
    }
    let (b, e) = resolve_pads(input, kernel, stride, dilation, pad);
    let span = input + b + e - effective_kernel(kernel, dilation);
    let mut out = span.div_ceil(stride) + 1;
    // `(out - 1) * stride < span + stride`, and `out > 2` needs `stride < span <= isize::MAX`:
    // no overflow.
    if (out - 1) * stride >= input + b {
        out -= 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notebook's forms, with INT rounding down.
    fn same_closed(input: i64, stride: i64) -> i64 {
        (input + stride - 1).div_euclid(stride)
    }
    fn valid_closed(input: i64, k: i64, stride: i64) -> i64 {
        (input - (k - 1) + stride - 1).div_euclid(stride)
    }

    #[test]
    fn closed_forms_agree() {
        for k in [1usize, 3, 5, 7] {
            for s in [1usize, 2] {
                for input in 1..=64usize {
                    let same = conv_output_size(input, k, s, 1, PadRule::Same).unwrap();
                    assert_eq!(same as i64, same_closed(input as i64, s as i64), "same in={input} k={k} s={s}");
                    let (b, e) = same_pads(input, k, s, 1);
                    assert!(e == b || e == b + 1);
                    // Same is the explicit rule with its own pads.
                    assert_eq!(conv_output_size(input, k, s, 1, PadRule::Explicit(b, e)).unwrap(), same);
                    let valid = conv_output_size(input, k, s, 1, PadRule::Valid);
                    if input >= k {
                        assert_eq!(valid.unwrap() as i64, valid_closed(input as i64, k as i64, s as i64), "valid in={input} k={k} s={s}");
                    } else {
                        assert!(valid.is_err(), "in={input} k={k}");
                    }
                }
            }
        }
    }

    #[test]
    fn explicit_floor_rule() {
        // PyTorch: floor((in + pb + pe - d*(k-1) - 1)/s) + 1
        assert_eq!(conv_output_size(7, 3, 2, 1, PadRule::Explicit(1, 1)).unwrap(), 4);
        assert_eq!(conv_output_size(8, 3, 2, 1, PadRule::Explicit(1, 1)).unwrap(), 4);
        assert_eq!(conv_output_size(10, 3, 1, 2, PadRule::Explicit(0, 0)).unwrap(), 6);
        assert_eq!(conv_output_size(10, 3, 3, 2, PadRule::Explicit(2, 1)).unwrap(), 3);
        assert_eq!(conv_output_size(1, 3, 1, 1, PadRule::Explicit(1, 1)).unwrap(), 1);
        assert!(conv_output_size(1, 3, 1, 1, PadRule::Explicit(1, 0)).is_err());
        assert!(conv_output_size(5, 3, 0, 1, PadRule::Valid).is_err());
        assert!(conv_output_size(5, 0, 1, 1, PadRule::Valid).is_err());
    }

    #[test]
    fn same_pads_even_kernels_and_dilation() {
        // TF puts the odd pad at the end.
        assert_eq!(same_pads(5, 2, 1, 1), (0, 1));
        assert_eq!(same_pads(5, 4, 1, 1), (1, 2));
        assert_eq!(same_pads(6, 3, 2, 1), (0, 1));
        assert_eq!(same_pads(5, 3, 2, 1), (1, 1));
        assert_eq!(same_pads(9, 3, 1, 2), (2, 2));
        assert_eq!(same_pads(5, 1, 2, 1), (0, 0));
    }

    #[test]
    fn pool_ceil_mode() {
        // torch: MaxPool2d(2, 2, ceil_mode=True) on 5 -> 3; on 4 -> 2
        assert_eq!(pool_output_size(5, 2, 2, 1, PadRule::Valid, true).unwrap(), 3);
        assert_eq!(pool_output_size(5, 2, 2, 1, PadRule::Valid, false).unwrap(), 2);
        assert_eq!(pool_output_size(4, 2, 2, 1, PadRule::Valid, true).unwrap(), 2);
        // kernel 3, stride 2, pad 1 on 6: floor 3, ceil 4 would start at 6 >= 6 + 1? no: 3*2=6 < 7 -> 4
        assert_eq!(pool_output_size(6, 3, 2, 1, PadRule::Explicit(1, 1), true).unwrap(), 4);
        // a window starting in the end padding is dropped: in=5,k=2,s=2,p=1: floor 3, ceil 4 -> 3*2=6 >= 6 -> 3
        assert_eq!(pool_output_size(5, 2, 2, 1, PadRule::Explicit(1, 1), true).unwrap(), 3);
    }
}
