//! `Embedding`: a lookup table of vectors indexed by integer ids.

use shendu_core::{DType, Tensor};

use crate::{init, join_name, Error, Mode, Module, Param, Result};

/// A table `weight` `[num_embeddings, embedding_dim]`, initialised normal(0, 1) as PyTorch.
/// Input: i64 indices of any shape; output: that shape followed by `embedding_dim`. The mode
/// does not matter. The gradient of the table sums over repeated indices.
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::Embedding, Mode, Module};
/// let emb = Embedding::new(10, 4, DType::F32).unwrap();
/// let ids = Tensor::from_vec(vec![1i64, 2, 9, 0, 1, 1], &[2, 3]).unwrap();
/// assert_eq!(emb.forward(&ids, Mode::Train).unwrap().dims(), &[2, 3, 4]);
/// assert!(emb.forward(&Tensor::from_vec(vec![10i64], &[1]).unwrap(), Mode::Train).is_err());
/// ```
pub struct Embedding {
    /// The learned weight (PyTorch's layout).
    pub weight: Param,
}

impl Embedding {
    /// A table with normal(0, 1) entries.
    pub fn new(num_embeddings: usize, embedding_dim: usize, dtype: DType) -> Result<Embedding> {
        if num_embeddings == 0 || embedding_dim == 0 {
            return Err(Error::layer(
                "Embedding",
                format!("num_embeddings {num_embeddings} and embedding_dim {embedding_dim} must be at least 1"),
            ));
        }
        Ok(Embedding { weight: Param::new(init::normal(&[num_embeddings, embedding_dim], 1.0, dtype)?) })
    }

    /// A table from a given `[num, dim]` tensor (pretrained vectors).
    pub fn from_tensor(weight: Tensor) -> Result<Embedding> {
        if weight.rank() != 2 {
            return Err(Error::layer("Embedding", format!("weight must be [num_embeddings, embedding_dim], got {}", weight.shape())));
        }
        Ok(Embedding { weight: Param::new(weight) })
    }

    /// Rows of the table.
    pub fn num_embeddings(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Length of each vector.
    pub fn embedding_dim(&self) -> usize {
        self.weight.dims()[1]
    }
}

impl Module for Embedding {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        if x.dtype() != DType::I64 {
            return Err(Error::layer("Embedding", format!("indices must be i64, got {} {}", x.dtype(), x.shape())));
        }
        let num = self.num_embeddings();
        let flat = x.flatten_all()?;
        if let Some((pos, bad)) = flat.to_vec::<i64>()?.into_iter().enumerate().find(|&(_, i)| i < 0 || i as u64 >= num as u64) {
            return Err(Error::layer(
                "Embedding",
                format!(
                    "index {bad} (at flat position {pos} of input {}) is out of range for a table of {num} entries (weight {})",
                    x.shape(),
                    self.weight.shape()
                ),
            ));
        }
        let rows = self.weight.tensor().index_select(0, &flat)?;
        let mut dims = x.dims().to_vec();
        dims.push(self.embedding_dim());
        Ok(rows.reshape(dims)?)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        f(&join_name(prefix, "weight"), &self.weight);
    }

    fn type_name(&self) -> &'static str {
        "Embedding"
    }
}
