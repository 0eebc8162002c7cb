//! `Var`: a trainable leaf tensor (PyTorch's `requires_grad=True` leaf).

use crate::tensor::TensorId;
use crate::{Error, Result, Tensor};

/// A leaf tensor that receives gradients. Dereferences to [`Tensor`], so every op takes it.
///
/// ```
/// use shendu_core::{Var, Tensor};
/// let w = Var::new(Tensor::from_vec(vec![3.0f64], &[1]).unwrap());
/// let loss = w.sqr().unwrap().sum_all().unwrap();
/// let grads = loss.backward().unwrap();
/// assert_eq!(grads.get(&w).unwrap().to_vec::<f64>().unwrap(), vec![6.0]);
/// ```
#[derive(Clone)]
pub struct Var(Tensor);

impl Var {
    /// Makes a trainable leaf holding a copy of `t`'s values.
    pub fn new(t: Tensor) -> Var {
        let t = t.detach();
        let c = t.copy().unwrap_or(t);
        Var(c.into_tracked(None, true))
    }

    pub fn as_tensor(&self) -> &Tensor {
        &self.0
    }

    pub fn id(&self) -> TensorId {
        self.0.id()
    }

    /// The gradient accumulated by `backward` calls since the last [`Var::zero_grad`].
    pub fn grad(&self) -> Option<Tensor> {
        self.0 .0.leaf_grad.as_ref().and_then(|g| g.lock().ok().and_then(|g| g.clone()))
    }

    /// Forgets the accumulated gradient (PyTorch's `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&self) {
        if let Some(g) = &self.0 .0.leaf_grad {
            if let Ok(mut g) = g.lock() {
                *g = None;
            }
        }
    }

    /// Replaces the accumulated gradient (gradient clipping writes the scaled one back); `None`
    /// clears it. The gradient must have this var's shape and dtype.
    pub fn set_grad(&self, grad: Option<Tensor>) -> Result<()> {
        if let Some(g) = &grad {
            if g.shape() != self.0.shape() || g.dtype() != self.0.dtype() {
                return Err(Error::shape(
                    "Var::set_grad",
                    format!("var is {} {} but the gradient is {} {}", self.0.shape(), self.0.dtype(), g.shape(), g.dtype()),
                ));
            }
        }
        let Some(slot) = &self.0 .0.leaf_grad else {
            return Err(Error::autograd("Var::set_grad", "this tensor has no gradient slot"));
        };
        let mut slot = slot.lock().map_err(|_| Error::autograd("Var::set_grad", "gradient slot poisoned"))?;
        *slot = grad.map(|g| g.detach());
        Ok(())
    }

    /// Overwrites the values in place, keeping identity (PyTorch's `w.data.copy_(t)`).
    pub fn set(&self, values: &Tensor) -> Result<()> {
        if values.shape() != self.0.shape() || values.dtype() != self.0.dtype() {
            return Err(Error::shape(
                "Var::set",
                format!("var is {} {} but the new value is {} {}", self.0.shape(), self.0.dtype(), values.shape(), values.dtype()),
            ));
        }
        // Copy first so that `values` may view this var's own storage without a lock cycle.
        let fresh = values.detach().copy()?;
        let src = fresh.storage();
        let mut dst = self.0.storage_mut();
        crate::ops::copy::copy_storage_into(&src, &mut dst, self.0.layout())
    }

    /// `w -= delta` in place (the SGD update).
    pub fn sub_assign(&self, delta: &Tensor) -> Result<()> {
        let _g = crate::no_grad();
        let updated = self.0.detach().sub(delta)?;
        self.set(&updated)
    }
}

pub(crate) fn accumulate_leaf_grad(t: &Tensor, grad: &Tensor) -> Result<()> {
    let Some(slot) = &t.0.leaf_grad else { return Ok(()) };
    let mut slot = slot.lock().map_err(|_| Error::autograd("backward", "gradient slot poisoned"))?;
    *slot = Some(match slot.take() {
        Some(old) => old.add(grad)?,
        None => grad.clone(),
    });
    Ok(())
}

impl std::ops::Deref for Var {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        &self.0
    }
}

impl AsRef<Tensor> for Var {
    fn as_ref(&self) -> &Tensor {
        &self.0
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var({:?})", self.0)
    }
}
