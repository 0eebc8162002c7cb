//! The ops of [`Tensor`] on graph nodes, under the same names.
//!
//! An op whose struct needs only its arguments (relu, add, matmul, ...) becomes a node holding
//! that very struct. An op whose struct depends on the input's shape (negative dims, `mean`'s
//! count, `conv2d`'s resolved padding) becomes a *late* node: a closure that builds the core op
//! structs once the session knows the shapes, on traced values, so both modes still share one
//! forward and one backward rule per op.

use std::sync::Arc;

use super::{Graph, Node, NodeKind, Traced};
use crate::autograd::{GradExt, GradOps, Op};
use crate::ops::batch_norm::{BatchNormActivation, BatchNormStats, BatchNormTrain};
use crate::ops::binary::Binary;
use crate::ops::concat::Cat;
use crate::ops::conv::{resolve_spec, Conv2d};
use crate::ops::copy::{Cast, CopyOp};
use crate::ops::matmul::Matmul;
use crate::ops::movement::{BroadcastAs, Narrow, Permute, Reshape};
use crate::ops::pad::Pad;
use crate::ops::pool::{AvgPool2d, AvgWindows, MaxPool2d, PoolSpec};
use crate::ops::reduce::{Reduce, ReduceKind};
use crate::ops::softmax::Softmax;
use crate::ops::unary::Unary;
use crate::{Conv2dParams, DType, Dim, Error, PadMode, Padding, Result, Shape};

/// Builds a shape-dependent op on traced inputs (see the module docs).
pub(crate) type LateFn = Arc<dyn Fn(&[&Traced]) -> Result<Traced> + Send + Sync>;

/// What an op node computes.
pub(crate) enum NodeOp {
    /// A core op struct, applied as is.
    Core(Arc<dyn super::GraphOp>),
    /// A shape-dependent op, built when shapes are known.
    Late { name: &'static str, f: LateFn },
}

impl NodeOp {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            NodeOp::Core(op) => op.name(),
            NodeOp::Late { name, .. } => name,
        }
    }
}

impl Graph {
    fn late(&self, name: &'static str, inputs: &[&Node], f: impl Fn(&[&Traced]) -> Result<Traced> + Send + Sync + 'static) -> Result<Node> {
        self.check_own(inputs, name)?;
        let kind = NodeKind::Op { op: NodeOp::Late { name, f: Arc::new(f) }, inputs: inputs.iter().map(|n| n.id).collect() };
        Ok(self.add(name, kind))
    }
}

fn dims_of(x: &Traced, dims: &[isize], op: &'static str) -> Result<Vec<usize>> {
    let shape = x.shape();
    let mut out = dims.iter().map(|&d| shape.dim_index(d, op)).collect::<Result<Vec<_>>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn all_dims(x: &Traced) -> Vec<usize> {
    (0..x.shape().rank()).collect()
}

fn reduced_count(x: &Traced, dims: &[usize]) -> usize {
    let shape = x.shape();
    dims.iter().map(|&d| shape.dims()[d]).product()
}

macro_rules! unary_nodes {
    ($($name:ident => $variant:expr;)*) => {
        impl Node {
            $(
                #[doc = concat!("[`Tensor::", stringify!($name), "`](crate::Tensor::", stringify!($name), ") as a graph node.")]
                pub fn $name(&self) -> Result<Node> {
                    self.graph.apply($variant, &[self])
                }
            )*
        }
    };
}

unary_nodes! {
    neg => Unary::Neg;
    abs => Unary::Abs;
    exp => Unary::Exp;
    log => Unary::Log;
    sqrt => Unary::Sqrt;
    rsqrt => Unary::Rsqrt;
    sqr => Unary::Sqr;
    recip => Unary::Recip;
    sin => Unary::Sin;
    cos => Unary::Cos;
    tanh => Unary::Tanh;
    sigmoid => Unary::Sigmoid;
    erf => Unary::Erf;
    relu => Unary::Relu;
    relu6 => Unary::Relu6;
    selu => Unary::Selu;
    gelu => Unary::Gelu;
    silu => Unary::Silu;
    swish => Unary::Silu;
    mish => Unary::Mish;
    softplus => Unary::Softplus;
    sign => Unary::Sign;
}

macro_rules! binary_nodes {
    ($($name:ident => $variant:expr;)*) => {
        impl Node {
            $(
                #[doc = concat!("[`Tensor::", stringify!($name), "`](crate::Tensor::", stringify!($name), ") as a graph node.")]
                pub fn $name(&self, rhs: &Node) -> Result<Node> {
                    self.graph.apply($variant, &[self, rhs])
                }
            )*
        }
    };
}

binary_nodes! {
    add => Binary::Add;
    sub => Binary::Sub;
    mul => Binary::Mul;
    div => Binary::Div;
    pow => Binary::Pow;
    maximum => Binary::Maximum;
    minimum => Binary::Minimum;
    matmul => Matmul;
}

impl Node {
    /// x for x > 0, else slope * x.
    pub fn leaky_relu(&self, slope: f64) -> Result<Node> {
        self.graph.apply(Unary::LeakyRelu(slope), &[self])
    }
    pub fn elu(&self, alpha: f64) -> Result<Node> {
        self.graph.apply(Unary::Elu(alpha), &[self])
    }
    pub fn clamp(&self, min: f64, max: f64) -> Result<Node> {
        if min > max || min.is_nan() || max.is_nan() {
            return Err(Error::invalid("clamp", format!("min {min} must not exceed max {max}")));
        }
        self.graph.apply(Unary::Clamp(min, max), &[self])
    }
    /// [`Tensor::pass_within`](crate::Tensor::pass_within) as a graph node.
    pub fn pass_within(&self, gate: &Node, lo: f64, hi: f64) -> Result<Node> {
        self.graph.apply(Binary::PassWithin { lo, hi }, &[self, gate])
    }
    /// x * mul + add.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Node> {
        self.graph.apply(Unary::Affine { mul, add }, &[self])
    }
    pub fn add_scalar(&self, v: f64) -> Result<Node> {
        self.affine(1.0, v)
    }
    pub fn mul_scalar(&self, v: f64) -> Result<Node> {
        self.affine(v, 0.0)
    }
    pub fn powf(&self, p: f64) -> Result<Node> {
        self.graph.apply(Unary::Powf(p), &[self])
    }

    fn reduce_late(&self, name: &'static str, kind: ReduceKind, dims: Option<Vec<isize>>, keepdim: bool, mean: bool) -> Result<Node> {
        self.graph.late(name, &[self], move |x| {
            let x = x[0];
            let dims = match &dims {
                Some(d) => dims_of(x, d, name)?,
                None => all_dims(x),
            };
            let n = reduced_count(x, &dims);
            let r = Traced::apply(Reduce { kind, dims, keepdim }, &[x])?;
            if mean {
                r.g_scale(1.0 / n as f64)
            } else {
                Ok(r)
            }
        })
    }

    /// Sum over `dims` (negative dims count from the back).
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Node> {
        self.reduce_late("sum", ReduceKind::Sum, Some(dims.to_vec()), keepdim, false)
    }
    pub fn sum_all(&self) -> Result<Node> {
        self.reduce_late("sum", ReduceKind::Sum, None, false, false)
    }
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Result<Node> {
        self.reduce_late("max", ReduceKind::Max, Some(dims.to_vec()), keepdim, false)
    }
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Node> {
        self.reduce_late("min", ReduceKind::Min, Some(dims.to_vec()), keepdim, false)
    }
    pub fn max_all(&self) -> Result<Node> {
        self.reduce_late("max", ReduceKind::Max, None, false, false)
    }
    pub fn min_all(&self) -> Result<Node> {
        self.reduce_late("min", ReduceKind::Min, None, false, false)
    }
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Node> {
        self.reduce_late("mean", ReduceKind::Sum, Some(dims.to_vec()), keepdim, true)
    }
    pub fn mean_all(&self) -> Result<Node> {
        self.reduce_late("mean", ReduceKind::Sum, None, false, true)
    }

    fn softmax_late<D: Dim + Send + Sync + 'static>(&self, dim: D, log: bool) -> Result<Node> {
        let name = if log { "log_softmax" } else { "softmax" };
        self.graph.late(name, &[self], move |x| {
            let dim = x[0].shape().dim_index(dim, name)?;
            Traced::apply(Softmax { dim, log }, &[x[0]])
        })
    }
    /// exp(x) / sum(exp(x)) along `dim`.
    pub fn softmax<D: Dim + Send + Sync + 'static>(&self, dim: D) -> Result<Node> {
        self.softmax_late(dim, false)
    }
    /// x - logsumexp(x) along `dim`.
    pub fn log_softmax<D: Dim + Send + Sync + 'static>(&self, dim: D) -> Result<Node> {
        self.softmax_late(dim, true)
    }

    /// Same elements, new shape.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Node> {
        self.graph.apply(Reshape(shape.into()), &[self])
    }
    /// All elements as one dim.
    pub fn flatten_all(&self) -> Result<Node> {
        self.graph.late("reshape", &[self], |x| {
            let n = x[0].shape().elem_count();
            Traced::apply(Reshape(Shape::from(n)), &[x[0]])
        })
    }
    /// Merges dims `start..=end` into one.
    pub fn flatten<D: Dim + Send + Sync + 'static>(&self, start: D, end: D) -> Result<Node> {
        self.graph.late("reshape", &[self], move |x| {
            let shape = x[0].shape();
            let (s, e) = (shape.dim_index(start, "flatten")?, shape.dim_index(end, "flatten")?);
            if s > e {
                return Err(Error::index("flatten", format!("start dim {s} is after end dim {e} for shape {shape}")));
            }
            let d = shape.dims();
            let mut dims = d[..s].to_vec();
            dims.push(d[s..=e].iter().product());
            dims.extend_from_slice(&d[e + 1..]);
            Traced::apply(Reshape(Shape::new(dims)), &[x[0]])
        })
    }
    pub fn permute(&self, perm: &[usize]) -> Result<Node> {
        self.graph.apply(Permute { perm: perm.to_vec() }, &[self])
    }
    /// Swaps two dims.
    pub fn transpose<D: Dim + Send + Sync + 'static>(&self, d0: D, d1: D) -> Result<Node> {
        self.graph.late("permute", &[self], move |x| {
            let shape = x[0].shape();
            let (a, b) = (shape.dim_index(d0, "transpose")?, shape.dim_index(d1, "transpose")?);
            let mut perm: Vec<usize> = (0..shape.rank()).collect();
            perm.swap(a, b);
            x[0].g_permute(&perm)
        })
    }
    /// Swaps the last two dims.
    pub fn t(&self) -> Result<Node> {
        self.graph.late("permute", &[self], |x| x[0].g_t())
    }
    /// `len` elements of `dim` from `start`.
    pub fn narrow<D: Dim + Send + Sync + 'static>(&self, dim: D, start: usize, len: usize) -> Result<Node> {
        self.graph.late("narrow", &[self], move |x| {
            let dim = x[0].shape().dim_index(dim, "narrow")?;
            Traced::apply(Narrow { dim, start, len }, &[x[0]])
        })
    }
    /// Repeats size-1 dims to reach `shape`.
    pub fn broadcast_as(&self, shape: impl Into<Shape>) -> Result<Node> {
        self.graph.apply(BroadcastAs(shape.into()), &[self])
    }
    /// Inserts a size-1 dim at `d`.
    pub fn unsqueeze(&self, d: usize) -> Result<Node> {
        self.graph.late("reshape", &[self], move |x| {
            let mut dims = x[0].shape().dims().to_vec();
            if d > dims.len() {
                return Err(Error::index("unsqueeze", format!("position {d} is out of range for shape {}", x[0].shape())));
            }
            dims.insert(d, 1);
            Traced::apply(Reshape(Shape::new(dims)), &[x[0]])
        })
    }
    /// Removes dim `d`, which must have size 1.
    pub fn squeeze<D: Dim + Send + Sync + 'static>(&self, d: D) -> Result<Node> {
        self.graph.late("reshape", &[self], move |x| {
            let shape = x[0].shape();
            let d = shape.dim_index(d, "squeeze")?;
            if shape.dims()[d] != 1 {
                return Err(Error::shape("squeeze", format!("dimension {d} of {shape} has size {}, not 1", shape.dims()[d])));
            }
            let mut dims = shape.dims().to_vec();
            dims.remove(d);
            Traced::apply(Reshape(Shape::new(dims)), &[x[0]])
        })
    }
    /// A contiguous copy.
    pub fn contiguous(&self) -> Result<Node> {
        self.graph.apply(CopyOp, &[self])
    }
    /// Converts to `dtype`.
    pub fn to_dtype(&self, dtype: DType) -> Result<Node> {
        self.graph.apply(Cast(dtype), &[self])
    }
    /// 2-D convolution (see [`Tensor::conv2d`](crate::Tensor::conv2d)).
    pub fn conv2d(&self, weight: &Node, params: &Conv2dParams) -> Result<Node> {
        let params = *params;
        self.graph.late("conv2d", &[self, weight], move |x| {
            let spec = resolve_spec("conv2d", &x[0].shape(), &x[1].shape(), &params)?;
            Traced::apply(Conv2d { spec }, &[x[0], x[1]])
        })
    }
    /// Max pooling (see [`Tensor::max_pool2d`](crate::Tensor::max_pool2d)).
    pub fn max_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: Padding,
        dilation: (usize, usize),
        ceil_mode: bool,
    ) -> Result<Node> {
        self.graph.late("max_pool2d", &[self], move |x| {
            let spec = PoolSpec::new("max_pool2d", &x[0].shape(), kernel, stride, padding, dilation, ceil_mode)?;
            Traced::apply(MaxPool2d { spec }, &[x[0]])
        })
    }
    /// Average pooling (see [`Tensor::avg_pool2d`](crate::Tensor::avg_pool2d)).
    pub fn avg_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: Padding,
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> Result<Node> {
        self.graph.late("avg_pool2d", &[self], move |x| {
            let spec = PoolSpec::new("avg_pool2d", &x[0].shape(), kernel, stride, padding, (1, 1), ceil_mode)?;
            Traced::apply(AvgPool2d { windows: AvgWindows::Pool(spec, count_include_pad) }, &[x[0]])
        })
    }
    /// Average pooling to an `(oh, ow)` output (see
    /// [`Tensor::adaptive_avg_pool2d`](crate::Tensor::adaptive_avg_pool2d)).
    pub fn adaptive_avg_pool2d(&self, output_size: (usize, usize)) -> Result<Node> {
        self.graph.apply(AvgPool2d { windows: AvgWindows::Adaptive(output_size.0, output_size.1) }, &[self])
    }
    /// The mean over each channel plane: `[N, C, H, W] -> [N, C, 1, 1]`.
    pub fn global_avg_pool2d(&self) -> Result<Node> {
        self.adaptive_avg_pool2d((1, 1))
    }
    /// Pads the trailing dims (see [`Tensor::pad`](crate::Tensor::pad): `pads[0]` is the last
    /// dim's `(before, after)`).
    pub fn pad(&self, pads: &[(usize, usize)], mode: PadMode) -> Result<Node> {
        self.graph.apply(Pad { pads: pads.to_vec(), mode }, &[self])
    }
    /// Joins nodes along an existing `dim` (see [`Tensor::cat`](crate::Tensor::cat)).
    pub fn cat<D: Dim + Send + Sync + 'static>(nodes: &[&Node], dim: D) -> Result<Node> {
        let Some(first) = nodes.first() else {
            return Err(Error::invalid("cat", "needs at least one node, got an empty list"));
        };
        first.graph.late("cat", nodes, move |x| {
            let dim = x[0].shape().dim_index(dim, "cat")?;
            Traced::apply(Cat { dim }, x)
        })
    }
    /// Training-mode batch norm (see [`Tensor::batch_norm_train`](crate::Tensor::batch_norm_train)).
    pub fn batch_norm_train(&self, weight: &Node, bias: &Node, eps: f64) -> Result<Node> {
        self.batch_norm_act(weight, bias, eps, BatchNormActivation::Identity)
    }
    /// Training-mode batch norm and its fused activation (see
    /// [`Tensor::batch_norm_act`](crate::Tensor::batch_norm_act)): a statistics node feeding
    /// the normalisation, as in eager mode.
    pub fn batch_norm_act(&self, weight: &Node, bias: &Node, eps: f64, act: BatchNormActivation) -> Result<Node> {
        let stats = self.graph.apply(BatchNormStats { eps }, &[self])?;
        self.graph.apply(BatchNormTrain { eps, act }, &[self, weight, bias, &stats])
    }
    /// Applies any core op to this node and `others` (for ops without a method here).
    pub fn apply_op<O: Op>(&self, op: O, others: &[&Node]) -> Result<Node> {
        let mut inputs = vec![self];
        inputs.extend_from_slice(others);
        self.graph.apply(op, &inputs)
    }
}
