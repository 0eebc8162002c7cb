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

// Expected strings are what PyTorch 2.x prints for the same tensors.
#[cfg(test)]
mod tests {
    use crate::{DType, Tensor, Var};

    fn t32(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_slice(v, shape).unwrap()
    }

    fn t64(v: &[f64], shape: &[usize]) -> Tensor {
        Tensor::from_slice(v, shape).unwrap()
    }

    fn idx(v: &[i64], shape: &[usize]) -> Tensor {
        Tensor::from_slice(v, shape).unwrap()
    }

    #[test]
    fn display_floats() {
        let s = |v: &[f32], shape: &[usize]| t32(v, shape).to_string();
        assert_eq!(s(&[0.1, -1.5, 2., 3.], &[2, 2]), "tensor([[ 0.1000, -1.5000],\n        [ 2.0000,  3.0000]])");
        assert_eq!(s(&[1., 2., 3.], &[3]), "tensor([1., 2., 3.])");
        assert_eq!(s(&[1., 2., 3000.], &[3]), "tensor([1.0000e+00, 2.0000e+00, 3.0000e+03])");
        assert_eq!(s(&[1e8, 1e8], &[2]), "tensor([100000000., 100000000.])");
        assert_eq!(s(&[0.5, 0.0001], &[2]), "tensor([5.0000e-01, 1.0000e-04])");
        assert_eq!(s(&[1.5, f32::NAN, f32::NEG_INFINITY], &[3]), "tensor([1.5000,    nan,   -inf])");
        assert_eq!(s(&[1., f32::NAN, f32::INFINITY], &[3]), "tensor([1., nan, inf])");
        assert_eq!(s(&[-0.0, 0.0], &[2]), "tensor([-0., 0.])");
        assert_eq!(s(&[0.0; 6], &[2, 3]), "tensor([[0., 0., 0.],\n        [0., 0., 0.]])");
        assert_eq!(s(&[0.03125, 1.0], &[2]), "tensor([0.0312, 1.0000])");
        assert_eq!(s(&[12345.5, 1.5], &[2]), "tensor([1.2346e+04, 1.5000e+00])");
        assert_eq!(Tensor::scalar(3.5f32).to_string(), "tensor(3.5000)");
        assert_eq!(Tensor::scalar(3.0f32).to_string(), "tensor(3.)");
        assert_eq!(Tensor::scalar(-2.5e-5f32).to_string(), "tensor(-2.5000e-05)");
        let x = Tensor::arange(0.0, 24.0, 1.0, DType::F32).unwrap().reshape([2, 3, 4]).unwrap();
        let expected = "tensor([[[ 0.,  1.,  2.,  3.],\n         [ 4.,  5.,  6.,  7.],\n         [ 8.,  9., 10., 11.]],\n\n        \
                        [[12., 13., 14., 15.],\n         [16., 17., 18., 19.],\n         [20., 21., 22., 23.]]])";
        assert_eq!(x.to_string(), expected);
        let x = Tensor::arange(0.0, 30.0, 1.0, DType::F32).unwrap().mul_scalar(1.0 / 3.0).unwrap();
        let expected = "tensor([0.0000, 0.3333, 0.6667, 1.0000, 1.3333, 1.6667, 2.0000, 2.3333, 2.6667,\n        \
                        3.0000, 3.3333, 3.6667, 4.0000, 4.3333, 4.6667, 5.0000, 5.3333, 5.6667,\n        \
                        6.0000, 6.3333, 6.6667, 7.0000, 7.3333, 7.6667, 8.0000, 8.3333, 8.6667,\n        \
                        9.0000, 9.3333, 9.6667])";
        assert_eq!(x.to_string(), expected);
    }

    #[test]
    fn display_dtypes_suffixes_and_empty() {
        assert_eq!(t64(&[1.5, f64::NAN], &[2]).to_string(), "tensor([1.5000,    nan], dtype=f64)");
        assert_eq!(t64(&[1e-5, 1e5], &[2]).to_string(), "tensor([1.0000e-05, 1.0000e+05], dtype=f64)");
        assert_eq!(idx(&[1, -20, 300], &[3]).to_string(), "tensor([  1, -20, 300])");
        assert_eq!(Tensor::from_vec(vec![1u8, 2, 3, 4], [2, 2]).unwrap().to_string(), "tensor([[1, 2],\n        [3, 4]], dtype=u8)");
        assert_eq!(Tensor::scalar(3i64).to_string(), "tensor(3)");
        let h = t32(&[0.00125, 0.375, 1.0], &[3]).to_dtype(DType::F16).unwrap();
        assert_eq!(h.to_string(), "tensor([0.0013, 0.3750, 1.0000], dtype=f16)");
        assert_eq!(t32(&[1.5], &[1]).to_dtype(DType::BF16).unwrap().to_string(), "tensor([1.5000], dtype=bf16)");
        assert_eq!(Tensor::zeros([0], DType::F32).unwrap().to_string(), "tensor([])");
        assert_eq!(Tensor::zeros([0, 3], DType::F32).unwrap().to_string(), "tensor([], size=(0, 3))");
        assert_eq!(Tensor::zeros([2, 0, 3], DType::F64).unwrap().to_string(), "tensor([], size=(2, 0, 3), dtype=f64)");
        assert_eq!(Tensor::zeros([0], DType::I64).unwrap().to_string(), "tensor([], dtype=i64)");
        // A suffix that does not fit on the last line goes on its own line.
        let x = Tensor::arange(0.0, 40.0, 1.0, DType::F64).unwrap().mul_scalar(1.0 / 3.0).unwrap();
        let expected = "tensor([ 0.0000,  0.3333,  0.6667,  1.0000,  1.3333,  1.6667,  2.0000,  2.3333,\n         \
                        2.6667,  3.0000,  3.3333,  3.6667,  4.0000,  4.3333,  4.6667,  5.0000,\n         \
                        5.3333,  5.6667,  6.0000,  6.3333,  6.6667,  7.0000,  7.3333,  7.6667,\n         \
                        8.0000,  8.3333,  8.6667,  9.0000,  9.3333,  9.6667, 10.0000, 10.3333,\n        \
                        10.6667, 11.0000, 11.3333, 11.6667, 12.0000, 12.3333, 12.6667, 13.0000],\n       \
                        dtype=f64)";
        assert_eq!(x.to_string(), expected);
        // Autograd suffixes.
        let v = Var::new(t64(&[1., 2., 3., 4.], &[2, 2]));
        assert_eq!(v.as_tensor().to_string(), "tensor([[1., 2.],\n        [3., 4.]], dtype=f64, requires_grad=True)");
        assert_eq!(v.mul_scalar(2.0).unwrap().to_string(), "tensor([[2., 4.],\n        [6., 8.]], dtype=f64, grad_fn=<AffineBackward>)");
    }

    #[test]
    fn display_summarised() {
        let x = Tensor::arange(0.0, 2000.0, 1.0, DType::F32).unwrap();
        assert_eq!(x.to_string(), "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n        1.9990e+03])");
        assert_eq!(Tensor::arange(0.0, 1001.0, 1.0, DType::I64).unwrap().to_string(), "tensor([   0,    1,    2,  ...,  998,  999, 1000])");
        let x = Tensor::arange(0.0, 20000.0, 1.0, DType::I64).unwrap().reshape([2, 100, 100]).unwrap();
        let expected = "tensor([[[    0,     1,     2,  ...,    97,    98,    99],
         [  100,   101,   102,  ...,   197,   198,   199],
         [  200,   201,   202,  ...,   297,   298,   299],
         ...,
         [ 9700,  9701,  9702,  ...,  9797,  9798,  9799],
         [ 9800,  9801,  9802,  ...,  9897,  9898,  9899],
         [ 9900,  9901,  9902,  ...,  9997,  9998,  9999]],

        [[10000, 10001, 10002,  ..., 10097, 10098, 10099],
         [10100, 10101, 10102,  ..., 10197, 10198, 10199],
         [10200, 10201, 10202,  ..., 10297, 10298, 10299],
         ...,
         [19700, 19701, 19702,  ..., 19797, 19798, 19799],
         [19800, 19801, 19802,  ..., 19897, 19898, 19899],
         [19900, 19901, 19902,  ..., 19997, 19998, 19999]]])";
        assert_eq!(x.to_string(), expected);
        // A transposed (non-contiguous) view prints its logical order.
        let t = Tensor::arange(0.0, 6.0, 1.0, DType::I64).unwrap().reshape([2, 3]).unwrap().t().unwrap();
        assert_eq!(t.to_string(), "tensor([[0, 3],\n        [1, 4],\n        [2, 5]])");
    }
}
