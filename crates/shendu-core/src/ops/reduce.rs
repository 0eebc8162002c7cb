//! Reductions over any set of dims, with or without keeping them: sum, max, min, and the
//! composites built on them (mean, var, std, logsumexp).

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::cpu::elementwise::par_fill;
use crate::dtype::Float;
use crate::ops::movement::Unsqueeze;
use crate::ops::unary::Unary;
use crate::pool::PooledVec;
use crate::{with_float, Dim, Error, Layout, Result, Shape, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    Sum,
    Max,
    Min,
}

/// Reduces `dims` (sorted, distinct) with `kind`.
#[derive(Clone, Debug)]
pub struct Reduce {
    pub kind: ReduceKind,
    pub dims: Vec<usize>,
    pub keepdim: bool,
}

impl Reduce {
    fn name(&self) -> &'static str {
        match self.kind {
            ReduceKind::Sum => "sum",
            ReduceKind::Max => "max",
            ReduceKind::Min => "min",
        }
    }
}

/// Sorted, distinct, in-range dims; an error naming `op` otherwise.
pub(crate) fn normalize_dims<D: Dim>(shape: &Shape, dims: &[D], op: &'static str) -> Result<Vec<usize>> {
    let mut out = dims.iter().map(|&d| shape.dim_index(d, op)).collect::<Result<Vec<_>>>()?;
    out.sort_unstable();
    if out.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::index(op, format!("dims {out:?} repeat a dimension (shape {shape})")));
    }
    Ok(out)
}

fn reduce_kernel<T: Float>(x: &Tensor, dims: &[usize], kind: ReduceKind, op: &'static str) -> Result<(PooledVec<T>, Shape)> {
    let in_dims = x.dims();
    let kept: Vec<usize> = (0..in_dims.len()).filter(|d| !dims.contains(d)).collect();
    let keep_shape: Vec<usize> = (0..in_dims.len()).map(|d| if dims.contains(&d) { 1 } else { in_dims[d] }).collect();
    // Saturating: a zero-size view may have other dims whose product overflows.
    let reduced_count: usize = dims.iter().fold(1, |acc: usize, &d| acc.saturating_mul(in_dims[d]));
    if reduced_count == 0 && kind != ReduceKind::Sum {
        return Err(Error::shape(op, format!("cannot take {op} over an empty dimension of {}", x.shape())));
    }
    if x.elem_count() == 0 {
        // Nothing to read (sums of nothing are 0). Skip the offset tables: a zero-size view's
        // other dims may be huge.
        let shape = Shape::new(keep_shape);
        return Ok((PooledVec::filled(shape.elem_count(), T::ZERO), shape));
    }
    let l = x.layout();
    let sub =
        |ds: &[usize]| Layout::new(Shape::new(ds.iter().map(|&d| in_dims[d]).collect()), ds.iter().map(|&d| l.strides()[d]).collect(), 0);
    // The reduced dims that end the tensor and lie contiguously (conv bias gradients reduce
    // [N, C, H, W] over N, H, W: the H*W planes) are summed as runs, the rest by offsets.
    let mut run = 1usize;
    let mut split = dims.len();
    while split > 0 {
        let d = dims[split - 1];
        if d + dims.len() - split + 1 != in_dims.len() || l.strides()[d] != run {
            break;
        }
        run *= in_dims[d];
        split -= 1;
    }
    let (outer_dims, run) = if split < dims.len() && split > 0 && run > 1 { (&dims[..split], run) } else { (dims, 1) };
    let red_offsets = sub(outer_dims).offsets();
    let kept_offsets = sub(&kept).offsets();
    let init = match kind {
        ReduceKind::Sum => T::ZERO,
        ReduceKind::Max => T::neg_infinity(),
        ReduceKind::Min => T::infinity(),
    };
    let combine = move |a: T, b: T| match kind {
        ReduceKind::Sum => a + b,
        // NaN propagates, as in PyTorch.
        ReduceKind::Max => {
            if b > a || b.is_nan() {
                b
            } else {
                a
            }
        }
        ReduceKind::Min => {
            if b < a || b.is_nan() {
                b
            } else {
                a
            }
        }
    };
    let mut out = PooledVec::<T>::uninit(kept_offsets.len());
    let inner_reduced = red_offsets.len() > 1 && red_offsets.windows(2).all(|w| w[1] == w[0] + 1);
    x.with_slice(op, |s: &[T], l| {
        let base = l.offset();
        let min_chunk = (1 << 14) / reduced_count.max(1) + 1;
        if run > 1 {
            par_fill(out.as_mut_slice(), min_chunk, |r, o| {
                for (o, &k) in o.iter_mut().zip(&kept_offsets[r]) {
                    *o = red_offsets.iter().fold(init, |a, &ro| {
                        let row = &s[base + k + ro..base + k + ro + run];
                        let v = if kind == ReduceKind::Sum { lane_sum(row) } else { row.iter().fold(init, |a, &b| combine(a, b)) };
                        combine(a, v)
                    });
                }
            });
        } else if inner_reduced {
            let n = red_offsets.len();
            par_fill(out.as_mut_slice(), min_chunk, |r, o| {
                for (o, &k) in o.iter_mut().zip(&kept_offsets[r]) {
                    let row = &s[base + k..base + k + n];
                    *o = if kind == ReduceKind::Sum { lane_sum(row) } else { row.iter().fold(init, |a, &b| combine(a, b)) };
                }
            });
        } else if kept_offsets.len() > 1 && kept_offsets.windows(2).all(|w| w[1] == w[0] + 1) {
            // Leading dims reduced, the kept ones contiguous (a Linear bias gradient sums the
            // rows of [N, out]): whole rows combine into the outputs, vectorised, each output
            // still taking its inputs in order.
            let k0 = kept_offsets[0];
            par_fill(out.as_mut_slice(), min_chunk, |r, o| {
                o.fill(init);
                for &ro in &red_offsets {
                    let row = &s[base + k0 + ro + r.start..][..o.len()];
                    if kind == ReduceKind::Sum {
                        // Its own loop: with `combine`'s match on the kind inside, the adds
                        // stayed scalar (a Linear bias gradient of [128, 512] took 50 us).
                        for (o, &v) in o.iter_mut().zip(row) {
                            *o += v;
                        }
                    } else {
                        for (o, &v) in o.iter_mut().zip(row) {
                            *o = combine(*o, v);
                        }
                    }
                }
            });
        } else {
            par_fill(out.as_mut_slice(), min_chunk, |r, o| {
                o.fill(init);
                for &ro in &red_offsets {
                    for (o, &k) in o.iter_mut().zip(&kept_offsets[r.clone()]) {
                        *o = combine(*o, s[base + k + ro]);
                    }
                }
            });
        }
    })?;
    Ok((out, Shape::new(keep_shape)))
}

/// Sum with 8 independent accumulators: vectorises and loses less precision than one chain.
fn lane_sum<T: Float>(row: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &v in rest {
        s += v;
    }
    s
}

impl Op for Reduce {
    fn name(&self) -> &'static str {
        Reduce::name(self)
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let x = inputs[0];
        let op = self.name();
        if self.dims.iter().any(|&d| d >= x.rank()) || self.dims.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::index(op, format!("dims {:?} are not sorted, distinct dims of shape {}", self.dims, x.shape())));
        }
        crate::ops::via_f32_if_half(x, |x| {
            with_float!(x.dtype(), op, |T| {
                let (out, keep_shape) = reduce_kernel::<T>(x, &self.dims, self.kind, op)?;
                let t = Tensor::from_pooled(out, keep_shape.clone());
                if self.keepdim {
                    return Ok(t);
                }
                let dims: Vec<usize> =
                    keep_shape.dims().iter().enumerate().filter(|(d, _)| !self.dims.contains(d)).map(|(_, &s)| s).collect();
                Ok(t.with_layout(Layout::contiguous(Shape::new(dims))))
            })
        })
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], output: &T, grad: &T) -> Result<Vec<Option<T>>> {
        let x = inputs[0];
        // Restore the reduced dims as size 1, then broadcast back over them.
        let (g, out) = if self.keepdim {
            (grad.clone(), output.clone())
        } else {
            let restore = || Unsqueeze { dims: self.dims.clone() };
            (T::apply(restore(), &[grad])?, T::apply(restore(), &[output])?)
        };
        let g = g.g_broadcast_like(x)?;
        Ok(vec![Some(match self.kind {
            ReduceKind::Sum => g,
            ReduceKind::Max | ReduceKind::Min => {
                // Ties share the gradient evenly.
                let is_extreme = x.g_sub(&out.g_broadcast_like(x)?)?.unary(Unary::Abs)?.g_step()?.g_affine(-1.0, 1.0)?;
                let count = is_extreme.g_sum_keepdim(&self.dims)?.g_broadcast_like(x)?;
                g.g_mul(&is_extreme)?.g_div(&count)?
            }
        })])
    }
}

/// Sums `x` over the dims in which it was broadcast from `target` (NumPy's rule, right-aligned).
pub(crate) fn sum_to_shape(x: &Tensor, target: &Shape) -> Result<Tensor> {
    let (xd, td) = (x.dims(), target.dims());
    if td.len() > xd.len() {
        return Err(Error::shape("sum_to", format!("cannot sum {} down to {target}: target has more dims", x.shape())));
    }
    let lead = xd.len() - td.len();
    let mut dims: Vec<usize> = (0..lead).collect();
    for (i, &t) in td.iter().enumerate() {
        let s = xd[lead + i];
        if t == 1 && s != 1 {
            dims.push(lead + i);
        } else if t != s {
            return Err(Error::shape(
                "sum_to",
                format!("cannot sum {} down to {target}: dimension {i} has size {s}, target {t}", x.shape()),
            ));
        }
    }
    let summed = if dims.is_empty() { x.clone() } else { Reduce { kind: ReduceKind::Sum, dims, keepdim: true }.forward(&[x])? };
    let summed = summed.contiguous()?;
    Ok(summed.with_layout(Layout::contiguous(target.clone())))
}

impl Tensor {
    fn reduce<D: Dim>(&self, kind: ReduceKind, dims: &[D], keepdim: bool, op: &'static str) -> Result<Tensor> {
        let dims = normalize_dims(self.shape(), dims, op)?;
        apply(Reduce { kind, dims, keepdim }, &[self])
    }

    /// Sum over `dims` (negative dims count from the back).
    pub fn sum<D: Dim>(&self, dims: &[D], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceKind::Sum, dims, keepdim, "sum")
    }

    /// Sum of all elements, as a 0-d tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        let dims: Vec<usize> = (0..self.rank()).collect();
        self.sum(&dims, false)
    }

    pub fn max<D: Dim>(&self, dims: &[D], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceKind::Max, dims, keepdim, "max")
    }

    pub fn min<D: Dim>(&self, dims: &[D], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceKind::Min, dims, keepdim, "min")
    }

    pub fn max_all(&self) -> Result<Tensor> {
        let dims: Vec<usize> = (0..self.rank()).collect();
        self.max(&dims, false)
    }

    pub fn min_all(&self) -> Result<Tensor> {
        let dims: Vec<usize> = (0..self.rank()).collect();
        self.min(&dims, false)
    }

    fn reduced_count<D: Dim>(&self, dims: &[D], op: &'static str) -> Result<usize> {
        Ok(normalize_dims(self.shape(), dims, op)?.iter().fold(1, |acc: usize, &d| acc.saturating_mul(self.dims()[d])))
    }

    pub fn mean<D: Dim>(&self, dims: &[D], keepdim: bool) -> Result<Tensor> {
        let n = self.reduced_count(dims, "mean")?;
        self.sum(dims, keepdim)?.mul_scalar(1.0 / n as f64)
    }

    pub fn mean_all(&self) -> Result<Tensor> {
        let dims: Vec<usize> = (0..self.rank()).collect();
        self.mean(&dims, false)
    }

    /// Variance with `correction` (1 = unbiased, PyTorch's default; 0 = population).
    pub fn var<D: Dim>(&self, dims: &[D], keepdim: bool, correction: usize) -> Result<Tensor> {
        let n = self.reduced_count(dims, "var")?;
        if n <= correction {
            return Err(Error::shape("var", format!("{n} elements per group of {} are too few for correction {correction}", self.shape())));
        }
        let mean = self.mean(dims, true)?;
        self.sub(&mean)?.sqr()?.sum(dims, keepdim)?.mul_scalar(1.0 / (n - correction) as f64)
    }

    pub fn std<D: Dim>(&self, dims: &[D], keepdim: bool, correction: usize) -> Result<Tensor> {
        self.var(dims, keepdim, correction)?.sqrt()
    }

    /// log(sum(exp(x))) over `dims`, computed stably (shifted by the max).
    pub fn logsumexp<D: Dim>(&self, dims: &[D], keepdim: bool) -> Result<Tensor> {
        // Shift by the max; an all -inf group shifts by 0 (else -inf - -inf = NaN).
        let m = self.detach().max(dims, true)?.finite_or_zero()?;
        let s = self.sub(&m)?.exp()?.sum(dims, true)?.log()?.add(&m)?;
        if keepdim {
            Ok(s)
        } else {
            let dims = normalize_dims(self.shape(), dims, "logsumexp")?;
            let out: Vec<usize> = self.dims().iter().enumerate().filter(|(d, _)| !dims.contains(d)).map(|(_, &s)| s).collect();
            s.reshape(out)
        }
    }

    /// The values where finite, 0 where NaN or infinite (no gradient).
    fn finite_or_zero(&self) -> Result<Tensor> {
        let x = self.detach();
        with_float!(x.dtype(), "logsumexp", |T| {
            let out =
                x.with_slice("logsumexp", |s: &[T], l| crate::cpu::elementwise::map(s, l, |v: T| if v.is_finite() { v } else { T::ZERO }))?;
            Ok(Tensor::from_pooled(out, x.shape().clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    /// Reductions whose reduced dims end in a contiguous run (summed as runs) against a plain
    /// per-element definition, on contiguous and permuted inputs.
    #[test]
    fn run_reductions_match_definition() {
        let dims = [3usize, 4, 5, 6];
        let n: usize = dims.iter().product();
        let vals: Vec<f64> = (0..n).map(|i| ((i * 37) % 101) as f64 - 50.0).collect();
        let x = Tensor::from_vec(vals.clone(), &dims).unwrap();
        let at = |i: [usize; 4]| vals[((i[0] * 4 + i[1]) * 5 + i[2]) * 6 + i[3]];
        for red in [vec![0usize, 2, 3], vec![0, 3], vec![1, 2, 3], vec![1, 3], vec![0, 1, 3]] {
            let got = x.sum(&red, false).unwrap().to_vec::<f64>().unwrap();
            let got_max = x.max(&red, false).unwrap().to_vec::<f64>().unwrap();
            let kept: Vec<usize> = (0..4).filter(|d| !red.contains(d)).collect();
            let mut want = Vec::new();
            let mut want_max = Vec::new();
            let kept_n: usize = kept.iter().map(|&d| dims[d]).product();
            for k in 0..kept_n {
                let (mut s, mut m) = (0.0, f64::NEG_INFINITY);
                for i in 0..n {
                    let idx = [i / 120, (i / 30) % 4, (i / 6) % 5, i % 6];
                    let mut kk = 0;
                    for &d in &kept {
                        kk = kk * dims[d] + idx[d];
                    }
                    if kk == k {
                        s += at(idx);
                        m = m.max(at(idx));
                    }
                }
                want.push(s);
                want_max.push(m);
            }
            assert_eq!(got, want, "sum over {red:?}");
            assert_eq!(got_max, want_max, "max over {red:?}");
        }
        // Leading dims reduced with contiguous kept dims (rows combined whole).
        for red in [vec![0usize], vec![0, 1]] {
            let got = x.sum(&red, false).unwrap().to_vec::<f64>().unwrap();
            let kept_n: usize = dims[red.len()..].iter().product();
            let want: Vec<f64> = (0..kept_n).map(|k| (0..n / kept_n).map(|o| vals[o * kept_n + k]).sum()).collect();
            assert_eq!(got, want, "sum over {red:?}");
        }
        // A permuted view: its last dims are not contiguous, so it takes the offset path.
        let xt = x.permute(&[0, 1, 3, 2]).unwrap();
        let a = xt.sum(&[0, 2, 3], false).unwrap().to_vec::<f64>().unwrap();
        let b = x.sum(&[0, 2, 3], false).unwrap().to_vec::<f64>().unwrap();
        assert_eq!(a, b);
        let f = Tensor::from_vec(vals.iter().map(|&v| v as f32).collect::<Vec<_>>(), &dims).unwrap().to_dtype(DType::F32).unwrap();
        assert_eq!(f.sum(&[0, 2, 3], false).unwrap().dims(), &[4]);
    }
}
