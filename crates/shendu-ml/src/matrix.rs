//! A dense row-major f32 matrix of samples (one row per sample), the common input of k-NN and
//! k-means, convertible to and from shendu-core tensors.

use shendu_core::{DType, Tensor};

use crate::{Error, Result};

/// `rows` samples of `cols` features, row after row.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl Matrix {
    /// Wraps `data` (length `rows * cols`); every value must be finite.
    pub fn new(data: Vec<f32>, rows: usize, cols: usize) -> Result<Matrix> {
        if data.len() != rows * cols {
            return Err(Error::invalid("Matrix::new", format!("{} values cannot fill {rows} rows of {cols} columns", data.len())));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "Matrix::new",
                format!("value {} at row {}, column {} is not finite", data[i], i / cols.max(1), i % cols.max(1)),
            ));
        }
        Ok(Matrix { data, rows, cols })
    }

    /// A 2-D float tensor `[rows, cols]` (any float dtype; converted to f32).
    pub fn from_tensor(t: &Tensor) -> Result<Matrix> {
        if t.rank() != 2 {
            return Err(Error::invalid(
                "Matrix::from_tensor",
                format!("expected a 2-D tensor [samples, features], got shape {:?}", t.dims()),
            ));
        }
        let (rows, cols) = (t.dims()[0], t.dims()[1]);
        let data = t.to_dtype(DType::F32)?.to_vec::<f32>()?;
        Matrix::new(data, rows, cols)
    }

    /// The matrix as an f32 tensor `[rows, cols]`.
    pub fn to_tensor(&self) -> Result<Tensor> {
        Ok(Tensor::from_slice(&self.data, [self.rows, self.cols])?)
    }

    /// A matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix { data: vec![0.0; rows * cols], rows, cols }
    }

    /// Sample `i`, mutable (panics when out of range). Keep the values finite.
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The number of samples.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// The number of features.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// All values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// Sample `i` (panics when out of range, like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
    /// Squared L2 norm of every row, accumulated in f64.
    pub fn sq_norms(&self) -> Vec<f64> {
        (0..self.rows).map(|i| self.row(i).iter().map(|&v| v as f64 * v as f64).sum()).collect()
    }
    /// Per-feature variance (population, as numpy's `var`), in f64.
    pub fn column_variances(&self) -> Vec<f64> {
        let n = self.rows.max(1) as f64;
        let mut mean = vec![0.0f64; self.cols];
        for i in 0..self.rows {
            for (m, &v) in mean.iter_mut().zip(self.row(i)) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; self.cols];
        for i in 0..self.rows {
            for ((s, &v), m) in var.iter_mut().zip(self.row(i)).zip(&mean) {
                *s += (v as f64 - m) * (v as f64 - m);
            }
        }
        var.iter_mut().for_each(|s| *s /= n);
        var
    }
}
