//! The per-thread state a job handed to shendu's thread pool runs in.
//!
//! Grad mode, the numerics scope, a graph trace and an open layer tap live in thread-locals,
//! but a job may run on any pool thread, and a pool thread waiting inside one job (a graph
//! session's traced run, a `no_grad` region) runs other jobs meanwhile. So
//! [`threads::install`](super::threads::install) and
//! [`threads::parallel_ranges`](super::threads::parallel_ranges) [`capture`](ThreadContext::capture)
//! the caller's [`ThreadContext`] and [`run`](ThreadContext::run) the job in it on the worker,
//! which:
//!
//! - gives the job the caller's grad mode and numerics scope (and backward-rule context): the
//!   job behaves as if run on the caller;
//! - sets the worker's own graph trace aside: the job neither records into the trace of the
//!   job the worker is waiting in nor ends it;
//! - sets aside the state crates above core register with [`register_thread_state`] (the
//!   layer tap of `shendu-nn`, whose hook is bound to the thread that set it);
//! - puts all of the worker's state back when the job returns or unwinds.
//!
//! The random generator is not carried: a job draws from the generator of the thread that
//! runs it. A generator is a stream, not a mode: a copy would repeat the caller's draws in
//! every job and leave the caller's state behind, and moving it is impossible while the caller
//! keeps drawing (it runs a range of [`parallel_ranges`](super::threads::parallel_ranges)
//! itself). Kernels that need randomness draw their seeds on the caller before forking (as
//! dropout does), which keeps results independent of which thread runs which part.
//!
//! Last numerics failures ([`take_failure`](crate::numerics::take_failure)) stay with the
//! thread whose check failed.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::{Error, Result};

/// What a pool job sees of the thread that handed it over: captured there, run in on the
/// worker. Capturing costs a cell read and two reference-count clones at most.
#[derive(Clone)]
pub struct ThreadContext {
    grad_enabled: bool,
    numerics: crate::numerics::Context,
}

impl ThreadContext {
    /// The calling thread's context.
    pub fn capture() -> ThreadContext {
        ThreadContext { grad_enabled: crate::autograd::is_grad_enabled(), numerics: crate::numerics::capture() }
    }

    /// Runs `f` on this thread in this context, with the thread's own trace and registered
    /// states set aside; everything is put back when `f` returns or unwinds.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = Entered {
            _grad: crate::autograd::set_grad_enabled(self.grad_enabled),
            _numerics: crate::numerics::enter(self.numerics.clone()),
            _trace: crate::graph::trace::set_aside(),
            _registered: RegisteredAside::take(),
        };
        f()
    }
}

/// The worker's state while a job runs; dropping it restores that state.
struct Entered {
    _grad: crate::autograd::GradModeGuard,
    _numerics: crate::numerics::ContextGuard,
    _trace: crate::graph::trace::SetAside,
    _registered: RegisteredAside,
}

/// Per-thread state of a crate above core that belongs to its thread: a pool job must not see
/// the state of the worker that runs it.
pub struct ThreadState {
    /// Takes this thread's state, leaving it empty; `None` when there is nothing to set aside
    /// (which should cost no allocation).
    pub take: fn() -> Option<Box<dyn Any>>,
    /// Puts back what `take` returned, replacing whatever the job left.
    pub put_back: fn(Box<dyn Any>),
}

/// How many [`ThreadState`]s may register: each is one crate's.
const MAX_STATES: usize = 8;

static STATES: [OnceLock<&'static ThreadState>; MAX_STATES] = [const { OnceLock::new() }; MAX_STATES];
/// How many `STATES` are set; jobs read only those.
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

/// Registers a crate's per-thread state, so that every pool job sets it aside on its worker
/// (registering the same state again does nothing). Register before the state is first set.
pub fn register_thread_state(state: &'static ThreadState) -> Result<()> {
    static WRITER: Mutex<()> = Mutex::new(());
    let _one_at_a_time = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    let n = REGISTERED.load(Ordering::Acquire);
    if STATES[..n].iter().any(|s| s.get().is_some_and(|s| std::ptr::eq(*s, state))) {
        return Ok(());
    }
    let slot = STATES.get(n).ok_or_else(|| Error::invalid("register_thread_state", format!("at most {MAX_STATES} states")))?;
    // Only this writer sets slot `n`, and jobs read it only after the count below includes it.
    let _ = slot.set(state);
    REGISTERED.store(n + 1, Ordering::Release);
    Ok(())
}

/// The registered states a job's worker had, put back when dropped.
struct RegisteredAside {
    taken: [Option<Box<dyn Any>>; MAX_STATES],
}

impl RegisteredAside {
    fn take() -> RegisteredAside {
        let mut taken = [const { None }; MAX_STATES];
        let n = REGISTERED.load(Ordering::Acquire);
        for (slot, state) in taken.iter_mut().zip(&STATES[..n]) {
            if let Some(state) = state.get() {
                *slot = (state.take)();
            }
        }
        RegisteredAside { taken }
    }
}

impl Drop for RegisteredAside {
    fn drop(&mut self) {
        for (slot, state) in self.taken.iter_mut().zip(&STATES) {
            if let (Some(value), Some(state)) = (slot.take(), state.get()) {
                (state.put_back)(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::graph::trace;

    thread_local! {
        static MARK: Cell<u32> = const { Cell::new(0) };
    }

    static MARK_STATE: ThreadState = ThreadState {
        take: || match MARK.with(|m| m.replace(0)) {
            0 => None,
            m => Some(Box::new(m)),
        },
        put_back: |b| {
            if let Ok(m) = b.downcast::<u32>() {
                MARK.with(|c| c.set(*m));
            }
        },
    };

    #[test]
    fn a_job_sees_the_captured_context_and_none_of_the_workers_state() {
        register_thread_state(&MARK_STATE).unwrap();
        register_thread_state(&MARK_STATE).unwrap();
        let ctx = ThreadContext::capture();
        // This thread plays the worker: a no_grad scope, a numerics scope, a trace, a mark.
        let _g = crate::no_grad();
        let _s = crate::numerics::scope("worker");
        let _t = trace::tests::start_empty_trace();
        MARK.with(|m| m.set(7));
        let seen = std::panic::catch_unwind(|| {
            ctx.run(|| {
                let seen = (crate::is_grad_enabled(), crate::numerics::current_path(), trace::tests::tracing(), MARK.with(|m| m.get()));
                MARK.with(|m| m.set(9));
                panic!("{seen:?}")
            })
        });
        let msg = seen.unwrap_err().downcast::<String>().unwrap();
        assert_eq!(*msg, r#"(true, "", false, 0)"#);
        // Put back after the unwind.
        assert!(!crate::is_grad_enabled());
        assert_eq!(crate::numerics::current_path(), "worker");
        assert!(trace::tests::tracing());
        assert_eq!(MARK.with(|m| m.get()), 7);
    }
}
