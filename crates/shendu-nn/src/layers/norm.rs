//! Batch normalisation: `BatchNorm1d` (`[N, C]` or `[N, C, L]`) and `BatchNorm2d`
//! (`[N, C, H, W]`), with PyTorch's parameters, buffers and update rule.
//!
//! Train mode normalises with the batch mean and the biased batch variance, and moves the
//! running statistics towards the batch's (`running = (1 - momentum) * running + momentum *
//! batch`, the variance unbiased, as PyTorch). Eval mode uses the running statistics. Without
//! `track_running_stats` there are no buffers and both modes use batch statistics.

use shendu_core::{BatchNormActivation, DType, Tensor};

use crate::{join_name, Error, Mode, Module, Param, Result};

/// The settings of a batch norm: PyTorch's defaults are eps 1e-5, momentum 0.1, affine and
/// tracked running statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Channels (dim 1 of the input).
    pub num_features: usize,
    /// Added to the variance before the square root.
    pub eps: f64,
    /// Weight of the newest batch in the running statistics; `None` is PyTorch's
    /// `momentum=None`, a cumulative average (1 / num_batches_tracked).
    pub momentum: Option<f64>,
    /// Learn a per-channel scale `weight` and shift `bias`.
    pub affine: bool,
    /// Keep `running_mean`, `running_var` and `num_batches_tracked` buffers for eval mode.
    pub track_running_stats: bool,
}

impl BatchNormConfig {
    /// PyTorch's defaults for `num_features` channels.
    pub fn new(num_features: usize) -> BatchNormConfig {
        BatchNormConfig { num_features, eps: 1e-5, momentum: Some(0.1), affine: true, track_running_stats: true }
    }
    /// Added to the variance before the square root.
    pub fn eps(self, eps: f64) -> Self {
        BatchNormConfig { eps, ..self }
    }
    /// Weight of the newest batch; `None` is a cumulative average.
    pub fn momentum(self, momentum: Option<f64>) -> Self {
        BatchNormConfig { momentum, ..self }
    }
    /// Whether to learn a per-channel scale and shift.
    pub fn affine(self, affine: bool) -> Self {
        BatchNormConfig { affine, ..self }
    }
    /// Whether to keep running statistics for eval mode.
    pub fn track_running_stats(self, track: bool) -> Self {
        BatchNormConfig { track_running_stats: track, ..self }
    }

    /// A `BatchNorm1d` with these settings.
    pub fn build_1d(self, dtype: DType) -> Result<BatchNorm1d> {
        Ok(BatchNorm1d(BatchNorm::new(self, dtype, "BatchNorm1d")?))
    }

    /// A `BatchNorm2d` with these settings.
    pub fn build_2d(self, dtype: DType) -> Result<BatchNorm2d> {
        Ok(BatchNorm2d(BatchNorm::new(self, dtype, "BatchNorm2d")?))
    }
}

/// The running statistics buffers.
pub struct RunningStats {
    /// `[C]`, starts at 0.
    pub mean: Param,
    /// `[C]`, starts at 1.
    pub var: Param,
    /// i64 scalar: the number of train-mode batches seen.
    pub num_batches_tracked: Param,
}

/// What both batch norms share; the public types differ only in the input ranks they accept.
pub struct BatchNorm {
    /// `[C]` scale, starts at 1 (None without `affine`).
    pub weight: Option<Param>,
    /// `[C]` shift, starts at 0 (None without `affine`).
    pub bias: Option<Param>,
    /// None without `track_running_stats`.
    pub running: Option<RunningStats>,
    config: BatchNormConfig,
    name: &'static str,
}

impl BatchNorm {
    fn new(config: BatchNormConfig, dtype: DType, name: &'static str) -> Result<BatchNorm> {
        let c = config.num_features;
        if c == 0 {
            return Err(Error::layer(name, "num_features must be at least 1"));
        }
        if !(config.eps > 0.0 && config.eps.is_finite()) {
            return Err(Error::layer(name, format!("eps {} must be positive and finite", config.eps)));
        }
        if let Some(m) = config.momentum {
            if !(0.0..=1.0).contains(&m) {
                return Err(Error::layer(name, format!("momentum {m} must be in [0, 1]")));
            }
        }
        if !dtype.is_float() {
            return Err(Error::layer(name, format!("dtype {dtype} must be a float dtype")));
        }
        let (weight, bias) = if config.affine {
            (Some(Param::new(Tensor::ones(&[c], dtype)?)), Some(Param::new(Tensor::zeros(&[c], dtype)?)))
        } else {
            (None, None)
        };
        let running = if config.track_running_stats {
            Some(RunningStats {
                mean: Param::buffer(Tensor::zeros(&[c], dtype)?),
                var: Param::buffer(Tensor::ones(&[c], dtype)?),
                num_batches_tracked: Param::buffer(Tensor::scalar(0i64)),
            })
        } else {
            None
        };
        Ok(BatchNorm { weight, bias, running, config, name })
    }

    /// The settings it was built with.
    pub fn config(&self) -> &BatchNormConfig {
        &self.config
    }

    /// `act` of `x` (channels at dim 1, `dims` the reduced dims) normalised; updates the running
    /// stats in train mode. For f32 and f64 the activation runs inside batch norm's own passes
    /// (train mode, and eval mode where no gradient is recorded); for half types it is its own op
    /// after the composed batch norm.
    fn forward_dims(&self, x: &Tensor, dims: &[usize], mode: Mode, act: BatchNormActivation) -> Result<Tensor> {
        let float = matches!(x.dtype(), DType::F32 | DType::F64);
        let running = if mode.is_train() { None } else { self.running.as_ref() };
        if let (Some(r), true) = (running, float) {
            // Eval: one pass with the running statistics where no gradient is recorded.
            let (w, b) = self.weight_and_bias(x.dtype())?;
            return Ok(x.batch_norm_eval(&w, &b, &r.mean.value(), &r.var.value(), self.config.eps, act)?);
        }
        if !float {
            return Ok(act.apply(&self.forward_dims_plain(x, dims, mode)?)?);
        }
        let n: usize = dims.iter().map(|&d| x.dims()[d]).product();
        if mode.is_train() && n <= 1 {
            return Err(Error::layer(self.name, format!("input {} has {n} value per channel; training needs more than 1", x.shape())));
        }
        self.forward_fused(x, n, mode, act)
    }

    /// Batch norm without an activation, in composed ops: for the half types, which the fused
    /// ops lack.
    fn forward_dims_plain(&self, x: &Tensor, dims: &[usize], mode: Mode) -> Result<Tensor> {
        // `[1, C, 1, ...]`: per-channel values broadcast against x.
        let mut bshape = vec![1usize; x.rank()];
        bshape[1] = self.config.num_features;
        let running = if mode.is_train() { None } else { self.running.as_ref() };
        let (scale, shift, xc) = if let Some(r) = running {
            // Eval folds the statistics into one scale and shift per channel.
            let inv_std = r.var.value().add_scalar(self.config.eps)?.rsqrt()?;
            let shift = r.mean.value().mul(&inv_std)?.neg()?;
            (inv_std.reshape(bshape.clone())?, Some(shift.reshape(bshape.clone())?), x.clone())
        } else {
            let n: usize = dims.iter().map(|&d| x.dims()[d]).product();
            if mode.is_train() && n <= 1 {
                return Err(Error::layer(self.name, format!("input {} has {n} value per channel; training needs more than 1", x.shape())));
            }
            let mean = x.mean(dims, true)?;
            let xc = x.sub(&mean)?;
            let var = xc.sqr()?.mean(dims, true)?;
            if mode.is_train() {
                self.update_running(&mean, &var, n)?;
            }
            let inv_std = var.add_scalar(self.config.eps)?.rsqrt()?;
            (inv_std, None, xc)
        };
        let scale = match &self.weight {
            Some(w) => scale.mul(&w.tensor().reshape(bshape.clone())?)?,
            None => scale,
        };
        let shift = match (&self.weight, shift) {
            (Some(w), Some(s)) => Some(s.mul(&w.tensor().reshape(bshape.clone())?)?),
            (_, s) => s,
        };
        let mut y = xc.mul(&scale)?;
        if let Some(s) = shift {
            y = y.add(&s)?;
        }
        if let Some(b) = &self.bias {
            y = y.add(&b.tensor().reshape(bshape)?)?;
        }
        Ok(y)
    }

    /// Batch statistics through core's fused `batch_norm_train` (two passes forward, three
    /// backward, instead of about ten of each for the composed form above); the running
    /// statistics come from the same statistics pass.
    fn forward_fused(&self, x: &Tensor, n: usize, mode: Mode, act: BatchNormActivation) -> Result<Tensor> {
        let (w, b) = self.weight_and_bias(x.dtype())?;
        let (y, mean, var) = x.batch_norm_act_with_stats(&w, &b, self.config.eps, act)?;
        if mode.is_train() && self.running.is_some() {
            self.update_running(&mean, &var, n)?;
        }
        Ok(y)
    }

    /// The affine parameters, or ones and zeros without them.
    fn weight_and_bias(&self, dtype: DType) -> Result<(Tensor, Tensor)> {
        let c = self.config.num_features;
        let w = match &self.weight {
            Some(w) => w.tensor(),
            None => Tensor::ones(&[c], dtype)?,
        };
        let b = match &self.bias {
            Some(b) => b.tensor(),
            None => Tensor::zeros(&[c], dtype)?,
        };
        Ok((w, b))
    }

    /// Moves the running statistics towards the batch's, outside autograd.
    fn update_running(&self, mean: &Tensor, var: &Tensor, n: usize) -> Result<()> {
        let Some(r) = &self.running else { return Ok(()) };
        let _g = shendu_core::no_grad();
        let c = self.config.num_features;
        let count = r.num_batches_tracked.value().to_scalar::<i64>()? + 1;
        r.num_batches_tracked.set(&Tensor::scalar(count))?;
        let m = self.config.momentum.unwrap_or(1.0 / count as f64);
        let mean = mean.detach().reshape(c)?.to_dtype(r.mean.dtype())?;
        // PyTorch tracks the unbiased variance but normalises with the biased one.
        let var = var.detach().reshape(c)?.mul_scalar(n as f64 / (n - 1) as f64)?.to_dtype(r.var.dtype())?;
        r.mean.set(&r.mean.value().mul_scalar(1.0 - m)?.add(&mean.mul_scalar(m)?)?)?;
        r.var.set(&r.var.value().mul_scalar(1.0 - m)?.add(&var.mul_scalar(m)?)?)?;
        Ok(())
    }

    fn check_channels(&self, x: &Tensor, layout: &str) -> Result<()> {
        let c = self.config.num_features;
        if x.dims()[1] != c {
            let w = match &self.weight {
                Some(w) => format!("weight {}", w.shape()),
                None => format!("num_features {c}"),
            };
            return Err(Error::layer(
                self.name,
                format!("input {} has {} channels but {w} expects {c} ({layout})", x.shape(), x.dims()[1]),
            ));
        }
        Ok(())
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        if let Some(w) = &self.weight {
            f(&join_name(prefix, "weight"), w);
        }
        if let Some(b) = &self.bias {
            f(&join_name(prefix, "bias"), b);
        }
        if let Some(r) = &self.running {
            f(&join_name(prefix, "running_mean"), &r.mean);
            f(&join_name(prefix, "running_var"), &r.var);
            f(&join_name(prefix, "num_batches_tracked"), &r.num_batches_tracked);
        }
    }
}

/// Batch norm over `[N, C]` or `[N, C, L]` (statistics per channel over N and L).
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::BatchNorm1d, Mode, Module, ModuleExt};
/// let bn = BatchNorm1d::new(3, DType::F32).unwrap();
/// let x = Tensor::randn(&[8, 3], DType::F32).unwrap();
/// assert_eq!(bn.forward(&x, Mode::Train).unwrap().dims(), &[8, 3]);
/// let names: Vec<String> = bn.named_params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
/// ```
pub struct BatchNorm1d(pub BatchNorm);

impl BatchNorm1d {
    /// PyTorch's defaults: eps 1e-5, momentum 0.1, affine, tracked statistics.
    pub fn new(num_features: usize, dtype: DType) -> Result<BatchNorm1d> {
        BatchNormConfig::new(num_features).build_1d(dtype)
    }
}

impl std::ops::Deref for BatchNorm1d {
    type Target = BatchNorm;
    fn deref(&self) -> &BatchNorm {
        &self.0
    }
}

impl BatchNorm1d {
    /// `act(self.forward(x))`, the activation inside batch norm's own passes (see
    /// [`BatchNorm2d::forward_act`]).
    pub fn forward_act(&self, x: &Tensor, mode: Mode, act: BatchNormActivation) -> Result<Tensor> {
        let dims: &[usize] = match x.rank() {
            2 => &[0],
            3 => &[0, 2],
            _ => {
                let c = self.0.config.num_features;
                return Err(Error::layer("BatchNorm1d", format!("input {} must be [N, {c}] or [N, {c}, L]", x.shape())));
            }
        };
        self.0.check_channels(x, "[N, C] or [N, C, L]")?;
        self.0.forward_dims(x, dims, mode, act)
    }
}

impl Module for BatchNorm1d {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward_act(x, mode, BatchNormActivation::Identity)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.0.visit(prefix, f)
    }

    fn type_name(&self) -> &'static str {
        "BatchNorm1d"
    }
}

/// Batch norm over `[N, C, H, W]` (statistics per channel over N, H and W).
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::BatchNorm2d, Mode, Module};
/// let bn = BatchNorm2d::new(4, DType::F32).unwrap();
/// let x = Tensor::randn(&[2, 4, 3, 3], DType::F32).unwrap();
/// bn.forward(&x, Mode::Train).unwrap();
/// assert_eq!(bn.running.as_ref().unwrap().num_batches_tracked.value().to_scalar::<i64>().unwrap(), 1);
/// ```
pub struct BatchNorm2d(pub BatchNorm);

impl BatchNorm2d {
    /// PyTorch's defaults: eps 1e-5, momentum 0.1, affine, tracked statistics.
    pub fn new(num_features: usize, dtype: DType) -> Result<BatchNorm2d> {
        BatchNormConfig::new(num_features).build_2d(dtype)
    }
}

impl std::ops::Deref for BatchNorm2d {
    type Target = BatchNorm;
    fn deref(&self) -> &BatchNorm {
        &self.0
    }
}

impl BatchNorm2d {
    /// `act(self.forward(x))`. For f32 and f64 the activation runs inside batch norm's own passes:
    /// `Tensor::batch_norm_act` in train mode (a pass over the output saved forward, and the
    /// gradient gated inside the backward passes) and `Tensor::batch_norm_eval` in eval mode
    /// (one pass where no gradient is recorded). For half types it is the standalone op after.
    pub fn forward_act(&self, x: &Tensor, mode: Mode, act: BatchNormActivation) -> Result<Tensor> {
        if x.rank() != 4 {
            let c = self.0.config.num_features;
            return Err(Error::layer("BatchNorm2d", format!("input {} must be [N, {c}, H, W]", x.shape())));
        }
        self.0.check_channels(x, "[N, C, H, W]")?;
        self.0.forward_dims(x, &[0, 2, 3], mode, act)
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward_act(x, mode, BatchNormActivation::Identity)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.0.visit(prefix, f)
    }

    fn type_name(&self) -> &'static str {
        "BatchNorm2d"
    }
}
