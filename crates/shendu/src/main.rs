//! The `shendu` command line. One subcommand per task; `bench` for now, `train` and others
//! join as further variants of [`Command`].

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use shendu::bench;

#[derive(Parser)]
#[command(name = "shendu", version, about = "shendu: tensors, autograd and neural networks in Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the benchmark workloads of BENCH.md (P0 FMA peak, W1 sgemm, W2 conv, W3 dwconv).
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Thread counts to run, comma separated [default: SHENDU_NUM_THREADS if set, else 1 then all cores].
    #[arg(long, value_name = "N", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    threads: Vec<u32>,
    /// Print one JSON array of {workload, threads, value, unit, extra} objects instead of a table.
    #[arg(long)]
    json: bool,
    /// Only the workloads whose names start with one of these (e.g. W1,W2 or "W1 sgemm n=1024").
    #[arg(long, value_name = "W1,W2", value_delimiter = ',')]
    only: Vec<String>,
    /// Timed repetitions per figure; the median is reported (use at least 5 for real figures).
    #[arg(long, value_name = "N", default_value_t = bench::timing::DEFAULT_REPS as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    reps: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => run_bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shendu: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_bench(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = bench::Options::default_for_machine();
    if !args.threads.is_empty() {
        opts.threads = args.threads.iter().map(|&t| t as usize).collect();
    }
    opts.reps = args.reps as usize;
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
        n => Err(format!("{n} workload(s) failed (see above)").into()),
    }
}
