//! Batch normalisation. Training mode is one op: per-channel batch statistics, normalisation and
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
//!
//! An activation can ride along ([`BatchNormActivation`]): `batch_norm_act` writes `act(bn(x))`
//! in the normalisation's pass, and its backward gates the gradient inside batch norm's own two
//! passes (see `activation`). Eval mode with no gradient recorded is one pass as well
//! ([`BatchNormInfer`], through [`Tensor::batch_norm_eval`]).

mod activation;
mod passes;

pub use activation::BatchNormActivation;

use crate::autograd::{apply, GradExt, GradOps, Op};
use crate::dtype::{Float, WithDType};
use crate::{with_float, Error, Result, Tensor};
use activation::Gate;
use passes::{channel_affine, channel_moments, grad_sums, rows_per_channel, stats_of, Gated, Geo, PerChannel, Through};

/// `y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c` for `x` of shape `[N, C, ...]`,
/// with the batch mean and the biased batch variance of each channel `c` over every dim but 1.
/// Inputs: `[x, weight [C], bias [C]]`, optionally followed by the [`BatchNormStats`] of `x`.
/// With an activation other than [`BatchNormActivation::Identity`], the output is `act(y)`.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormTrain {
    pub eps: f64,
    pub act: BatchNormActivation,
}

/// `[x]` -> `[3, C]` f64: each channel's batch mean, `1/sqrt(var + eps)` and biased variance.
/// No gradient: batch norm's backward rule already differentiates through the statistics.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormStats {
    pub eps: f64,
}

/// `[x, grad]` (optionally followed by the statistics) -> `[2, C]`: row 0 is sum(grad * xhat)
/// (the weight's gradient), row 1 sum(grad) (the bias's).
///
/// With an activation, `grad` is the gradient of `act(y)` and the sums are of it gated by the
/// activation's derivative; the inputs are then `[x, grad, statistics, weight, bias]`, from
/// which it recomputes the forward's `y`.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormParamGrad {
    pub eps: f64,
    pub act: BatchNormActivation,
}

/// `[x, weight, grad]` (optionally followed by the statistics, and then by the
/// [`BatchNormParamGrad`] of the same `x` and `grad`, whose sums it then reuses) -> the input's
/// gradient, through the batch statistics:
/// `w * invstd * (g - mean(g) - xhat * mean(g * xhat))`, means per channel.
///
/// With an activation, `g` is gated as in [`BatchNormParamGrad`] and the inputs are `[x,
/// weight, grad, statistics, sums, bias]`.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormInputGrad {
    pub eps: f64,
    pub act: BatchNormActivation,
}

/// Inference-mode batch norm, the statistics fixed: `[x, coefs [2, C] f64]` -> `act(a_c * x +
/// k_c)` in one pass, `a` and `k` the rows of `coefs`. No gradient: [`Tensor::batch_norm_eval`]
/// runs it only where no gradient is recorded, and the composed ops otherwise.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormInfer {
    pub act: BatchNormActivation,
}

/// `[N, C, rest]` as (n, c, plane) with plane = product of the rest (1 for `[N, C]`).
fn geometry(op: &'static str, x: &Tensor) -> Result<Geo> {
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

fn vec_f64(t: &Tensor) -> Result<Vec<f64>> {
    t.to_vec_f64()
}

/// The forward's per-channel `a, k` of `y = a * x + k` (`a = w * invstd`, `k = b - mean * a`),
/// rounded to `T` once: the forward applies them and the fused activation's backward recomputes
/// `y` from them, so both see the same values.
fn forward_coefs<T: Float>(stats: &PerChannel, wv: &[f64], bv: &[f64]) -> Vec<T> {
    stats
        .iter()
        .zip(wv.iter().zip(bv))
        .flat_map(|(&(mean, invstd), (&w, &b))| [invstd * w, b - mean * invstd * w])
        .map(T::from_f64)
        .collect()
}

/// What the activation's backward ops need besides `x` and `grad`, checked: the statistics
/// (already read from input `stats_at`) and the weight and bias at `w_at` and `b_at`.
struct ActInputs {
    stats: PerChannel,
    weight: Vec<f64>,
    bias: Vec<f64>,
}

impl ActInputs {
    fn read(
        op: &'static str,
        inputs: &[&Tensor],
        stats: Option<&Vec<f64>>,
        c: usize,
        (stats_at, w_at, b_at): (usize, usize, usize),
    ) -> Result<ActInputs> {
        let missing = || {
            Error::autograd(
                op,
                format!(
                    "with an activation it needs the statistics, weight and bias (inputs {stats_at}, {w_at}, {b_at}); got {} inputs",
                    inputs.len()
                ),
            )
        };
        let stats = rows_per_channel(stats.ok_or_else(missing)?, c);
        let (w, b) = (inputs.get(w_at).ok_or_else(missing)?, inputs.get(b_at).ok_or_else(missing)?);
        check_channel_vec(op, "weight", w, c)?;
        check_channel_vec(op, "bias", b, c)?;
        Ok(ActInputs { stats, weight: vec_f64(w)?, bias: vec_f64(b)? })
    }

    /// The forward's `a, k` per channel (see [`forward_coefs`]).
    fn z_coefs<T: Float>(&self) -> Vec<T> {
        forward_coefs(&self.stats, &self.weight, &self.bias)
    }
}

impl Op for BatchNormTrain {
    fn name(&self) -> &'static str {
        match self.act {
            BatchNormActivation::Identity => "batch_norm",
            BatchNormActivation::Relu => "batch_norm_relu",
            BatchNormActivation::Relu6 => "batch_norm_relu6",
            BatchNormActivation::Leaky(_) => "batch_norm_leaky_relu",
        }
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let op = self.name();
        let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
        let geo = geometry(op, x)?;
        check_channel_vec(op, "weight", w, geo.1)?;
        check_channel_vec(op, "bias", b, geo.1)?;
        let (wv, bv) = (vec_f64(w)?, vec_f64(b)?);
        let given = given_stats(op, inputs.get(3), geo.1)?;
        let x = x.contiguous()?;
        with_float!(x.dtype(), op, |T| {
            let out = x.with_contiguous(op, |s: &[T]| {
                let stats = stats_of(given.as_ref(), s, geo, self.eps);
                let ak = forward_coefs::<T>(&stats, &wv, &bv);
                let coefs: Vec<T> = ak.chunks(2).flat_map(|ak| [ak[0], T::ZERO, ak[1]]).collect();
                let through = if self.act.is_identity() { Through::Plain } else { Through::Activation(Gate::of(self.act)) };
                channel_affine(s, None, &coefs, through, geo)
            })?;
            Ok(Tensor::from_pooled(out, x.shape().clone()))
        })
    }

    fn backward<G: GradOps>(&self, inputs: &[&G], _output: &G, grad: &G) -> Result<Vec<Option<G>>> {
        let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
        // Both gradient ops read `grad` whole; a strided one (ShuffleNet's branches receive
        // channel slices of a concatenation's gradient) is copied once here, not in each.
        let grad = &grad.g_contiguous()?;
        let (eps, act) = (self.eps, self.act);
        let given = inputs.get(3).copied();
        // The activation's backward recomputes the forward's output from the statistics.
        let computed = match given {
            None if !act.is_identity() => Some(G::apply(BatchNormStats { eps }, &[x])?),
            _ => None,
        };
        let stats = given.or(computed.as_ref());
        // The parameter gradients first: they are the two sums the input's gradient needs, so
        // passing them along saves that op a pass over `x` and `grad`.
        let gated = !act.is_identity();
        let both = if w.needs_grad() || b.needs_grad() || (gated && x.needs_grad()) {
            let ins: Vec<&G> =
                if gated { vec![x, grad, stats.expect("set above"), w, b] } else { [x, grad].into_iter().chain(stats).collect() };
            Some(G::apply(BatchNormParamGrad { eps, act }, &ins)?)
        } else {
            None
        };
        let gx = if x.needs_grad() {
            let sums = stats.and(both.as_ref());
            let mut ins: Vec<&G> = [x, w, grad].into_iter().chain(stats).chain(sums).collect();
            if gated {
                ins.push(b);
            }
            Some(G::apply(BatchNormInputGrad { eps, act }, &ins)?)
        } else {
            None
        };
        let (gw, gb) = match &both {
            Some(both) if w.needs_grad() || b.needs_grad() => {
                (Some(both.g_narrow(0, 0, 1)?.g_reshape_like(w)?), Some(both.g_narrow(0, 1, 1)?.g_reshape_like(b)?))
            }
            _ => (None, None),
        };
        // The statistics are a constant of the rule (it differentiates through them itself).
        Ok(if given.is_some() { vec![gx, gw, gb, None] } else { vec![gx, gw, gb] })
    }
}

fn second_order(op: &'static str) -> Result<Vec<Option<impl Sized>>> {
    Err::<Vec<Option<()>>, _>(Error::autograd(op, "second-order gradient of batch_norm is not implemented"))
}

impl Op for BatchNormParamGrad {
    fn name(&self) -> &'static str {
        "batch_norm_param_grad"
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        const OP: &str = "batch_norm_param_grad";
        let (x, g) = (inputs[0].contiguous()?, inputs[1].contiguous()?);
        let geo = geometry(OP, &x)?;
        let given = given_stats(OP, inputs.get(2), geo.1)?;
        let act = if self.act.is_identity() { None } else { Some(ActInputs::read(OP, inputs, given.as_ref(), geo.1, (2, 3, 4))?) };
        with_float!(x.dtype(), OP, |T| {
            let z: Vec<T> = act.as_ref().map(|a| a.z_coefs()).unwrap_or_default();
            let gated = act.is_some().then(|| Gated { z: &z, gate: Gate::of(self.act) });
            let sums = x.with_contiguous(OP, |xs: &[T]| {
                g.with_contiguous(OP, |gs: &[T]| grad_sums(xs, gs, geo, self.eps, given.as_ref(), gated).1)
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
        const OP: &str = "batch_norm_input_grad";
        let (x, w, g) = (inputs[0].contiguous()?, inputs[1], inputs[2].contiguous()?);
        let geo = geometry(OP, &x)?;
        let wv = vec_f64(w)?;
        let given = given_stats(OP, inputs.get(3), geo.1)?;
        let given_sums = given_rows(OP, "gradient sums", inputs.get(4), 2, geo.1)?;
        let act = if self.act.is_identity() { None } else { Some(ActInputs::read(OP, inputs, given.as_ref(), geo.1, (3, 1, 5))?) };
        if act.is_some() && given_sums.is_none() {
            return Err(Error::autograd(OP, "with an activation it needs the gated gradient sums (input 4)"));
        }
        let m = (geo.0 * geo.2) as f64;
        with_float!(x.dtype(), OP, |T| {
            let z: Vec<T> = act.as_ref().map(|a| a.z_coefs()).unwrap_or_default();
            let through = if act.is_some() { Through::Gradient(Gated { z: &z, gate: Gate::of(self.act) }) } else { Through::Plain };
            let out = x.with_contiguous(OP, |xs: &[T]| {
                g.with_contiguous(OP, |gs: &[T]| {
                    let (stats, sums) = match &given_sums {
                        Some(v) => (stats_of(given.as_ref(), xs, geo, self.eps), rows_per_channel(v, geo.1)),
                        None => grad_sums(xs, gs, geo, self.eps, given.as_ref(), None),
                    };
                    // dx = k * (g - sum_g/m - xhat * sum_gxhat/m), xhat = (x - mean) * invstd:
                    // per channel, a * g + b * x + c.
                    let coefs: Vec<T> = (0..geo.1)
                        .flat_map(|ch| {
                            let ((mean, invstd), (sum_gxhat, sum_g)) = (stats[ch], sums[ch]);
                            let k = wv[ch] * invstd;
                            let b = -k * invstd * sum_gxhat / m;
                            [k, b, -k * sum_g / m - b * mean]
                        })
                        .map(T::from_f64)
                        .collect();
                    channel_affine(gs, Some(xs), &coefs, through, geo)
                })
            })??;
            Ok(Tensor::from_pooled(out, x.shape().clone()))
        })
    }

    fn backward<G: GradOps>(&self, _inputs: &[&G], _output: &G, _grad: &G) -> Result<Vec<Option<G>>> {
        second_order("batch_norm_input_grad").map(|_| vec![])
    }
}

impl Op for BatchNormInfer {
    fn name(&self) -> &'static str {
        "batch_norm_infer"
    }

    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        const OP: &str = "batch_norm_infer";
        let x = inputs[0].contiguous()?;
        let d = x.dims();
        if d.len() < 2 {
            return Err(Error::shape(OP, format!("input {} needs [N, C, ...]", x.shape())));
        }
        let geo = (d[0], d[1], d[2..].iter().product());
        let missing = || Error::autograd(OP, "needs the per-channel coefficients [2, C] as input 1");
        let ak = given_rows(OP, "coefficients", inputs.get(1), 2, geo.1)?.ok_or_else(missing)?;
        with_float!(x.dtype(), OP, |T| {
            let c = geo.1;
            let coefs: Vec<T> = (0..c).flat_map(|ch| [ak[ch], 0.0, ak[c + ch]]).map(T::from_f64).collect();
            let through = if self.act.is_identity() { Through::Plain } else { Through::Activation(Gate::of(self.act)) };
            let out = x.with_contiguous(OP, |s: &[T]| channel_affine(s, None, &coefs, through, geo))?;
            Ok(Tensor::from_pooled(out, x.shape().clone()))
        })
    }

    fn backward<G: GradOps>(&self, _inputs: &[&G], _output: &G, _grad: &G) -> Result<Vec<Option<G>>> {
        Err(Error::autograd("batch_norm_infer", "has no gradient: Tensor::batch_norm_eval records the composed ops when one is needed"))
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
        self.batch_norm_act_with_stats(weight, bias, eps, BatchNormActivation::Identity)
    }

    /// `act(batch_norm_train(x))` in batch norm's own passes: the same values and gradients
    /// as [`Tensor::batch_norm_train`] followed by the standalone activation, with one pass
    /// fewer forward and one fewer backward, and no buffer for the pre-activation output.
    ///
    /// ```
    /// use shendu_core::{BatchNormActivation, DType, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f64, 3.0, 5.0, 7.0], &[2, 2]).unwrap();
    /// let (w, b) = (Tensor::ones(&[2], DType::F64).unwrap(), Tensor::zeros(&[2], DType::F64).unwrap());
    /// let y = x.batch_norm_act(&w, &b, 0.0, BatchNormActivation::Relu).unwrap();
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![0.0, 0.0, 1.0, 1.0]);
    /// ```
    pub fn batch_norm_act(&self, weight: &Tensor, bias: &Tensor, eps: f64, act: BatchNormActivation) -> Result<Tensor> {
        Ok(self.batch_norm_act_with_stats(weight, bias, eps, act)?.0)
    }

    /// [`Tensor::batch_norm_act`] that also returns the batch mean and biased variance, as
    /// [`Tensor::batch_norm_train_with_stats`] does.
    pub fn batch_norm_act_with_stats(
        &self,
        weight: &Tensor,
        bias: &Tensor,
        eps: f64,
        act: BatchNormActivation,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let stats = apply(BatchNormStats { eps }, &[&self.detach()])?;
        let y = apply(BatchNormTrain { eps, act }, &[self, weight, bias, &stats])?;
        let c = stats.dims()[1];
        Ok((y, stats.narrow(0, 0, 1)?.reshape(c)?, stats.narrow(0, 2, 1)?.reshape(c)?))
    }

    /// Inference-mode batch normalisation with fixed statistics, then `act`:
    /// `act((x - mean) / sqrt(var + eps) * weight + bias)`, every vector `[C]` (channels at dim
    /// 1). Where no gradient is recorded (eval under `no_grad`, or nothing requires one) it is one
    /// pass over an f32 or f64 `x`; otherwise (and for half types) it runs the composed ops, so
    /// gradients reach `x`, the weight and the bias with the statistics held constant (PyTorch's
    /// eval-mode BatchNorm).
    ///
    /// ```
    /// use shendu_core::{BatchNormActivation, DType, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f64, -3.0, 5.0, 7.0], &[2, 2]).unwrap();
    /// let ones = Tensor::ones(&[2], DType::F64).unwrap();
    /// let zeros = Tensor::zeros(&[2], DType::F64).unwrap();
    /// let y = x.batch_norm_eval(&ones, &zeros, &zeros, &ones, 0.0, BatchNormActivation::Relu).unwrap();
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![1.0, 0.0, 5.0, 7.0]);
    /// ```
    pub fn batch_norm_eval(
        &self,
        weight: &Tensor,
        bias: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        eps: f64,
        act: BatchNormActivation,
    ) -> Result<Tensor> {
        const OP: &str = "batch_norm_eval";
        let d = self.dims();
        if d.len() < 2 {
            return Err(Error::shape(OP, format!("input {} needs [N, C, ...]", self.shape())));
        }
        let c = d[1];
        for (what, t) in [("weight", weight), ("bias", bias), ("running mean", running_mean), ("running variance", running_var)] {
            check_channel_vec(OP, what, t, c)?;
        }
        let all = [self, weight, bias, running_mean, running_var];
        let records = crate::autograd::is_grad_enabled() && all.iter().any(|t| t.requires_grad());
        if records || !matches!(self.dtype(), crate::DType::F32 | crate::DType::F64) {
            let mut bshape = vec![1usize; d.len()];
            bshape[1] = c;
            let scale = running_var.add_scalar(eps)?.rsqrt()?.mul(weight)?;
            let shift = bias.sub(&running_mean.mul(&scale)?)?;
            let y = self.mul(&scale.reshape(bshape.clone())?)?.add(&shift.reshape(bshape)?)?;
            return act.apply(&y);
        }
        let (w, b, mean, var) = (vec_f64(weight)?, vec_f64(bias)?, vec_f64(running_mean)?, vec_f64(running_var)?);
        let a: Vec<f64> = (0..c).map(|ch| w[ch] / (var[ch] + eps).sqrt()).collect();
        let k: Vec<f64> = (0..c).map(|ch| b[ch] - mean[ch] * a[ch]).collect();
        let coefs = Tensor::from_vec([a, k].concat(), &[2, c])?;
        apply(BatchNormInfer { act }, &[self, &coefs])
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
