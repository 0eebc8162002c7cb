//! Binary elementwise ops with NumPy broadcasting.

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::cpu::elementwise;
use crate::dtype::{Float, WithDType};
use crate::ops::unary::Unary;
use crate::{with_float, DType, Result, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
    /// `a` where `lo < b < hi`, else 0: the gradient of relu, relu6 and clamp in one pass
    /// (PyTorch's `threshold_backward` / `hardtanh_backward`), with `a` the incoming gradient
    /// and `b` the activation's input or output (the same test either way, since the output
    /// is the input clamped to `[lo, hi]`).
    PassWithin {
        lo: f64,
        hi: f64,
    },
}

impl Binary {
    fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Pow => "pow",
            Binary::Maximum => "maximum",
            Binary::Minimum => "minimum",
            Binary::PassWithin { .. } => "pass_within",
        }
    }

    #[inline(always)]
    pub(crate) fn eval<T: Float>(self, a: T, b: T) -> T {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Pow => a.powf(b),
            Binary::Maximum => a.max(b),
            Binary::Minimum => a.min(b),
            Binary::PassWithin { lo, hi } => pass_within(a, b, T::from_f64(lo), T::from_f64(hi)),
        }
    }
}

#[inline(always)]
fn pass_within<T: Float>(g: T, x: T, lo: T, hi: T) -> T {
    if x > lo && x < hi {
        g
    } else {
        T::ZERO
    }
}

/// Broadcasts both inputs to their common shape (views) and runs `f` on each element pair.
fn broadcast_zip<T: Float>(op: &'static str, a: &Tensor, b: &Tensor, f: impl Fn(T, T) -> T + Sync) -> Result<Tensor> {
    let shape = a.shape().broadcast_with(b.shape(), op)?;
    let la = a.layout().broadcast_as(&shape, op)?;
    let lb = b.layout().broadcast_as(&shape, op)?;
    let ga = a.storage();
    let gb = b.storage();
    let (Some(sa), Some(sb)) = (ga.as_slice::<T>(), gb.as_slice::<T>()) else {
        return Err(crate::Error::dtype_mismatch(op, a.dtype(), b.dtype()));
    };
    let out = elementwise::zip(sa, &la, sb, &lb, f);
    Ok(Tensor::from_pooled(out, shape))
}

impl Op for Binary {
    fn name(&self) -> &'static str {
        Binary::name(*self)
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (a, b) = (inputs[0], inputs[1]);
        let op = *self;
        a.check_same(b, op.name())?;
        if matches!(a.dtype(), DType::F16 | DType::BF16) {
            let _g = crate::no_grad();
            let (a32, b32) = (a.to_dtype(DType::F32)?, b.to_dtype(DType::F32)?);
            return self.forward(&[&a32, &b32])?.to_dtype(a.dtype());
        }
        // One arm per op so that each loop body is fixed at compile time (vectorisable).
        with_float!(a.dtype(), op.name(), |T| match op {
            Binary::Add => broadcast_zip::<T>(op.name(), a, b, |x, y| x + y),
            Binary::Sub => broadcast_zip::<T>(op.name(), a, b, |x, y| x - y),
            Binary::Mul => broadcast_zip::<T>(op.name(), a, b, |x, y| x * y),
            Binary::Div => broadcast_zip::<T>(op.name(), a, b, |x, y| x / y),
            Binary::PassWithin { lo, hi } => {
                let (lo, hi) = (T::from_f64(lo), T::from_f64(hi));
                broadcast_zip::<T>(op.name(), a, b, move |g, x| pass_within(g, x, lo, hi))
            }
            _ => broadcast_zip::<T>(op.name(), a, b, |x, y| op.eval(x, y)),
        })
    }

    fn backward<T: GradOps>(&self, inputs: &[&T], output: &T, g: &T) -> Result<Vec<Option<T>>> {
        let (a, b) = (inputs[0], inputs[1]);
        let (ga, gb) = match self {
            Binary::Add => (g.clone(), g.clone()),
            Binary::Sub => (g.clone(), g.g_neg()?),
            Binary::Mul => (g.g_mul(b)?, g.g_mul(a)?),
            Binary::Div => {
                let ga = g.g_div(b)?;
                // d(a/b)/db = -a/b^2 = -out/b
                (ga, g.g_mul(output)?.g_div(b)?.g_neg()?)
            }
            Binary::Pow => {
                // d/da = b * a^(b-1) = b * out / a; d/db = out * ln a
                let ga = g.g_mul(b)?.g_mul(&a.binary(Binary::Pow, &b.g_affine(1.0, -1.0)?)?)?;
                let gb = g.g_mul(output)?.g_mul(&a.unary(Unary::Log)?)?;
                (ga, gb)
            }
            Binary::Maximum | Binary::Minimum => {
                // The gradient goes to the input that was chosen; ties split it evenly (PyTorch).
                let (ma, mb) = selection_masks(a, b, *self == Binary::Maximum)?;
                (g.g_mul(&ma)?, g.g_mul(&mb)?)
            }
            // Linear in `a` under the same mask; `b` only selects (zero gradient).
            Binary::PassWithin { .. } => return Ok(vec![Some(g.binary(*self, b)?.g_sum_to_like(a)?), None]),
        };
        Ok(vec![Some(ga.g_sum_to_like(a)?), Some(gb.g_sum_to_like(b)?)])
    }
}

/// Masks (1, 0.5 on ties, 0) of where `a` and where `b` won the max (or min).
fn selection_masks<T: GradOps>(a: &T, b: &T, max: bool) -> Result<(T, T)> {
    let d = if max { a.g_sub(b)? } else { b.g_sub(a)? };
    // step(d) is 1 where a wins; ties (d == 0) get 0.5 from (step(d) + 1 - step(-d)) / 2.
    let wins = d.g_step()?;
    let not_loses = d.g_neg()?.g_step()?.g_affine(-1.0, 1.0)?;
    let ma = wins.g_add(&not_loses)?.g_scale(0.5)?;
    let mb = ma.g_affine(-1.0, 1.0)?;
    Ok((ma, mb))
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $variant:expr;)*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
                    apply($variant, &[self, rhs])
                }
            )*
        }
    };
}

binary_methods! {
    /// Elementwise sum with broadcasting.
    add => Binary::Add;
    sub => Binary::Sub;
    mul => Binary::Mul;
    div => Binary::Div;
    /// self ^ rhs elementwise.
    pow => Binary::Pow;
    maximum => Binary::Maximum;
    minimum => Binary::Minimum;
}

impl Tensor {
    /// `self` where `lo < gate < hi`, else 0 (broadcasting): the gradient rule of relu
    /// (`lo = 0, hi = inf`), relu6 and clamp applied to an incoming gradient in one pass, with
    /// `gate` the activation's input or output. Its own gradient flows to `self` only.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let g = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[4]).unwrap();
    /// let y = Tensor::from_vec(vec![0.0f32, 0.5, 6.0, 3.0], &[4]).unwrap();
    /// assert_eq!(g.pass_within(&y, 0.0, 6.0).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 2.0, 0.0, 4.0]);
    /// ```
    pub fn pass_within(&self, gate: &Tensor, lo: f64, hi: f64) -> Result<Tensor> {
        apply(Binary::PassWithin { lo, hi }, &[self, gate])
    }
}
