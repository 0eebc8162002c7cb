//! `Var`: a trainable leaf tensor (PyTorch's `requires_grad=True` leaf).

use crate::tensor::TensorId;
use crate::{Error, Result, Tensor, WithDType};

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

    /// Updates the values in place from the accumulated gradient, without copies: `f(values,
    /// grad)` gets this var's elements (row-major, writable) and its gradient's (row-major,
    /// read-only), both of dtype `T`, and may rewrite `values` (an optimizer step). Returns
    /// `Ok(None)` without calling `f` when there is no gradient. Every tensor that views this
    /// var's storage sees the new values, as with [`Var::set`]; `f` must not touch such a tensor.
    ///
    /// ```
    /// use shendu_core::{Var, Tensor};
    /// let w = Var::new(Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap());
    /// w.sqr().unwrap().sum_all().unwrap().backward().unwrap(); // grad 2w
    /// w.update_in_place(|v: &mut [f32], g: &[f32]| v.iter_mut().zip(g).for_each(|(v, g)| *v -= 0.5 * g)).unwrap();
    /// assert_eq!(w.to_vec::<f32>().unwrap(), vec![0.0, 0.0]);
    /// ```
    pub fn update_in_place<T: WithDType, R>(&self, f: impl FnOnce(&mut [T], &[T]) -> R) -> Result<Option<R>> {
        const OP: &str = "Var::update_in_place";
        let Some(grad) = self.grad() else { return Ok(None) };
        if grad.shape() != self.0.shape() || grad.dtype() != self.0.dtype() {
            return Err(Error::shape(
                OP,
                format!("var is {} {} but its gradient is {} {}", self.0.shape(), self.0.dtype(), grad.shape(), grad.dtype()),
            ));
        }
        // A gradient viewing the var's own storage would be read under the write lock below.
        let grad = if grad.same_storage(&self.0) { grad.copy()? } else { grad };
        grad.with_contiguous(OP, |g: &[T]| {
            self.0.with_slice_mut(OP, |s: &mut [T], layout| match layout.contiguous_range() {
                Some(r) => Ok(f(&mut s[r], g)),
                None => Err(Error::invalid(OP, format!("var {} is not stored contiguously", self.0.shape()))),
            })
        })??
        .map(Some)
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
