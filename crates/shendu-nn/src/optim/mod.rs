//! Optimizers with exactly PyTorch's update rules (`torch.optim.SGD`, `Adam`, `AdamW`,
//! `RMSprop`, single-tensor form), and their named state for checkpoints.
//!
//! ```
//! use shendu_core::{DType, Tensor};
//! use shendu_nn::optim::{Optimizer, Sgd, SgdConfig};
//! use shendu_nn::Param;
//! let w = Param::new(Tensor::from_vec(vec![1.0f64, -2.0], &[2]).unwrap());
//! let mut opt = Sgd::new(vec![("w".into(), w.clone())], SgdConfig { lr: 0.1, ..Default::default() }).unwrap();
//! w.tensor().sqr().unwrap().sum_all().unwrap().backward().unwrap(); // grad 2w
//! opt.step().unwrap();
//! assert_eq!(w.value().to_vec::<f64>().unwrap(), vec![0.8, -1.6]);
//! ```

/// The `Optimizer` impl shared by every optimizer built on `Slots`: `rule` is the field the
/// per-element update reads, `lr` the path of its learning rate.
macro_rules! slots_optimizer {
    ($ty:ty, $name:literal, rule: $rule:ident, lr: $($lr:ident).+) => {
        impl Optimizer for $ty {
            fn step(&mut self) -> Result<()> {
                self.slots.update(&self.$rule)
            }
            fn zero_grad(&self) {
                self.slots.zero_grad()
            }
            fn lr(&self) -> f64 {
                self.$($lr).+
            }
            fn set_lr(&mut self, lr: f64) {
                self.$($lr).+ = lr;
            }
            fn state(&self) -> Vec<(String, Tensor)> {
                self.slots.state()
            }
            fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
                self.slots.load_state(state)
            }
            fn name(&self) -> &'static str {
                $name
            }
        }
    };
}

mod adam;
mod rmsprop;
mod sgd;
mod state;

pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use sgd::{Sgd, SgdConfig};

use shendu_core::Tensor;

use crate::Result;

/// An optimizer over a fixed list of named parameters.
pub trait Optimizer: Send {
    /// One update of every parameter that has a gradient (`Param::grad()`); frozen parameters
    /// and buffers are skipped. The update is not recorded by autograd.
    fn step(&mut self) -> Result<()>;
    /// Clears the gradients of all the optimizer's parameters.
    fn zero_grad(&self);
    /// The learning rate the next step uses.
    fn lr(&self) -> f64;
    /// Sets the learning rate (a schedule calls this before each step).
    fn set_lr(&mut self, lr: f64);
    /// Every state tensor with a stable name, `"<kind>.<param name>"`: `step.fc1.weight` (i64,
    /// the number of updates of that parameter), `momentum_buffer.fc1.weight`,
    /// `exp_avg.fc1.weight`, ... Saving these and loading them into an optimizer built with the
    /// same parameters and config resumes bit-identically.
    fn state(&self) -> Vec<(String, Tensor)>;
    /// Restores what [`Optimizer::state`] returned. Errors name a missing entry, one of the wrong
    /// shape, or one this optimizer does not have.
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()>;
    /// `"SGD"`, `"Adam"`, `"AdamW"` or `"RMSprop"`.
    fn name(&self) -> &'static str;
}

/// Returns a config error unless `v` is finite and at least 0.
fn check_nonneg(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(crate::Error::config(name, format!("must be finite and >= 0, got {v}")))
    }
}

/// Returns a config error unless `v` is in [0, 1).
fn check_unit(name: &'static str, v: f64) -> Result<()> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(crate::Error::config(name, format!("must be in [0, 1), got {v}")))
    }
}

/// PyTorch's `lerp(start, end, w)` on the CPU: `start + w (end - start)` for `w < 0.5`, else
/// `end - (end - start)(1 - w)` (the rounding matters for bit-identical moments).
#[inline(always)]
fn lerp<T: shendu_core::Float>(start: T, end: T, w: f64) -> T {
    if w < 0.5 {
        start + T::from_f64(w) * (end - start)
    } else {
        end - (end - start) * T::from_f64(1.0 - w)
    }
}
