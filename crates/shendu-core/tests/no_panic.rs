//! No op panics on anything a user can pass: random shapes (zero-size dims, mismatched ranks,
//! 0-d), every dtype, non-contiguous views, special values, and random dims and parameters
//! (negative, out of range, huge). Each call must return `Ok` or `Err`; an `Ok` result must be
//! readable and, when it needs a gradient, differentiable without a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};

use proptest::prelude::*;
use shendu_core::padding::{conv_output_size, effective_kernel, pool_output_size, resolve_pads, same_pads, PadRule};
use shendu_core::{Conv2dParams, ConvTranspose2dParams, DType, Device, GradExt, PadMode, Padding, Result, Rng, Tensor, Var};

/// One random tensor: shape, dtype, view, trainable or not, and where its values come from.
#[derive(Clone, Debug)]
struct Input {
    shape: Vec<usize>,
    dtype: DType,
    /// 0 plain, 1 transposed, 2 narrowed, 3 expanded (where the rank allows).
    view: u8,
    var: bool,
    seed: u64,
}

/// Values with specials mixed in: NaN, infinities, zero, huge.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let specials = [0.0, -0.0, 1.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e30, -1e-30, 300.0];
    (0..n).map(|_| if rng.bernoulli(0.2) { specials[rng.below(specials.len() as u64) as usize] } else { rng.normal() * 3.0 }).collect()
}

fn build(i: &Input) -> Result<Tensor> {
    let r = i.shape.len();
    let mut stored = i.shape.clone();
    match i.view {
        1 if r >= 2 => stored.swap(r - 2, r - 1),
        2 if r >= 1 => stored[r - 1] += 2,
        3 if r >= 1 => stored[0] = 1,
        _ => {}
    }
    let t = Tensor::from_vec(values(stored.iter().product(), i.seed), stored)?.to_dtype(i.dtype)?;
    let t = if i.var && i.dtype.is_float() { Var::new(t).as_tensor().clone() } else { t };
    match i.view {
        1 if r >= 2 => t.t(),
        2 if r >= 1 => t.narrow(r - 1, 1, i.shape[r - 1]),
        3 if r >= 1 => t.broadcast_as(i.shape.clone()),
        _ => Ok(t),
    }
}

/// Random parameters for the ops that take any.
#[derive(Clone, Debug)]
struct Params {
    dims: Vec<isize>,
    udims: Vec<usize>,
    d: isize,
    ud: usize,
    start: usize,
    len: usize,
    keep: bool,
    correction: usize,
    perm: Vec<usize>,
    target: Vec<usize>,
    s1: f64,
    s2: f64,
    dtype: DType,
}

fn dtype() -> impl Strategy<Value = DType> {
    prop::sample::select(DType::ALL.to_vec())
}

fn input() -> impl Strategy<Value = Input> {
    // Mostly float dtypes (the interesting paths), sometimes anything.
    let dt = prop_oneof![4 => prop::sample::select(vec![DType::F32, DType::F64]), 1 => dtype()];
    (prop::collection::vec(0usize..=4, 0..=4), dt, 0u8..4, any::<bool>(), any::<u64>()).prop_map(|(shape, dtype, view, var, seed)| Input {
        shape,
        dtype,
        view,
        var,
        seed,
    })
}

fn odd_usize() -> impl Strategy<Value = usize> {
    prop_oneof![8 => 0usize..6, 1 => Just(usize::MAX), 1 => Just(usize::MAX / 2 + 1), 1 => Just(1usize << 32)]
}

fn odd_isize() -> impl Strategy<Value = isize> {
    prop_oneof![8 => -6isize..6, 1 => Just(isize::MIN), 1 => Just(isize::MAX)]
}

fn odd_f64() -> impl Strategy<Value = f64> {
    prop_oneof![6 => -3.0f64..3.0, 1 => Just(f64::NAN), 1 => Just(f64::INFINITY), 1 => Just(f64::NEG_INFINITY), 1 => Just(0.0)]
}

fn params() -> impl Strategy<Value = Params> {
    (
        (prop::collection::vec(odd_isize(), 0..=4), prop::collection::vec(odd_usize(), 0..=4), odd_isize(), odd_usize()),
        (odd_usize(), odd_usize(), any::<bool>(), 0usize..3),
        (prop::collection::vec(0usize..5, 0..=5), prop::collection::vec(odd_usize(), 0..=4)),
        (odd_f64(), odd_f64(), dtype()),
    )
        .prop_map(|((dims, udims, d, ud), (start, len, keep, correction), (perm, target), (s1, s2, dtype))| Params {
            dims,
            udims,
            d,
            ud,
            start,
            len,
            keep,
            correction,
            perm,
            target,
            s1,
            s2,
            dtype,
        })
}

/// What an op returns: the tensors to read and differentiate (none for sizes and strings).
trait Outputs {
    fn tensors(self) -> Vec<Tensor>;
}
impl Outputs for Tensor {
    fn tensors(self) -> Vec<Tensor> {
        vec![self]
    }
}
impl Outputs for (Tensor, Tensor) {
    fn tensors(self) -> Vec<Tensor> {
        vec![self.0, self.1]
    }
}
impl Outputs for Vec<Tensor> {
    fn tensors(self) -> Vec<Tensor> {
        self
    }
}
impl Outputs for String {
    fn tensors(self) -> Vec<Tensor> {
        Vec::new()
    }
}
impl Outputs for usize {
    fn tensors(self) -> Vec<Tensor> {
        Vec::new()
    }
}
impl Outputs for (usize, usize) {
    fn tensors(self) -> Vec<Tensor> {
        Vec::new()
    }
}

/// Runs one call under `catch_unwind`; on `Ok`, reads each result and differentiates it (if it
/// needs a gradient) with a ones seed, also under `catch_unwind`. Returns the op's name if
/// anything panicked.
fn probe<O: Outputs>(name: &'static str, f: impl FnOnce() -> Result<O>) -> Option<String> {
    PROBING.with(|p| p.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let Ok(out) = f() else { return };
        for t in out.tensors() {
            // Stride-0 views of huge shapes are legal; reading one would only measure the allocator.
            if t.elem_count() > 1 << 20 {
                continue;
            }
            let _ = t.to_vec_f64();
            if t.requires_grad() {
                if let Ok(seed) = t.ones_like() {
                    let _ = t.backward_with_grad(&seed, false);
                }
            }
        }
    }));
    PROBING.with(|p| p.set(false));
    outcome.err().map(|e| {
        let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
        format!("{name}: {msg} (at {})", LOCATION.with(|l| l.borrow().clone()))
    })
}

/// Every public op on `a` (and `b` for binary ops) with the parameters `p`.
fn all_ops(a: &Tensor, b: &Tensor, p: &Params) -> Vec<String> {
    let mut failed = Vec::new();
    macro_rules! ops {
        ($($name:literal => $e:expr;)*) => {
            $(failed.extend(probe($name, || $e));)*
        };
    }
    let pd = p.dims.clone();
    let ud = &p.udims;
    ops! {
        "neg" => a.neg(); "abs" => a.abs(); "exp" => a.exp(); "log" => a.log(); "sqrt" => a.sqrt();
        "rsqrt" => a.rsqrt(); "sqr" => a.sqr(); "recip" => a.recip(); "sin" => a.sin(); "cos" => a.cos();
        "tanh" => a.tanh(); "sigmoid" => a.sigmoid(); "erf" => a.erf(); "relu" => a.relu(); "relu6" => a.relu6();
        "selu" => a.selu(); "gelu" => a.gelu(); "silu" => a.silu(); "swish" => a.swish(); "mish" => a.mish();
        "softplus" => a.softplus(); "sign" => a.sign();
        "leaky_relu" => a.leaky_relu(p.s1); "elu" => a.elu(p.s1); "clamp" => a.clamp(p.s1, p.s2);
        "affine" => a.affine(p.s1, p.s2); "add_scalar" => a.add_scalar(p.s1); "mul_scalar" => a.mul_scalar(p.s2);
        "powf" => a.powf(p.s1);
        "add" => a.add(b); "sub" => a.sub(b); "mul" => a.mul(b); "div" => a.div(b); "pow" => a.pow(b);
        "maximum" => a.maximum(b); "minimum" => a.minimum(b); "matmul" => a.matmul(b); "matmul_ba" => b.matmul(a);
        "sum" => a.sum(&pd, p.keep); "sum_usize" => a.sum(ud, p.keep); "max" => a.max(&pd, p.keep);
        "min" => a.min(&pd, p.keep); "mean" => a.mean(&pd, p.keep); "var" => a.var(&pd, p.keep, p.correction);
        "std" => a.std(&pd, p.keep, p.correction); "logsumexp" => a.logsumexp(&pd, p.keep);
        "sum_all" => a.sum_all(); "max_all" => a.max_all(); "min_all" => a.min_all(); "mean_all" => a.mean_all();
        "softmax" => a.softmax(p.d); "log_softmax" => a.log_softmax(p.d); "softmax_usize" => a.softmax(p.ud);
        "reshape" => a.reshape(p.target.clone()); "flatten" => a.flatten(p.d, p.d.wrapping_add(1));
        "flatten_usize" => a.flatten(p.ud, p.start); "flatten_all" => a.flatten_all();
        "permute" => a.permute(&p.perm); "transpose" => a.transpose(p.d, p.d.wrapping_neg()); "t" => a.t();
        "narrow" => a.narrow(p.d, p.start, p.len); "narrow_usize" => a.narrow(p.ud, p.start, p.len);
        "broadcast_as" => a.broadcast_as(p.target.clone()); "expand" => a.expand(b.shape().clone());
        "squeeze" => a.squeeze(p.d); "unsqueeze" => a.unsqueeze(p.ud); "sum_to" => a.sum_to(p.target.clone());
        "sum_to_b" => a.sum_to(b.shape().clone());
        "contiguous" => a.contiguous(); "copy" => a.copy(); "to_dtype" => a.to_dtype(p.dtype);
        "detach" => Ok(a.detach()); "to_device" => a.to_device(Device::Cuda(p.ud));
        "dim" => a.dim(p.d).map(|_| a.clone()); "to_scalar" => a.to_f64().map(|_| a.clone());
        "to_vec_f32" => a.to_vec::<f32>().map(|_| a.clone());
        "backward" => a.sum_all()?.backward().map(|_| a.clone());
        "backward_with_grad" => a.backward_with_grad(b, p.keep).map(|_| a.clone());
        "zeros_like" => a.zeros_like(); "full_like" => a.full_like(p.s1);
        "from_vec" => Tensor::from_vec(vec![1.0f32; p.len.min(64)], p.target.clone());
        "full" => Tensor::full(p.target.iter().map(|&d| d.min(5)).collect::<Vec<_>>(), p.s1, p.dtype);
        "arange" => Tensor::arange(p.s1, p.s2 * 100.0, p.s2, p.dtype);
        "linspace" => Tensor::linspace(p.s1, p.s2, p.len.min(64), p.dtype);
        "var_set" => { let v = Var::new(a.clone()); v.set(b).map(|_| a.clone()) };
        "var_sub_assign" => { let v = Var::new(a.clone()); v.sub_assign(b).map(|_| a.clone()) };
    }
    failed
}

/// The helpers backward rules use are public (`GradExt`): they must not panic either.
fn grad_ext_ops(a: &Tensor, b: &Tensor, p: &Params) -> Vec<String> {
    let mut failed = Vec::new();
    macro_rules! ops {
        ($($name:literal => $e:expr;)*) => {
            $(failed.extend(probe($name, || $e));)*
        };
    }
    ops! {
        "g_t" => a.g_t(); "g_permute" => a.g_permute(&p.perm); "g_narrow" => a.g_narrow(p.ud, p.start, p.len);
        "g_embed" => a.g_embed(b, p.ud, p.start); "g_sum_keepdim" => a.g_sum_keepdim(&p.udims);
        "g_sum_to_like" => a.g_sum_to_like(b); "g_broadcast_like" => a.g_broadcast_like(b);
        "g_reshape_like" => a.g_reshape_like(b); "g_step" => a.g_step(); "g_matmul" => a.g_matmul(b);
    }
    failed
}

fn run_all(
    a: &Input,
    b: &Input,
    p: &Params,
    which: fn(&Tensor, &Tensor, &Params) -> Vec<String>,
) -> std::result::Result<(), TestCaseError> {
    let (ta, tb) = (build(a).expect("input a"), build(b).expect("input b"));
    let failed = which(&ta, &tb, p);
    prop_assert!(failed.is_empty(), "panicked: {:?}\non a = {:?} {:?}, b = {:?} {:?}", failed, ta, a, tb, b);
    Ok(())
}

// ---- convolution, pooling, upsampling ----------------------------------------------------------

/// A size or count: mostly small (0 included), sometimes so large that any sum or product with
/// it overflows. (Large-but-representable sizes would only test the allocator.)
fn size() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![12 => 0usize..5, 1 => Just(usize::MAX), 1 => Just(usize::MAX / 2 + 1)]
}

/// A stride, dilation or kernel extent: mostly valid, sometimes 0 or huge.
fn step() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![8 => 1usize..4, 1 => Just(0usize), 1 => Just(9usize), 1 => Just(usize::MAX), 1 => Just(usize::MAX / 2 + 1)]
}

/// An output size: mostly small, sometimes overflowing.
fn out_size() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![8 => 0usize..10, 1 => Just(usize::MAX), 1 => Just(usize::MAX / 2 + 1)]
}

fn pair<S: Strategy<Value = usize> + Clone>(s: S) -> impl Strategy<Value = (usize, usize)> {
    (s.clone(), s)
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        1 => Just(Padding::Same),
        1 => Just(Padding::Valid),
        2 => (size(), size(), size(), size()).prop_map(|(t, b, l, r)| Padding::explicit(t, b, l, r)),
    ]
}

/// Inputs and parameters of the spatial ops: usually an `[N, C, H, W]` input and a weight
/// whose channels agree with `groups` (so the kernels run), sometimes anything.
#[derive(Clone, Debug)]
struct Spatial {
    x: Input,
    /// `[C_out, C_in / groups, kH, kW]` for conv2d.
    w: Input,
    /// `[C_in, C_out / groups, kH, kW]` for conv_transpose2d.
    wt: Input,
    stride: (usize, usize),
    dilation: (usize, usize),
    groups: usize,
    padding: Padding,
    tpad: (usize, usize, usize, usize),
    out_pad: (usize, usize),
    kernel: (usize, usize),
    size: (usize, usize),
    ceil: bool,
    include_pad: bool,
    align: bool,
}

fn spatial() -> impl Strategy<Value = Spatial> {
    let dims = (0usize..3, 0usize..5, 0usize..8, 0usize..8);
    let wdims = (0usize..5, 0usize..4, 0usize..4, 0usize..4);
    let groups = prop_oneof![6 => 1usize..4, 1 => Just(0usize), 1 => Just(usize::MAX)];
    (
        (input(), input(), input(), prop_oneof![3 => Just(true), 1 => Just(false)], dims, wdims),
        (pair(step()), pair(step()), groups, padding(), (size(), size(), size(), size()), pair(size())),
        (pair(step()), pair(out_size()), any::<bool>()),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (x, w, wt, plausible, (n, c, h, wd), (co, cg, kh, kw)),
                (stride, dilation, groups, padding, tpad, out_pad),
                (kernel, size, ceil),
                (include_pad, align),
            )| {
                let (mut x, mut w, mut wt) = (x, w, wt);
                if plausible {
                    // Channels that `groups` divides (when it can), so the shape rule usually passes.
                    let g = if (1..=4).contains(&groups) { groups } else { 1 };
                    let (cin, cout) = (g * (c % 3 + usize::from(c == 0)), g * (co % 3));
                    x.shape = vec![n, cin, h, wd];
                    w.shape = vec![cout, cin / g, kh, kw];
                    wt.shape = vec![cin, cg, kh, kw];
                    w.dtype = x.dtype;
                    wt.dtype = x.dtype;
                }
                Spatial { x, w, wt, stride, dilation, groups, padding, tpad, out_pad, kernel, size, ceil, include_pad, align }
            },
        )
}

/// `shape` without dim 2 (a 4-d shape made 3-d for conv1d).
fn drop_h(i: &Input) -> Input {
    let mut i = i.clone();
    if i.shape.len() >= 3 {
        i.shape.remove(2);
    }
    i
}

fn spatial_ops(s: &Spatial) -> Vec<String> {
    let mut failed = Vec::new();
    macro_rules! ops {
        ($($name:literal => $e:expr;)*) => {
            $(failed.extend(probe($name, || $e));)*
        };
    }
    let (Ok(x), Ok(w), Ok(wt), Ok(x1), Ok(w1)) = (build(&s.x), build(&s.w), build(&s.wt), build(&drop_h(&s.x)), build(&drop_h(&s.w)))
    else {
        return vec!["building the inputs failed".into()];
    };
    let cp = Conv2dParams { stride: s.stride, padding: s.padding, dilation: s.dilation, groups: s.groups };
    let tp = ConvTranspose2dParams { stride: s.stride, padding: s.tpad, output_padding: s.out_pad, dilation: s.dilation, groups: s.groups };
    let pad1 = match s.padding {
        Padding::Explicit { left, right, .. } => Padding::horizontal(left, right),
        p => p,
    };
    let (k, st, dl) = (s.kernel, s.stride, s.dilation);
    ops! {
        "conv2d" => x.conv2d(&w, &cp);
        "conv2d_same" => x.conv2d(&w, &cp.with_padding(Padding::Same));
        "conv2d_valid" => x.conv2d(&w, &cp.with_padding(Padding::Valid));
        "conv2d_any_weight" => x.conv2d(&wt, &cp);
        "conv1d" => x1.conv1d(&w1, st.1, pad1, dl.1, s.groups);
        "conv1d_explicit_top" => x1.conv1d(&w1, st.1, s.padding, dl.1, s.groups);
        "conv_transpose2d" => x.conv_transpose2d(&wt, &tp);
        "conv_transpose2d_any_weight" => x.conv_transpose2d(&w, &tp);
        "max_pool2d" => x.max_pool2d(k, st, s.padding, dl, s.ceil);
        "avg_pool2d" => x.avg_pool2d(k, st, s.padding, s.ceil, s.include_pad);
        "adaptive_avg_pool2d" => x.adaptive_avg_pool2d(s.size);
        "global_avg_pool2d" => x.global_avg_pool2d();
        "upsample_nearest2d" => x.upsample_nearest2d(s.size);
        "upsample_bilinear2d" => x.upsample_bilinear2d(s.size, s.align);
        "conv1d_as_4d" => x.conv1d(&w, st.0, Padding::Valid, dl.0, s.groups);
        "pool_of_weight" => w.max_pool2d(k, st, Padding::Same, dl, s.ceil);
    }
    failed
}

/// The padding arithmetic is public: every combination of sizes, rules and rounding.
fn padding_fns(input: usize, k: usize, st: usize, dl: usize, b: usize, e: usize, ceil: bool) -> Vec<String> {
    let mut failed = Vec::new();
    macro_rules! ops {
        ($($name:literal => $e:expr;)*) => {
            $(failed.extend(probe($name, || $e));)*
        };
    }
    for rule in [PadRule::Same, PadRule::Valid, PadRule::Explicit(b, e)] {
        ops! {
            "conv_output_size" => conv_output_size(input, k, st, dl, rule);
            "pool_output_size" => pool_output_size(input, k, st, dl, rule, ceil);
            "resolve_pads" => Ok(resolve_pads(input, k, st, dl, rule));
        }
    }
    ops! {
        "same_pads" => Ok(same_pads(input, k, st, dl));
        "effective_kernel" => Ok(effective_kernel(k, dl));
    }
    failed
}

// ---- indexing, joining, padding, comparisons, dropout ------------------------------------------

/// Inputs and parameters of the manipulation ops. Index tensors and masks are usually shaped and
/// valued to be accepted (so the kernels run), sometimes anything.
#[derive(Clone, Debug)]
struct Manip {
    a: Input,
    b: Input,
    /// Index values (cycled to fill the index shapes); reduced modulo the dim's size if `valid`.
    idx: Vec<i64>,
    valid: bool,
    idx_dtype: DType,
    /// A 1-d index length (index_select) or the label shape (one_hot).
    idx_shape: Vec<usize>,
    /// Per dim of `a`: 0 same size, 1 one less, 2 one more, 3 zero; for gather/scatter indices.
    like: Vec<u8>,
    drop_rank: bool,
    mask_dtype: DType,
    dim: isize,
    udim: usize,
    k: usize,
    sizes: Vec<usize>,
    pads: Vec<(usize, usize)>,
    mode: u8,
    value: f64,
    p: f64,
    flags: [bool; 4],
    list: Vec<u8>,
    seed: u64,
}

fn manip() -> impl Strategy<Value = Manip> {
    let idx_val = prop_oneof![10 => -2i64..8, 1 => Just(i64::MAX), 1 => Just(i64::MIN)];
    let idx_dtype = prop_oneof![6 => Just(DType::I64), 1 => dtype()];
    let mask_dtype = prop_oneof![6 => Just(DType::U8), 1 => dtype()];
    let p = prop_oneof![6 => 0.0f64..1.0, 1 => Just(0.0), 1 => Just(1.0), 1 => Just(-0.5), 1 => Just(1.5), 1 => Just(f64::NAN), 1 => Just(f64::INFINITY)];
    (
        (input(), input(), prop::collection::vec(idx_val, 1..6), any::<bool>(), idx_dtype, prop::collection::vec(0usize..5, 0..=2)),
        (prop::collection::vec(0u8..4, 6), any::<bool>(), mask_dtype, odd_isize(), odd_usize(), size()),
        (prop::collection::vec(size(), 0..5), prop::collection::vec((size(), size()), 0..=6), 0u8..3, odd_f64(), p),
        (any::<[bool; 4]>(), prop::collection::vec(0u8..4, 0..5), any::<u64>()),
    )
        .prop_map(
            |(
                (a, b, idx, valid, idx_dtype, idx_shape),
                (like, drop_rank, mask_dtype, dim, udim, k),
                (sizes, pads, mode, value, p),
                (flags, list, seed),
            )| Manip {
                a,
                b,
                idx,
                valid,
                idx_dtype,
                idx_shape,
                like,
                drop_rank,
                mask_dtype,
                dim,
                udim,
                k,
                sizes,
                pads,
                mode,
                value,
                p,
                flags,
                list,
                seed,
            },
        )
}

impl Manip {
    /// An index tensor of `shape` holding the index values, made valid for a dim of size `n`.
    fn index(&self, shape: Vec<usize>, n: Option<usize>) -> Result<Tensor> {
        let count: usize = shape.iter().product();
        let vals = (0..count)
            .map(|i| {
                let v = self.idx[i % self.idx.len()];
                match n {
                    Some(n) if self.valid && n > 0 => v.rem_euclid(n as i64),
                    _ => v,
                }
            })
            .collect::<Vec<_>>();
        Tensor::from_vec(vals, shape)?.to_dtype(self.idx_dtype)
    }

    /// `a`'s shape adjusted per dim by `like` (and one dim shorter with `drop_rank`).
    fn like_a(&self) -> Vec<usize> {
        let mut s: Vec<usize> = self
            .a
            .shape
            .iter()
            .zip(self.like.iter().cycle())
            .map(|(&d, &l)| match l {
                0 => d,
                1 => d.saturating_sub(1),
                2 => d + 1,
                _ => 0,
            })
            .collect();
        if self.drop_rank {
            s.pop();
        }
        s
    }

    /// The size of `a`'s dim `dim`, if it has one.
    fn dim_size(&self) -> Option<usize> {
        let r = self.a.shape.len() as isize;
        (-r..r).contains(&self.dim).then(|| self.a.shape[self.dim.rem_euclid(r.max(1)) as usize])
    }
}

fn manip_ops(m: &Manip) -> Vec<String> {
    let mut failed = Vec::new();
    macro_rules! ops {
        ($($name:literal => $e:expr;)*) => {
            $(failed.extend(probe($name, || $e));)*
        };
    }
    let (Ok(a), Ok(b)) = (build(&m.a), build(&m.b)) else { return vec!["building the inputs failed".into()] };
    // Same shape as `a`, another view and values; one dim resized (for cat); a broadcastable
    // mask; a source for scatter_add shaped like the index.
    let same = build(&Input { view: m.b.view, seed: m.seed, ..m.a.clone() }).expect("same-shape input");
    let mut resized = m.a.clone();
    if let Some(d) = resized.shape.first_mut() {
        *d = (*d + 1) % 4;
    }
    let resized = build(&resized).expect("resized input");
    let mask_shape: Vec<usize> = m.a.shape.iter().zip(m.like.iter().cycle()).map(|(&d, &l)| if l == 1 { 1 } else { d }).collect();
    let mask_in = Input { shape: mask_shape.clone(), dtype: DType::F64, view: 0, var: false, seed: m.seed };
    let mask = build(&mask_in).and_then(|t| t.gt_scalar(0.0)).and_then(|t| t.to_dtype(m.mask_dtype)).expect("mask");
    let like = m.like_a();
    let n = m.dim_size();
    let src = build(&Input { shape: like.clone(), seed: m.seed ^ 1, ..m.b.clone() }).expect("src");
    let gi = || m.index(like.clone(), n);
    let pool = [&a, &b, &same, &resized];
    let list: Vec<&Tensor> = m.list.iter().map(|&i| pool[i as usize]).collect();
    let (d, ud, k, v) = (m.dim, m.udim, m.k, m.value);
    let [f0, f1, f2, f3] = m.flags;
    let mode = match m.mode {
        0 => PadMode::Constant(v),
        1 => PadMode::Reflect,
        _ => PadMode::Replicate,
    };
    ops! {
        "index_select" => a.index_select(d, &m.index(m.idx_shape.first().map(|&l| vec![l]).unwrap_or_default(), n)?);
        "index_select_usize" => a.index_select(ud, &m.index(vec![m.idx.len()], None)?);
        "index_select_2d_index" => a.index_select(d, &gi()?);
        "gather" => a.gather(d, &gi()?);
        "gather_usize" => a.gather(ud, &gi()?);
        "scatter_add" => a.scatter_add(d, &gi()?, &src);
        "scatter_add_b" => a.scatter_add(d, &gi()?, &b);
        "scatter_add_same" => a.scatter_add(d, &gi()?, &same);
        "one_hot" => m.index(m.idx_shape.clone(), Some(m.k.min(6)))?.one_hot(k, m.mask_dtype);
        "one_hot_raw" => m.index(m.idx_shape.clone(), None)?.one_hot(k, DType::F32);
        "one_hot_of_a" => a.one_hot(k, DType::F32);
        "argmax" => a.argmax(d, f0);
        "argmin" => a.argmin(ud, f1);
        "topk" => a.topk(k, d, f0, f1);
        "topk_usize" => a.topk(k, ud, f2, f3);
        "topk_of_index" => gi()?.topk(k.min(2), d, f0, f1);
        "cat" => Tensor::cat(&list, d);
        "cat_usize" => Tensor::cat(&list, ud);
        "cat_same" => Tensor::cat(&[&a, &same, &resized], 0usize);
        "stack" => Tensor::stack(&list, d);
        "stack_same" => Tensor::stack(&[&a, &same], ud);
        "split" => a.split(k, d);
        "split_with_sizes" => a.split_with_sizes(&m.sizes, d);
        "split_with_sizes_usize" => a.split_with_sizes(&m.sizes, ud);
        "chunk" => a.chunk(k, d);
        "pad" => a.pad(&m.pads, mode);
        "pad_constant" => a.pad(&m.pads, PadMode::Constant(v));
        "pad_reflect" => a.pad(&m.pads, PadMode::Reflect);
        "pad_replicate" => a.pad(&m.pads, PadMode::Replicate);
        "eq" => a.eq(&b); "ne" => a.ne(&same); "lt" => a.lt(&b); "le" => a.le(&same); "gt" => a.gt(&b); "ge" => a.ge(&same);
        "eq_scalar" => a.eq_scalar(v); "ne_scalar" => a.ne_scalar(v); "lt_scalar" => a.lt_scalar(v);
        "le_scalar" => a.le_scalar(v); "gt_scalar" => a.gt_scalar(v); "ge_scalar" => a.ge_scalar(v);
        "logical_not" => a.logical_not(); "logical_not_mask" => mask.logical_not();
        "is_nan" => a.is_nan(); "is_finite" => a.is_finite();
        "where_cond" => mask.where_cond(&a, &b);
        "where_cond_same" => mask.where_cond(&a, &same);
        "where_cond_any" => a.where_cond(&b, &same);
        "masked_fill" => a.masked_fill(&mask, v);
        "masked_fill_any" => a.masked_fill(&b, v);
        "dropout" => a.dropout(m.p, f0, &mut Rng::new(m.seed));
        "dropout_train" => a.dropout(m.p, true, &mut Rng::new(m.seed));
        "dropout_mask" => Tensor::dropout_mask(mask_shape.clone(), m.p, m.mask_dtype, &mut Rng::new(m.seed));
    }
    failed
}

// ---- Display ---------------------------------------------------------------------------------

/// Tensors to print: any dtype and view, 0-d, empty, and large enough to be summarised.
fn printable() -> impl Strategy<Value = Input> {
    let shape = prop_oneof![
        3 => prop::collection::vec(0usize..=4, 0..=4),
        1 => prop::collection::vec(1usize..=40, 1..=3).prop_filter("at most 5000 elements", |s| s.iter().product::<usize>() <= 5000),
        1 => (1001usize..3000).prop_map(|n| vec![n]),
    ];
    (shape, dtype(), 0u8..4, any::<bool>(), any::<u64>()).prop_map(|(shape, dtype, view, var, seed)| Input {
        shape,
        dtype,
        view,
        var,
        seed,
    })
}

fn display_ops(t: &Tensor) -> Vec<String> {
    let mut failed = Vec::new();
    failed.extend(probe("display", || Ok(format!("{t}"))));
    failed.extend(probe("debug", || Ok(format!("{t:?}"))));
    failed.extend(probe("display_of_grad_output", || t.mul_scalar(2.0).map(|y| format!("{y}"))));
    failed
}

thread_local! {
    static PROBING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where the last caught panic happened (file:line in the library).
    static LOCATION: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Panics inside [`probe`] are caught and reported by name; the default hook would also print
/// each one. Panics elsewhere (the test's own failure) still print.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if PROBING.with(|p| p.get()) {
                let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
                LOCATION.with(|l| *l.borrow_mut() = at);
            } else {
                default(info)
            }
        }))
    });
}

/// Fails the case if anything panicked. With `SHENDU_HUNT=1` it prints each new panic site once
/// and goes on instead, to list every bug in one run.
fn report(failed: Vec<String>, on: &dyn std::fmt::Debug) -> std::result::Result<(), TestCaseError> {
    if std::env::var_os("SHENDU_HUNT").is_some() {
        static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        for f in failed {
            let site = f.split(" (at ").nth(1).unwrap_or_default().to_string();
            if !seen.contains(&site) {
                eprintln!("PANIC {f}\n    on {on:?}");
                seen.push(site);
            }
        }
        return Ok(());
    }
    prop_assert!(failed.is_empty(), "panicked: {:?}\non {:?}", failed, on);
    Ok(())
}

/// `n` cases, or `PROPTEST_CASES` when set (for longer hunts).
fn cases(n: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(n)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(300), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn public_ops_never_panic(a in input(), b in input(), p in params()) {
        quiet_panics();
        run_all(&a, &b, &p, all_ops)?;
    }

    /// Same shapes for both inputs (so binary ops get past the shape check and run their kernels).
    #[test]
    fn public_ops_never_panic_same_shape(a in input(), view in 0u8..4, seed: u64, p in params()) {
        quiet_panics();
        let b = Input { view, seed, ..a.clone() };
        run_all(&a, &b, &p, all_ops)?;
    }

    #[test]
    fn grad_ext_helpers_never_panic(a in input(), b in input(), p in params()) {
        quiet_panics();
        run_all(&a, &b, &p, grad_ext_ops)?;
    }
}

proptest! {
    // The spatial and manipulation probes are cheap (small inputs): more cases, same budget.
    #![proptest_config(ProptestConfig { cases: cases(4000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn spatial_ops_never_panic(s in spatial()) {
        quiet_panics();
        report(spatial_ops(&s), &s)?;
    }

    #[test]
    fn padding_arithmetic_never_panics(input in size(), k in step(), st in step(), dl in step(), b in size(), e in size(), ceil: bool) {
        quiet_panics();
        report(padding_fns(input, k, st, dl, b, e, ceil), &(input, k, st, dl, b, e, ceil))?;
    }

    #[test]
    fn manipulation_ops_never_panic(m in manip()) {
        quiet_panics();
        report(manip_ops(&m), &m)?;
    }

    #[test]
    fn display_never_panics(i in printable()) {
        quiet_panics();
        let t = build(&i).expect("printable input");
        report(display_ops(&t), &i)?;
    }
}
