//! Classification losses: cross entropy, NLL, binary cross entropy (on probabilities and on
//! logits), KL divergence, and the accuracy helper.

use shendu_core::{DType, Error as CoreError, Tensor};

use super::{check_float, check_pair, Reduction};
use crate::{Error, Result};

/// Options of [`cross_entropy`] (PyTorch's `F.cross_entropy` keywords).
#[derive(Clone, Debug, Default)]
pub struct CrossEntropyOpts {
    /// A weight per class, shape `[C]`. With `Reduction::Mean` the loss is divided by the sum of
    /// the weights of the (non-ignored) targets, as PyTorch.
    pub weight: Option<Tensor>,
    /// Mixes the target with the uniform distribution: `(1 - s) * nll + s * mean_c(-log p_c)`.
    pub label_smoothing: f64,
    /// Targets equal to this contribute nothing (and do not count in the mean). PyTorch's
    /// default is -100; here `None` ignores nothing, so -100 is reported as out of range.
    pub ignore_index: Option<i64>,
    /// Mean (over target weights), sum, or one loss per target.
    pub reduction: Reduction,
}

/// Targets and per-row weights of a classification loss, read once on the host: the targets
/// must be validated anyway, and `[N]` values are cheap next to the `[N, C]` scores.
struct Rows {
    /// Targets with ignored ones replaced by 0, so that gather reads a valid class.
    index: Vec<i64>,
    /// `weight[target]` per row, 0 for ignored rows; `None` when every row weighs 1.
    weights: Option<Vec<f64>>,
    /// 1 per kept row and 0 per ignored one; `None` when no row is ignored.
    keep: Option<Vec<f64>>,
    /// The sum of the row weights (the divisor of the mean).
    total: f64,
    /// The shape of the unreduced loss (the targets' shape).
    out_dims: Vec<usize>,
}

/// Brings scores `[N, C, d...]` (or `[C]`) to `[M, C]` rows and checks the targets against them.
fn rows_of(
    loss: &'static str,
    scores: &Tensor,
    targets: &Tensor,
    weight: Option<&Tensor>,
    ignore_index: Option<i64>,
) -> Result<(Tensor, Rows)> {
    check_float(loss, "input", scores)?;
    if targets.dtype() != DType::I64 {
        return Err(CoreError::dtype(
            loss,
            format!("targets {} have dtype {}; class indices must be i64", targets.shape(), targets.dtype()),
        )
        .into());
    }
    let dims = scores.dims();
    let (rows, classes, out_dims) = match dims.len() {
        0 => return Err(CoreError::shape(loss, format!("input {} must have a class dimension", scores.shape())).into()),
        1 => (scores.unsqueeze(0)?, dims[0], vec![]),
        _ => {
            let c = dims[1];
            let mut out = vec![dims[0]];
            out.extend_from_slice(&dims[2..]);
            let r = if dims.len() == 2 {
                scores.clone()
            } else {
                // Classes last, then one row per (sample, position), in the targets' order.
                let mut perm = vec![0];
                perm.extend(2..dims.len());
                perm.push(1);
                let m = out.iter().product::<usize>();
                scores.permute(&perm)?.reshape(&[m, c])?
            };
            (r, c, out)
        }
    };
    if targets.dims() != out_dims.as_slice() {
        return Err(CoreError::shape(
            loss,
            format!("input {} expects targets of shape {:?} but they are {}", scores.shape(), out_dims, targets.shape()),
        )
        .into());
    }
    let class_weights = match weight {
        None => None,
        Some(w) => {
            if w.dims() != [classes] {
                return Err(CoreError::shape(loss, format!("weight {} must have shape [{classes}] (one per class)", w.shape())).into());
            }
            Some(w.to_vec_f64()?)
        }
    };
    let t = targets.to_vec::<i64>()?;
    let mut index = Vec::with_capacity(t.len());
    let mut weights = Vec::with_capacity(if class_weights.is_some() || ignore_index.is_some() { t.len() } else { 0 });
    let mut total = 0.0;
    let mut ignored_any = false;
    for (i, &v) in t.iter().enumerate() {
        if ignore_index == Some(v) {
            ignored_any = true;
            index.push(0);
            weights.push(0.0);
            continue;
        }
        if v < 0 || v as u64 >= classes as u64 {
            return Err(CoreError::index(loss, format!("target {v} (at position {i}) is out of range for {classes} classes")).into());
        }
        let w = class_weights.as_ref().map_or(1.0, |cw| cw[v as usize]);
        index.push(v);
        weights.push(w);
        total += w;
    }
    if classes == 0 && !index.is_empty() {
        return Err(CoreError::shape(loss, format!("input {} has no classes", scores.shape())).into());
    }
    let keep = ignored_any.then(|| t.iter().map(|&v| if ignore_index == Some(v) { 0.0 } else { 1.0 }).collect());
    let weights = (class_weights.is_some() || ignored_any).then_some(weights);
    Ok((rows, Rows { index, weights, keep, total, out_dims }))
}

/// `-log_probs[i, target_i] * w_i`, reduced; `logp` is `[M, C]`.
fn nll_rows(logp: &Tensor, rows: &Rows, reduction: Reduction) -> Result<Tensor> {
    let m = rows.index.len();
    let idx = Tensor::from_vec(rows.index.clone(), &[m, 1])?;
    let picked = logp.gather(1, &idx)?.reshape(&[m])?;
    let Some(w) = &rows.weights else {
        return Ok(match reduction {
            Reduction::Mean => picked.mean_all()?.neg()?,
            Reduction::Sum => picked.sum_all()?.neg()?,
            Reduction::None => picked.neg()?.reshape(rows.out_dims.as_slice())?,
        });
    };
    let w = Tensor::from_vec(w.clone(), &[m])?.to_dtype(logp.dtype())?;
    let per_row = picked.mul(&w)?.neg()?;
    Ok(match reduction {
        Reduction::Mean => per_row.sum_all()?.mul_scalar(1.0 / rows.total)?,
        Reduction::Sum => per_row.sum_all()?,
        Reduction::None => per_row.reshape(rows.out_dims.as_slice())?,
    })
}

/// Cross entropy of raw scores `logits` (`[N, C]`, `[N, C, d...]` or `[C]`) against class
/// indices `targets` (i64, `[N]`, `[N, d...]` or `[]`), computed from `log_softmax` as PyTorch's
/// `F.cross_entropy`, with class weights, label smoothing and an ignored index.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor, opts: &CrossEntropyOpts) -> Result<Tensor> {
    const LOSS: &str = "cross_entropy";
    let s = opts.label_smoothing;
    if !(0.0..=1.0).contains(&s) {
        return Err(Error::config("label_smoothing", format!("{LOSS}: label_smoothing must be in [0, 1], got {s}")));
    }
    let (scores, rows) = rows_of(LOSS, logits, targets, opts.weight.as_ref(), opts.ignore_index)?;
    let logp = scores.log_softmax(1)?;
    let nll = nll_rows(&logp, &rows, opts.reduction)?;
    if s == 0.0 {
        return Ok(nll);
    }
    // PyTorch: (1 - s) * nll + s / C * smooth, smooth = -sum_c w_c log p_c per row, ignored rows 0,
    // and the mean divides by the same total as the nll term.
    let classes = scores.dims()[1];
    let weighted = match &opts.weight {
        Some(w) => logp.mul(&w.to_dtype(logp.dtype())?.reshape(&[1, classes])?)?,
        None => logp.clone(),
    };
    let mut smooth = weighted.sum(&[1], false)?.neg()?;
    if let Some(keep) = &rows.keep {
        smooth = smooth.mul(&Tensor::from_vec(keep.clone(), &[keep.len()])?.to_dtype(logp.dtype())?)?;
    }
    let smooth = match opts.reduction {
        Reduction::Mean => smooth.sum_all()?.mul_scalar(1.0 / rows.total)?,
        Reduction::Sum => smooth.sum_all()?,
        Reduction::None => smooth.reshape(rows.out_dims.as_slice())?,
    };
    Ok(nll.mul_scalar(1.0 - s)?.add(&smooth.mul_scalar(s / classes as f64)?)?)
}

/// Negative log likelihood of `log_probs` (`[N, C]`, `[N, C, d...]` or `[C]`, e.g. from
/// `log_softmax`) at class indices `targets`, with optional class weights (PyTorch's `F.nll_loss`
/// without an ignored index).
pub fn nll_loss(log_probs: &Tensor, targets: &Tensor, weight: Option<&Tensor>, reduction: Reduction) -> Result<Tensor> {
    let (logp, rows) = rows_of("nll_loss", log_probs, targets, weight, None)?;
    nll_rows(&logp, &rows, reduction)
}

/// Brings an optional weight to `shape` by broadcasting, or says which shapes do not fit.
fn broadcast_weight(loss: &'static str, what: &str, w: &Tensor, like: &Tensor) -> Result<Tensor> {
    if w.dtype() != like.dtype() {
        return Err(CoreError::dtype(loss, format!("{what} has dtype {} but input has dtype {}", w.dtype(), like.dtype())).into());
    }
    w.broadcast_as(like.shape().clone())
        .map_err(|_| CoreError::shape(loss, format!("{what} {} does not broadcast to input {}", w.shape(), like.shape())).into())
}

/// Binary cross entropy of probabilities `probs` in [0, 1] against `targets` of the same shape:
/// `-w (y log p + (1 - y) log(1 - p))`, with the logs clamped at -100 as PyTorch. `weight`
/// broadcasts to the input.
pub fn binary_cross_entropy(probs: &Tensor, targets: &Tensor, weight: Option<&Tensor>, reduction: Reduction) -> Result<Tensor> {
    const LOSS: &str = "binary_cross_entropy";
    check_pair(LOSS, probs, targets)?;
    if probs.to_vec_f64()?.iter().any(|p| !(0.0..=1.0).contains(p)) {
        return Err(CoreError::invalid(LOSS, format!("all elements of input {} must be between 0 and 1", probs.shape())).into());
    }
    // log(max(p, e^-100)) equals PyTorch's max(log p, -100) but keeps the gradient finite at p = 0.
    let floor = (-100f64).exp();
    let log_p = probs.clamp(floor, f64::INFINITY)?.log()?;
    let log_q = probs.affine(-1.0, 1.0)?.clamp(floor, f64::INFINITY)?.log()?;
    let pos = targets.mul(&log_p)?;
    let neg = targets.affine(-1.0, 1.0)?.mul(&log_q)?;
    let mut l = pos.add(&neg)?.neg()?;
    if let Some(w) = weight {
        l = l.mul(&broadcast_weight(LOSS, "weight", w, probs)?)?;
    }
    reduction.apply(l)
}

/// Binary cross entropy of raw scores, `-(pw y log s(x) + (1 - y) log(1 - s(x)))` with `s` the
/// sigmoid, in the overflow-free form `(1 - y) x + (1 + (pw - 1) y) log(1 + e^-x)` with the
/// log-sum-exp shifted by `max(-x, 0)`. `pos_weight` (e.g. `[C]`) broadcasts to the input.
pub fn binary_cross_entropy_with_logits(
    logits: &Tensor,
    targets: &Tensor,
    pos_weight: Option<&Tensor>,
    reduction: Reduction,
) -> Result<Tensor> {
    const LOSS: &str = "binary_cross_entropy_with_logits";
    check_pair(LOSS, logits, targets)?;
    // m + log(e^-m + e^(-x-m)) is log(1 + e^-x) for any m; m = max(-x, 0) keeps both exponents
    // <= 0, and its gradient cancels exactly, so the kink of max at 0 does not leak into it.
    let m = logits.neg()?.relu()?;
    let softplus_neg = m.add(&m.neg()?.exp()?.add(&logits.neg()?.sub(&m)?.exp()?)?.log()?)?;
    let lin = targets.affine(-1.0, 1.0)?.mul(logits)?;
    let l = match pos_weight {
        Some(pw) => {
            let pw = broadcast_weight(LOSS, "pos_weight", pw, logits)?;
            let log_weight = pw.add_scalar(-1.0)?.mul(targets)?.add_scalar(1.0)?;
            lin.add(&log_weight.mul(&softplus_neg)?)?
        }
        None => lin.add(&softplus_neg)?,
    };
    reduction.apply(l)
}

/// Reductions of [`kl_div`]: PyTorch's `"mean"` (over all elements), `"batchmean"` (sum over
/// the batch size, the mathematically correct KL), `"sum"` and `"none"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KlReduction {
    /// The mean over all elements (PyTorch's default, not the true KL).
    #[default]
    Mean,
    /// The sum divided by the batch size (dim 0).
    BatchMean,
    /// The sum over all elements.
    Sum,
    /// The pointwise terms.
    None,
}

impl From<Reduction> for KlReduction {
    fn from(r: Reduction) -> KlReduction {
        match r {
            Reduction::Mean => KlReduction::Mean,
            Reduction::Sum => KlReduction::Sum,
            Reduction::None => KlReduction::None,
        }
    }
}

/// PyTorch's `F.kl_div(input, target)`: `input` holds log-probabilities, `target`
/// probabilities (or log-probabilities with `log_target`); pointwise `t (log t - input)`, 0
/// where `t` is 0.
pub fn kl_div(input: &Tensor, target: &Tensor, reduction: KlReduction, log_target: bool) -> Result<Tensor> {
    check_pair("kl_div", input, target)?;
    let pointwise = if log_target {
        target.exp()?.mul(&target.sub(input)?)?
    } else {
        // xlogy(t, t): log of 1 where t is 0, so 0 * log stays 0 (and so does its gradient).
        let positive = target.gt_scalar(0.0)?;
        let safe = positive.where_cond(target, &Tensor::ones(&[1], target.dtype())?)?;
        target.mul(&safe.log()?)?.sub(&target.mul(input)?)?
    };
    Ok(match reduction {
        KlReduction::Mean => pointwise.mean_all()?,
        KlReduction::Sum => pointwise.sum_all()?,
        KlReduction::None => pointwise,
        KlReduction::BatchMean => {
            let s = pointwise.sum_all()?;
            match input.dims().first() {
                Some(&n) => s.mul_scalar(1.0 / n as f64)?,
                None => s,
            }
        }
    })
}

/// The fraction of rows whose arg-max over classes (dim 1 of `[N, C, d...]`) equals the
/// target (i64 `[N, d...]`); 0 for an empty batch.
pub fn accuracy(logits: &Tensor, targets: &Tensor) -> Result<f64> {
    const OP: &str = "accuracy";
    if logits.rank() < 2 {
        return Err(CoreError::shape(OP, format!("logits {} must be [N, C, ...]", logits.shape())).into());
    }
    if targets.dtype() != DType::I64 {
        return Err(
            CoreError::dtype(OP, format!("targets {} have dtype {}; class indices must be i64", targets.shape(), targets.dtype())).into()
        );
    }
    let pred = logits.argmax(1, false)?;
    if pred.shape() != targets.shape() {
        return Err(CoreError::shape(
            OP,
            format!("logits {} expect targets of shape {} but they are {}", logits.shape(), pred.shape(), targets.shape()),
        )
        .into());
    }
    let (p, t) = (pred.to_vec::<i64>()?, targets.to_vec::<i64>()?);
    if p.is_empty() {
        return Ok(0.0);
    }
    Ok(p.iter().zip(&t).filter(|(a, b)| a == b).count() as f64 / p.len() as f64)
}
