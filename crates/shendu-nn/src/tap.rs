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

use std::cell::{Cell, RefCell};

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
            RECORDED.with(|r| r.borrow_mut().push(Recorded { path, type_name, output: y.clone() }));
        }
    }
    out
}
