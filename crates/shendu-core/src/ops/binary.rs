//! Binary elementwise ops with NumPy broadcasting.

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::cpu::elementwise;
use crate::dtype::Float;
use crate::ops::unary::Unary;
use crate::{with_float, DType, Result, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
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
        }
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
