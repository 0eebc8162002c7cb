//! Looking at tensors: summary statistics, the `list_tensors` table, `print_tensor` slices
//! (`[0, :5]`, `[0:2, 3]`, `[:, -1]`) and name patterns.

use shendu_core::Tensor;

use super::session::Named;
use crate::cli::{CliError, CliResult};
use crate::stats::TensorStats;

/// One line of statistics: `[64, 512] f32 min .. max .. mean .. std .. zeros 51.2% non-finite 0`.
pub fn stats_line(t: &Tensor) -> CliResult<String> {
    let s = TensorStats::of(t)?;
    Ok(format!(
        "{} {} min {} max {} mean {} std {} zeros {:.1}% non-finite {}",
        t.shape(),
        t.dtype(),
        num(s.min),
        num(s.max),
        num(s.mean),
        num(s.std),
        100.0 * s.zero_fraction(),
        s.nonfinite()
    ))
}

/// A number in 10 characters at most: plain for ordinary magnitudes, else scientific.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let a = v.abs();
    if a == 0.0 || (1e-3..1e5).contains(&a) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// The `list_tensors` table of `tensors` whose names match `pattern` (all without one).
pub fn table(tensors: &[Named], pattern: Option<&str>) -> CliResult<String> {
    let header = ["name", "shape", "dtype", "min", "max", "mean", "std", "zeros", "non-finite"];
    let mut rows: Vec<[String; 9]> = vec![header.map(String::from)];
    for t in tensors.iter().filter(|t| pattern.is_none_or(|p| matches(p, &t.name))) {
        let s = TensorStats::of(&t.tensor)?;
        rows.push([
            t.name.clone(),
            t.tensor.shape().to_string(),
            t.tensor.dtype().to_string(),
            num(s.min),
            num(s.max),
            num(s.mean),
            num(s.std),
            format!("{:.1}%", 100.0 * s.zero_fraction()),
            s.nonfinite().to_string(),
        ]);
    }
    if rows.len() == 1 {
        return Ok(match pattern {
            Some(p) => format!("no tensor matches '{p}'"),
            None => "no tensors yet: `run` a step first".to_string(),
        });
    }
    let widths: Vec<usize> = (0..9).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            let cells: Vec<String> =
                r.iter().zip(&widths).enumerate().map(|(c, (v, w))| if c < 3 { format!("{v:<w$}") } else { format!("{v:>w$}") }).collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect();
    Ok(lines.join("\n"))
}

/// What `print_tensor` shows: a header with the statistics, then the values (of `slice`).
pub fn print(t: &Named, slice: Option<&str>, step: usize) -> CliResult<String> {
    let shown = match slice {
        Some(s) => self::slice(&t.tensor, s)?,
        None => t.tensor.clone(),
    };
    Ok(format!("{}{} (step {step}): {}\n{shown}", t.name, slice.unwrap_or(""), stats_line(&shown)?))
}

/// Whether `path` is `layer` or inside it (`layers.2` is in `layers`).
pub fn in_layer(path: &str, layer: &str) -> bool {
    path == layer || path.strip_prefix(layer).is_some_and(|rest| rest.starts_with('.'))
}

/// Whether `name` matches `pattern`: a glob when it has `*` or `?`, else a substring.
pub fn matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    glob(pattern.as_bytes(), name.as_bytes())
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative matcher with one backtrack point: linear in practice.
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// One dimension of a slice.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Index {
    /// One position (the dimension goes away), negative from the end.
    At(i64),
    /// `start:end` with either side optional, negative from the end.
    Range(Option<i64>, Option<i64>),
}

/// `t[slice]` for a slice like `[0, :5]`, `[0:2, 3]`, `[:, -1]`; dimensions not named are kept whole.
pub fn slice(t: &Tensor, spec: &str) -> CliResult<Tensor> {
    let indices = parse_slice(spec)?;
    if indices.len() > t.rank() {
        return Err(CliError::bad(format!("slice {spec}: {} indices for a tensor of shape {}", indices.len(), t.shape())));
    }
    let mut out = t.clone();
    // Dims consumed by an integer index go away: `d` follows the output's dims.
    let mut d = 0;
    for (k, ix) in indices.iter().enumerate() {
        let n = t.dims()[k] as i64;
        let resolve = |i: i64| if i < 0 { i + n } else { i };
        match *ix {
            Index::At(i) => {
                let i = resolve(i);
                if !(0..n).contains(&i) {
                    return Err(CliError::bad(format!(
                        "slice {spec}: index {} is out of range for dimension {k} of size {n}",
                        ix_text(ix)
                    )));
                }
                out = out.narrow(d, i as usize, 1)?.squeeze(d)?;
            }
            Index::Range(a, b) => {
                let a = resolve(a.unwrap_or(0)).clamp(0, n);
                let b = resolve(b.unwrap_or(n)).clamp(0, n);
                out = out.narrow(d, a as usize, (b - a).max(0) as usize)?;
                d += 1;
            }
        }
    }
    Ok(out)
}

fn ix_text(ix: &Index) -> String {
    match ix {
        Index::At(i) => i.to_string(),
        Index::Range(a, b) => format!("{}:{}", a.map(|v| v.to_string()).unwrap_or_default(), b.map(|v| v.to_string()).unwrap_or_default()),
    }
}

fn parse_slice(spec: &str) -> CliResult<Vec<Index>> {
    let bad = |why: &str| CliError::bad(format!("slice {spec}: {why}; write it like [0, :5] or [0:2, 3]"));
    let inner = spec.trim().strip_prefix('[').and_then(|s| s.strip_suffix(']')).ok_or_else(|| bad("not in brackets"))?;
    let int = |s: &str| -> CliResult<Option<i64>> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<i64>().map(Some).map_err(|_| bad(&format!("'{s}' is not an integer")))
    };
    inner
        .split(',')
        .map(|part| match part.split_once(':') {
            Some((a, b)) => Ok(Index::Range(int(a)?, int(b)?)),
            None => int(part)?.map(Index::At).ok_or_else(|| bad("an empty index")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shendu_core::DType;

    #[test]
    fn slices_index_and_narrow() {
        let t = Tensor::arange(0.0, 24.0, 1.0, DType::F32).unwrap().reshape(&[2, 3, 4]).unwrap();
        let v = |s: &str| slice(&t, s).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(v("[0, :2]"), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(slice(&t, "[0, :2]").unwrap().dims(), [2, 4]);
        assert_eq!(v("[1, 2, 3]"), [23.0]);
        assert_eq!(v("[0:2, 1, -1]"), [7.0, 19.0]);
        assert_eq!(v("[:, :, 1:3]").len(), 12);
        assert!(slice(&t, "[2]").is_err());
        assert!(slice(&t, "[0, 0, 0, 0]").is_err());
        assert!(slice(&t, "0, 1").is_err());
        assert!(slice(&t, "[a]").is_err());
    }

    #[test]
    fn patterns_are_globs_or_substrings() {
        assert!(matches("layers.2", "layers.2.weight:grad"));
        assert!(matches("*:grad", "layers.2:grad"));
        assert!(!matches("*:grad", "layers.2:output"));
        assert!(matches("layers.?:output", "layers.4:output"));
        assert!(!matches("layers.?", "layers.4:output"));
    }
}
