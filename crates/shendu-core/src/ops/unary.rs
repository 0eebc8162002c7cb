//! Unary elementwise ops: math functions and activations. The backward rules are written in
//! differentiable ops, so second-order gradients work.

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::cpu::elementwise;
use crate::dtype::Float;
use crate::ops::binary::Binary;
use crate::ops::via_f32_if_half;
use crate::{with_float, Result, Tensor};

const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
/// PyTorch's softplus threshold: above it, softplus(x) = x.
const SOFTPLUS_THRESHOLD: f64 = 20.0;

/// A unary elementwise function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    Neg,
    Abs,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Sqr,
    Recip,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Erf,
    Relu,
    LeakyRelu(f64),
    Relu6,
    Elu(f64),
    Selu,
    Gelu,
    Silu,
    Mish,
    Softplus,
    Clamp(f64, f64),
    /// `x * mul + add`.
    Affine {
        mul: f64,
        add: f64,
    },
    Powf(f64),
    /// 1 where x > 0, else 0. Gradient zero.
    Step,
    /// -1, 0 or 1. Gradient zero.
    Sign,
}

impl Unary {
    #[inline(always)]
    pub(crate) fn eval<T: Float>(self, x: T) -> T {
        let c = |v: f64| T::from_f64(v);
        match self {
            Unary::Neg => -x,
            Unary::Abs => x.abs(),
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Rsqrt => x.sqrt().recip(),
            Unary::Sqr => x * x,
            Unary::Recip => x.recip(),
            Unary::Sin => x.sin(),
            Unary::Cos => x.cos(),
            Unary::Tanh => x.tanh(),
            Unary::Sigmoid => sigmoid(x),
            Unary::Erf => x.erf(),
            Unary::Relu => x.max(T::ZERO),
            Unary::LeakyRelu(s) => {
                if x > T::ZERO {
                    x
                } else {
                    x * c(s)
                }
            }
            Unary::Relu6 => x.max(T::ZERO).min(c(6.0)),
            Unary::Elu(a) => {
                if x > T::ZERO {
                    x
                } else {
                    c(a) * x.exp_m1()
                }
            }
            Unary::Selu => {
                let v = if x > T::ZERO { x } else { c(SELU_ALPHA) * x.exp_m1() };
                c(SELU_SCALE) * v
            }
            Unary::Gelu => c(0.5) * x * (T::ONE + (x * c(std::f64::consts::FRAC_1_SQRT_2)).erf()),
            Unary::Silu => x * sigmoid(x),
            Unary::Mish => x * softplus(x).tanh(),
            Unary::Softplus => softplus(x),
            Unary::Clamp(lo, hi) => x.max(c(lo)).min(c(hi)),
            Unary::Affine { mul, add } => x * c(mul) + c(add),
            Unary::Powf(p) => x.powf(c(p)),
            Unary::Step => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Unary::Sign => {
                if x > T::ZERO {
                    T::ONE
                } else if x < T::ZERO {
                    -T::ONE
                } else {
                    T::ZERO
                }
            }
        }
    }

    /// d out / d x, as a tensor expression in `x` and `out`.
    fn derivative<T: GradOps>(self, x: &T, out: &T) -> Result<Option<T>> {
        let one_minus = |t: &T| t.g_affine(-1.0, 1.0);
        Ok(Some(match self {
            Unary::Step | Unary::Sign => return Ok(None),
            // Linear and clamping ops are handled in `backward` without a derivative tensor.
            Unary::Neg | Unary::Affine { .. } | Unary::Relu | Unary::Relu6 | Unary::Clamp(..) => return Ok(None),
            Unary::Abs => x.unary(Unary::Sign)?,
            Unary::Exp => out.clone(),
            Unary::Log => x.unary(Unary::Recip)?,
            Unary::Sqrt => out.unary(Unary::Recip)?.g_scale(0.5)?,
            Unary::Rsqrt => x.unary(Unary::Powf(-1.5))?.g_scale(-0.5)?,
            Unary::Sqr => x.g_scale(2.0)?,
            Unary::Recip => out.unary(Unary::Sqr)?.g_neg()?,
            Unary::Sin => x.unary(Unary::Cos)?,
            Unary::Cos => x.unary(Unary::Sin)?.g_neg()?,
            Unary::Tanh => one_minus(&out.unary(Unary::Sqr)?)?,
            Unary::Sigmoid => out.g_mul(&one_minus(out)?)?,
            Unary::Erf => x.unary(Unary::Sqr)?.g_neg()?.unary(Unary::Exp)?.g_scale(std::f64::consts::FRAC_2_SQRT_PI)?,
            Unary::LeakyRelu(s) => x.g_step()?.g_affine(1.0 - s, s)?,
            Unary::Elu(a) => {
                let s = x.g_step()?;
                s.g_add(&one_minus(&s)?.g_mul(&out.g_affine(1.0, a)?)?)?
            }
            Unary::Selu => {
                let s = x.g_step()?;
                s.g_scale(SELU_SCALE)?.g_add(&one_minus(&s)?.g_mul(&out.g_affine(1.0, SELU_SCALE * SELU_ALPHA)?)?)?
            }
            Unary::Gelu => {
                // Phi(x) + x * phi(x)
                let cdf = x.g_scale(std::f64::consts::FRAC_1_SQRT_2)?.unary(Unary::Erf)?.g_affine(0.5, 0.5)?;
                let pdf = x.unary(Unary::Sqr)?.g_scale(-0.5)?.unary(Unary::Exp)?.g_scale(0.398_942_280_401_432_7)?;
                cdf.g_add(&x.g_mul(&pdf)?)?
            }
            Unary::Silu => {
                let s = x.unary(Unary::Sigmoid)?;
                s.g_mul(&x.g_mul(&one_minus(&s)?)?.g_affine(1.0, 1.0)?)?
            }
            Unary::Mish => {
                let t = x.unary(Unary::Softplus)?.unary(Unary::Tanh)?;
                let sech2 = one_minus(&t.unary(Unary::Sqr)?)?;
                t.g_add(&x.g_mul(&sech2)?.g_mul(&x.unary(Unary::Sigmoid)?)?)?
            }
            Unary::Softplus => x.unary(Unary::Sigmoid)?,
            Unary::Powf(p) => x.unary(Unary::Powf(p - 1.0))?.g_scale(p)?,
        }))
    }

    fn name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Abs => "abs",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Rsqrt => "rsqrt",
            Unary::Sqr => "sqr",
            Unary::Recip => "recip",
            Unary::Sin => "sin",
            Unary::Cos => "cos",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::Erf => "erf",
            Unary::Relu => "relu",
            Unary::LeakyRelu(_) => "leaky_relu",
            Unary::Relu6 => "relu6",
            Unary::Elu(_) => "elu",
            Unary::Selu => "selu",
            Unary::Gelu => "gelu",
            Unary::Silu => "silu",
            Unary::Mish => "mish",
            Unary::Softplus => "softplus",
            Unary::Clamp(..) => "clamp",
            Unary::Affine { .. } => "affine",
            Unary::Powf(_) => "powf",
            Unary::Step => "step",
            Unary::Sign => "sign",
        }
    }
}

#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

#[inline(always)]
fn softplus<T: Float>(x: T) -> T {
    if x > T::from_f64(SOFTPLUS_THRESHOLD) {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// Runs `op` over a tensor's elements. The match on `op` happens once here, not per element:
/// each arm hands `map` a closure with the variant fixed, so the loop body is straight-line code
/// the compiler can vectorise.
fn map_unary<T: Float>(op: Unary, s: &[T], l: &crate::Layout) -> crate::pool::PooledVec<T> {
    macro_rules! fixed {
        ($($variant:ident),*) => {
            match op {
                $(Unary::$variant => return elementwise::map(s, l, |v: T| Unary::$variant.eval(v)),)*
                _ => {}
            }
        };
    }
    fixed!(
        Neg, Abs, Exp, Log, Sqrt, Rsqrt, Sqr, Recip, Sin, Cos, Tanh, Sigmoid, Erf, Relu, Relu6, Selu, Gelu, Silu, Mish, Softplus, Step,
        Sign
    );
    let c = T::from_f64;
    match op {
        Unary::LeakyRelu(slope) => {
            let slope = c(slope);
            elementwise::map(s, l, |v: T| if v > T::ZERO { v } else { v * slope })
        }
        Unary::Elu(alpha) => {
            let alpha = c(alpha);
            elementwise::map(s, l, |v: T| if v > T::ZERO { v } else { alpha * v.exp_m1() })
        }
        Unary::Clamp(lo, hi) => {
            let (lo, hi) = (c(lo), c(hi));
            elementwise::map(s, l, |v: T| v.max(lo).min(hi))
        }
        Unary::Affine { mul, add } => {
            let (mul, add) = (c(mul), c(add));
            elementwise::map(s, l, |v: T| v * mul + add)
        }
        Unary::Powf(p) => {
            let p = c(p);
            elementwise::map(s, l, |v: T| v.powf(p))
        }
        other => elementwise::map(s, l, |v: T| other.eval(v)),
    }
}

impl Op for Unary {
    fn name(&self) -> &'static str {
        Unary::name(*self)
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let op = *self;
        via_f32_if_half(inputs[0], |x| {
            with_float!(x.dtype(), op.name(), |T| {
                let out = x.with_slice(op.name(), |s: &[T], l| map_unary(op, s, l))?;
                Ok(Tensor::from_pooled(out, x.shape().clone()))
            })
        })
    }

    fn backward<T: GradOps>(&self, inputs: &[&T], output: &T, grad: &T) -> Result<Vec<Option<T>>> {
        match *self {
            Unary::Neg => return Ok(vec![Some(grad.g_neg()?)]),
            Unary::Affine { mul, .. } => return Ok(vec![Some(grad.g_scale(mul)?)]),
            // One pass over the gradient, reading the output (PyTorch's threshold_backward):
            // out lies strictly inside (lo, hi) exactly where x does, and x need not be kept.
            Unary::Relu => return Ok(vec![Some(grad.binary(Binary::PassWithin { lo: 0.0, hi: f64::INFINITY }, output)?)]),
            Unary::Relu6 => return Ok(vec![Some(grad.binary(Binary::PassWithin { lo: 0.0, hi: 6.0 }, output)?)]),
            Unary::Clamp(lo, hi) => return Ok(vec![Some(grad.binary(Binary::PassWithin { lo, hi }, output)?)]),
            _ => {}
        }
        let d = self.derivative(inputs[0], output)?;
        Ok(vec![match d {
            Some(d) => Some(grad.g_mul(&d)?),
            None => None,
        }])
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $variant:expr;)*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Result<Tensor> {
                    apply($variant, &[self])
                }
            )*
        }
    };
}

unary_methods! {
    neg => Unary::Neg;
    abs => Unary::Abs;
    exp => Unary::Exp;
    /// Natural logarithm.
    log => Unary::Log;
    sqrt => Unary::Sqrt;
    /// 1 / sqrt(x).
    rsqrt => Unary::Rsqrt;
    /// x * x.
    sqr => Unary::Sqr;
    /// 1 / x.
    recip => Unary::Recip;
    sin => Unary::Sin;
    cos => Unary::Cos;
    tanh => Unary::Tanh;
    sigmoid => Unary::Sigmoid;
    erf => Unary::Erf;
    relu => Unary::Relu;
    /// min(max(x, 0), 6), MobileNet's activation.
    relu6 => Unary::Relu6;
    /// Self-normalising ELU with the paper's alpha and scale.
    selu => Unary::Selu;
    /// The exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as PyTorch's default.
    gelu => Unary::Gelu;
    /// x * sigmoid(x).
    silu => Unary::Silu;
    /// x * sigmoid(x), the name Darknet and the Swish paper use.
    swish => Unary::Silu;
    /// x * tanh(softplus(x)).
    mish => Unary::Mish;
    /// log(1 + exp(x)), linear above 20 as PyTorch.
    softplus => Unary::Softplus;
    /// -1, 0 or 1 (no gradient).
    sign => Unary::Sign;
}

impl Tensor {
    /// x for x > 0, else slope * x (Darknet's `leaky` uses 0.1).
    pub fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        apply(Unary::LeakyRelu(slope), &[self])
    }
    /// x for x > 0, else alpha * (exp(x) - 1).
    pub fn elu(&self, alpha: f64) -> Result<Tensor> {
        apply(Unary::Elu(alpha), &[self])
    }
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min > max || min.is_nan() || max.is_nan() {
            return Err(crate::Error::invalid("clamp", format!("min {min} must not exceed max {max}")));
        }
        apply(Unary::Clamp(min, max), &[self])
    }
    /// x * mul + add.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        apply(Unary::Affine { mul, add }, &[self])
    }
    pub fn add_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(1.0, v)
    }
    pub fn mul_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(v, 0.0)
    }
    /// x to the power `p`.
    pub fn powf(&self, p: f64) -> Result<Tensor> {
        apply(Unary::Powf(p), &[self])
    }
}
