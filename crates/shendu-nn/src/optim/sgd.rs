//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

use shendu_core::Tensor;

use super::state::{Elem, Rule, Slots};
use super::{check_nonneg, check_unit, Optimizer};
use crate::{Error, Param, Result};

/// Options of [`Sgd`] (PyTorch's `torch.optim.SGD` arguments; default lr 0.01).
#[derive(Clone, Debug)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// In [0, 1); 0 disables the momentum buffer.
    pub momentum: f64,
    /// Scales the new gradient into the buffer by `1 - dampening` (after the first step).
    pub dampening: f64,
    /// Nesterov momentum (needs momentum > 0 and no dampening).
    pub nesterov: bool,
    /// L2 penalty added to the gradient: `g + wd * p`.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 0.01, momentum: 0.0, dampening: 0.0, nesterov: false, weight_decay: 0.0 }
    }
}

impl SgdConfig {
    fn validate(&self) -> Result<()> {
        check_nonneg("lr", self.lr)?;
        check_unit("momentum", self.momentum)?;
        if !(0.0..=1.0).contains(&self.dampening) {
            return Err(Error::config("dampening", format!("must be in [0, 1], got {}", self.dampening)));
        }
        check_nonneg("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(Error::config("nesterov", "Nesterov momentum needs momentum > 0 and dampening 0"));
        }
        Ok(())
    }
}

/// SGD with PyTorch's update: `g += wd p`; with momentum `b = g` on the first step, then
/// `b = mu b + (1 - dampening) g`, and `g = g + mu b` (Nesterov) or `g = b`; `p -= lr g`.
pub struct Sgd {
    cfg: SgdConfig,
    slots: Slots,
}

impl Sgd {
    /// An optimizer over `params` (usually `module.trainable_params()`).
    pub fn new(params: Vec<(String, Param)>, cfg: SgdConfig) -> Result<Sgd> {
        cfg.validate()?;
        let kinds = if cfg.momentum != 0.0 { vec!["momentum_buffer"] } else { vec![] };
        Ok(Sgd { slots: Slots::new("SGD", params, kinds)?, cfg })
    }

    /// The options (with the current learning rate).
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }
}

impl Rule for SgdConfig {
    fn apply<T: Elem>(&self, step: u64, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
        let c = T::from_f64;
        let (lr, wd, mu, damp) = (c(self.lr), c(self.weight_decay), c(self.momentum), c(1.0 - self.dampening));
        let decay = self.weight_decay != 0.0;
        // Equal lengths up front let the compiler drop the bounds checks in the loops.
        let n = p.len();
        let g = &g[..n];
        match bufs {
            [buf] => {
                let first = step == 1;
                for ((pi, &gi), b) in p.iter_mut().zip(g).zip(buf[..n].iter_mut()) {
                    let d = if decay { gi + wd * *pi } else { gi };
                    *b = if first { d } else { *b * mu + damp * d };
                    let d = if self.nesterov { d + mu * *b } else { *b };
                    *pi = *pi - lr * d;
                }
            }
            _ => {
                for (pi, &gi) in p.iter_mut().zip(g) {
                    let d = if decay { gi + wd * *pi } else { gi };
                    *pi = *pi - lr * d;
                }
            }
        }
    }
}

slots_optimizer!(Sgd, "SGD", rule: cfg, lr: cfg.lr);
