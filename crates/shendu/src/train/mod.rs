//! The trainer behind `shendu train`: epochs with evaluation, progress, metrics log, chart and
//! atomic checkpoints that resume bit-identically.

pub mod checkpoint;
