//! `Display` for tensors, in PyTorch's print format (torch/_tensor_str.py with its default
//! options: 4 decimals, line width 80, summarised beyond 1000 elements with 3 edge items), so a
//! printed shendu tensor reads exactly like the PyTorch one it reproduces.

use std::fmt;

use crate::{with_any, DType, Tensor};

const LINE_WIDTH: usize = 80;
const PRECISION: usize = 4;
const THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;
const PREFIX: &str = "tensor(";

/// The indices printed along a dim of size `n`: all, or the edge items when summarising.
fn shown(n: usize, summarize: bool) -> Vec<usize> {
    if summarize && n > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS).chain(n - EDGE_ITEMS..n).collect()
    } else {
        (0..n).collect()
    }
}

/// Storage offsets of the printed elements, in print order.
fn printed_offsets(dims: &[usize], strides: &[usize], offset: usize, summarize: bool, out: &mut Vec<usize>) {
    match dims.split_first() {
        None => out.push(offset),
        Some((&n, rest)) => {
            for i in shown(n, summarize) {
                printed_offsets(rest, &strides[1..], offset + i * strides[0], summarize, out);
            }
        }
    }
}

/// Python's `'{:.4e}'`: the exponent has a sign and at least two digits; non-finite values
/// print as `nan`, `inf`, `-inf`.
fn sci(v: f64) -> String {
    if !v.is_finite() {
        return non_finite(v);
    }
    let s = format!("{v:.PRECISION$e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let e: i32 = exp.parse().unwrap_or(0);
            format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        None => s,
    }
}

fn non_finite(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

/// Python's `'{:.4f}'`.
fn fixed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.PRECISION$}")
    } else {
        non_finite(v)
    }
}

/// How every element of one tensor is written (PyTorch's `_Formatter`).
enum Formatter {
    Int { width: usize },
    Float { int_mode: bool, sci_mode: bool, width: usize },
}

impl Formatter {
    fn for_ints(vals: &[i64]) -> Formatter {
        Formatter::Int { width: vals.iter().map(|v| v.to_string().len()).max().unwrap_or(1).max(1) }
    }

    /// Width and mode come from the non-zero finite values only, as in PyTorch.
    fn for_floats(vals: &[f64]) -> Formatter {
        let nz: Vec<f64> = vals.iter().copied().filter(|v| v.is_finite() && *v != 0.0).collect();
        if nz.is_empty() {
            return Formatter::Float { int_mode: true, sci_mode: false, width: 1 };
        }
        let min = nz.iter().fold(f64::INFINITY, |a, v| a.min(v.abs()));
        let max = nz.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let int_mode = nz.iter().all(|v| *v == v.ceil());
        let sci_mode = max / min > 1000.0 || max > 1.0e8 || min < 1.0e-4;
        let len = |f: &dyn Fn(f64) -> String, extra: usize| nz.iter().map(|&v| f(v).len() + extra).max().unwrap_or(1).max(1);
        let width = match (sci_mode, int_mode) {
            (true, _) => len(&sci, 0),
            (false, true) => len(&|v| format!("{v:.0}"), 1),
            (false, false) => len(&fixed, 0),
        };
        Formatter::Float { int_mode, sci_mode, width }
    }

    fn width(&self) -> usize {
        match self {
            Formatter::Int { width } | Formatter::Float { width, .. } => *width,
        }
    }
}

/// One element, right-aligned to the formatter's width.
fn format_float(f: &Formatter, v: f64) -> String {
    let s = match f {
        Formatter::Float { sci_mode: true, .. } => sci(v),
        Formatter::Float { int_mode: true, .. } if v.is_finite() => format!("{v:.0}."),
        Formatter::Float { int_mode: true, .. } => non_finite(v),
        _ => fixed(v),
    };
    format!("{s:>w$}", w = f.width())
}

/// The bracketed body of a tensor of rank >= 1, consuming formatted elements in print order.
fn tensor_str(dims: &[usize], indent: usize, summarize: bool, width: usize, items: &mut impl Iterator<Item = String>) -> String {
    let n = dims[0];
    let skip = summarize && n > 2 * EDGE_ITEMS;
    let count = if skip { 2 * EDGE_ITEMS } else { n };
    if dims.len() == 1 {
        let per_line = (LINE_WIDTH.saturating_sub(indent) / (width + 2)).max(1);
        let mut data: Vec<String> = Vec::with_capacity(count + 1);
        for k in 0..count {
            if skip && k == EDGE_ITEMS {
                data.push(" ...".into());
            }
            data.push(items.next().unwrap_or_default());
        }
        let lines: Vec<String> = data.chunks(per_line).map(|l| l.join(", ")).collect();
        return format!("[{}]", lines.join(&format!(",\n{}", " ".repeat(indent + 1))));
    }
    let mut slices = Vec::with_capacity(count + 1);
    for k in 0..count {
        if skip && k == EDGE_ITEMS {
            slices.push("...".to_string());
        }
        slices.push(tensor_str(&dims[1..], indent + 1, summarize, width, items));
    }
    let sep = format!(",{}{}", "\n".repeat(dims.len() - 1), " ".repeat(indent + 1));
    format!("[{}]", slices.join(&sep))
}

/// PyTorch's `_add_suffixes`: `, suffix` on the last line while it fits in the line width,
/// else on a new line.
fn add_suffixes(body: String, suffixes: &[String]) -> String {
    let mut out = body;
    // PyTorch's own arithmetic, including its off-by-two when there is no newline.
    let mut last_line_len = match out.rfind('\n') {
        Some(p) => out.len() - p + 1,
        None => out.len() + 2,
    };
    for s in suffixes {
        if last_line_len + s.len() + 2 > LINE_WIDTH {
            out.push_str(&format!(",\n{}{s}", " ".repeat(PREFIX.len())));
            last_line_len = PREFIX.len() + s.len();
        } else {
            out.push_str(&format!(", {s}"));
            last_line_len += s.len() + 2;
        }
    }
    out.push(')');
    out
}

/// `MulBackward` from `mul`, `IndexSelectBackward` from `index_select`.
fn backward_name(op: &str) -> String {
    let mut name: String = op
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect();
    name.push_str("Backward");
    name
}

impl fmt::Display for Tensor {
    /// PyTorch's format, e.g. `tensor([[ 0.1000, -1.5000],\n        [ 2.0000,  3.0000]])`;
    /// the dtype is named unless it is f32 or i64 (PyTorch's defaults).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dtype = self.dtype();
        let numel = self.elem_count();
        let mut suffixes = Vec::new();
        let body = if numel == 0 {
            if self.rank() != 1 {
                let dims: Vec<String> = self.dims().iter().map(|d| d.to_string()).collect();
                let tuple = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
                suffixes.push(format!("size={tuple}"));
            }
            if dtype != DType::F32 {
                suffixes.push(format!("dtype={dtype}"));
            }
            "[]".to_string()
        } else {
            if dtype != DType::F32 && dtype != DType::I64 {
                suffixes.push(format!("dtype={dtype}"));
            }
            let summarize = numel > THRESHOLD;
            let l = self.layout();
            let mut offsets = Vec::new();
            printed_offsets(l.dims(), l.strides(), l.offset(), summarize, &mut offsets);
            let (fmt, items): (Formatter, Vec<String>) = if dtype.is_float() {
                let vals: Vec<f64> = with_any!(dtype, |T| self
                    .with_slice("display", |s: &[T], _| offsets.iter().map(|&o| crate::dtype::WithDType::to_f64(s[o])).collect()))
                .map_err(|_| fmt::Error)?;
                let fm = Formatter::for_floats(&vals);
                let items = vals.iter().map(|&v| format_float(&fm, v)).collect();
                (fm, items)
            } else {
                let vals: Vec<i64> = if dtype == DType::I64 {
                    self.with_slice("display", |s: &[i64], _| offsets.iter().map(|&o| s[o]).collect())
                } else {
                    self.with_slice("display", |s: &[u8], _| offsets.iter().map(|&o| i64::from(s[o])).collect())
                }
                .map_err(|_| fmt::Error)?;
                let fm = Formatter::for_ints(&vals);
                let items = vals.iter().map(|v| format!("{v:>w$}", w = fm.width())).collect();
                (fm, items)
            };
            let mut it = items.into_iter();
            if self.rank() == 0 {
                it.next().unwrap_or_default()
            } else {
                tensor_str(self.dims(), PREFIX.len(), summarize, fmt.width(), &mut it)
            }
        };
        if let Some(grad_fn) = &self.0.grad_fn {
            suffixes.push(format!("grad_fn=<{}>", backward_name(grad_fn.op.name())));
        } else if self.requires_grad() {
            suffixes.push("requires_grad=True".into());
        }
        f.write_str(&add_suffixes(format!("{PREFIX}{body}"), &suffixes))
    }
}
