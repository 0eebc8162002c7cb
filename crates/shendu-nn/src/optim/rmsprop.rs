//! RMSprop, plain, with momentum, or centered.

use shendu_core::Tensor;

use super::state::{Elem, Rule, Slots};
use super::{check_nonneg, check_unit, lerp, Optimizer};
use crate::{Error, Param, Result};

/// Options of [`RmsProp`] (PyTorch's `torch.optim.RMSprop` arguments and defaults).
#[derive(Clone, Debug)]
pub struct RmsPropConfig {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average, in [0, 1].
    pub alpha: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
    /// L2 penalty added to the gradient: `g + wd * p`.
    pub weight_decay: f64,
    /// In [0, 1); 0 applies the scaled gradient directly.
    pub momentum: f64,
    /// Divides by the estimated variance (`E[g^2] - E[g]^2`) instead of `E[g^2]`.
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig { lr: 1e-2, alpha: 0.99, eps: 1e-8, weight_decay: 0.0, momentum: 0.0, centered: false }
    }
}

impl RmsPropConfig {
    fn validate(&self) -> Result<()> {
        check_nonneg("lr", self.lr)?;
        check_nonneg("eps", self.eps)?;
        check_nonneg("weight_decay", self.weight_decay)?;
        check_unit("momentum", self.momentum)?;
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::config("alpha", format!("must be in [0, 1], got {}", self.alpha)));
        }
        Ok(())
    }

    fn kinds(&self) -> Vec<&'static str> {
        let mut k = vec!["square_avg"];
        if self.momentum > 0.0 {
            k.push("momentum_buffer");
        }
        if self.centered {
            k.push("grad_avg");
        }
        k
    }
}

impl Rule for RmsPropConfig {
    fn apply<T: Elem>(&self, _step: u64, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
        let c = T::from_f64;
        let (alpha, w, eps, wd, mu, neg_lr) =
            (c(self.alpha), c(1.0 - self.alpha), c(self.eps), c(self.weight_decay), c(self.momentum), c(-self.lr));
        let decay = self.weight_decay != 0.0;
        let Some((sq, rest)) = bufs.split_first_mut() else { return };
        let (buf, gavg): (Option<&mut [T]>, Option<&mut [T]>) = match (rest, self.momentum > 0.0) {
            ([a, b], _) => (Some(&mut **a), Some(&mut **b)),
            ([a], true) => (Some(&mut **a), None),
            ([a], false) => (None, Some(&mut **a)),
            _ => (None, None),
        };
        // Equal lengths up front let the compiler drop the bounds checks in the loop.
        let n = p.len();
        let (g, sq) = (&g[..n], &mut sq[..n]);
        let mut buf = buf.map(|s| &mut s[..n]);
        let mut gavg = gavg.map(|s| &mut s[..n]);
        for i in 0..n {
            let gi = if decay { g[i] + wd * p[i] } else { g[i] };
            let s = sq[i] * alpha + w * gi * gi;
            sq[i] = s;
            let avg = match gavg.as_deref_mut() {
                Some(ga) => {
                    let a = lerp(ga[i], gi, 1.0 - self.alpha);
                    ga[i] = a;
                    (s + -a * a).sqrt()
                }
                None => s.sqrt(),
            } + eps;
            p[i] = match buf.as_deref_mut() {
                Some(b) => {
                    let bi = b[i] * mu + gi / avg;
                    b[i] = bi;
                    p[i] + neg_lr * bi
                }
                None => p[i] + neg_lr * gi / avg,
            };
        }
    }
}

/// RMSprop with PyTorch's update: `g += wd p`; `s = alpha s + (1 - alpha) g^2`; centered:
/// `a = lerp(a, g, 1 - alpha)`, `avg = sqrt(s - a^2) + eps`, else `avg = sqrt(s) + eps`; with
/// momentum `b = mu b + g / avg`, `p -= lr b`, else `p -= lr g / avg`.
pub struct RmsProp {
    cfg: RmsPropConfig,
    slots: Slots,
}

impl RmsProp {
    /// An optimizer over `params` (usually `module.trainable_params()`); errors name the bad option.
    pub fn new(params: Vec<(String, Param)>, cfg: RmsPropConfig) -> Result<RmsProp> {
        cfg.validate()?;
        Ok(RmsProp { slots: Slots::new("RMSprop", params, cfg.kinds())?, cfg })
    }

    /// The options (with the current learning rate).
    pub fn config(&self) -> &RmsPropConfig {
        &self.cfg
    }
}

slots_optimizer!(RmsProp, "RMSprop", rule: cfg, lr: cfg.lr);
