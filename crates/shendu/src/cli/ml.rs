//! What the classical-learning subcommands (`gd`, `entropy`, `rademacher`, `knn`, `kmeans`) share:
//! the mapping of shendu-ml errors to exit codes, numeric CSV tables and comma lists.

use std::path::Path;

use super::{CliError, CliResult};

/// shendu-ml errors: a failing tensor op is ours (exit 1); everything else is bad input (exit 2).
pub(crate) fn ml_err(e: shendu_ml::Error) -> CliError {
    match e {
        shendu_ml::Error::Core(inner) => CliError::internal(inner.to_string()),
        other => CliError::bad(other.to_string()),
    }
}

/// A numeric CSV table (errors name file, line and column).
pub(crate) fn read_table(path: &Path) -> CliResult<shendu_ml::table::Table> {
    shendu_ml::table::read_csv(path).map_err(ml_err)
}

/// A comma-separated list of numbers given to `flag`.
pub(crate) fn parse_list(flag: &str, text: &str) -> CliResult<Vec<f64>> {
    text.split(',')
        .enumerate()
        .map(|(i, s)| {
            let s = s.trim();
            s.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                CliError::bad(format!(
                    "{flag}: item {} '{s}' is not a finite number (expected a comma-separated list like 0.5,0.25,0.25)",
                    i + 1
                ))
            })
        })
        .collect()
}

/// Prints `value` as one line of JSON.
pub(crate) fn print_json(value: &serde_json::Value) -> CliResult<()> {
    println!("{}", serde_json::to_string(value).map_err(|e| CliError::internal(e.to_string()))?);
    Ok(())
}
