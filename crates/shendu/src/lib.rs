//! The `shendu` command's library side: the benchmark suite behind `shendu bench` and the
//! shared logic of the repository's example programs (so that tests can check it).

pub mod bench;
pub mod examples_support;
