//! `shendu gd`: the notebook's gradient descent on a linear model, in one of three variants.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use shendu_ml::gd::{self, GdConfig, Method, NOTEBOOK_X, NOTEBOOK_Y};

use super::ml::{ml_err, print_json, read_table};
use super::{CliError, CliResult};

/// Flags of `shendu gd`.
#[derive(Args, Debug)]
pub struct GdArgs {
    /// sweep (one pass, updating after each sample), sgd (one random sample per iteration) or
    /// batch (one update with the mean gradient).
    #[arg(long, value_name = "NAME", default_value = "sweep")]
    pub method: String,
    /// CSV with one sample per row: the x columns (with their leading 1), then y; a header row is
    /// allowed [default: the notebook's five samples].
    #[arg(long, value_name = "FILE.csv")]
    pub data: Option<PathBuf>,
    /// Learning rate alpha.
    #[arg(long, value_name = "X", default_value_t = 0.01, allow_negative_numbers = true)]
    pub lr: f64,
    /// Stop as soon as |loss| < X, the loss being sum (y - theta·x)^2 / 2.
    #[arg(long, value_name = "X", default_value_t = 60.0, allow_negative_numbers = true)]
    pub threshold: f64,
    /// Stop after N iterations at the latest.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_iter: usize,
    /// Seed of sgd's sample draws.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object (theta, loss, iterations, converged, the loss per iteration) instead.
    #[arg(long)]
    pub json: bool,
}

/// Runs gradient descent as the flags say.
pub fn run(args: GdArgs) -> CliResult<()> {
    let method =
        Method::parse(&args.method).map_err(|_| CliError::bad(format!("--method: '{}' is not sweep, sgd or batch", args.method)))?;
    let (x, y, cols) = match &args.data {
        None => (NOTEBOOK_X.concat(), NOTEBOOK_Y.to_vec(), 3),
        Some(path) => {
            let t = read_table(path)?;
            if t.cols < 2 {
                return Err(CliError::bad(format!(
                    "{}: {} column; at least one x column and the y column are needed",
                    path.display(),
                    t.cols
                )));
            }
            let cols = t.cols - 1;
            let x = (0..t.rows).flat_map(|i| t.row(i)[..cols].to_vec()).collect();
            let y = (0..t.rows).map(|i| t.row(i)[cols]).collect();
            (x, y, cols)
        }
    };
    if !(args.lr.is_finite() && args.lr > 0.0) {
        return Err(CliError::bad(format!("--lr: {} must be a positive number", args.lr)));
    }
    if args.max_iter == 0 {
        return Err(CliError::bad("--max-iter: must be at least 1"));
    }
    let config = GdConfig { method, lr: args.lr, threshold: args.threshold, max_iter: args.max_iter, seed: args.seed };
    let r = gd::fit(&x, cols, &y, &config).map_err(ml_err)?;
    if args.json {
        return print_json(&json!({
            "method": method.name(), "theta": r.theta, "loss": r.loss, "iterations": r.iterations,
            "converged": r.converged, "losses": r.losses,
        }));
    }
    println!("{}", r.notebook_output());
    if !r.converged {
        eprintln!("shendu gd: stopped at --max-iter {} with the loss still >= {}", args.max_iter, args.threshold);
    }
    Ok(())
}
