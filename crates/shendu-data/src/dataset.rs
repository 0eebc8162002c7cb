//! The `Dataset` trait every source implements, and `Subset` for splits of one.

use std::sync::Arc;

use crate::{Error, Result};

/// One example: its input as a flat row-major f32 vector of `Dataset::input_shape()` and its class.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Row-major values of shape `input_shape()` (CHW for images).
    pub input: Vec<f32>,
    /// The class index in `0..num_classes()`.
    pub label: i64,
}

/// A random-access collection of samples. `Send + Sync` so that loader threads can read it
/// while the consumer trains.
pub trait Dataset: Send + Sync {
    /// The number of samples.
    fn len(&self) -> usize;

    /// Whether the dataset has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `index` (in `0..len()`); an index out of range is an error, not a panic.
    fn get(&self, index: usize) -> Result<Sample>;

    /// The shape of one input, e.g. `[1, 28, 28]` for MNIST or `[n_features]` for a table.
    fn input_shape(&self) -> Vec<usize>;

    /// The number of classes labels are drawn from.
    fn num_classes(&self) -> usize;

    /// Human-readable class names, `"0"`, `"1"`, ... unless the source has names.
    fn class_names(&self) -> Vec<String> {
        (0..self.num_classes()).map(|c| c.to_string()).collect()
    }
}

/// The usual out-of-range error of `Dataset::get`.
pub(crate) fn check_index(op: &'static str, index: usize, len: usize) -> Result<()> {
    if index >= len {
        return Err(Error::invalid(op, format!("index {index} is out of range for a dataset of {len} samples")));
    }
    Ok(())
}

/// The samples of another dataset at the given indices, in that order (a validation split,
/// a class-balanced subset, a debugging slice).
#[derive(Clone)]
pub struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl Subset {
    /// A view of `inner` at `indices`; every index must be in range.
    pub fn new(inner: Arc<dyn Dataset>, indices: Vec<usize>) -> Result<Subset> {
        let len = inner.len();
        if let Some((pos, &bad)) = indices.iter().enumerate().find(|(_, &i)| i >= len) {
            return Err(Error::invalid("Subset::new", format!("indices[{pos}] = {bad} is out of range for a dataset of {len} samples")));
        }
        Ok(Subset { inner, indices })
    }

    /// Splits `0..inner.len()` into the first `n_first` indices and the rest.
    pub fn split_at(inner: Arc<dyn Dataset>, n_first: usize) -> Result<(Subset, Subset)> {
        let len = inner.len();
        if n_first > len {
            return Err(Error::invalid("Subset::split_at", format!("cannot take {n_first} samples from a dataset of {len}")));
        }
        Ok((Subset { inner: inner.clone(), indices: (0..n_first).collect() }, Subset { inner, indices: (n_first..len).collect() }))
    }

    /// The indices into the inner dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        check_index("Subset::get", index, self.indices.len())?;
        self.inner.get(self.indices[index])
    }
    fn input_shape(&self) -> Vec<usize> {
        self.inner.input_shape()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn class_names(&self) -> Vec<String> {
        self.inner.class_names()
    }
}
