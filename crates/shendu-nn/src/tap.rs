//! Seeing inside a forward pass: every container (Sequential, a cfg network) runs its children
//! through [`forward_child`], which names the child in numerics errors and, while a tap is open,
//! records the child's output under its dotted path (`features.3`). Costs one thread-local read
//! per child when neither is on.
//!
//! ```
//! use shendu_core::{DType, Tensor};
//! use shendu_nn::{layers::{Linear, Relu}, tap, Mode, Module, Sequential};
//! let net = Sequential::new().push(Linear::new(3, 4, DType::F32).unwrap()).push(Relu);
//! let _tap = tap::open();
//! net.forward(&Tensor::ones(&[2, 3], DType::F32).unwrap(), Mode::Train).unwrap();
//! let seen: Vec<String> = tap::take().into_iter().map(|a| a.path).collect();
//! assert_eq!(seen, ["0", "1"]);
//! ```

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::sync::Once;

use shendu_core::cpu::thread_context::{register_thread_state, ThreadState};
use shendu_core::{numerics, Tensor};

use crate::{join_name, Error, Mode, Module, Result};

/// One recorded layer output.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The dotted path of the layer (`layers.2`), the prefix of its parameters' names.
    pub path: String,
    /// The layer's type (`Linear`, `Relu`, ...).
    pub type_name: &'static str,
    /// Its output, still part of the step's autograd graph (so a debugger can ask a gradient
    /// store for its gradient); the graph stays alive until the record is dropped.
    pub output: Tensor,
}

thread_local! {
    static OPEN: Cell<bool> = const { Cell::new(false) };
    static PATH: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static RECORDED: RefCell<Vec<Recorded>> = const { RefCell::new(Vec::new()) };
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// A function called with each output as the tap records it.
pub type Hook = Box<dyn FnMut(&Recorded)>;

/// A tap belongs to the thread that opened it (its hook may hold thread-bound state, a
/// debugger's prompt), so a pool job sees no tap: it must neither record into nor call the hook
/// of the tap of the pool thread that runs it, which may be waiting inside a tapped step.
static THREAD_STATE: ThreadState = ThreadState { take: set_aside, put_back };

/// The tap of a thread running a pool job.
struct Aside {
    open: bool,
    path: Vec<String>,
    recorded: Vec<Recorded>,
    hook: Option<Hook>,
}

fn set_aside() -> Option<Box<dyn Any>> {
    let open = OPEN.with(|o| o.replace(false));
    let path = PATH.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let recorded = RECORDED.with(|r| std::mem::take(&mut *r.borrow_mut()));
    let hook = HOOK.with(|h| h.borrow_mut().take());
    if !open && path.is_empty() && recorded.is_empty() && hook.is_none() {
        return None;
    }
    Some(Box::new(Aside { open, path, recorded, hook }))
}

fn put_back(aside: Box<dyn Any>) {
    let Ok(aside) = aside.downcast::<Aside>() else { return };
    let Aside { open, path, recorded, hook } = *aside;
    OPEN.with(|o| o.set(open));
    PATH.with(|p| *p.borrow_mut() = path);
    RECORDED.with(|r| *r.borrow_mut() = recorded);
    HOOK.with(|h| *h.borrow_mut() = hook);
}

/// Registers the tap with core's thread context before this thread first sets it.
fn register() {
    static ONCE: Once = Once::new();
    // Registering fails only past core's limit of registered states, a bug of a crate, not of
    // the tap's user: the tap then works as before, unguarded.
    ONCE.call_once(|| drop(register_thread_state(&THREAD_STATE)));
}

/// Sets the function this thread's tap calls with each output as it records it, in the middle
/// of the forward pass (before the next layer runs): a debugger pauses there. Returns the hook
/// it replaces; `None` removes it. A hook that sets another hook replaces itself.
pub fn set_hook(hook: Option<Hook>) -> Option<Hook> {
    register();
    HOOK.with(|h| std::mem::replace(&mut *h.borrow_mut(), hook))
}

fn call_hook(rec: &Recorded) {
    // Out of the cell while it runs, so that it may record or set hooks itself.
    let Some(mut hook) = HOOK.with(|h| h.borrow_mut().take()) else { return };
    hook(rec);
    HOOK.with(|h| {
        let mut slot = h.borrow_mut();
        if slot.is_none() {
            *slot = Some(hook);
        }
    });
}

/// Closes the tap when dropped.
#[must_use = "the tap closes when the guard drops"]
pub struct TapGuard(());

impl Drop for TapGuard {
    fn drop(&mut self) {
        OPEN.with(|o| o.set(false));
    }
}

/// Starts recording layer outputs on this thread (clearing anything recorded before).
pub fn open() -> TapGuard {
    register();
    RECORDED.with(|r| r.borrow_mut().clear());
    OPEN.with(|o| o.set(true));
    TapGuard(())
}

/// Whether a tap is open on this thread.
pub fn is_open() -> bool {
    OPEN.with(|o| o.get())
}

/// The outputs recorded since [`open`], in execution order; leaves none.
pub fn take() -> Vec<Recorded> {
    RECORDED.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

/// Whether a module only arranges others (its own output is a child's output).
fn is_container(type_name: &str) -> bool {
    matches!(type_name, "Sequential" | "Network")
}

/// Runs `child.forward(x)` as the child called `name` of the calling container: numerics errors
/// name its path, a layer error gains the child's name, and an open tap records its output.
pub fn forward_child(name: &str, child: &dyn Module, x: &Tensor, mode: Mode) -> Result<Tensor> {
    let record = !is_container(child.type_name());
    run_child(name, child.type_name(), record, || {
        child.forward(x, mode).map_err(|e| match e {
            // Say which child failed; the inner message keeps the op and shapes.
            Error::Core(inner) => Error::layer(format!("{name} ({})", child.type_name()), inner.to_string()),
            Error::Layer { layer, msg } => Error::layer(join_name(name, &layer), msg),
            other => other,
        })
    })
}

/// Runs `f` (the forward of a part called `name`, of type `type_name`) under that name: for
/// containers that run their parts themselves. With `record`, an open tap keeps the output.
pub fn run_child<E>(
    name: &str,
    type_name: &'static str,
    record: bool,
    f: impl FnOnce() -> std::result::Result<Tensor, E>,
) -> std::result::Result<Tensor, E> {
    let tapping = is_open();
    let _scope = (tapping || numerics::enabled()).then(|| numerics::scope(name));
    if tapping {
        PATH.with(|p| p.borrow_mut().push(name.to_string()));
    }
    let out = f();
    if tapping {
        let path = PATH.with(|p| {
            let mut p = p.borrow_mut();
            let path = p.join(".");
            p.pop();
            path
        });
        if let (Ok(y), true) = (&out, record) {
            let rec = Recorded { path, type_name, output: y.clone() };
            RECORDED.with(|r| r.borrow_mut().push(rec.clone()));
            call_hook(&rec);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use shendu_core::{DType, Tensor};

    use super::*;
    use crate::layers::{Linear, Relu};
    use crate::Sequential;

    #[test]
    fn the_hook_sees_each_output_before_the_next_layer_runs() {
        let net = Sequential::new().push(Linear::new(3, 4, DType::F32).unwrap()).push(Relu).push(Linear::new(4, 2, DType::F32).unwrap());
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = seen.clone();
        // Each call also counts how many outputs were recorded by then: only those up to its own.
        set_hook(Some(Box::new(move |r: &Recorded| {
            let recorded = RECORDED.with(|x| x.borrow().len());
            log.borrow_mut().push((r.path.clone(), r.output.dims().to_vec(), recorded));
        })));
        let tap = open();
        net.forward(&Tensor::ones(&[5, 3], DType::F32).unwrap(), Mode::Train).unwrap();
        drop(tap);
        assert!(set_hook(None).is_some());
        let seen = seen.borrow();
        assert_eq!(*seen, [("0".to_string(), vec![5, 4], 1), ("1".to_string(), vec![5, 4], 2), ("2".to_string(), vec![5, 2], 3)]);
        // Without a tap, no calls.
        set_hook(Some(Box::new(|_: &Recorded| panic!("called without a tap"))));
        net.forward(&Tensor::ones(&[1, 3], DType::F32).unwrap(), Mode::Eval).unwrap();
        set_hook(None);
    }

    #[test]
    fn a_pool_job_neither_records_into_nor_calls_the_tap_of_the_thread_running_it() {
        use shendu_core::cpu::thread_context::ThreadContext;
        let net = Sequential::new().push(Linear::new(3, 4, DType::F32).unwrap()).push(Relu);
        let x = Tensor::ones(&[2, 3], DType::F32).unwrap();
        // Captured on a thread without a tap: the job this thread runs below was handed over there.
        let ctx = std::thread::scope(|s| s.spawn(ThreadContext::capture).join().unwrap());
        let calls = Rc::new(RefCell::new(0));
        let count = calls.clone();
        set_hook(Some(Box::new(move |_: &Recorded| *count.borrow_mut() += 1)));
        let tap = open();
        net.forward(&x, Mode::Eval).unwrap();
        let own = ctx.run(|| {
            assert!(!is_open());
            net.forward(&x, Mode::Eval).unwrap();
            // A tap the job opens is its own.
            let _tap = open();
            net.forward(&x, Mode::Eval).unwrap();
            take().len()
        });
        assert_eq!(own, 2);
        assert!(is_open());
        net.forward(&x, Mode::Eval).unwrap();
        drop(tap);
        assert!(set_hook(None).is_some());
        let seen: Vec<String> = take().into_iter().map(|r| r.path).collect();
        assert_eq!(seen, ["0", "1", "0", "1"]);
        assert_eq!(*calls.borrow(), 4);
    }
}
