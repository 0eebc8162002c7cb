//! Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay).

use shendu_core::Tensor;

use super::state::{Elem, Rule, Slots};
use super::{check_nonneg, lerp, Optimizer};
use crate::{Error, Param, Result};

/// Options of [`Adam`] (PyTorch's `torch.optim.Adam` arguments and defaults).
#[derive(Clone, Debug)]
pub struct AdamConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Decay rates of the first and second moment estimates, each in [0, 1).
    pub betas: (f64, f64),
    /// Added to the denominator for stability.
    pub eps: f64,
    /// L2 penalty added to the gradient before the moments: `g + wd * p`.
    pub weight_decay: f64,
    /// Divides by the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0, amsgrad: false }
    }
}

/// Options of [`AdamW`] (PyTorch's `torch.optim.AdamW`; the default weight decay is 0.01).
#[derive(Clone, Debug)]
pub struct AdamWConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Decay rates of the first and second moment estimates, each in [0, 1).
    pub betas: (f64, f64),
    /// Added to the denominator for stability.
    pub eps: f64,
    /// Decoupled decay: `p *= 1 - lr * wd` before the Adam step.
    pub weight_decay: f64,
    /// Divides by the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 1e-2, amsgrad: false }
    }
}

impl AdamConfig {
    fn validate(&self) -> Result<()> {
        check_nonneg("lr", self.lr)?;
        check_nonneg("eps", self.eps)?;
        check_nonneg("weight_decay", self.weight_decay)?;
        for (i, b) in [self.betas.0, self.betas.1].into_iter().enumerate() {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::config("betas", format!("beta{} must be in [0, 1), got {b}", i + 1)));
            }
        }
        Ok(())
    }
}

/// The Adam update, with the decay either added to the gradient or decoupled.
struct AdamRule {
    cfg: AdamConfig,
    decoupled: bool,
}

impl Rule for AdamRule {
    fn apply<T: Elem>(&self, step: u64, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
        let cfg = &self.cfg;
        let c = T::from_f64;
        let (b1, b2) = cfg.betas;
        // The scalar factors in f64, as PyTorch computes them in Python floats.
        let t = step as f64;
        let step_size = cfg.lr / (1.0 - b1.powf(t));
        let bc2_sqrt = (1.0 - b2.powf(t)).sqrt();
        let (w1, w2, b2t, eps, bc2, neg_step) = (1.0 - b1, c(1.0 - b2), c(b2), c(cfg.eps), c(bc2_sqrt), c(-step_size));
        let wd = c(cfg.weight_decay);
        let decay = cfg.weight_decay != 0.0;
        let shrink = c(1.0 - cfg.lr * cfg.weight_decay);
        let (m, rest) = match bufs {
            [m, rest @ ..] => (m, rest),
            [] => return,
        };
        let (v, vmax) = match rest {
            [v] => (v, None),
            [v, vmax] => (v, Some(vmax)),
            _ => return,
        };
        // Equal lengths up front let the compiler drop the bounds checks in the loop.
        let n = p.len();
        let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
        let mut vmax = vmax.map(|s| &mut s[..n]);
        for i in 0..n {
            let mut pi = p[i];
            let mut gi = g[i];
            if decay {
                if self.decoupled {
                    pi *= shrink;
                } else {
                    gi += wd * pi;
                }
            }
            let mi = lerp(m[i], gi, w1);
            let vi = v[i] * b2t + w2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            let second = match vmax.as_deref_mut() {
                Some(vmax) => {
                    let vm = if vmax[i] > vi { vmax[i] } else { vi };
                    vmax[i] = vm;
                    vm
                }
                None => vi,
            };
            let denom = second.sqrt() / bc2 + eps;
            p[i] = pi + neg_step * mi / denom;
        }
    }
}

fn kinds(amsgrad: bool) -> Vec<&'static str> {
    if amsgrad {
        vec!["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    } else {
        vec!["exp_avg", "exp_avg_sq"]
    }
}

/// Adam with PyTorch's update (`g += wd p`; `m = lerp(m, g, 1 - b1)`, `v = b2 v + (1 - b2) g^2`;
/// `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`).
pub struct Adam {
    rule: AdamRule,
    slots: Slots,
}

impl Adam {
    /// An optimizer over `params` (usually `module.trainable_params()`); errors name the bad option.
    pub fn new(params: Vec<(String, Param)>, cfg: AdamConfig) -> Result<Adam> {
        cfg.validate()?;
        Ok(Adam { slots: Slots::new("Adam", params, kinds(cfg.amsgrad))?, rule: AdamRule { cfg, decoupled: false } })
    }

    /// The options (with the current learning rate).
    pub fn config(&self) -> &AdamConfig {
        &self.rule.cfg
    }
}

/// AdamW: Adam with decoupled weight decay, `p *= 1 - lr * wd` before the Adam step (PyTorch's
/// `torch.optim.AdamW`).
pub struct AdamW {
    rule: AdamRule,
    slots: Slots,
}

impl AdamW {
    /// An optimizer over `params` (usually `module.trainable_params()`); errors name the bad option.
    pub fn new(params: Vec<(String, Param)>, cfg: AdamWConfig) -> Result<AdamW> {
        let cfg = AdamConfig { lr: cfg.lr, betas: cfg.betas, eps: cfg.eps, weight_decay: cfg.weight_decay, amsgrad: cfg.amsgrad };
        cfg.validate()?;
        Ok(AdamW { slots: Slots::new("AdamW", params, kinds(cfg.amsgrad))?, rule: AdamRule { cfg, decoupled: true } })
    }
}

slots_optimizer!(Adam, "Adam", rule: rule, lr: rule.cfg.lr);
slots_optimizer!(AdamW, "AdamW", rule: rule, lr: rule.cfg.lr);
