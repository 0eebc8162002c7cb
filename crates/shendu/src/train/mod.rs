//! The trainer behind `shendu train`: epochs with evaluation, progress, metrics log, chart and
//! atomic checkpoints that resume bit-identically.

mod chart;
pub mod checkpoint;
mod config;
pub mod layer_stats;
pub mod mem_report;
pub mod metrics;
pub mod model;
pub mod numerics_report;
mod progress;
mod trainer;

pub use config::{TrainConfig, OPTIMIZERS};
pub(crate) use trainer::{load_data, model_options};
pub use trainer::{train, train_step, TrainOptions, TrainSummary};
