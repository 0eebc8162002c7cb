//! The `Module` trait: a forward function plus a walk over named parameters.

use shendu_core::Tensor;

use crate::{Param, Result};

/// Training or evaluation: Dropout and BatchNorm behave differently in each. Passed to every
/// `forward` rather than stored in the module, so one module can serve both at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

impl Mode {
    pub fn is_train(self) -> bool {
        self == Mode::Train
    }
}

/// A layer or a network. Parameters are visited with PyTorch-style dotted names
/// (`features.3.weight`), which are the names of the state dict.
pub trait Module: Send + Sync {
    /// Computes the output for a batch.
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor>;

    /// Calls `f` for each parameter and buffer with its full name (`prefix` joined with the local
    /// name by [`join_name`]), in registration order.
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param));

    /// A short type name for summaries and error messages (`Linear`, `Conv2d`, ...).
    fn type_name(&self) -> &'static str;
}

/// `join_name("features", "3")` is `features.3`; an empty prefix gives the name alone.
pub fn join_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Conveniences on every module.
pub trait ModuleExt: Module {
    /// Every parameter and buffer with its dotted name, in registration order (PyTorch's
    /// `state_dict().items()`).
    fn named_params(&self) -> Vec<(String, Param)> {
        let mut out = Vec::new();
        self.visit_params("", &mut |name, p| out.push((name.to_string(), p.clone())));
        out
    }

    /// The trainable weights only (not buffers, not frozen), as an optimizer takes them.
    fn trainable_params(&self) -> Vec<(String, Param)> {
        self.named_params().into_iter().filter(|(_, p)| p.is_trainable()).collect()
    }

    /// The number of scalar values in weights (buffers not counted).
    fn param_count(&self) -> usize {
        self.named_params().iter().filter(|(_, p)| p.kind() == crate::ParamKind::Weight).map(|(_, p)| p.shape().elem_count()).sum()
    }

    /// Clears the gradient of every parameter.
    fn zero_grad(&self) {
        self.visit_params("", &mut |_, p| p.zero_grad());
    }

    /// Freezes every weight whose name starts with `prefix` (all with ""); returns how many.
    fn freeze_prefix(&self, prefix: &str) -> usize {
        let mut n = 0;
        self.visit_params("", &mut |name, p| {
            if name.starts_with(prefix) && p.kind() == crate::ParamKind::Weight {
                p.freeze();
                n += 1;
            }
        });
        n
    }
}

impl<M: Module + ?Sized> ModuleExt for M {}

impl Module for Box<dyn Module> {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        (**self).forward(x, mode)
    }
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        (**self).visit_params(prefix, f)
    }
    fn type_name(&self) -> &'static str {
        (**self).type_name()
    }
}
