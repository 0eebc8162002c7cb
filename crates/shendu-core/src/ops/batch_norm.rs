//! Training-mode batch normalisation as one op: per-channel batch statistics, normalisation and
//! the affine transform in three passes over the input forward (mean, variance, normalisation)
//! and two backward (gradient sums, input gradient), where the same computation built from
//! mean/sub/sqr/rsqrt/mul/add takes about ten of each.
//!
//! The statistics are their own op ([`BatchNormStats`]), computed once per forward and passed
//! as an input to the normalisation and to both backward ops, which would otherwise each
//! recompute them (two passes over the input apiece); the layer reads its running statistics
//! from the same tensor. Likewise the parameter gradients are the two per-channel sums the
//! input's gradient needs, so the backward computes them first and hands them on. The f32 sums
//! run in the AVX2 kernels of `cpu::channel_sums`.

use crate::autograd::{apply, GradExt, GradOps, Op};
#[cfg(target_arch = "x86_64")]
use crate::cpu::channel_sums::{self, ChannelPlanes};
use crate::cpu::elementwise::SendPtr;
#[cfg(target_arch = "x86_64")]
use crate::cpu::simd::as_f32;
use crate::cpu::simd::{dispatch, Madd, SimdKernel};
use crate::cpu::threads::parallel_ranges;
use crate::dtype::{Float, WithDType};
use crate::pool::PooledVec;
use crate::{with_float, Error, Result, Tensor};

/// `y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c` for `x` of shape `[N, C, ...]`,
/// with the batch mean and the biased batch variance of each channel `c` over every dim but 1.
/// Inputs: `[x, weight [C], bias [C]]`, optionally followed by the [`BatchNormStats`] of `x`.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormTrain {
    pub eps: f64,
}

/// `[x]` -> `[3, C]` f64: each channel's batch mean, `1/sqrt(var + eps)` and biased variance.
/// No gradient: batch norm's backward rule already differentiates through the statistics.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormStats {
    pub eps: f64,
}

/// `[x, grad]` (optionally followed by the statistics) -> `[2, C]`: row 0 is sum(grad * xhat)
/// (the weight's gradient), row 1 sum(grad) (the bias's).
#[derive(Clone, Copy, Debug)]
pub struct BatchNormParamGrad {
    pub eps: f64,
}

/// `[x, weight, grad]` (optionally followed by the statistics, and then by the
/// [`BatchNormParamGrad`] of the same `x` and `grad`, whose sums it then reuses) -> the input's
/// gradient, through the batch statistics:
/// `w * invstd * (g - mean(g) - xhat * mean(g * xhat))`, means per channel.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormInputGrad {
    pub eps: f64,
}

/// `[N, C, rest]` as (n, c, plane) with plane = product of the rest (1 for `[N, C]`).
fn geometry(op: &'static str, x: &Tensor) -> Result<(usize, usize, usize)> {
    let d = x.dims();
    if d.len() < 2 || d[0] * d[2..].iter().product::<usize>() < 2 {
        return Err(Error::shape(op, format!("input {} needs [N, C, ...] with more than one value per channel", x.shape())));
    }
    Ok((d[0], d[1], d[2..].iter().product()))
}

fn check_channel_vec(op: &'static str, what: &str, t: &Tensor, c: usize) -> Result<()> {
    if t.dims() != [c] {
        return Err(Error::shape(op, format!("{what} {} does not match {c} channels", t.shape())));
    }
    Ok(())
}

/// `sum(f(x))` over a slice: blocks of 256 values summed in 8 lanes of `T` (vectorised), the
/// block sums added in f64, so long planes keep f64-like accuracy at f32 speed.
#[inline(always)]
fn blocked_sum<T: Float>(s: &[T], f: impl Fn(T) -> T) -> f64 {
    let mut total = 0.0f64;
    for block in s.chunks(256) {
        let mut acc = [T::ZERO; 8];
        let lanes = block.chunks_exact(8);
        let rest = lanes.remainder();
        for c in lanes {
            for j in 0..8 {
                acc[j] += f(c[j]);
            }
        }
        let mut t = T::ZERO;
        for &v in rest {
            t += f(v);
        }
        total += acc.iter().map(|&a| WithDType::to_f64(a)).sum::<f64>() + WithDType::to_f64(t);
    }
    total
}

/// `(sum(g * (x - mean)), sum(g))` over two equal slices, blocked as [`blocked_sum`].
#[inline(always)]
fn blocked_grad_sums<T: Float>(x: &[T], g: &[T], mean: T) -> (f64, f64) {
    let (mut gx, mut gs) = (0.0f64, 0.0f64);
    for (xb, gb) in x.chunks(256).zip(g.chunks(256)) {
        let (mut ax, mut ag) = ([T::ZERO; 8], [T::ZERO; 8]);
        let (xl, gl) = (xb.chunks_exact(8), gb.chunks_exact(8));
        let (xr, gr) = (xl.remainder(), gl.remainder());
        for (xc, gc) in xl.zip(gl) {
            for j in 0..8 {
                ax[j] += gc[j] * (xc[j] - mean);
                ag[j] += gc[j];
            }
        }
        let (mut tx, mut tg) = (T::ZERO, T::ZERO);
        for (&xv, &gv) in xr.iter().zip(gr) {
            tx += gv * (xv - mean);
            tg += gv;
        }
        gx += ax.iter().map(|&a| WithDType::to_f64(a)).sum::<f64>() + WithDType::to_f64(tx);
        gs += ag.iter().map(|&a| WithDType::to_f64(a)).sum::<f64>() + WithDType::to_f64(tg);
    }
    (gx, gs)
}

/// The `(mean, 1/sqrt(var + eps))` of each channel: the mean, then the variance around it (two
/// passes, so no cancellation), channels in parallel.
fn channel_stats<T: Float>(x: &[T], geo: (usize, usize, usize), eps: f64) -> Vec<(f64, f64)> {
    channel_moments(x, geo).into_iter().map(|(mean, var)| (mean, 1.0 / (var + eps).sqrt())).collect()
}

/// The `(mean, biased variance)` of each channel (two passes, channels in parallel).
fn channel_moments<T: Float>(x: &[T], (n, c, plane): (usize, usize, usize)) -> Vec<(f64, f64)> {
    let m = (n * plane) as f64;
    let mut stats = vec![(0.0, 0.0); c];
    let dst = SendPtr(stats.as_mut_ptr());
    parallel_ranges(c, 1, |r| {
        // SAFETY: each range of channels writes its own entries.
        let out = unsafe { dst.slice_mut(r.clone()) };
        for (ch, o) in r.zip(out) {
            #[cfg(target_arch = "x86_64")]
            if let Some(xf) = as_f32(x) {
                let p = ChannelPlanes { start: ch * plane, len: plane, n, stride: c * plane };
                if let Some(sum) = channel_sums::sum(xf, p) {
                    let mean = sum / m;
                    if let Some(sq) = channel_sums::squared_deviation(xf, p, mean as f32) {
                        *o = (mean, sq / m);
                        continue;
                    }
                }
            }
            let planes = || (0..n).map(move |i| &x[(i * c + ch) * plane..(i * c + ch + 1) * plane]);
            let mean = planes().map(|p| blocked_sum(p, |v| v)).sum::<f64>() / m;
            let mt = T::from_f64(mean);
            let var = planes().map(|p| blocked_sum(p, |v| (v - mt) * (v - mt))).sum::<f64>() / m;
            *o = (mean, var);
        }
    });
    stats
}

/// `(sum(g * (x - mean)), sum(g))` over one channel's planes.
fn channel_grad_sums<T: Float>(x: &[T], g: &[T], (n, c, plane): (usize, usize, usize), ch: usize, mean: f64) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(xf), Some(gf)) = (as_f32(x), as_f32(g)) {
        let p = ChannelPlanes { start: ch * plane, len: plane, n, stride: c * plane };
        if let Some(sums) = channel_sums::grad_sums(xf, gf, p, mean as f32) {
            return sums;
        }
    }
    let mt = T::from_f64(mean);
    let (mut gx, mut gs) = (0.0, 0.0);
    for i in 0..n {
        let p = (i * c + ch) * plane..(i * c + ch + 1) * plane;
        let (a, b) = blocked_grad_sums(&x[p.clone()], &g[p], mt);
        gx += a;
        gs += b;
    }
    (gx, gs)
}

/// The `(mean, invstd)` of each channel: from a [`BatchNormStats`] input when there is one, else
/// computed from `x`.
fn stats_of<T: Float>(given: Option<&Vec<f64>>, x: &[T], geo: (usize, usize, usize), eps: f64) -> PerChannel {
    match given {
        Some(v) => (0..geo.1).map(|c| (v[c], v[geo.1 + c])).collect(),
        None => channel_stats(x, geo, eps),
    }
}

/// The values of an optional per-channel input of `rows` rows (`what`: the [`BatchNormStats`],
/// 3 rows, or the [`BatchNormParamGrad`] sums the input-gradient op reuses, 2 rows), checked
/// against the channel count.
fn given_rows(op: &'static str, what: &str, t: Option<&&Tensor>, rows: usize, c: usize) -> Result<Option<Vec<f64>>> {
    let Some(t) = t else { return Ok(None) };
    if t.dims() != [rows, c] {
        return Err(Error::shape(op, format!("{what} {} do not match {c} channels (want [{rows}, {c}])", t.shape())));
    }
    Ok(Some(t.to_vec_f64()?))
}

/// The values of an optional statistics input (checked against the channel count).
fn given_stats(op: &'static str, t: Option<&&Tensor>, c: usize) -> Result<Option<Vec<f64>>> {
    given_rows(op, "statistics", t, 3, c)
}

/// Per channel `a, b, k` (three values a channel): the pass computes `a * u + b * v + k` (or
/// `a * u + k` without `v`).
type Coefs<T> = Vec<T>;

/// `out = a_c * u + b_c * v + k_c` (without `v`: `a_c * u + k_c`) over every plane of channels
/// `chans` of `[n, C, plane]` buffers (fused multiply-adds where the CPU has them).
struct ChannelAffine<'a, T> {
    out: SendPtr<T>,
    u: &'a [T],
    v: Option<&'a [T]>,
    coefs: &'a [T],
    geo: (usize, usize, usize),
    chans: std::ops::Range<usize>,
}

impl<T: Float> SimdKernel for ChannelAffine<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let (n, c, plane) = self.geo;
        for ch in self.chans.clone() {
            let (a, b, k) = (self.coefs[3 * ch], self.coefs[3 * ch + 1], self.coefs[3 * ch + 2]);
            for i in 0..n {
                let r = (i * c + ch) * plane..(i * c + ch + 1) * plane;
                // SAFETY: (i, ch) planes are disjoint; each channel belongs to one range.
                let o = unsafe { self.out.slice_mut(r.clone()) };
                match self.v {
                    None => o.iter_mut().zip(&self.u[r]).for_each(|(o, &u)| *o = A::madd(a, u, k)),
                    Some(v) => {
                        o.iter_mut().zip(&self.u[r.clone()]).zip(&v[r]).for_each(|((o, &u), &v)| *o = A::madd(a, u, A::madd(b, v, k)))
                    }
                }
            }
        }
    }
}

/// [`ChannelAffine`] into a new buffer, channels in parallel.
fn channel_affine<T: Float>(u: &[T], v: Option<&[T]>, coefs: &Coefs<T>, geo: (usize, usize, usize)) -> PooledVec<T> {
    let mut out = PooledVec::<T>::uninit(u.len());
    let ptr = SendPtr(out.as_mut_slice().as_mut_ptr());
    parallel_ranges(geo.1, 1, |chans| dispatch(ChannelAffine { out: ptr, u, v, coefs, geo, chans }));
    out
}

fn vec_f64(t: &Tensor) -> Result<Vec<f64>> {
    t.to_vec_f64()
}

impl Op for BatchNormTrain {
    fn name(&self) -> &'static str {
        "batch_norm"
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
        let geo = geometry("batch_norm", x)?;
        check_channel_vec("batch_norm", "weight", w, geo.1)?;
        check_channel_vec("batch_norm", "bias", b, geo.1)?;
        let (wv, bv) = (vec_f64(w)?, vec_f64(b)?);
        let given = given_stats("batch_norm", inputs.get(3), geo.1)?;
        let x = x.contiguous()?;
        with_float!(x.dtype(), "batch_norm", |T| {
            let out = x.with_contiguous("batch_norm", |s: &[T]| {
                let stats = stats_of(given.as_ref(), s, geo, self.eps);
                let coefs: Coefs<T> = (0..geo.1)
                    .flat_map(|ch| {
                        let (mean, invstd) = stats[ch];
                        [invstd * wv[ch], 0.0, bv[ch] - mean * invstd * wv[ch]]
                    })
                    .map(T::from_f64)
                    .collect();
                channel_affine(s, None, &coefs, geo)
            })?;
            Ok(Tensor::from_pooled(out, x.shape().clone()))
        })
    }

    fn backward<G: GradOps>(&self, inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
        let stats = inputs.get(3).copied();
        let eps = self.eps;
        // The parameter gradients first: they are the two sums the input's gradient needs, so
        // passing them along saves that op a pass over `x` and `grad`.
        let both = if w.needs_grad() || b.needs_grad() {
            let ins: Vec<&G> = [x, grad].into_iter().chain(stats).collect();
            Some(G::apply(BatchNormParamGrad { eps }, &ins)?)
        } else {
            None
        };
        let gx = if x.needs_grad() {
            let sums = stats.and(both.as_ref());
            let ins: Vec<&G> = [x, w, grad].into_iter().chain(stats).chain(sums).collect();
            Some(G::apply(BatchNormInputGrad { eps }, &ins)?)
        } else {
            None
        };
        let (gw, gb) = match &both {
            Some(both) => (Some(both.g_narrow(0, 0, 1)?.g_reshape_like(w)?), Some(both.g_narrow(0, 1, 1)?.g_reshape_like(b)?)),
            None => (None, None),
        };
        // The statistics are a constant of the rule (it differentiates through them itself).
        Ok(if stats.is_some() { vec![gx, gw, gb, None] } else { vec![gx, gw, gb] })
    }
}

/// Per channel, two f64 numbers: `(mean, invstd)` for statistics, `(sum(g * xhat), sum(g))`
/// for gradient sums.
type PerChannel = Vec<(f64, f64)>;

/// Each channel's statistics and gradient sums.
fn grad_sums<T: Float>(x: &[T], g: &[T], geo: (usize, usize, usize), eps: f64, given: Option<&Vec<f64>>) -> (PerChannel, PerChannel) {
    let c = geo.1;
    let stats = stats_of(given, x, geo, eps);
    let mut sums = vec![(0.0, 0.0); c];
    let dst = SendPtr(sums.as_mut_ptr());
    parallel_ranges(c, 1, |r| {
        // SAFETY: each range of channels writes its own entries.
        let out = unsafe { dst.slice_mut(r.clone()) };
        for (ch, o) in r.zip(out) {
            let (mean, invstd) = stats[ch];
            let (gx, gs) = channel_grad_sums(x, g, geo, ch, mean);
            *o = (gx * invstd, gs);
        }
    });
    (stats, sums)
}

fn second_order(op: &'static str) -> Result<Vec<Option<impl Sized>>> {
    Err::<Vec<Option<()>>, _>(Error::autograd(op, "second-order gradient of batch_norm is not implemented"))
}

impl Op for BatchNormParamGrad {
    fn name(&self) -> &'static str {
        "batch_norm_param_grad"
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (x, g) = (inputs[0].contiguous()?, inputs[1].contiguous()?);
        let geo = geometry("batch_norm_param_grad", &x)?;
        let given = given_stats("batch_norm_param_grad", inputs.get(2), geo.1)?;
        with_float!(x.dtype(), "batch_norm_param_grad", |T| {
            let sums = x.with_contiguous("batch_norm_param_grad", |xs: &[T]| {
                g.with_contiguous("batch_norm_param_grad", |gs: &[T]| grad_sums(xs, gs, geo, self.eps, given.as_ref()).1)
            })??;
            let mut rows: Vec<T> = sums.iter().map(|s| T::from_f64(s.0)).collect();
            rows.extend(sums.iter().map(|s| T::from_f64(s.1)));
            Tensor::from_vec(rows, &[2, geo.1])
        })
    }

    fn backward<G: GradOps>(&self, _inputs: &[&G], _output: &G, _grad: &G) -> Result<Vec<Option<G>>> {
        second_order("batch_norm_param_grad").map(|_| vec![])
    }
}

impl Op for BatchNormInputGrad {
    fn name(&self) -> &'static str {
        "batch_norm_input_grad"
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (x, w, g) = (inputs[0].contiguous()?, inputs[1], inputs[2].contiguous()?);
        let geo = geometry("batch_norm_input_grad", &x)?;
        let wv = vec_f64(w)?;
        let given = given_stats("batch_norm_input_grad", inputs.get(3), geo.1)?;
        let given_sums = given_rows("batch_norm_input_grad", "gradient sums", inputs.get(4), 2, geo.1)?;
        let m = (geo.0 * geo.2) as f64;
        with_float!(x.dtype(), "batch_norm_input_grad", |T| {
            let out = x.with_contiguous("batch_norm_input_grad", |xs: &[T]| {
                g.with_contiguous("batch_norm_input_grad", |gs: &[T]| {
                    let (stats, sums) = match &given_sums {
                        Some(v) => (stats_of(given.as_ref(), xs, geo, self.eps), (0..geo.1).map(|c| (v[c], v[geo.1 + c])).collect()),
                        None => grad_sums(xs, gs, geo, self.eps, given.as_ref()),
                    };
                    // dx = k * (g - sum_g/m - xhat * sum_gxhat/m), xhat = (x - mean) * invstd:
                    // per channel, a * g + b * x + c.
                    let coefs: Coefs<T> = (0..geo.1)
                        .flat_map(|ch| {
                            let ((mean, invstd), (sum_gxhat, sum_g)) = (stats[ch], sums[ch]);
                            let k = wv[ch] * invstd;
                            let b = -k * invstd * sum_gxhat / m;
                            [k, b, -k * sum_g / m - b * mean]
                        })
                        .map(T::from_f64)
                        .collect();
                    channel_affine(gs, Some(xs), &coefs, geo)
                })
            })??;
            Ok(Tensor::from_pooled(out, x.shape().clone()))
        })
    }

    fn backward<G: GradOps>(&self, _inputs: &[&G], _output: &G, _grad: &G) -> Result<Vec<Option<G>>> {
        second_order("batch_norm_input_grad").map(|_| vec![])
    }
}

/// Each channel's `(mean, biased variance)` of a `[N, C, ...]` tensor.
fn moments_of(x: &Tensor) -> Result<Vec<(f64, f64)>> {
    let geo = geometry("batch_norm_stats", x)?;
    let x = x.contiguous()?;
    with_float!(x.dtype(), "batch_norm_stats", |T| x.with_contiguous("batch_norm_stats", |s: &[T]| channel_moments(s, geo)))
}

impl Op for BatchNormStats {
    fn name(&self) -> &'static str {
        "batch_norm_stats"
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let moments = moments_of(inputs[0])?;
        let mut rows: Vec<f64> = moments.iter().map(|s| s.0).collect();
        rows.extend(moments.iter().map(|s| 1.0 / (s.1 + self.eps).sqrt()));
        rows.extend(moments.iter().map(|s| s.1));
        Tensor::from_vec(rows, &[3, moments.len()])
    }

    fn backward<G: GradOps>(&self, inputs: &[&G], _output: &G, _grad: &G) -> Result<Vec<Option<G>>> {
        Ok(inputs.iter().map(|_| None).collect())
    }
}

impl Tensor {
    /// Training-mode batch normalisation of `[N, C, ...]` with batch statistics (biased
    /// variance), then `* weight + bias` (both `[C]`). Returns the output; the statistics are
    /// [`Tensor::batch_norm_stats`].
    ///
    /// ```
    /// use shendu_core::{DType, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 5.0, 7.0], &[2, 2]).unwrap();
    /// let (w, b) = (Tensor::ones(&[2], DType::F64).unwrap(), Tensor::zeros(&[2], DType::F64).unwrap());
    /// let y = x.batch_norm_train(&w, &b, 0.0).unwrap();
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![-1.0, -1.0, 1.0, 1.0]);
    /// ```
    pub fn batch_norm_train(&self, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
        Ok(self.batch_norm_train_with_stats(weight, bias, eps)?.0)
    }

    /// [`Tensor::batch_norm_train`] that also returns the batch mean and biased variance it
    /// normalised with (two `[C]` f64 tensors, no autograd), so a layer updates its running
    /// statistics without another pass over the input.
    pub fn batch_norm_train_with_stats(&self, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<(Tensor, Tensor, Tensor)> {
        let stats = apply(BatchNormStats { eps }, &[&self.detach()])?;
        let y = apply(BatchNormTrain { eps }, &[self, weight, bias, &stats])?;
        let c = stats.dims()[1];
        Ok((y, stats.narrow(0, 0, 1)?.reshape(c)?, stats.narrow(0, 2, 1)?.reshape(c)?))
    }

    /// The per-channel batch mean and biased variance of `[N, C, ...]`, as two `[C]` f64 tensors
    /// (no autograd): what BatchNorm folds into its running statistics.
    pub fn batch_norm_stats(&self) -> Result<(Tensor, Tensor)> {
        let moments = moments_of(self)?;
        let c = moments.len();
        let (mean, var): (Vec<f64>, Vec<f64>) = moments.into_iter().unzip();
        Ok((Tensor::from_vec(mean, &[c])?, Tensor::from_vec(var, &[c])?))
    }
}
