//! The activation batch norm can apply in its own passes: `y = act(z)`, `z` the normalised and
//! scaled input. Fused, the forward writes `y` once instead of writing `z` and then reading it
//! back to write `y`, and the backward recomputes `z` from `x` (one multiply-add) to gate the
//! gradient, instead of a separate pass that reads the gradient and the output and writes the
//! gated gradient for batch norm's two passes to read again.

use crate::dtype::Float;
use crate::{Result, Tensor};

/// The activation applied to batch norm's output in the same pass (torchvision's and Darknet's
/// `conv -> batch norm -> activation` blocks). Each equals the standalone op of the same name,
/// forward and backward, including the gradient at the kinks (0 at 0 for ReLU and ReLU6, the
/// slope at 0 for leaky ReLU, 0 at 6 for ReLU6).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum BatchNormActivation {
    /// No activation: plain batch norm.
    #[default]
    Identity,
    /// `max(z, 0)`.
    Relu,
    /// `min(max(z, 0), 6)` (MobileNet).
    Relu6,
    /// `z` for `z > 0`, else `slope * z` (Darknet's `leaky` uses 0.1).
    Leaky(f64),
}

impl BatchNormActivation {
    /// The name of the standalone op this activation equals.
    pub fn name(self) -> &'static str {
        match self {
            BatchNormActivation::Identity => "identity",
            BatchNormActivation::Relu => "relu",
            BatchNormActivation::Relu6 => "relu6",
            BatchNormActivation::Leaky(_) => "leaky_relu",
        }
    }

    /// The activation as its standalone op on `y`.
    pub fn apply(self, y: &Tensor) -> Result<Tensor> {
        match self {
            BatchNormActivation::Identity => Ok(y.clone()),
            BatchNormActivation::Relu => y.relu(),
            BatchNormActivation::Relu6 => y.relu6(),
            BatchNormActivation::Leaky(slope) => y.leaky_relu(slope),
        }
    }

    pub(crate) fn is_identity(self) -> bool {
        self == BatchNormActivation::Identity
    }

    /// The activation as `(lo, hi, leak)`: see [`Gate`].
    pub(crate) fn bounds(self) -> (f64, f64, f64) {
        match self {
            BatchNormActivation::Identity => (f64::NEG_INFINITY, f64::INFINITY, 0.0),
            BatchNormActivation::Relu => (0.0, f64::INFINITY, 0.0),
            BatchNormActivation::Relu6 => (0.0, 6.0, 0.0),
            BatchNormActivation::Leaky(slope) => (0.0, f64::INFINITY, slope),
        }
    }
}

/// Every [`BatchNormActivation`] as three numbers: with `leak = 0` (ReLU `(0, inf)`, ReLU6
/// `(0, 6)`, identity `(-inf, inf)`) the output is `min(max(z, lo), hi)`, exactly the standalone
/// ops' expression; with a leak (leaky ReLU `(0, inf, slope)`) it is `z` above `lo` (capped at
/// `hi`) and `leak * z` at or below. The derivative is 1 inside `(lo, hi)`, `leak` at or below
/// `lo` and 0 at or above `hi`. The kernels pick the leak-free form once per pass (`LEAKY`), as
/// it is half the instructions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gate<T> {
    pub lo: T,
    pub hi: T,
    pub leak: T,
}

impl<T: Float> Gate<T> {
    pub fn of(act: BatchNormActivation) -> Gate<T> {
        let (lo, hi, leak) = act.bounds();
        Gate { lo: T::from_f64(lo), hi: T::from_f64(hi), leak: T::from_f64(leak) }
    }

    /// Whether the activation has a slope below `lo` (then the kernels run the `LEAKY` form).
    pub fn leaky(self) -> bool {
        self.leak != T::ZERO
    }

    /// The activation of `z`.
    #[inline(always)]
    pub fn out<const LEAKY: bool>(self, z: T) -> T {
        if !LEAKY {
            z.max(self.lo).min(self.hi)
        } else if z > self.lo {
            z.min(self.hi)
        } else {
            self.leak * z
        }
    }

    /// `g` times the activation's derivative at `z`.
    #[inline(always)]
    pub fn grad<const LEAKY: bool>(self, z: T, g: T) -> T {
        if z > self.lo {
            if z < self.hi {
                g
            } else {
                T::ZERO
            }
        } else if LEAKY {
            g * self.leak
        } else {
            T::ZERO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_equal_the_standalone_activations() {
        let zs = [-7.5f64, -1.0, -0.0, 0.0, 1e-9, 0.5, 5.999, 6.0, 6.5, 100.0];
        for z in zs {
            let relu = Gate::<f64>::of(BatchNormActivation::Relu);
            assert!(!relu.leaky());
            // Bit for bit, except at -0.0 itself, where max may pick either zero.
            let bits = |v: f64| if z == 0.0 { v.abs().to_bits() } else { v.to_bits() };
            assert_eq!(bits(relu.out::<false>(z)), bits(z.max(0.0)), "relu({z})");
            assert_eq!(relu.grad::<false>(z, 2.0), if z > 0.0 { 2.0 } else { 0.0 }, "relu'({z})");
            let relu6 = Gate::<f64>::of(BatchNormActivation::Relu6);
            assert_eq!(bits(relu6.out::<false>(z)), bits(z.clamp(0.0, 6.0)), "relu6({z})");
            assert_eq!(relu6.grad::<false>(z, 2.0), if z > 0.0 && z < 6.0 { 2.0 } else { 0.0 }, "relu6'({z})");
            let leaky = Gate::<f64>::of(BatchNormActivation::Leaky(0.1));
            let want = if z > 0.0 { z } else { z * 0.1 };
            assert_eq!(leaky.out::<true>(z), want, "leaky({z})");
            assert_eq!(leaky.grad::<true>(z, 2.0), if z > 0.0 { 2.0 } else { 0.2 }, "leaky'({z})");
            let id = Gate::<f64>::of(BatchNormActivation::Identity);
            assert_eq!(id.out::<false>(z), z, "identity({z})");
            assert_eq!(id.grad::<false>(z, 2.0), 2.0, "identity'({z})");
        }
    }
}
