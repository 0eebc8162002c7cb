//! `shendu bench`: the workloads of BENCH.md, as a table or JSON.

use std::io::Write;

use clap::Args;

use super::{CliError, CliResult};
use crate::bench;

#[derive(Args)]
pub struct BenchArgs {
    /// Thread counts to run, comma separated [default: SHENDU_NUM_THREADS if set, else 1 then all cores].
    #[arg(long, value_name = "N", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Vec<u32>,
    /// Print one JSON array of {workload, threads, value, unit, extra} objects instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only the workloads whose names start with one of these (e.g. W1,W2 or "W1 sgemm n=1024").
    #[arg(long, value_name = "W1,W2", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Timed repetitions per figure; the median is reported (use at least 5 for real figures).
    #[arg(long, value_name = "N", default_value_t = bench::timing::DEFAULT_REPS as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: u32,
    /// After each graph-mode figure, print the mean time of every compiled step (to stderr).
    #[arg(long)]
    pub profile: bool,
}

/// Runs the selected workloads and prints their figures.
pub fn run(args: BenchArgs) -> CliResult<()> {
    let mut opts = bench::Options::default_for_machine();
    if !args.threads.is_empty() {
        opts.threads = args.threads.iter().map(|&t| t as usize).collect();
    }
    opts.reps = args.reps as usize;
    opts.profile = args.profile;
    opts.only = args.only.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    let json = args.json;
    let mut stdout = std::io::stdout().lock();
    if !json {
        writeln!(stdout, "{}", bench::table_header())?;
    }
    // The table streams; with --json the figures go to stderr as progress and the array comes at the end.
    let outcome = bench::run(
        &opts,
        |f| {
            if json {
                eprintln!("shendu bench: {}", bench::table_row(f));
            } else {
                let _ = writeln!(stdout, "{}", bench::table_row(f));
                let _ = stdout.flush();
            }
        },
        |why| eprintln!("shendu bench: {why}"),
    );
    if json {
        writeln!(stdout, "{}", bench::to_json(&outcome.figures))?;
    }
    match outcome.failures.len() {
        0 => Ok(()),
        n => Err(CliError::internal(format!("{n} workload(s) failed (see above)"))),
    }
}
