//! `shendu rademacher`: the empirical Rademacher complexity of a finite hypothesis set or of
//! norm-bounded linear predictors on a sample, by Monte Carlo with a confidence interval.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use shendu_ml::rademacher::{self, McConfig};

use super::ml::{ml_err, print_json, read_table};
use super::{CliError, CliResult};

/// Flags of `shendu rademacher`. Give exactly one of --linear, --hypotheses, --sign-patterns.
#[derive(Args, Debug)]
pub struct RademacherArgs {
    /// CSV of the sample, one point per row, all columns features: the class {x -> w·x : ||w|| <= B}.
    #[arg(long, value_name = "FILE.csv")]
    pub linear: Option<PathBuf>,
    /// The norm bound B of --linear.
    #[arg(long, value_name = "B", default_value_t = 1.0, allow_negative_numbers = true)]
    pub bound: f64,
    /// CSV of a finite class: one hypothesis per row, its predictions on the m sample points.
    #[arg(long, value_name = "FILE.csv")]
    pub hypotheses: Option<PathBuf>,
    /// The class of all 2^M sign patterns on M points (complexity exactly 1; M <= 20).
    #[arg(long, value_name = "M")]
    pub sign_patterns: Option<usize>,
    /// Monte Carlo draws of the sign vector.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub draws: usize,
    /// Seed of the draws.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Confidence level of the interval.
    #[arg(long, value_name = "X", default_value_t = 0.95, allow_negative_numbers = true)]
    pub confidence: f64,
    /// Print one JSON object instead.
    #[arg(long)]
    pub json: bool,
}

/// Estimates as the flags say.
pub fn run(args: RademacherArgs) -> CliResult<()> {
    let given = [args.linear.is_some(), args.hypotheses.is_some(), args.sign_patterns.is_some()].iter().filter(|&&g| g).count();
    if given != 1 {
        return Err(CliError::bad("give exactly one of --linear FILE.csv, --hypotheses FILE.csv, --sign-patterns M"));
    }
    let config = McConfig { draws: args.draws, seed: args.seed, confidence: args.confidence };
    let (kind, m, est, bound, bound_name) = if let Some(path) = &args.linear {
        let t = read_table(path)?;
        let r = rademacher::linear_class(&t.data, t.rows, t.cols, args.bound, &config).map_err(ml_err)?;
        (format!("linear, ||w|| <= {}", args.bound), t.rows, r.estimate, r.bound, format!("B R / sqrt(m) (R = {:.6})", r.radius))
    } else {
        let (h, n, m) = match (&args.hypotheses, args.sign_patterns) {
            (Some(path), _) => {
                let t = read_table(path)?;
                (t.data, t.rows, t.cols)
            }
            (None, Some(m)) => {
                let h = rademacher::all_sign_patterns(m).map_err(|e| CliError::bad(format!("--sign-patterns: {e}")))?;
                (h, 1usize << m, m)
            }
            (None, None) => return Err(CliError::internal("no class given")),
        };
        let est = rademacher::finite_class(&h, n, m, &config).map_err(ml_err)?;
        (format!("finite, {n} hypotheses"), m, est, rademacher::massart_bound(&h, n, m), "Massart max||h|| sqrt(2 ln |H|) / m".to_string())
    };
    if args.json {
        return print_json(&json!({
            "class": kind, "m": m, "estimate": est.mean, "std_err": est.std_err, "ci": [est.lo, est.hi],
            "confidence": est.confidence, "draws": est.draws, "bound": bound, "bound_kind": bound_name,
        }));
    }
    println!("class: {kind}; m = {m} points; {} draws", est.draws);
    println!(
        "empirical Rademacher complexity: {:.6} (std err {:.6}; {:.0}% interval [{:.6}, {:.6}])",
        est.mean,
        est.std_err,
        100.0 * est.confidence,
        est.lo,
        est.hi
    );
    println!("bound {bound_name}: {bound:.6}");
    Ok(())
}
