//! Numerics checking: the first op that produces a NaN or an infinity, in forward or backward,
//! eager or graph mode, returns an error naming the op, its scope path, the input shapes and
//! which inputs were already non-finite (the role of `tf.debugging.enable_check_numerics` and
//! `torch.autograd.detect_anomaly`).
//!
//! Off by default; [`enable`] or `SHENDU_CHECK_NUMERICS=1` turns it on. When off, an op pays
//! one relaxed atomic load.
//!
//! ```
//! use shendu_core::{numerics, Tensor};
//! numerics::enable();
//! let x = Tensor::from_vec(vec![-1.0f32], &[1]).unwrap();
//! let err = {
//!     let _s = numerics::scope("layer3");
//!     x.log().unwrap_err()
//! };
//! assert_eq!(err.op(), "log");
//! assert!(err.to_string().contains("layer3"));
//! numerics::disable();
//! ```

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::{with_float, DType, Error, Result, Tensor};

/// 0: not yet read from the environment, 1: off, 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Turns checking on for all threads.
pub fn enable() {
    STATE.store(2, Ordering::Relaxed);
}

/// Turns checking off.
pub fn disable() {
    STATE.store(1, Ordering::Relaxed);
}

/// Whether checking is on.
#[inline]
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var("SHENDU_CHECK_NUMERICS").is_ok_and(|v| !v.is_empty() && v != "0");
            // Keep an explicit enable/disable that raced with this first read.
            let _ = STATE.compare_exchange(0, if on { 2 } else { 1 }, Ordering::Relaxed, Ordering::Relaxed);
            STATE.load(Ordering::Relaxed) == 2
        }
        s => s == 2,
    }
}

/// Where eager ops run, for their errors: shared paths, so that a job handed to the thread pool
/// takes its caller's with two reference counts (see `cpu::thread_context`).
#[derive(Clone, Default)]
pub(crate) struct Context {
    /// The scope path (`model/layer3`); `None` outside every scope (unlike `Some("")`, the
    /// path of a scope named "", under which a nested scope `b` is `/b`).
    scope: Option<Arc<str>>,
    /// The op whose backward rule is running, and its scope path: ops run by the rule report
    /// as that op's backward.
    backward_of: Option<(&'static str, Arc<str>)>,
}

thread_local! {
    static CONTEXT: RefCell<Context> = const { RefCell::new(Context { scope: None, backward_of: None }) };
    /// The last check that failed on this thread, for a caller that wants the tensors.
    static LAST_FAILURE: RefCell<Option<Failure>> = const { RefCell::new(None) };
}

/// This thread's scope and backward context.
pub(crate) fn capture() -> Context {
    CONTEXT.with(|c| c.borrow().clone())
}

/// Makes `ctx` this thread's context until the guard drops.
pub(crate) fn enter(ctx: Context) -> ContextGuard {
    ContextGuard(CONTEXT.with(|c| std::mem::replace(&mut *c.borrow_mut(), ctx)))
}

/// Restores the context [`enter`] replaced.
pub(crate) struct ContextGuard(Context);

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let prev = std::mem::take(&mut self.0);
        CONTEXT.with(|c| *c.borrow_mut() = prev);
    }
}

/// What a failed check saw: the op, forward or backward, the scope path and the op's inputs
/// (cheap handles to the very tensors), so a caller can print statistics or save them.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The op whose result was not finite (for backward, the forward op whose rule ran).
    pub op: &'static str,
    /// `"forward"`, or `"backward (its mul)"` naming the op of the rule that failed.
    pub phase: String,
    /// The scope path (`layers/2`); empty at top level.
    pub path: String,
    /// `"NaN"` or `"Inf"`.
    pub found: &'static str,
    pub inputs: Vec<Tensor>,
}

/// Takes the last failure recorded on this thread (checks record one as they fail), leaving
/// none.
pub fn take_failure() -> Option<Failure> {
    LAST_FAILURE.with(|f| f.borrow_mut().take())
}

/// Restores the previous backward context when dropped.
pub(crate) struct BackwardGuard(Option<(&'static str, Arc<str>)>);

impl Drop for BackwardGuard {
    fn drop(&mut self) {
        let prev = self.0.take();
        CONTEXT.with(|c| c.borrow_mut().backward_of = prev);
    }
}

/// While the guard lives, non-finite results are reported as the backward of `op` at `path`.
pub(crate) fn in_backward(op: &'static str, path: &str) -> BackwardGuard {
    BackwardGuard(CONTEXT.with(|c| c.borrow_mut().backward_of.replace((op, Arc::from(path)))))
}

/// Ends a [`scope`] when dropped.
#[must_use = "the scope ends when the guard drops"]
pub struct ScopeGuard(Option<Arc<str>>);

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let outer = self.0.take();
        CONTEXT.with(|c| c.borrow_mut().scope = outer);
    }
}

/// Names the eager ops run while the guard lives (`model/layer3`), for numerics errors.
/// Graph nodes carry their own scope path.
pub fn scope(name: &str) -> ScopeGuard {
    CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        let path: Arc<str> = match &c.scope {
            Some(outer) => format!("{outer}/{name}").into(),
            None => name.into(),
        };
        ScopeGuard(c.scope.replace(path))
    })
}

/// The current eager scope path (`""` at top level).
pub fn current_path() -> String {
    CONTEXT.with(|c| c.borrow().scope.as_deref().unwrap_or("").to_string())
}

/// `Some("NaN")` / `Some("Inf")` when `t` (a float tensor) holds a non-finite value.
fn non_finite(t: &Tensor) -> Option<&'static str> {
    if !matches!(t.dtype(), DType::F32 | DType::F64 | DType::F16 | DType::BF16) {
        return None;
    }
    let t = if matches!(t.dtype(), DType::F16 | DType::BF16) { t.to_dtype(DType::F32).ok()? } else { t.clone() };
    let r: Result<Option<&'static str>> = with_float!(t.dtype(), "check_numerics", |T| {
        t.with_slice("check_numerics", |s: &[T], l| {
            let mut found = None;
            l.for_each_row(|o, n, st| {
                for i in 0..n {
                    let v: T = s[o + i * st];
                    if v.is_nan() {
                        found = Some("NaN");
                    } else if !v.is_finite() && found.is_none() {
                        found = Some("Inf");
                    }
                }
            });
            found
        })
    });
    r.ok().flatten()
}

/// The error for an op whose result `out` is not finite, else `Ok`. `what` is `"forward"` or
/// `"backward"`.
pub(crate) fn check(op: &'static str, what: &str, path: &str, inputs: &[&Tensor], out: &[&Tensor]) -> Result<()> {
    let Some(bad) = out.iter().find_map(|t| non_finite(t)) else { return Ok(()) };
    let ins: Vec<String> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let state = match non_finite(t) {
                Some(k) => format!("already had {k}"),
                None => "finite".to_string(),
            };
            format!("input {i} {} {} ({state})", t.shape(), t.dtype())
        })
        .collect();
    let at = if path.is_empty() { String::new() } else { format!(" at {path}") };
    let failure =
        Failure { op, phase: what.to_string(), path: path.to_string(), found: bad, inputs: inputs.iter().map(|t| (*t).clone()).collect() };
    LAST_FAILURE.with(|f| *f.borrow_mut() = Some(failure));
    Err(Error::invalid(op, format!("check_numerics: {what} of {op}{at} produced {bad}; {}", ins.join(", "))))
}

/// [`check`] of a forward result when checking is on.
#[inline]
pub(crate) fn check_op(op: &'static str, path: &str, inputs: &[&Tensor], out: &Tensor) -> Result<()> {
    if !enabled() {
        return Ok(());
    }
    if let Some((bop, bpath)) = CONTEXT.with(|c| c.borrow().backward_of.clone()) {
        return check(bop, &format!("backward (its {op})"), &bpath, inputs, &[out]);
    }
    check(op, "forward", path, inputs, &[out])
}
