//! The `shendu` command's library side: the subcommands (`cli`), the trainer behind
//! `shendu train`, the benchmark suite behind `shendu bench`, and the shared logic of the
//! repository's example programs (so that tests can check it).

pub mod alloc;
pub mod bench;
pub mod cli;
pub mod debug;
pub mod examples_support;
pub mod stats;
pub mod train;
