//! shendu-data: datasets, transforms and a prefetching, reproducible data loader.
//!
//! ```
//! use std::sync::Arc;
//! use shendu_data::{DataLoader, Dataset, Mnist, Split};
//! let train = Mnist::embedded(Split::Train).unwrap();
//! assert_eq!(train.len(), 6000);
//! let loader = DataLoader::new(Arc::new(train), 64).unwrap().shuffle(true).seed(7);
//! let batch = loader.epoch(0).next().unwrap().unwrap();
//! assert_eq!(batch.inputs.dims(), &[64, 1, 28, 28]);
//! ```

mod csv;
mod dataset;
mod error;
pub mod idx;
mod image_folder;
mod loader;
mod mnist;
pub mod transforms;

pub use csv::{CsvDataset, LabelColumn};
pub use dataset::{Dataset, Sample, Subset};
pub use error::{Error, Result};
pub use image_folder::ImageFolder;
pub use loader::{Batch, DataLoader, Epoch};
pub use mnist::{Mnist, Split, MNIST_MEAN, MNIST_STD};
pub use transforms::{Compose, Normalize, RandomAffine, RandomCrop, RandomHorizontalFlip, Transform};
