//! Forward breakpoints that pause *inside* the forward pass: a tap hook runs a nested prompt as
//! soon as the breakpoint layer's output is recorded, before the layers after it run. There,
//! `list_tensors` and `print_tensor` show the outputs made so far (and the parameters); any
//! `run` resumes the step, `quit` ends the session once the forward pass returns.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use shendu_nn::tap::{self, Recorded};

use super::commands::Command;
use super::repl::{emit, Input};
use super::session::Named;
use super::view::{self, in_layer, stats_line};

/// The state of the hook during one forward pass.
struct ForwardPause {
    input: Rc<RefCell<Input>>,
    /// The layers with forward breakpoints.
    breaks: Vec<String>,
    /// Breakpoints already hit in this pass (a container's breakpoint pauses once).
    hit: Vec<String>,
    /// Parameters, then each output as it is recorded.
    seen: Vec<Named>,
    step: usize,
    quit: Rc<Cell<bool>>,
}

/// Installs the hook for the forward pass of step `step`; the flag it returns says whether the
/// user asked to quit while paused. Remove the hook with `tap::set_hook(None)` after the pass.
pub fn install(input: Rc<RefCell<Input>>, breaks: Vec<String>, params: Vec<Named>, step: usize) -> Rc<Cell<bool>> {
    let quit = Rc::new(Cell::new(false));
    let mut pause = ForwardPause { input, breaks, hit: Vec::new(), seen: params, step, quit: quit.clone() };
    tap::set_hook(Some(Box::new(move |r: &Recorded| pause.on_record(r))));
    quit
}

impl ForwardPause {
    fn on_record(&mut self, r: &Recorded) {
        if self.quit.get() {
            return;
        }
        let name = format!("{}:output", r.path);
        let t = Named { name, layer: Some(r.path.clone()), kind: Some(r.type_name.to_string()), param: false, tensor: r.output.detach() };
        self.seen.push(t);
        let Some(layer) = self.breaks.iter().find(|b| in_layer(&r.path, b) && !self.hit.contains(b)).cloned() else { return };
        self.hit.push(layer.clone());
        let stats = self.seen.last().map(|t| stats_line(&t.tensor)).transpose().unwrap_or_else(|e| Some(e.to_string()));
        let lines = [
            format!("breakpoint {layer} forward at step {}: {}:output is ready; the layers after it have not run", self.step, r.path),
            format!("  {}:output: {}", r.path, stats.unwrap_or_default()),
            "paused inside the forward pass: `list_tensors` and `print_tensor` show the outputs so far; `run` resumes".to_string(),
        ];
        if !lines.iter().all(|l| emit(l)) {
            self.quit.set(true);
            return;
        }
        self.prompt(&format!("shendu-debug [{} forward]> ", r.path));
    }

    /// The nested prompt: runs commands until one resumes the step or quits.
    fn prompt(&mut self, prompt: &str) {
        loop {
            let line = match self.input.borrow_mut().read(prompt) {
                Ok(Some(line)) => line,
                // End of input or a broken terminal: stop the session.
                Ok(None) | Err(_) => return self.quit.set(true),
            };
            let shown = match Command::parse(&line) {
                Ok(Command::Nothing) => continue,
                Ok(Command::Run(_) | Command::RunUntil { .. }) => return,
                Ok(Command::Quit) => return self.quit.set(true),
                Ok(Command::ListTensors(pattern)) => view::table(&self.seen, pattern.as_deref()),
                Ok(Command::PrintTensor { name, slice }) => match self.seen.iter().find(|t| t.name == name) {
                    Some(t) => view::print(t, slice.as_deref(), self.step),
                    None => Ok(format!(
                        "error: print_tensor: no tensor '{name}' yet; the forward pass is paused (list_tensors shows what exists)"
                    )),
                },
                Ok(Command::Help) => {
                    Ok("paused inside the forward pass: list_tensors [PATTERN], print_tensor NAME [SLICE], run (resumes), quit".into())
                }
                Ok(_) => Ok("error: not available while paused inside the forward pass; `run` resumes the step".into()),
                Err(e) => Ok(format!("error: {e}")),
            };
            let text = shown.unwrap_or_else(|e| format!("error: {e}"));
            if !emit(&text) {
                return self.quit.set(true);
            }
        }
    }
}
