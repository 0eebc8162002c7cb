//! Grad mode is per thread; work handed to shendu's pool runs in the caller's mode, whichever
//! pool thread takes it (a graph session's `no_grad` kernels once leaked into an eager training
//! step that a waiting pool thread picked up).

use shendu_core::cpu::threads::install;
use shendu_core::{is_grad_enabled, no_grad, set_num_threads};

#[test]
fn install_runs_in_the_callers_grad_mode() {
    set_num_threads(2);
    assert!(install(is_grad_enabled));
    {
        let _g = no_grad();
        assert!(!install(is_grad_enabled));
    }
    assert!(install(is_grad_enabled));
}
