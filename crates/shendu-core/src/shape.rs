//! Shapes, dimension indices and the broadcasting rule.

use crate::{Error, Result};

/// The sizes of a tensor's dimensions, outermost first. Displays as `[64, 1000]`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    pub fn new(dims: Vec<usize>) -> Self {
        Shape(dims)
    }
    pub fn scalar() -> Self {
        Shape(vec![])
    }
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// The number of elements; `usize::MAX` if it does not fit (such a shape can never be
    /// allocated, so size checks against it fail instead of overflowing).
    pub fn elem_count(&self) -> usize {
        self.checked_elem_count().unwrap_or(usize::MAX)
    }
    /// The number of elements, or `None` if it does not fit in a `usize`.
    pub fn checked_elem_count(&self) -> Option<usize> {
        if self.0.contains(&0) {
            return Some(0);
        }
        self.0.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }
    /// Row-major strides of a contiguous tensor of this shape.
    pub fn contiguous_strides(&self) -> Vec<usize> {
        let mut strides = vec![0; self.0.len()];
        let mut acc = 1usize;
        for (s, &d) in strides.iter_mut().zip(&self.0).rev() {
            *s = acc;
            // Saturates only for zero-size shapes, whose strides are never used.
            acc = acc.saturating_mul(d);
        }
        strides
    }

    /// The shape both operands broadcast to (NumPy's rule: align from the right; sizes must be
    /// equal or one of them 1).
    pub fn broadcast_with(&self, rhs: &Shape, op: &'static str) -> Result<Shape> {
        let (a, b) = (self.dims(), rhs.dims());
        let rank = a.len().max(b.len());
        let mut out = vec![0; rank];
        for i in 0..rank {
            let da = if i < rank - a.len() { 1 } else { a[i + a.len() - rank] };
            let db = if i < rank - b.len() { 1 } else { b[i + b.len() - rank] };
            out[i] = match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => {
                    return Err(Error::shape(
                        op,
                        format!("lhs {self} and rhs {rhs} cannot be broadcast: dimension {i} has sizes {da} and {db}"),
                    ))
                }
            };
        }
        Ok(Shape(out))
    }

    /// Dimensions as an array of N, or a shape error naming `op`.
    pub fn dims_n<const N: usize>(&self, op: &'static str) -> Result<[usize; N]> {
        self.0.as_slice().try_into().map_err(|_| Error::shape(op, format!("expected a {N}-d tensor, got shape {self}")))
    }

    /// Resolves a possibly negative dimension index.
    pub fn dim_index<D: Dim>(&self, d: D, op: &'static str) -> Result<usize> {
        // `Dim::resolve` knows only the rank: add the shape, which the message must name.
        d.resolve(self.rank(), op).map_err(|e| match e {
            Error::Index { op, msg } => Error::Index { op, msg: format!("{msg} (shape {self})") },
            e => e,
        })
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}
impl<const N: usize> From<&[usize; N]> for Shape {
    fn from(d: &[usize; N]) -> Self {
        Shape(d.to_vec())
    }
}
impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}
impl From<usize> for Shape {
    fn from(d: usize) -> Self {
        Shape(vec![d])
    }
}
impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape(vec![])
    }
}

/// A dimension index: `usize` counts from the front, a negative `i32`/`isize` from the back
/// (`-1` is the last dimension), as in PyTorch.
pub trait Dim: Copy {
    fn resolve(self, rank: usize, op: &'static str) -> Result<usize>;
}

impl Dim for usize {
    fn resolve(self, rank: usize, op: &'static str) -> Result<usize> {
        if self < rank {
            Ok(self)
        } else {
            Err(Error::index(op, format!("dimension {self} is out of range for a tensor of rank {rank}")))
        }
    }
}

impl Dim for isize {
    fn resolve(self, rank: usize, op: &'static str) -> Result<usize> {
        let r = rank as isize;
        if (-r..r).contains(&self) {
            Ok(if self < 0 { (self + r) as usize } else { self as usize })
        } else {
            Err(Error::index(op, format!("dimension {self} is out of range for a tensor of rank {rank}")))
        }
    }
}

impl Dim for i32 {
    fn resolve(self, rank: usize, op: &'static str) -> Result<usize> {
        (self as isize).resolve(rank, op)
    }
}
