//! `shendu debug`: an interactive debugger over a training run, in the role of TensorFlow's
//! tfdbg. It builds the model, optimizer, data order and learning-rate schedule exactly as
//! `shendu train` would from the same flags, so a session retraces the run step for step, and
//! lets you step the training and look inside it:
//!
//! ```text
//! shendu-debug> run -f has_inf_or_nan
//! step 1: loss 2.3164 (batch accuracy 9.4%)
//! ...
//! has_inf_or_nan tripped at step 5, forward pass: tensor layers.0:output: 1024 of its 32768 values are NaN or infinite
//! shendu-debug> list_tensors layers.0
//! shendu-debug> print_tensor layers.0:output [0, :5]
//! ```
//!
//! Commands: `run [N]`, `run -f FILTER [max N]` (filters `has_inf_or_nan`, `large_grad[:T]`,
//! `dead_relu`), `list_tensors [PATTERN]`, `print_tensor NAME [SLICE]`, `watch NAME`,
//! `unwatch`, `break LAYER [forward|backward]`, `unbreak`, `stats`, `help`, `quit`.
//!
//! Tensors are named `input`, `LAYER:output` (each layer output the tap records, LAYER being
//! its dotted path such as `layers.2`), `LAYER:grad` (the loss's gradient at that output, kept
//! by [`shendu_core::Tensor::backward_keeping`]), `PARAM` and `PARAM:grad` (`layers.2.weight`),
//! and `loss`.
//!
//! Granularity: a step runs in three phases, the forward pass, the backward pass and the
//! optimizer update. `break layers.2 forward` pauses *inside* the forward pass, as soon as
//! `layers.2` has made its output and before the next layer runs: the tap calls a hook
//! ([`shendu_nn::tap::set_hook`]) that runs a nested prompt (`shendu-debug [layers.2 forward]> `)
//! where `list_tensors` and `print_tensor` show the outputs made so far and `run` resumes.
//! Gradients come out of one backward call, so `break layers.2 backward` and the filters work
//! *between* phases: after the backward pass that made the layer's gradients (the update
//! pending), and after each phase on the tensors it made. The first tensor to trip a filter is
//! named in the order the step made them (input, parameters, layer outputs, loss, then
//! gradients from the last layer to the first, then parameter gradients, then the updated
//! parameters), which is where a NaN first appeared.
//!
//! On a terminal the prompt has history (up arrow) and tab completion of commands, filters,
//! layer paths and tensor names (rustyline); from a pipe or `--commands FILE` the commands are
//! read one a line and echoed after the prompt, so sessions are scriptable.

mod commands;
mod exec;
mod filters;
mod pause;
mod repl;
mod session;
mod view;

pub use commands::{Command, When};
pub use exec::{Debugger, Flow};
pub use filters::Filter;
pub use repl::{repl, DebugHelper, Input, PROMPT};
pub use session::{LayerInfo, Named, Phase, Session};
