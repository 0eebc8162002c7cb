//! What the commands do: the debugger's state (watches, breakpoints) over a [`Session`].

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;

use shendu_nn::{tap, ModuleExt};

use super::commands::{Command, When, COMMANDS};
use super::filters::Filter;
use super::pause;
use super::repl::Input;
use super::session::{Named, Phase, Session};
use super::view::{self, in_layer, stats_line};
use crate::cli::{CliError, CliResult};

/// Losses `stats` shows, at most.
const SHOWN_LOSSES: usize = 48;

/// Whether the REPL goes on after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// The debugger: a session, the watched names and the breakpoints.
pub struct Debugger {
    pub session: Session,
    watches: Vec<String>,
    breaks: Vec<(String, When)>,
    /// Where forward breakpoints read their nested commands; without it they pause after the
    /// forward pass instead.
    input: Option<Rc<RefCell<Input>>>,
}

/// Writes a line to the debugger's output.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).map_err(|e| CliError::internal(format!("debug: cannot write the output: {e}")))?
    };
}

impl Debugger {
    pub fn new(session: Session) -> Debugger {
        Debugger { session, watches: Vec::new(), breaks: Vec::new(), input: None }
    }

    /// Lets forward breakpoints pause inside the forward pass, reading commands from `input`.
    pub fn attach_input(&mut self, input: Rc<RefCell<Input>>) {
        self.input = Some(input);
    }

    /// The opening lines.
    pub fn banner(&self) -> String {
        let s = &self.session;
        let c = &s.config;
        format!(
            "shendu debug: {} ({} parameters), {} training samples, batch {}, {} lr {} ({}), {} thread(s)\n\
             Type `help` for the commands; `run` takes a training step.",
            c.model,
            s.model().param_count(),
            s.train_samples(),
            c.batch,
            c.optimizer,
            c.lr,
            c.schedule,
            shendu_core::num_threads()
        )
    }

    /// Runs one command, writing what it shows to `out`.
    pub fn execute(&mut self, cmd: Command, out: &mut dyn Write) -> CliResult<Flow> {
        match cmd {
            Command::Nothing => {}
            Command::Quit => return Ok(Flow::Quit),
            Command::Help => {
                for (word, args, what) in COMMANDS {
                    say!(out, "  {:<40} {what}", format!("{word} {args}"));
                }
                say!(
                    out,
                    "Tensor names: input, LAYER:output, LAYER:grad (the loss's gradient at that output), PARAM, PARAM:grad, loss.\n\
                     Breakpoints and filters act between the phases of a step (forward pass, backward pass, update): a paused\n\
                     step shows what it has made so far, and `run` finishes it."
                );
            }
            Command::Run(n) => return self.run(out, n, None),
            Command::RunUntil { filter, max } => return self.run(out, max, Some(&filter)),
            Command::ListTensors(pattern) => {
                say!(out, "{}", self.where_we_are());
                say!(out, "{}", view::table(self.session.tensors(), pattern.as_deref())?);
            }
            Command::PrintTensor { name, slice } => self.print_tensor(out, &name, slice.as_deref())?,
            Command::Watch(None) => match self.watches.is_empty() {
                true => say!(out, "no watches"),
                false => say!(out, "watching: {}", self.watches.join(", ")),
            },
            Command::Watch(Some(name)) => {
                let is_pattern = name.contains(['*', '?']);
                if !is_pattern && !self.session.known_names().contains(&name) {
                    return Err(CliError::bad(format!("watch: no tensor is called '{name}'{}", self.suggest(&name))));
                }
                if !self.watches.contains(&name) {
                    self.watches.push(name.clone());
                }
                say!(out, "watching {name}: its statistics print after every step");
            }
            Command::Unwatch(name) => {
                let before = self.watches.len();
                self.watches.retain(|w| name.as_ref().is_some_and(|n| n != w));
                say!(out, "removed {} watch(es)", before - self.watches.len());
            }
            Command::Break(None) => match self.breaks.is_empty() {
                true => say!(out, "no breakpoints"),
                false => {
                    for (layer, when) in &self.breaks {
                        say!(out, "  {layer} {}", when.name());
                    }
                }
            },
            Command::Break(Some((layer, when))) => {
                if !self.session.layers().iter().any(|l| in_layer(&l.path, &layer)) {
                    let paths: Vec<&str> = self.session.layers().iter().map(|l| l.path.as_str()).collect();
                    return Err(CliError::bad(format!("break: no layer '{layer}'; the layers are {}", paths.join(", "))));
                }
                if !self.breaks.contains(&(layer.clone(), when)) {
                    self.breaks.push((layer.clone(), when));
                }
                let what = match when {
                    When::Forward if self.input.is_some() => "inside the forward pass, as soon as it makes its output",
                    When::Forward => "after the forward pass that makes its output",
                    When::Backward => "after the backward pass that makes its gradient",
                };
                say!(out, "breakpoint: {layer} {}: `run` pauses {what}", when.name());
            }
            Command::Unbreak(layer) => {
                let before = self.breaks.len();
                self.breaks.retain(|(l, _)| layer.as_ref().is_some_and(|n| n != l));
                say!(out, "removed {} breakpoint(s)", before - self.breaks.len());
            }
            Command::Stats => self.stats(out)?,
        }
        Ok(Flow::Continue)
    }

    /// Advances until `n` steps have completed, a breakpoint is hit or `filter` trips; with a
    /// filter, `n` is the most steps to take.
    fn run(&mut self, out: &mut dyn Write, n: usize, filter: Option<&Filter>) -> CliResult<Flow> {
        let mut completed = 0;
        loop {
            let before = self.session.tensors().len();
            let quit = self.pause_inside_forward();
            let advanced = self.session.advance();
            if quit.is_some() {
                tap::set_hook(None);
            }
            let phase = match advanced {
                Ok(p) => p,
                Err(e) => {
                    self.session.abandon_step();
                    return Err(CliError::bad(format!("step {} failed: {e}", self.session.current_step() + 1)));
                }
            };
            if quit.is_some_and(|q| q.get()) {
                return Ok(Flow::Quit);
            }
            let step = self.session.current_step();
            if phase == Phase::Update {
                // The update changed the parameters: a filter looks at them again.
                let params: Vec<Named> = self.session.tensors().iter().filter(|t| t.param).cloned().collect();
                if let Some((t, why)) = filter.map(|f| f.first_trip(&params)).transpose()?.flatten() {
                    say!(out, "step {step}: loss {}", view::num(self.session.losses.last().copied().unwrap_or(f64::NAN)));
                    say!(
                        out,
                        "{} tripped at step {step}, update: parameter {}: {why}",
                        filter.map(|f| f.to_string()).unwrap_or_default(),
                        t.name
                    );
                    say!(out, "  {}: {}", t.name, stats_line(&t.tensor)?);
                    say!(out, "the step is complete; `list_tensors` shows its tensors");
                    return Ok(Flow::Continue);
                }
                let (loss, acc) = (self.session.losses.last().copied(), self.session.accuracies.last().copied());
                say!(out, "step {step}: loss {} (batch accuracy {:.1}%)", view::num(loss.unwrap_or(f64::NAN)), 100.0 * acc.unwrap_or(0.0));
                self.print_watches(out)?;
                completed += 1;
                if completed >= n {
                    if let Some(f) = filter {
                        say!(out, "{f} did not trip in {n} step(s)");
                    }
                    return Ok(Flow::Continue);
                }
                continue;
            }
            let from = if phase == Phase::Forward { 0 } else { before };
            let made = &self.session.tensors()[from..];
            if let Some(f) = filter {
                if let Some((t, why)) = f.first_trip(made)? {
                    let kind = t.kind.as_ref().map(|k| format!(" ({k})")).unwrap_or_default();
                    say!(out, "{f} tripped at step {step}, {} pass: tensor {}{kind}: {why}", pass(phase), t.name);
                    say!(out, "  {}: {}", t.name, stats_line(&t.tensor)?);
                    say!(out, "{}", paused_note(phase));
                    return Ok(Flow::Continue);
                }
            }
            if let Some((layer, t)) = self.breakpoint_hit(phase, made) {
                say!(out, "breakpoint {layer} {} at step {step}: {} is ready", pass(phase), t.name);
                say!(out, "  {}: {}", t.name, stats_line(&t.tensor)?);
                say!(out, "{}", paused_note(phase));
                return Ok(Flow::Continue);
            }
        }
    }

    /// Before a forward pass with forward breakpoints and an input to prompt from: installs the
    /// tap hook that pauses inside the pass, and returns its quit flag.
    fn pause_inside_forward(&self) -> Option<Rc<Cell<bool>>> {
        let input = self.input.as_ref()?;
        let layers: Vec<String> = self.breaks.iter().filter(|(_, w)| *w == When::Forward).map(|(l, _)| l.clone()).collect();
        if layers.is_empty() || self.session.paused_after().is_some() {
            return None;
        }
        let params = self.session.parameters();
        Some(pause::install(input.clone(), layers, params, self.session.steps + 1))
    }

    /// The first breakpoint that the tensors just made hit, with the tensor.
    fn breakpoint_hit<'a>(&self, phase: Phase, made: &'a [Named]) -> Option<(String, &'a Named)> {
        let (when, suffix) = match phase {
            // With an input attached, forward breakpoints pause inside the pass instead.
            Phase::Forward if self.input.is_some() => return None,
            Phase::Forward => (When::Forward, ":output"),
            Phase::Backward => (When::Backward, ":grad"),
            Phase::Update => return None,
        };
        self.breaks.iter().filter(|(_, w)| *w == when).find_map(|(layer, _)| {
            made.iter()
                .find(|t| t.name.ends_with(suffix) && t.layer.as_deref().is_some_and(|l| in_layer(l, layer)))
                .map(|t| (layer.clone(), t))
        })
    }

    fn print_watches(&self, out: &mut dyn Write) -> CliResult<()> {
        for w in &self.watches {
            let hits: Vec<&Named> =
                self.session.tensors().iter().filter(|t| &t.name == w || (w.contains(['*', '?']) && view::matches(w, &t.name))).collect();
            if hits.is_empty() {
                say!(out, "  watch {w}: not in this step");
            }
            for t in hits {
                say!(out, "  watch {}: {}", t.name, stats_line(&t.tensor)?);
            }
        }
        Ok(())
    }

    fn print_tensor(&self, out: &mut dyn Write, name: &str, slice: Option<&str>) -> CliResult<()> {
        let Some(t) = self.session.tensors().iter().find(|t| t.name == name) else {
            return Err(CliError::bad(format!("print_tensor: no tensor '{name}' in this step{}", self.suggest(name))));
        };
        say!(out, "{}", view::print(t, slice, self.session.current_step())?);
        Ok(())
    }

    fn stats(&self, out: &mut dyn Write) -> CliResult<()> {
        let s = &self.session;
        let c = &s.config;
        let per_epoch = s.batches_per_epoch().max(1);
        say!(
            out,
            "steps completed: {} (epoch {}, batch {} of {} next)",
            s.steps,
            s.steps / per_epoch + 1,
            s.steps % per_epoch + 1,
            per_epoch
        );
        if let Some(phase) = s.paused_after() {
            say!(out, "step {} is paused after its {} pass", s.current_step(), pass(phase));
        }
        say!(
            out,
            "model {}: {} parameters; optimizer {}, lr {} at this step (base {}, schedule {}), momentum {}, batch {}",
            c.model,
            s.model().param_count(),
            s.optimizer_name(),
            view::num(s.lr()),
            c.lr,
            c.schedule,
            c.momentum,
            c.batch
        );
        if s.losses.is_empty() {
            say!(out, "loss history: none yet");
            return Ok(());
        }
        let lowest = s.losses.iter().enumerate().filter(|(_, v)| v.is_finite()).min_by(|a, b| a.1.total_cmp(b.1));
        let lowest = lowest.map(|(i, v)| format!("lowest {} at step {}", view::num(*v), i + 1)).unwrap_or_else(|| "none finite".into());
        say!(out, "loss history ({} steps, {lowest}):", s.losses.len());
        // The last rows only: a long session's history would bury the screen.
        let first_shown = s.losses.len().saturating_sub(SHOWN_LOSSES) / 8 * 8;
        if first_shown > 0 {
            say!(out, "  (steps 1 to {first_shown} left out)");
        }
        for (k, chunk) in s.losses[first_shown..].chunks(8).enumerate() {
            let vals: Vec<String> = chunk.iter().map(|v| format!("{:>10}", view::num(*v))).collect();
            say!(out, "  {:>5}: {}", first_shown + k * 8 + 1, vals.join(" "));
        }
        Ok(())
    }

    /// `step 3, complete` or `step 4, paused after its forward pass`.
    fn where_we_are(&self) -> String {
        let s = &self.session;
        match s.paused_after() {
            Some(phase) => format!("step {}, paused after its {} pass ({})", s.current_step(), pass(phase), pending_of(phase)),
            None if s.steps == 0 => "no step taken yet".to_string(),
            None => format!("step {}, complete (parameters as updated)", s.steps),
        }
    }

    /// ` (did you mean: a, b)` from the names containing `name`'s last part.
    fn suggest(&self, name: &str) -> String {
        let key = name.split(':').next().unwrap_or(name);
        let near: Vec<String> = self.session.known_names().into_iter().filter(|n| n.contains(key)).take(6).collect();
        match near.is_empty() {
            true => "; list_tensors shows the names".to_string(),
            false => format!(" (did you mean: {}?)", near.join(", ")),
        }
    }

    /// The names completion offers: every tensor name and layer path.
    pub fn completion_names(&self) -> (Vec<String>, Vec<String>) {
        (self.session.known_names(), self.session.layers().iter().map(|l| l.path.clone()).collect())
    }
}

fn pass(phase: Phase) -> &'static str {
    match phase {
        Phase::Forward => "forward",
        Phase::Backward => "backward",
        Phase::Update => "update",
    }
}

fn pending_of(phase: Phase) -> &'static str {
    match phase {
        Phase::Forward => "backward pass and update pending",
        Phase::Backward => "update pending",
        Phase::Update => "complete",
    }
}

fn paused_note(phase: Phase) -> String {
    format!("paused: {}; `list_tensors` shows this step's tensors, `run` finishes the step", pending_of(phase))
}
