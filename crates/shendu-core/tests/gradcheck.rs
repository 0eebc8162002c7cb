//! Table-driven gradient checks: every differentiable op against central finite differences in
//! f64, with a random seed gradient (so non-scalar outputs are checked as whole Jacobians), on
//! contiguous and non-contiguous inputs; second-order checks; proptests over random shapes; and a
//! registry test that fails when an op has no entry.
//!
//! Adding an op: one `case!` line in `table()` (op name, inputs, expression in `x[0], x[1], ..`).

mod common;

use common::*;
use proptest::prelude::*;
use shendu_core::{BatchNormActivation, DType, GradExt, Result, Tensor};

/// One row of the table.
struct Case {
    /// The `Op::name()` (or public composite) the row covers.
    op: &'static str,
    what: String,
    inputs: Vec<In>,
    f: Box<TestFn<'static>>,
    tol: Tol,
}

impl Case {
    fn tol(&mut self, eps: f64, rtol: f64, atol: f64) {
        self.tol = Tol { eps, rtol, atol };
    }
}

#[derive(Default)]
struct Table(Vec<Case>);

impl Table {
    fn add(&mut self, op: &'static str, what: String, inputs: Vec<In>, f: impl Fn(&[Tensor]) -> Result<Tensor> + 'static) -> &mut Case {
        self.0.push(Case { op, what, inputs, f: Box::new(f), tol: Tol::default() });
        self.0.last_mut().expect("just pushed")
    }
}

/// `case!(t, "op", [inputs..], |x| expression)`; the expression doubles as the row's label.
macro_rules! case {
    ($t:expr, $op:literal, [$($i:expr),* $(,)?], |$x:ident| $body:expr) => {
        $t.add($op, stringify!($body).to_string(), vec![$($i),*], move |$x: &[Tensor]| $body)
    };
}

const S: &[usize] = &[2, 3, 4];

fn unary_cases(t: &mut Table) {
    case!(t, "neg", [n(S)], |x| x[0].neg());
    case!(t, "neg", [n(&[3, 4]).t()], |x| x[0].neg());
    case!(t, "abs", [away(S)], |x| x[0].abs());
    case!(t, "abs", [away(&[3, 5]).narrowed()], |x| x[0].abs());
    case!(t, "exp", [n(S)], |x| x[0].exp());
    case!(t, "log", [pos(S)], |x| x[0].log());
    case!(t, "log", [pos(&[4, 3]).t()], |x| x[0].log());
    case!(t, "sqrt", [pos(S)], |x| x[0].sqrt());
    case!(t, "rsqrt", [pos(S)], |x| x[0].rsqrt());
    case!(t, "sqr", [n(S)], |x| x[0].sqr());
    case!(t, "recip", [away(S)], |x| x[0].recip());
    case!(t, "sin", [n(S)], |x| x[0].sin());
    case!(t, "cos", [n(S)], |x| x[0].cos());
    case!(t, "tanh", [uni(S, -3.0, 3.0)], |x| x[0].tanh());
    case!(t, "tanh", [n(&[3, 4]).narrowed()], |x| x[0].tanh());
    case!(t, "sigmoid", [uni(S, -6.0, 6.0)], |x| x[0].sigmoid());
    case!(t, "erf", [n(S)], |x| x[0].erf());
    case!(t, "relu", [away(S)], |x| x[0].relu());
    case!(t, "relu", [away(S).expanded()], |x| x[0].relu());
    case!(t, "leaky_relu", [away(S)], |x| x[0].leaky_relu(0.1));
    case!(t, "leaky_relu", [away(&[3, 4]).t()], |x| x[0].leaky_relu(0.01));
    case!(t, "relu6", [avoid(S, -2.0, 8.0, &[0.0, 6.0])], |x| x[0].relu6());
    case!(t, "elu", [away(S)], |x| x[0].elu(1.0));
    case!(t, "elu", [away(S)], |x| x[0].elu(0.5));
    case!(t, "selu", [away(S)], |x| x[0].selu());
    case!(t, "gelu", [uni(S, -4.0, 4.0)], |x| x[0].gelu());
    case!(t, "silu", [uni(S, -5.0, 5.0)], |x| x[0].silu());
    case!(t, "silu", [n(&[3, 4]).t()], |x| x[0].swish());
    case!(t, "mish", [uni(S, -5.0, 5.0)], |x| x[0].mish());
    case!(t, "mish", [avoid(S, 15.0, 30.0, &[20.0])], |x| x[0].mish());
    case!(t, "softplus", [uni(S, -5.0, 5.0)], |x| x[0].softplus());
    // Both sides of PyTorch's threshold (20), where softplus becomes the identity.
    case!(t, "softplus", [avoid(S, 10.0, 30.0, &[20.0])], |x| x[0].softplus());
    case!(t, "softplus", [uni(S, -30.0, -10.0)], |x| x[0].softplus());
    case!(t, "clamp", [avoid(S, -2.0, 2.0, &[-0.5, 0.7])], |x| x[0].clamp(-0.5, 0.7));
    case!(t, "affine", [n(S)], |x| x[0].affine(2.5, -1.0));
    case!(t, "affine", [n(S).narrowed()], |x| x[0].add_scalar(3.0)?.mul_scalar(-0.5));
    case!(t, "powf", [pos(S)], |x| x[0].powf(2.5));
    case!(t, "powf", [pos(S)], |x| x[0].powf(-1.5));
    case!(t, "powf", [n(S)], |x| x[0].powf(3.0));
    case!(t, "powf", [pos(&[4, 3]).t()], |x| x[0].powf(0.5));
    // No gradient: the check confirms it is zero (and that backward copes with `None`).
    case!(t, "step", [away(S)], |x| x[0].g_step()?.mul(&x[0]));
    case!(t, "sign", [away(S)], |x| x[0].sign()?.mul(&x[0]));
}

type BinFn = fn(&Tensor, &Tensor) -> Result<Tensor>;
type Maker = fn(&[usize]) -> In;

/// Every binary op with the broadcast patterns of the brief, plus a non-contiguous pair.
fn binary_cases(t: &mut Table) {
    let ops: [(&'static str, Maker, Maker, BinFn); 9] = [
        ("add", n, n, Tensor::add),
        ("sub", n, n, Tensor::sub),
        ("mul", n, n, Tensor::mul),
        ("div", n, pos, Tensor::div),
        ("div", n, |s| uni(s, -2.0, -0.5), Tensor::div),
        ("pow", pos, |s| uni(s, -2.0, 2.0), Tensor::pow),
        ("maximum", |s| grid(s, 0.1), |s| grid(s, 0.0), Tensor::maximum),
        ("minimum", |s| grid(s, 0.1), |s| grid(s, 0.0), Tensor::minimum),
        // The gate stays away from the band's edges, where the finite differences would jump.
        ("pass_within", n, |s| avoid(s, -2.0, 2.0, &[-0.5, 0.7]), |a, b| a.pass_within(b, -0.5, 0.7)),
    ];
    let pairs: [(&[usize], &[usize]); 5] = [(S, &[3, 1]), (S, &[1, 4]), (S, &[]), (&[3, 1], S), (&[1, 3, 1], &[2, 1, 4])];
    for (op, ma, mb, f) in ops {
        for (sa, sb) in pairs {
            t.add(op, format!("{op}({sa:?}, {sb:?})"), vec![ma(sa), mb(sb)], move |x| f(&x[0], &x[1]));
        }
        t.add(op, format!("{op}(transposed, narrowed)"), vec![ma(S).t(), mb(S).narrowed()], move |x| f(&x[0], &x[1]));
        t.add(op, format!("{op}(expanded, [4])"), vec![ma(S).expanded(), mb(&[4])], move |x| f(&x[0], &x[1]));
    }
    // The same var on both sides: gradients of both inputs must add up.
    case!(t, "mul", [n(S)], |x| x[0].mul(&x[0]));
    case!(t, "div", [pos(S)], |x| x[0].div(&x[0].sqr()?));
}

fn reduce_cases(t: &mut Table) {
    case!(t, "sum", [n(S)], |x| x[0].sum(&[0usize], false));
    case!(t, "sum", [n(S)], |x| x[0].sum(&[1usize], true));
    case!(t, "sum", [n(S)], |x| x[0].sum(&[-1isize], false));
    case!(t, "sum", [n(S)], |x| x[0].sum(&[0usize, 2], true));
    case!(t, "sum", [n(S)], |x| x[0].sum(&[2usize, 0], false));
    case!(t, "sum", [n(S)], |x| x[0].sum_all());
    case!(t, "sum", [n(S).t()], |x| x[0].sum(&[0usize], false));
    case!(t, "sum", [n(S).expanded()], |x| x[0].sum(&[2usize], true));
    case!(t, "mean", [n(S)], |x| x[0].mean(&[1usize], false));
    case!(t, "mean", [n(S)], |x| x[0].mean(&[0usize, 1], true));
    case!(t, "mean", [n(S).narrowed()], |x| x[0].mean_all());
    case!(t, "max", [distinct(S)], |x| x[0].max(&[1usize], false));
    case!(t, "max", [distinct(S)], |x| x[0].max(&[0usize, 2], true));
    case!(t, "max", [distinct(S)], |x| x[0].max(&[-1isize], true));
    case!(t, "max", [distinct(S)], |x| x[0].max_all());
    case!(t, "max", [distinct(S).t()], |x| x[0].max(&[2usize], false));
    case!(t, "min", [distinct(S)], |x| x[0].min(&[0usize], false));
    case!(t, "min", [distinct(S)], |x| x[0].min(&[1usize, 2], true));
    case!(t, "min", [distinct(S).narrowed()], |x| x[0].min(&[2usize], false));
    case!(t, "min", [distinct(S)], |x| x[0].min_all());
    case!(t, "var", [n(S)], |x| x[0].var(&[1usize], false, 1));
    case!(t, "var", [n(S)], |x| x[0].var(&[0usize, 2], true, 0));
    case!(t, "var", [n(S).t()], |x| x[0].var(&[2usize], false, 1));
    case!(t, "std", [n(S)], |x| x[0].std(&[2usize], false, 1));
    case!(t, "std", [n(S)], |x| x[0].std(&[0usize, 1], true, 0));
    case!(t, "logsumexp", [n(S)], |x| x[0].logsumexp(&[2usize], false));
    case!(t, "logsumexp", [n(S)], |x| x[0].logsumexp(&[0usize, 1], true));
    case!(t, "logsumexp", [n(S).narrowed()], |x| x[0].logsumexp(&[-1isize], true));
}

fn softmax_matmul_cases(t: &mut Table) {
    for d in 0..3usize {
        t.add("softmax", format!("softmax({d})"), vec![n(S)], move |x| x[0].softmax(d));
        t.add("log_softmax", format!("log_softmax({d})"), vec![n(S)], move |x| x[0].log_softmax(d));
    }
    case!(t, "softmax", [n(S)], |x| x[0].softmax(-1isize));
    case!(t, "softmax", [n(S).t()], |x| x[0].softmax(2usize));
    case!(t, "log_softmax", [n(S).narrowed()], |x| x[0].log_softmax(-1isize));
    case!(t, "log_softmax", [n(S).t()], |x| x[0].log_softmax(1usize));

    case!(t, "matmul", [n(&[3, 4]), n(&[4, 5])], |x| x[0].matmul(&x[1]));
    case!(t, "matmul", [n(&[2, 3, 4]), n(&[2, 4, 5])], |x| x[0].matmul(&x[1]));
    case!(t, "matmul", [n(&[2, 1, 3, 4]), n(&[5, 4, 2])], |x| x[0].matmul(&x[1]));
    case!(t, "matmul", [n(&[2, 3, 4]), n(&[4, 5])], |x| x[0].matmul(&x[1]));
    case!(t, "matmul", [n(&[3, 4]), n(&[2, 4, 5])], |x| x[0].matmul(&x[1]));
    case!(t, "matmul", [n(&[3, 4]).t(), n(&[4, 5]).t()], |x| x[0].matmul(&x[1]));
    case!(t, "matmul", [n(&[4, 3]), n(&[5, 4])], |x| x[0].t()?.matmul(&x[1].t()?));
    case!(t, "matmul", [n(&[2, 3, 4]).narrowed(), n(&[2, 4, 5]).t()], |x| x[0].matmul(&x[1]));
    case!(t, "matmul", [n(&[2, 3, 4]).expanded(), n(&[2, 4, 5])], |x| x[0].matmul(&x[1]));
    case!(t, "matmul", [n(&[3, 4])], |x| x[0].matmul(&x[0].t()?));
}

fn movement_cases(t: &mut Table) {
    case!(t, "reshape", [n(S)], |x| x[0].reshape([6, 4])?.sqr());
    case!(t, "reshape", [n(S).t()], |x| x[0].reshape([4, 6])?.sqr());
    case!(t, "reshape", [n(S).narrowed()], |x| x[0].reshape(24)?.sqr());
    case!(t, "permute", [n(S)], |x| x[0].permute(&[2, 0, 1])?.sqr());
    case!(t, "permute", [n(S).t()], |x| x[0].permute(&[1, 2, 0])?.exp());
    case!(t, "transpose", [n(S)], |x| x[0].transpose(0usize, 2)?.sqr());
    case!(t, "t", [n(&[3, 4])], |x| x[0].t()?.sqr());
    case!(t, "narrow", [n(S)], |x| x[0].narrow(1usize, 1, 2)?.sqr());
    case!(t, "narrow", [n(S)], |x| x[0].narrow(-1isize, 0, 3)?.narrow(0usize, 1, 1)?.sqr());
    case!(t, "narrow", [n(S).t()], |x| x[0].narrow(2usize, 1, 2)?.sqr());
    case!(t, "broadcast_as", [n(&[3, 1])], |x| x[0].broadcast_as(S.to_vec())?.sqr());
    case!(t, "broadcast_as", [n(&[4])], |x| x[0].expand(S.to_vec())?.sqr());
    case!(t, "squeeze", [n(&[2, 1, 4])], |x| x[0].squeeze(1usize)?.sqr());
    case!(t, "unsqueeze", [n(S)], |x| x[0].unsqueeze(1)?.sqr());
    case!(t, "unsqueeze", [n(S).t()], |x| x[0].unsqueeze(3)?.exp());
    case!(t, "flatten", [n(&[2, 3, 4, 2])], |x| x[0].flatten(1usize, 2)?.sqr());
    case!(t, "flatten", [n(S).t()], |x| x[0].flatten_all()?.sqr());
    case!(t, "contiguous", [n(S).t()], |x| x[0].contiguous()?.sqr());
    case!(t, "copy", [n(S).narrowed()], |x| x[0].copy()?.sqr());
    case!(t, "sum_to", [n(S)], |x| x[0].sqr()?.sum_to([3, 1]));
    // A linear round trip through a narrower float: the step must dwarf the rounding.
    case!(t, "to_dtype", [n(S)], |x| x[0].to_dtype(DType::F32)?.to_dtype(DType::F64)).tol(1e-2, 1e-4, 1e-4);
    case!(t, "to_dtype", [n(S).t()], |x| x[0].to_dtype(DType::BF16)?.to_dtype(DType::F64)).tol(0.1, 2e-2, 2e-2);
    // The adjoint ops backward rules use, reachable through `GradExt`.
    let like = |dims: &[usize]| Tensor::zeros(dims.to_vec(), DType::F64);
    case!(t, "reshape_like", [n(S)], |x| x[0].g_reshape_like(&like(&[4, 6])?)?.sqr());
    case!(t, "broadcast_like", [n(&[3, 1])], |x| x[0].g_broadcast_like(&like(S)?)?.sqr());
    case!(t, "sum_to_like", [n(S)], |x| x[0].sqr()?.g_sum_to_like(&like(&[1, 4])?));
    case!(t, "embed", [n(&[2, 2, 4])], |x| x[0].g_embed(&like(&[2, 5, 4])?, 1, 2)?.exp());
    case!(t, "embed", [n(&[2, 3, 4]).t()], |x| x[0].g_embed(&like(&[2, 3, 7])?, 2, 3)?.exp());

    // ---- slots for ops being written on other branches (add after merging) ----------------
    // index_select / gather / scatter_add: the index tensor is an i64 constant made inside the
    // closure (only float inputs are differentiated); cat (3 inputs, one transposed); pad;
    // where_cond (mask from a constant, values `n`).
}

/// Convolution, pooling and upsampling (wt-A). The backward-only ops (weight gradient, max-pool
/// scatter/gather, the adjoints of the averages and resizes) are differentiable too and get rows
/// through `apply`; max pooling uses `distinct` inputs so no window has a tie.
fn conv_pool_cases(t: &mut Table) {
    use shendu_core::autograd::apply;
    use shendu_core::ops::conv::{Conv2dWeightGrad, ConvSpec};
    use shendu_core::ops::pool::{AvgPool2dBackward, AvgWindows, MaxPool2dGather, MaxPool2dScatter, PoolSpec};
    use shendu_core::ops::upsample::{Interp, Upsample2dBackward};
    use shendu_core::{Conv2dParams, ConvTranspose2dParams, Padding};
    let p = Conv2dParams::default();
    let tp = ConvTranspose2dParams::default();
    let like = |dims: &[usize]| Tensor::zeros(dims.to_vec(), DType::F64);
    case!(t, "conv2d", [n(&[2, 4, 7, 7]), n(&[6, 2, 3, 3])], |x| x[0]
        .conv2d(&x[1], &p.with_groups(2).with_padding(Padding::Same).with_stride(2)));
    case!(t, "conv2d", [n(&[1, 3, 6, 5]).t(), n(&[4, 3, 2, 3])], |x| x[0]
        .conv2d(&x[1], &p.with_padding(Padding::explicit(1, 0, 2, 1)).with_dilation(2)));
    case!(t, "conv2d", [n(&[2, 3, 5, 6]), n(&[6, 1, 3, 3]).t()], |x| x[0].conv2d(&x[1], &p.with_pad(1).with_groups(3)));
    case!(t, "conv2d", [n(&[1, 16, 4, 5]), n(&[16, 16, 3, 3])], |x| x[0].conv2d(&x[1], &p.with_pad(1)));
    case!(t, "conv2d", [n(&[2, 5, 3, 4]).narrowed(), n(&[3, 5, 1, 1])], |x| x[0].conv2d(&x[1], &p));
    case!(t, "conv2d", [n(&[2, 4, 9]), n(&[6, 2, 3])], |x| x[0].conv1d(&x[1], 2, Padding::horizontal(1, 2), 1, 2));
    case!(t, "conv_transpose2d", [n(&[1, 4, 3, 4]), n(&[4, 3, 3, 3])], |x| x[0]
        .conv_transpose2d(&x[1], &tp.with_stride(2).with_pad(1).with_output_padding(1, 0)));
    case!(t, "conv_transpose2d", [n(&[2, 4, 3, 3]).t(), n(&[4, 1, 2, 2])], |x| x[0]
        .conv_transpose2d(&x[1], &tp.with_groups(2).with_dilation(2).with_output_padding(1, 1)));
    let spec = ConvSpec { stride: (2, 2), pads: [1, 1, 1, 0], dilation: (1, 1), groups: 1 };
    case!(t, "conv2d_weight_grad", [n(&[2, 3, 5, 6]), n(&[2, 4, 3, 3])], |x| apply(
        Conv2dWeightGrad { spec, kernel: (3, 3) },
        &[&x[0], &x[1]]
    ));
    case!(t, "max_pool2d", [distinct(&[2, 2, 5, 6])], |x| x[0].max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), true));
    case!(t, "max_pool2d", [distinct(&[1, 2, 6, 5]).t()], |x| x[0].max_pool2d((3, 3), (2, 1), Padding::symmetric(1), (1, 2), false));
    let ps = PoolSpec { kernel: (3, 2), stride: (2, 2), pads: [1, 1, 0, 1], dilation: (1, 1), ceil_mode: false };
    // [1, 2, 5, 6] pooled: rows (5 + 2 - 3)/2 + 1 = 3, columns (6 + 1 - 2)/2 + 1 = 3
    case!(t, "max_pool2d_backward", [distinct(&[1, 2, 5, 6]), n(&[1, 2, 3, 3])], |x| apply(MaxPool2dScatter { spec: ps }, &[&x[0], &x[1]]));
    case!(t, "max_pool2d_gather", [distinct(&[1, 2, 5, 6]), n(&[1, 2, 5, 6])], |x| apply(MaxPool2dGather { spec: ps }, &[&x[0], &x[1]]));
    case!(t, "avg_pool2d", [n(&[2, 2, 5, 6])], |x| x[0].avg_pool2d((3, 3), (2, 2), Padding::symmetric(1), true, true));
    case!(t, "avg_pool2d", [n(&[1, 2, 6, 5]).t()], |x| x[0].avg_pool2d((2, 3), (1, 2), Padding::explicit(0, 1, 1, 0), false, false));
    case!(t, "adaptive_avg_pool2d", [n(&[2, 2, 5, 7])], |x| x[0].adaptive_avg_pool2d((3, 4)));
    case!(t, "adaptive_avg_pool2d", [n(&[1, 3, 4, 5]).narrowed()], |x| x[0].global_avg_pool2d());
    let aw = AvgWindows::Pool(PoolSpec { kernel: (3, 3), stride: (2, 2), pads: [1, 1, 1, 1], dilation: (1, 1), ceil_mode: true }, false);
    case!(t, "avg_pool2d_backward", [n(&[1, 2, 3, 4])], |x| apply(AvgPool2dBackward { windows: aw }, &[&x[0], &like(&[1, 2, 5, 6])?]));
    case!(t, "avg_pool2d_backward", [n(&[1, 2, 4, 3])], |x| apply(
        AvgPool2dBackward { windows: AvgWindows::Adaptive(4, 3) },
        &[&x[0], &like(&[1, 2, 6, 5])?]
    ));
    case!(t, "upsample_nearest2d", [n(&[2, 2, 3, 4])], |x| x[0].upsample_nearest2d((5, 9)));
    case!(t, "upsample_bilinear2d", [n(&[1, 2, 3, 4]).t()], |x| x[0].upsample_bilinear2d((7, 5), true));
    case!(t, "upsample_bilinear2d", [n(&[1, 2, 4, 3])], |x| x[0].upsample_bilinear2d((3, 8), false));
    let up = |mode| Upsample2dBackward { size: (5, 7), mode };
    case!(t, "upsample_nearest2d_backward", [n(&[1, 2, 5, 7])], |x| apply(up(Interp::Nearest), &[&x[0], &like(&[1, 2, 3, 4])?]));
    case!(t, "upsample_bilinear2d_backward", [n(&[1, 2, 5, 7])], |x| apply(
        up(Interp::Bilinear { align_corners: false }),
        &[&x[0], &like(&[1, 2, 3, 4])?]
    ));
}

/// Manipulation ops (wt-B): index tensors and masks are constants made inside the closures.
fn manipulation_cases(t: &mut Table) {
    use shendu_core::autograd::apply;
    use shendu_core::ops::{indexing::IndexAddLike, pad::PadBackward};
    use shendu_core::PadMode;
    let ix = |v: &[i64], s: &[usize]| Tensor::from_slice(v, s.to_vec());
    let mask = |v: &[u8], s: &[usize]| Tensor::from_slice(v, s.to_vec());
    let like = |dims: &[usize]| Tensor::zeros(dims.to_vec(), DType::F64);
    case!(t, "index_select", [n(S)], |x| x[0].index_select(1, &ix(&[2, 0, 2], &[3])?));
    case!(t, "index_select", [n(&[3, 4]).t()], |x| x[0].index_select(-1, &ix(&[3, 3, 1], &[3])?));
    case!(t, "index_add", [n(S)], |x| apply(IndexAddLike { dim: 1 }, &[&x[0], &ix(&[1, 1, 0], &[3])?, &like(&[2, 2, 4])?])?.sqr());
    case!(t, "gather", [n(&[3, 4])], |x| x[0].gather(1, &ix(&[0, 0, 3, 2, 1, 1], &[3, 2])?));
    case!(t, "gather", [n(&[3, 4]).t()], |x| x[0].gather(0, &ix(&[2, 2, 0, 1], &[1, 4])?));
    case!(t, "scatter_add", [n(&[3, 4]), n(&[2, 5])], |x| x[0].scatter_add(0, &ix(&[0, 2, 2, 1, 1, 1, 0, 0], &[2, 4])?, &x[1]));
    case!(t, "scatter_add", [n(&[3, 4]).narrowed(), n(&[3, 2]).t()], |x| x[0].scatter_add(1, &ix(&[3, 3, 0, 1, 2, 3], &[3, 2])?, &x[1]));
    case!(t, "cat", [n(&[2, 3]), n(&[2, 2]).t(), n(&[2, 1])], |x| Tensor::cat(&[&x[0], &x[1], &x[2]], 1));
    case!(t, "cat", [n(S), n(S).narrowed()], |x| Tensor::stack(&[&x[0], &x[1]], -1));
    case!(t, "pad", [n(S)], |x| x[0].pad(&[(2, 1), (1, 2)], PadMode::Reflect));
    case!(t, "pad", [n(&[3, 4]).t()], |x| x[0].pad(&[(3, 2)], PadMode::Replicate));
    case!(t, "pad", [n(S).narrowed()], |x| x[0].pad(&[(1, 0), (0, 2), (1, 1)], PadMode::Constant(0.5)));
    case!(t, "pad_backward", [n(&[2, 6])], |x| apply(
        PadBackward { pads: vec![(2, 1)], mode: PadMode::Reflect },
        &[&x[0], &like(&[2, 3])?]
    )?
    .sqr());
    case!(t, "where_cond", [n(&[2, 3]), n(&[3])], |x| mask(&[1, 0, 1, 1, 0, 0], &[2, 3])?.where_cond(&x[0], &x[1]));
    case!(t, "where_cond", [n(&[2, 1]), n(&[2, 3]).t()], |x| mask(&[0, 1, 1], &[3])?.where_cond(&x[0], &x[1]));
    case!(t, "masked_fill", [n(&[3, 4]).t()], |x| x[0].masked_fill(&mask(&[1, 0, 0, 1], &[4])?, -2.0));
}

fn table() -> Vec<Case> {
    let mut t = Table::default();
    unary_cases(&mut t);
    binary_cases(&mut t);
    reduce_cases(&mut t);
    softmax_matmul_cases(&mut t);
    movement_cases(&mut t);
    manipulation_cases(&mut t);
    conv_pool_cases(&mut t);
    // New rows go last: the inputs come from one seeded stream, and rows added earlier would
    // shift every later row's values.
    norm_cases(&mut t);
    t.0
}

fn norm_cases(t: &mut Table) {
    case!(t, "batch_norm", [n(&[3, 4, 2, 3]), n(&[4]), n(&[4])], |x| x[0].batch_norm_train(&x[1], &x[2], 1e-5));
    case!(t, "batch_norm", [n(&[5, 3]), n(&[3]), n(&[3])], |x| x[0].batch_norm_train(&x[1], &x[2], 1e-3));
    case!(t, "batch_norm", [n(&[2, 3, 4]).t(), n(&[3]), n(&[3])], |x| x[0].batch_norm_train(&x[1], &x[2], 0.1));
    // The fused activations: scaled and shifted so that every channel has values on both sides
    // of each kink (ReLU6's 6 included), and a transposed input for the strided path.
    let wide = |x: &[Tensor], act| x[0].batch_norm_act(&x[1].affine(3.0, 0.5)?, &x[2].affine(2.0, 1.0)?, 1e-5, act);
    case!(t, "batch_norm_relu", [n(&[3, 4, 2, 3]), n(&[4]), n(&[4])], |x| wide(x, BatchNormActivation::Relu));
    case!(t, "batch_norm_relu6", [n(&[3, 4, 2, 3]), n(&[4]), n(&[4])], |x| wide(x, BatchNormActivation::Relu6));
    case!(t, "batch_norm_leaky_relu", [n(&[3, 4, 2, 3]), n(&[4]), n(&[4])], |x| wide(x, BatchNormActivation::Leaky(0.1)));
    case!(t, "batch_norm_relu", [n(&[2, 3, 4]).t(), n(&[3]), n(&[3])], |x| wide(x, BatchNormActivation::Relu));
    case!(t, "batch_norm_leaky_relu", [n(&[6, 3]), n(&[3]), n(&[3])], |x| wide(x, BatchNormActivation::Leaky(0.2)));
}

/// [`gradcheck`] or [`gradgradcheck`].
type Checker = fn(&str, &[In], &TestFn<'_>, Tol, u64) -> std::result::Result<(), String>;

fn run_cases(cases: &[Case], check: Checker) {
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let what = format!("{} [{}] on {}", c.op, c.what, c.inputs.iter().map(In::describe).collect::<Vec<_>>().join(", "));
            check(&what, &c.inputs, &*c.f, c.tol, 1000 + i as u64).err()
        })
        .collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn gradients_match_finite_differences() {
    run_cases(&table(), gradcheck);
}

/// The harness itself must catch a wrong gradient: detaching part of the function makes the
/// analytic gradient miss a term that the finite differences see.
#[test]
fn harness_detects_wrong_gradients() {
    let wrong = |x: &[Tensor]| x[0].detach().sqr()?.add(&x[0]);
    assert!(gradcheck("detached sqr", &[n(S)], &wrong, Tol::default(), 1).is_err());
    let wrong2 = |x: &[Tensor]| x[0].sqr()?.mul(&x[0].detach());
    assert!(gradgradcheck("detached cube", &[n(S)], &wrong2, Tol::default(), 1).is_err());
    let right = |x: &[Tensor]| x[0].sqr()?.mul(&x[0]);
    assert!(gradgradcheck("cube", &[n(S)], &right, Tol::default(), 1).is_ok());
}

// ---- registry -----------------------------------------------------------------------------

/// Every `Op::name()` today. The registry test also discovers names from the source, so a new
/// op fails it even if nobody updates this list.
const OP_NAMES: &[&str] = &[
    "batch_norm",
    "batch_norm_relu",
    "batch_norm_relu6",
    "batch_norm_leaky_relu",
    "batch_norm_param_grad",
    "batch_norm_input_grad",
    "neg",
    "abs",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "sqr",
    "recip",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "erf",
    "relu",
    "leaky_relu",
    "relu6",
    "elu",
    "selu",
    "gelu",
    "silu",
    "mish",
    "softplus",
    "clamp",
    "affine",
    "powf",
    "step",
    "sign",
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "maximum",
    "minimum",
    "pass_within",
    "sum",
    "max",
    "min",
    "softmax",
    "log_softmax",
    "matmul",
    "reshape",
    "reshape_like",
    "permute",
    "narrow",
    "embed",
    "broadcast_as",
    "broadcast_like",
    "sum_to_like",
    "copy",
    "to_dtype",
];

/// Table names that are public methods built from other ops rather than ops of their own.
const COMPOSITES: &[&str] =
    &["mean", "var", "std", "logsumexp", "transpose", "t", "squeeze", "unsqueeze", "flatten", "contiguous", "sum_to"];

/// Ops deliberately without a row, each with the reason.
const EXEMPT: &[(&str, &str)] = &[
    ("eq", "comparison: a u8 mask, no gradient"),
    ("ne", "comparison: a u8 mask, no gradient"),
    ("lt", "comparison: a u8 mask, no gradient"),
    ("le", "comparison: a u8 mask, no gradient"),
    ("gt", "comparison: a u8 mask, no gradient"),
    ("ge", "comparison: a u8 mask, no gradient"),
    ("logical_not", "a u8 mask, no gradient"),
    ("batch_norm_param_grad", "batch_norm's backward, checked through batch_norm's rows; no second order"),
    ("batch_norm_input_grad", "batch_norm's backward, checked through batch_norm's rows; no second order"),
    ("batch_norm_infer", "inference only, no gradient: batch_norm_eval records composed ops when one is needed (tests/batch_norm_act.rs)"),
    ("batch_norm_stats", "batch_norm's statistics input: a constant of its rule, checked through batch_norm's rows"),
    ("is_nan", "a u8 mask, no gradient"),
    ("is_finite", "a u8 mask, no gradient"),
];

/// String literals inside every `fn name(..)` of the source files that implement `Op`.
fn discovered_op_names() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")), &mut files);
    let mut names = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f).expect("read source");
        if !src.contains("impl Op for") {
            continue;
        }
        // Test modules may define toy ops.
        let src = src.split("#[cfg(test)]").next().unwrap_or("");
        for (at, _) in src.match_indices("fn name(") {
            let Some(open) = src[at..].find('{').map(|o| at + o) else { continue };
            let mut depth = 0;
            let mut end = open;
            for (i, ch) in src[open..].char_indices() {
                depth += match ch {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                if depth == 0 {
                    end = open + i;
                    break;
                }
            }
            let body = &src[open..end];
            names.extend(body.split('"').skip(1).step_by(2).map(str::to_string));
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_op_has_a_gradcheck_entry() {
    let table = table();
    let covered: std::collections::BTreeSet<&str> = table.iter().map(|c| c.op).collect();
    let discovered = discovered_op_names();
    assert!(discovered.len() >= OP_NAMES.len(), "source scan found only {discovered:?}");
    let exempt: Vec<&str> = EXEMPT.iter().map(|e| e.0).collect();
    let mut missing: Vec<String> = OP_NAMES.iter().map(|s| s.to_string()).chain(discovered.iter().cloned()).collect();
    missing.retain(|op| !covered.contains(op.as_str()) && !exempt.contains(&op.as_str()));
    missing.dedup();
    assert!(missing.is_empty(), "ops without a gradcheck entry (add a `case!` row to tests/gradcheck.rs): {missing:?}");
    let unknown: Vec<&&str> =
        covered.iter().filter(|op| !OP_NAMES.contains(op) && !COMPOSITES.contains(op) && !discovered.iter().any(|d| d == *op)).collect();
    assert!(unknown.is_empty(), "table rows name unknown ops: {unknown:?}");
    eprintln!("{} gradcheck rows cover {} names; discovered ops: {discovered:?}", table.len(), covered.len());
}

// ---- second order -------------------------------------------------------------------------

#[test]
fn second_order_gradients_match_finite_differences() {
    let mut t = Table::default();
    case!(t, "tanh", [n(S)], |x| x[0].tanh());
    case!(t, "sigmoid", [n(S)], |x| x[0].sigmoid());
    case!(t, "exp", [n(S)], |x| x[0].exp());
    case!(t, "log", [pos(S)], |x| x[0].log());
    case!(t, "sqrt", [pos(S)], |x| x[0].sqrt());
    case!(t, "rsqrt", [pos(S)], |x| x[0].rsqrt());
    case!(t, "recip", [pos(S)], |x| x[0].recip());
    case!(t, "powf", [pos(S)], |x| x[0].powf(2.5));
    case!(t, "erf", [n(S)], |x| x[0].erf());
    case!(t, "gelu", [uni(S, -3.0, 3.0)], |x| x[0].gelu());
    case!(t, "silu", [uni(S, -3.0, 3.0)], |x| x[0].silu());
    case!(t, "mish", [uni(S, -3.0, 3.0)], |x| x[0].mish());
    case!(t, "softplus", [uni(S, -3.0, 3.0)], |x| x[0].softplus());
    case!(t, "elu", [away(S)], |x| x[0].elu(1.0));
    case!(t, "selu", [away(S)], |x| x[0].selu());
    case!(t, "relu", [away(S)], |x| x[0].relu()?.sqr());
    case!(t, "mul", [n(S), n(&[3, 1])], |x| x[0].mul(&x[1]));
    case!(t, "div", [n(S), pos(&[1, 4])], |x| x[0].div(&x[1]));
    case!(t, "pow", [pos(S), uni(&[4], -1.5, 1.5)], |x| x[0].pow(&x[1]));
    case!(t, "maximum", [grid(S, 0.1), grid(&[3, 1], 0.0)], |x| x[0].maximum(&x[1])?.sqr());
    case!(t, "pass_within", [n(S), avoid(S, -2.0, 2.0, &[-0.5, 0.7])], |x| x[0].pass_within(&x[1], -0.5, 0.7)?.sqr());
    case!(t, "softmax", [n(S)], |x| x[0].softmax(1usize));
    case!(t, "log_softmax", [n(S).t()], |x| x[0].log_softmax(0usize));
    case!(t, "matmul", [n(&[2, 3, 4]), n(&[4, 2])], |x| x[0].matmul(&x[1]));
    case!(t, "matmul", [n(&[3, 4])], |x| x[0].matmul(&x[0].t()?)?.tanh());
    case!(t, "max", [distinct(S)], |x| x[0].max(&[1usize], false)?.sqr());
    case!(t, "logsumexp", [n(S)], |x| x[0].logsumexp(&[0usize, 2], false));
    case!(t, "var", [n(S)], |x| x[0].var(&[2usize], true, 1));
    case!(t, "std", [n(S)], |x| x[0].std(&[1usize], false, 1));
    case!(t, "narrow", [n(S)], |x| x[0].narrow(1usize, 1, 2)?.exp()?.mean_all());
    // Convolutions are bilinear: the products make the second derivatives non-trivial.
    use shendu_core::{Conv2dParams, ConvTranspose2dParams, Padding};
    let cp = Conv2dParams::default();
    case!(t, "conv2d", [n(&[1, 4, 5, 6]), n(&[4, 2, 3, 3])], |x| x[0].conv2d(&x[1], &cp.with_stride(2).with_pad(1).with_groups(2))?.tanh());
    case!(t, "conv2d", [n(&[1, 2, 5, 5]), n(&[4, 1, 3, 3])], |x| x[0].conv2d(&x[1], &cp.with_pad(1).with_groups(2))?.tanh());
    case!(t, "conv_transpose2d", [n(&[1, 2, 3, 3]), n(&[2, 3, 2, 2])], |x| x[0]
        .conv_transpose2d(&x[1], &ConvTranspose2dParams::default().with_stride(2))?
        .tanh());
    case!(t, "max_pool2d", [distinct(&[1, 2, 4, 5])], |x| x[0].max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), true)?.sqr());
    case!(t, "avg_pool2d", [n(&[1, 2, 4, 5])], |x| x[0].avg_pool2d((2, 2), (1, 2), Padding::symmetric(1), false, false)?.sqr());
    case!(t, "upsample_bilinear2d", [n(&[1, 2, 3, 3])], |x| x[0].upsample_bilinear2d((4, 5), false)?.sqr());
    run_cases(&t.0, gradgradcheck);
}

// ---- proptests over random shapes ---------------------------------------------------------

type UnFn = fn(&Tensor) -> Result<Tensor>;

fn unary_ops() -> Vec<(Maker, UnFn)> {
    vec![
        (n, |x| x.exp()),
        (pos, |x| x.log()),
        (n, |x| x.tanh()),
        (n, |x| x.gelu()),
        (n, |x| x.mish()),
        (away, |x| x.relu()),
        (away, |x| x.leaky_relu(0.2)),
        (away, |x| x.abs()),
        (pos, |x| x.powf(1.7)),
        (n, |x| x.sigmoid()),
    ]
}

fn binary_ops() -> Vec<(Maker, Maker, BinFn)> {
    vec![
        (n, n, Tensor::add),
        (n, n, Tensor::sub),
        (n, n, Tensor::mul),
        (n, pos, Tensor::div),
        (pos, n, Tensor::pow),
        (|s| grid(s, 0.1), |s| grid(s, 0.0), Tensor::maximum),
        (|s| grid(s, 0.0), |s| grid(s, 0.1), Tensor::minimum),
    ]
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=5, 1..=4)
}

/// A non-contiguous view where the rank allows one.
fn with_view(i: In, view: u8) -> In {
    match view % 4 {
        1 if i.shape.len() >= 2 => i.t(),
        2 if !i.shape.is_empty() => i.narrowed(),
        3 if !i.shape.is_empty() => i.expanded(),
        _ => i,
    }
}

fn check(what: String, inputs: Vec<In>, f: impl Fn(&[Tensor]) -> Result<Tensor>) -> std::result::Result<(), TestCaseError> {
    let r = gradcheck(&what, &inputs, &f, Tol::default(), 7);
    prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    Ok(())
}

/// `n` cases, or `PROPTEST_CASES` when set (for longer hunts).
fn cases(n: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(n)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(48), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn prop_unary(s in shape(), op in 0usize..10, view in 0u8..4) {
        let (make, f) = unary_ops()[op];
        check(format!("unary #{op}"), vec![with_view(make(&s), view)], |x| f(&x[0]))?;
    }

    #[test]
    fn prop_broadcast_binary(s in shape(), ones in prop::collection::vec(any::<bool>(), 4), drop in 0usize..=4,
                             swap: bool, op in 0usize..7, view in 0u8..4) {
        let mut b: Vec<usize> = s.iter().zip(&ones).map(|(&d, &o)| if o { 1 } else { d }).collect();
        b.drain(..drop.min(b.len()));
        let (ma, mb, f) = binary_ops()[op];
        let (sa, sb) = if swap { (b, s) } else { (s, b) };
        let inputs = vec![with_view(ma(&sa), view), mb(&sb)];
        check(format!("binary #{op} {sa:?} {sb:?}"), inputs, |x| f(&x[0], &x[1]))?;
    }

    #[test]
    fn prop_reduce(s in shape(), mask in prop::collection::vec(any::<bool>(), 4), keep: bool, kind in 0usize..6,
                   view in 0u8..4) {
        let dims: Vec<usize> = (0..s.len()).filter(|&d| mask[d]).collect();
        let extreme = kind == 2 || kind == 3;
        let make = if extreme { distinct } else { n };
        // Expanded inputs repeat values, which would tie max/min.
        let view = if extreme && view % 4 == 3 { 0 } else { view };
        let d2 = dims.clone();
        let f = move |x: &[Tensor]| -> Result<Tensor> {
            match kind {
                0 => x[0].sum(&d2, keep),
                1 => x[0].mean(&d2, keep),
                2 => x[0].max(&d2, keep),
                3 => x[0].min(&d2, keep),
                4 => x[0].logsumexp(&d2, keep),
                _ => x[0].var(&d2, keep, 0),
            }
        };
        check(format!("reduce #{kind} dims {dims:?} keepdim {keep}"), vec![with_view(make(&s), view)], f)?;
    }

    #[test]
    fn prop_matmul(batch in prop::collection::vec(1usize..=3, 0..=2), ma in prop::collection::vec(any::<bool>(), 2),
                   mb in prop::collection::vec(any::<bool>(), 2), drop_a in 0usize..=2, drop_b in 0usize..=2,
                   m in 1usize..=5, k in 1usize..=5, nn in 1usize..=5, ta: bool, tb: bool) {
        let side = |mask: &[bool], drop: usize, last: [usize; 2], tr: bool| {
            let mut d: Vec<usize> = batch.iter().zip(mask).map(|(&b, &o)| if o { 1 } else { b }).collect();
            d.drain(..drop.min(d.len()));
            d.extend(last);
            let i = n(&d);
            if tr { i.t() } else { i }
        };
        let inputs = vec![side(&ma, drop_a, [m, k], ta), side(&mb, drop_b, [k, nn], tb)];
        let what = format!("matmul {} x {}", inputs[0].describe(), inputs[1].describe());
        check(what, inputs, |x| x[0].matmul(&x[1]))?;
    }

    #[test]
    fn prop_softmax(s in shape(), dim in 0usize..4, log: bool, view in 0u8..4) {
        let dim = dim % s.len();
        let f = move |x: &[Tensor]| if log { x[0].log_softmax(dim) } else { x[0].softmax(dim) };
        check(format!("softmax dim {dim} log {log}"), vec![with_view(n(&s), view)], f)?;
    }
}
