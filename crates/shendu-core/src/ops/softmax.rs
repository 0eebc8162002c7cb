//! Softmax and log-softmax along one dim, fused and stable (shifted by the row max).

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::cpu::elementwise::SendPtr;
use crate::cpu::threads::parallel_ranges;
use crate::dtype::Float;
use crate::pool::PooledVec;
use crate::{with_float, Dim, Result, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct Softmax {
    pub dim: usize,
    pub log: bool,
}

fn softmax_kernel<T: Float>(x: &Tensor, dim: usize, log: bool) -> Result<Tensor> {
    // Move `dim` last and make rows contiguous; the common case (dim already last) copies nothing.
    let rank = x.rank();
    let mut perm: Vec<usize> = (0..rank).filter(|&d| d != dim).collect();
    perm.push(dim);
    let xt = x.permute(&perm)?.contiguous()?;
    let n = x.dims()[dim];
    let mut out = PooledVec::<T>::uninit(x.elem_count());
    xt.with_contiguous("softmax", |s: &[T]| {
        if n == 0 {
            return;
        }
        let rows = s.len() / n;
        let dst = SendPtr(out.as_mut_slice().as_mut_ptr());
        parallel_ranges(rows, (1 << 14) / n + 1, |r| {
            // SAFETY: each range of rows writes its own part of `out`.
            let o = unsafe { dst.slice_mut(r.start * n..r.end * n) };
            let xs = &s[r.start * n..r.end * n];
            for (row_o, row_x) in o.chunks_mut(n).zip(xs.chunks(n)) {
                let m = row_x.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
                let m = if m.is_finite() { m } else { T::ZERO };
                let mut sum = T::ZERO;
                for (o, &v) in row_o.iter_mut().zip(row_x) {
                    let e = (v - m).exp();
                    *o = e;
                    sum += e;
                }
                if log {
                    let ls = sum.ln() + m;
                    for (o, &v) in row_o.iter_mut().zip(row_x) {
                        *o = v - ls;
                    }
                } else {
                    let inv = T::ONE / sum;
                    row_o.iter_mut().for_each(|o| *o *= inv);
                }
            }
        });
    })?;
    let mut tdims = x.dims().to_vec();
    let last = tdims.remove(dim);
    tdims.push(last);
    let t = Tensor::from_pooled(out, crate::Shape::new(tdims));
    // Undo the permutation (a view).
    let mut inverse = vec![0; rank];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    let _g = crate::no_grad();
    t.permute(&inverse)
}

impl Op for Softmax {
    fn name(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (dim, log) = (self.dim, self.log);
        crate::ops::via_f32_if_half(inputs[0], |x| {
            let _g = crate::no_grad();
            with_float!(x.dtype(), self.name(), |T| softmax_kernel::<T>(x, dim, log))
        })
    }
    fn backward<T: GradOps>(&self, _inputs: &[&T], y: &T, g: &T) -> Result<Vec<Option<T>>> {
        let d = [self.dim];
        let gx = if self.log {
            // g - softmax * sum(g)
            let p = y.unary(crate::ops::unary::Unary::Exp)?;
            g.g_sub(&p.g_mul(&g.g_sum_keepdim(&d)?.g_broadcast_like(g)?)?)?
        } else {
            // y * (g - sum(g * y))
            let s = g.g_mul(y)?.g_sum_keepdim(&d)?.g_broadcast_like(g)?;
            y.g_mul(&g.g_sub(&s)?)?
        };
        Ok(vec![Some(gx)])
    }
}

impl Tensor {
    /// exp(x) / sum(exp(x)) along `dim`.
    pub fn softmax<D: Dim>(&self, dim: D) -> Result<Tensor> {
        let dim = self.shape().dim_index(dim, "softmax")?;
        apply(Softmax { dim, log: false }, &[self])
    }

    /// x - logsumexp(x) along `dim`.
    pub fn log_softmax<D: Dim>(&self, dim: D) -> Result<Tensor> {
        let dim = self.shape().dim_index(dim, "log_softmax")?;
        apply(Softmax { dim, log: true }, &[self])
    }
}
