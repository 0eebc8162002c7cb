//! No op panics on anything a user can pass: random shapes (zero-size dims, mismatched ranks,
//! 0-d), every dtype, non-contiguous views, special values, and random dims and parameters
//! (negative, out of range, huge). Each call must return `Ok` or `Err`; an `Ok` result must be
//! readable and, when it needs a gradient, differentiable without a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};

use proptest::prelude::*;
use shendu_core::{DType, Device, GradExt, Result, Rng, Tensor, Var};

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

/// Runs one call under `catch_unwind`; on `Ok`, reads the result and differentiates it (if it
/// needs a gradient), also under `catch_unwind`. Returns the op's name if anything panicked.
fn probe(name: &'static str, f: impl FnOnce() -> Result<Tensor>) -> Option<String> {
    PROBING.with(|p| p.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let Ok(t) = f() else { return };
        // Stride-0 views of huge shapes are legal; reading one would only measure the allocator.
        if t.elem_count() > 1 << 20 {
            return;
        }
        let _ = t.to_vec_f64();
        if t.requires_grad() {
            if let Ok(seed) = t.ones_like() {
                let _ = t.backward_with_grad(&seed, false);
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
