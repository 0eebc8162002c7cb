//! Comparisons and masks: eq/ne/lt/le/gt/ge (tensor or scalar right-hand side) giving u8 masks
//! of 0/1, logical_not, is_nan/is_finite, and the mask consumers where_cond and masked_fill.
//!
//! Mask producers have no gradient, so their methods run the forward directly: the mask never
//! joins the tape, even when its inputs require grad.

use std::hint::select_unpredictable;

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::cpu::elementwise::{self, par_fill};
use crate::dtype::WithDType;
use crate::layout::for_each_row_n;
use crate::pool::PooledVec;
use crate::{with_any, DType, Error, Result, Tensor};

/// Elements per parallel task in the select kernels.
const PAR_ELEMS: usize = 1 << 15;

/// A comparison of two values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }

    /// IEEE semantics: every comparison with NaN is false except `Ne`.
    #[inline(always)]
    fn eval<T: PartialOrd>(self, a: T, b: T) -> u8 {
        (match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }) as u8
    }
}

/// Elementwise comparison of two tensors with broadcasting, giving a u8 mask. No gradient.
#[derive(Clone, Copy, Debug)]
pub struct Compare(pub CmpOp);

impl Op for Compare {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (a, b, cmp) = (inputs[0], inputs[1], self.0);
        let op = cmp.name();
        a.check_same(b, op)?;
        let shape = a.shape().broadcast_with(b.shape(), op)?;
        let (la, lb) = (a.layout().broadcast_as(&shape, op)?, b.layout().broadcast_as(&shape, op)?);
        with_any!(a.dtype(), |T| {
            let (ga, gb) = (a.storage(), b.storage());
            let (Some(sa), Some(sb)) = (ga.as_slice::<T>(), gb.as_slice::<T>()) else {
                return Err(Error::dtype_mismatch(op, a.dtype(), b.dtype()));
            };
            Ok(Tensor::from_pooled(elementwise::zip(sa, &la, sb, &lb, |x, y| cmp.eval(x, y)), shape))
        })
    }
    fn backward<T: GradOps>(&self, _i: &[&T], _o: &T, _g: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![None, None])
    }
}

/// Elementwise comparison with a scalar, done in f64 (exact for every dtype but i64 beyond
/// 2^53). No gradient.
#[derive(Clone, Copy, Debug)]
pub struct CompareScalar {
    pub op: CmpOp,
    pub value: f64,
}

impl Op for CompareScalar {
    fn name(&self) -> &'static str {
        self.op.name()
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (x, cmp, v) = (inputs[0], self.op, self.value);
        with_any!(x.dtype(), |T| {
            let out = x.with_slice(cmp.name(), |s: &[T], l| elementwise::map(s, l, |e| cmp.eval(e.to_f64(), v)))?;
            Ok(Tensor::from_pooled(out, x.shape().clone()))
        })
    }
    fn backward<T: GradOps>(&self, _i: &[&T], _o: &T, _g: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![None])
    }
}

/// Unary mask producers. No gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskOp {
    /// 1 where the entry is zero.
    LogicalNot,
    IsNan,
    IsFinite,
}

impl Op for MaskOp {
    fn name(&self) -> &'static str {
        match self {
            MaskOp::LogicalNot => "logical_not",
            MaskOp::IsNan => "is_nan",
            MaskOp::IsFinite => "is_finite",
        }
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (x, op) = (inputs[0], *self);
        with_any!(x.dtype(), |T| {
            let out = x.with_slice(self.name(), |s: &[T], l| {
                elementwise::map(s, l, |e: T| {
                    let v = e.to_f64();
                    (match op {
                        MaskOp::LogicalNot => v == 0.0,
                        MaskOp::IsNan => v.is_nan(),
                        MaskOp::IsFinite => v.is_finite(),
                    }) as u8
                })
            })?;
            Ok(Tensor::from_pooled(out, x.shape().clone()))
        })
    }
    fn backward<T: GradOps>(&self, _i: &[&T], _o: &T, _g: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![None])
    }
}

fn check_mask(op: &'static str, mask: &Tensor) -> Result<()> {
    if mask.dtype() != DType::U8 {
        return Err(Error::dtype(
            op,
            format!("condition {} has dtype {}; it must be a u8 mask (as comparisons return)", mask.shape(), mask.dtype()),
        ));
    }
    Ok(())
}

/// `on_true` where the mask (input 0) is non-zero, else `on_false`; all three broadcast.
/// Inputs: mask, on_true, on_false.
#[derive(Clone, Copy, Debug)]
pub struct WhereCond;

impl Op for WhereCond {
    fn name(&self) -> &'static str {
        "where_cond"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (m, t, f) = (inputs[0], inputs[1], inputs[2]);
        let op = "where_cond";
        check_mask(op, m)?;
        t.check_same(f, op)?;
        let shape = m.shape().broadcast_with(t.shape(), op)?.broadcast_with(f.shape(), op).map_err(|_| {
            Error::shape(
                op,
                format!("condition {}, on_true {} and on_false {} cannot be broadcast together", m.shape(), t.shape(), f.shape()),
            )
        })?;
        let (lm, lt, lf) =
            (m.layout().broadcast_as(&shape, op)?, t.layout().broadcast_as(&shape, op)?, f.layout().broadcast_as(&shape, op)?);
        with_any!(t.dtype(), |T| {
            let (gm, gt, gf) = (m.storage(), t.storage(), f.storage());
            let (Some(sm), Some(st), Some(sf)) = (gm.as_slice::<u8>(), gt.as_slice::<T>(), gf.as_slice::<T>()) else {
                return Err(Error::dtype_mismatch(op, t.dtype(), f.dtype()));
            };
            let mut out = PooledVec::<T>::uninit(shape.elem_count());
            let o = out.as_mut_slice();
            if let (Some(rm), Some(rt), Some(rf)) = (lm.contiguous_range(), lt.contiguous_range(), lf.contiguous_range()) {
                let (sm, st, sf) = (&sm[rm], &st[rt], &sf[rf]);
                par_fill(o, PAR_ELEMS, |r, o| {
                    let (sm, st, sf) = (&sm[r.clone()], &st[r.clone()], &sf[r]);
                    for (((o, &m), &t), &f) in o.iter_mut().zip(sm).zip(st).zip(sf) {
                        // A random mask would mispredict a branch half the time.
                        *o = select_unpredictable(m != 0, t, f);
                    }
                });
                return Ok(Tensor::from_pooled(out, shape));
            }
            let mut c = 0;
            for_each_row_n([&lm, &lt, &lf], |[om, ot, of], [sm_, st_, sf_], len| {
                for (k, o) in o[c..c + len].iter_mut().enumerate() {
                    *o = select_unpredictable(sm[om + k * sm_] != 0, st[ot + k * st_], sf[of + k * sf_]);
                }
                c += len;
            });
            Ok(Tensor::from_pooled(out, shape))
        })
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        let (m, t, f) = (inputs[0], inputs[1], inputs[2]);
        // Zero the entries the other branch supplied, then undo the broadcast.
        let gt = T::apply(MaskedFill { value: 0.0, invert: true }, &[grad, m])?.g_sum_to_like(t)?;
        let gf = T::apply(MaskedFill { value: 0.0, invert: false }, &[grad, m])?.g_sum_to_like(f)?;
        Ok(vec![None, Some(gt), Some(gf)])
    }
}

/// Input 0 with `value` where the u8 mask (input 1, broadcast to input 0's shape) is non-zero,
/// or where it is zero when `invert`. With `value` 0 it also serves as the masking gradient op.
#[derive(Clone, Copy, Debug)]
pub struct MaskedFill {
    pub value: f64,
    pub invert: bool,
}

impl Op for MaskedFill {
    fn name(&self) -> &'static str {
        "masked_fill"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (x, m, invert) = (inputs[0], inputs[1], self.invert);
        check_mask("masked_fill", m)?;
        let lm = m.layout().broadcast_as(x.shape(), "masked_fill").map_err(|_| {
            Error::shape("masked_fill", format!("mask {} cannot be broadcast to the input's shape {}", m.shape(), x.shape()))
        })?;
        with_any!(x.dtype(), |T| {
            let v = T::from_f64(self.value);
            let (gx, gm) = (x.storage(), m.storage());
            let (Some(sx), Some(sm)) = (gx.as_slice::<T>(), gm.as_slice::<u8>()) else {
                return Err(Error::dtype("masked_fill", "input storage changed dtype"));
            };
            let mut out = PooledVec::<T>::uninit(x.elem_count());
            let o = out.as_mut_slice();
            if let (Some(rx), Some(rm)) = (x.layout().contiguous_range(), lm.contiguous_range()) {
                let (sx, sm) = (&sx[rx], &sm[rm]);
                par_fill(o, PAR_ELEMS, |r, o| {
                    for ((o, &m), &e) in o.iter_mut().zip(&sm[r.clone()]).zip(&sx[r]) {
                        *o = select_unpredictable((m != 0) != invert, v, e);
                    }
                });
                return Ok(Tensor::from_pooled(out, x.shape().clone()));
            }
            let mut c = 0;
            for_each_row_n([x.layout(), &lm], |[ox, om], [sx_, sm_], len| {
                for (k, o) in o[c..c + len].iter_mut().enumerate() {
                    *o = select_unpredictable((sm[om + k * sm_] != 0) != invert, v, sx[ox + k * sx_]);
                }
                c += len;
            });
            Ok(Tensor::from_pooled(out, x.shape().clone()))
        })
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(T::apply(MaskedFill { value: 0.0, invert: self.invert }, &[grad, inputs[1]])?), None])
    }
}

macro_rules! compare_methods {
    ($($name:ident, $scalar:ident => $op:ident, $what:literal;)*) => {
        impl Tensor {
            $(
                #[doc = concat!("Elementwise `self ", $what, " rhs` with broadcasting: a u8 mask of 0/1 (no gradient).")]
                #[doc = ""]
                #[doc = "```"]
                #[doc = "use shendu_core::Tensor;"]
                #[doc = "let a = Tensor::from_vec(vec![1f32, 2., 3.], &[3]).unwrap();"]
                #[doc = "let b = Tensor::from_vec(vec![2f32], &[1]).unwrap();"]
                #[doc = concat!("assert_eq!(a.", stringify!($name), "(&b).unwrap().dims(), &[3]);")]
                #[doc = "```"]
                pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
                    Compare(CmpOp::$op).forward(&[self, rhs])
                }

                #[doc = concat!("Elementwise `self ", $what, " value`: a u8 mask of 0/1 (no gradient).")]
                #[doc = ""]
                #[doc = "```"]
                #[doc = "use shendu_core::Tensor;"]
                #[doc = "let a = Tensor::from_vec(vec![1i64, 2, 3], &[3]).unwrap();"]
                #[doc = concat!("assert_eq!(a.", stringify!($scalar), "(2.0).unwrap().dtype(), shendu_core::DType::U8);")]
                #[doc = "```"]
                pub fn $scalar(&self, value: f64) -> Result<Tensor> {
                    CompareScalar { op: CmpOp::$op, value }.forward(&[self])
                }
            )*
        }
    };
}

compare_methods! {
    eq, eq_scalar => Eq, "==";
    ne, ne_scalar => Ne, "!=";
    lt, lt_scalar => Lt, "<";
    le, le_scalar => Le, "<=";
    gt, gt_scalar => Gt, ">";
    ge, ge_scalar => Ge, ">=";
}

impl Tensor {
    /// A u8 mask: 1 where the entry is zero, else 0 (any dtype; no gradient).
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let m = Tensor::from_vec(vec![0u8, 1, 1], &[3]).unwrap();
    /// assert_eq!(m.logical_not().unwrap().to_vec::<u8>().unwrap(), vec![1, 0, 0]);
    /// ```
    pub fn logical_not(&self) -> Result<Tensor> {
        MaskOp::LogicalNot.forward(&[self])
    }

    /// A u8 mask of the NaN entries (all 0 for integer dtypes; no gradient).
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::from_vec(vec![1f32, f32::NAN], &[2]).unwrap();
    /// assert_eq!(x.is_nan().unwrap().to_vec::<u8>().unwrap(), vec![0, 1]);
    /// ```
    pub fn is_nan(&self) -> Result<Tensor> {
        MaskOp::IsNan.forward(&[self])
    }

    /// A u8 mask of the finite entries (neither NaN nor infinite; no gradient).
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::from_vec(vec![1f32, f32::INFINITY, f32::NAN], &[3]).unwrap();
    /// assert_eq!(x.is_finite().unwrap().to_vec::<u8>().unwrap(), vec![1, 0, 0]);
    /// ```
    pub fn is_finite(&self) -> Result<Tensor> {
        MaskOp::IsFinite.forward(&[self])
    }

    /// PyTorch's `torch.where(cond, on_true, on_false)` with `self` the u8 condition: entries
    /// of `on_true` where it is non-zero, else of `on_false`; all three broadcast. The gradient
    /// flows to `on_true` and `on_false`, each where it was chosen.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::from_vec(vec![-1f32, 2., -3.], &[3]).unwrap();
    /// let zero = Tensor::zeros(&[1], shendu_core::DType::F32).unwrap();
    /// let relu = x.gt_scalar(0.0).unwrap().where_cond(&x, &zero).unwrap();
    /// assert_eq!(relu.to_vec::<f32>().unwrap(), vec![0., 2., 0.]);
    /// ```
    pub fn where_cond(&self, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        apply(WhereCond, &[self, on_true, on_false])
    }

    /// `self` with `value` wherever the u8 `mask` (broadcast to `self`'s shape) is non-zero.
    /// The gradient flows to the entries that were kept.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::from_vec(vec![1f32, 2., 3.], &[3]).unwrap();
    /// let m = Tensor::from_vec(vec![0u8, 1, 0], &[3]).unwrap();
    /// assert_eq!(x.masked_fill(&m, f64::NEG_INFINITY).unwrap().to_vec::<f32>().unwrap(), vec![1., f32::NEG_INFINITY, 3.]);
    /// ```
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        apply(MaskedFill { value, invert: false }, &[self, mask])
    }
}
