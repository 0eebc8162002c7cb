//! The read-eval-print loop: a line editor with history and tab completion (rustyline) on a
//! terminal, else one command a line from a file or a pipe, each echoed after the prompt so a
//! transcript reads like the interactive session.

use std::cell::RefCell;
use std::io::{self, BufRead, Write};
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use super::commands::{Command, WORDS};
use super::exec::{Debugger, Flow};
use super::filters::FILTERS;
use crate::cli::{CliError, CliResult};

/// The prompt.
pub const PROMPT: &str = "shendu-debug> ";

/// Completion of command words, filter names, layer paths and tensor names.
#[derive(Default)]
pub struct DebugHelper {
    names: Vec<String>,
    layers: Vec<String>,
}

impl DebugHelper {
    /// What the word ending at the cursor may become, and where that word starts.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<Pair>) {
        let before = line.get(..pos).unwrap_or(line);
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        let prev: Vec<&str> = before[..start].split_whitespace().collect();
        let forward_backward = ["forward".to_string(), "backward".to_string()];
        let words: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
        let filters: Vec<String> = FILTERS.iter().map(|w| w.to_string()).collect();
        let (pool, space): (&[String], bool) = match prev.as_slice() {
            [] => (&words, true),
            ["run" | "r" | "continue" | "c", "-f"] => (&filters, true),
            ["break" | "b" | "unbreak" | "delete"] => (&self.layers, true),
            ["break" | "b", _] => (&forward_backward, false),
            ["print_tensor" | "pt" | "watch" | "unwatch" | "list_tensors" | "lt"] => (&self.names, true),
            _ => (&[], false),
        };
        let found = pool
            .iter()
            .filter(|c| c.starts_with(word))
            .map(|c| Pair { display: c.clone(), replacement: if space { format!("{c} ") } else { c.clone() } })
            .collect();
        (start, found)
    }
}

impl Completer for DebugHelper {
    type Candidate = Pair;
    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Hinter for DebugHelper {
    type Hint = String;
}
impl Highlighter for DebugHelper {}
impl Validator for DebugHelper {}
impl Helper for DebugHelper {}

/// Where commands come from.
pub enum Input {
    /// A terminal: line editing, history (up arrow), tab completion.
    Terminal(Box<Editor<DebugHelper, DefaultHistory>>),
    /// A file or a pipe: one command a line, echoed after the prompt.
    Script(Box<dyn BufRead>),
}

impl Input {
    /// The line editor on this terminal.
    pub fn terminal() -> CliResult<Input> {
        let config = Config::builder().completion_type(CompletionType::List).auto_add_history(true).build();
        let mut editor = Editor::with_config(config).map_err(|e| CliError::internal(format!("debug: cannot open the line editor: {e}")))?;
        editor.set_helper(Some(DebugHelper::default()));
        Ok(Input::Terminal(Box::new(editor)))
    }

    /// The next command line after `prompt`; `None` at the end of input (Ctrl-D, end of file).
    pub fn read(&mut self, prompt: &str) -> CliResult<Option<String>> {
        match self {
            Input::Terminal(editor) => match editor.readline(prompt) {
                Ok(line) => Ok(Some(line)),
                // Ctrl-C abandons the line being typed, as in a shell.
                Err(ReadlineError::Interrupted) => Ok(Some(String::new())),
                Err(ReadlineError::Eof) => Ok(None),
                Err(e) => Err(CliError::internal(format!("debug: reading the terminal: {e}"))),
            },
            Input::Script(lines) => {
                let mut line = String::new();
                if lines.read_line(&mut line)? == 0 {
                    return Ok(None);
                }
                let line = line.trim_end_matches(['\n', '\r']).to_string();
                if !emit(&format!("{prompt}{line}")) {
                    return Ok(None);
                }
                Ok(Some(line))
            }
        }
    }

    fn set_names(&mut self, names: Vec<String>, layers: Vec<String>) {
        if let Input::Terminal(editor) = self {
            if let Some(h) = editor.helper_mut() {
                h.names = names;
                h.layers = layers;
            }
        }
    }
}

/// Writes a line to stdout; false when stdout is gone (a closed pipe).
pub fn emit(line: &str) -> bool {
    writeln!(io::stdout().lock(), "{line}").is_ok()
}

/// Reads and runs commands until `quit` or the end of input. A script in which some command
/// failed ends with an error (after running the rest), so scripted checks notice.
pub fn repl(debugger: &mut Debugger, input: Input) -> CliResult<()> {
    if !emit(&debugger.banner()) {
        return Ok(());
    }
    let scripted = matches!(input, Input::Script(_));
    // Shared with the debugger, whose forward breakpoints prompt from inside the forward pass.
    let input = Rc::new(RefCell::new(input));
    debugger.attach_input(input.clone());
    let mut failed = 0usize;
    let stdout = io::stdout();
    loop {
        let (names, layers) = debugger.completion_names();
        input.borrow_mut().set_names(names, layers);
        let Some(line) = input.borrow_mut().read(PROMPT)? else { break };
        let result = Command::parse(&line).and_then(|cmd| debugger.execute(cmd, &mut stdout.lock()));
        match result {
            Ok(Flow::Quit) => break,
            Ok(Flow::Continue) => {}
            Err(e) => {
                failed += 1;
                // A reader that went away (`| head`) ends the session quietly.
                if !emit(&format!("error: {e}")) {
                    return Ok(());
                }
            }
        }
        if stdout.lock().flush().is_err() {
            return Ok(());
        }
    }
    match (scripted, failed) {
        (true, n) if n > 0 => Err(CliError::bad(format!("{n} command(s) of the script failed"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_commands_filters_layers_and_names() {
        let h = DebugHelper {
            names: vec!["layers.0:output".into(), "layers.0:grad".into(), "loss".into()],
            layers: vec!["layers.0".into(), "layers.1".into()],
        };
        let texts = |line: &str| -> (usize, Vec<String>) {
            let (start, c) = h.candidates(line, line.len());
            (start, c.into_iter().map(|p| p.replacement).collect())
        };
        assert_eq!(texts("print_t"), (0, vec!["print_tensor ".to_string()]));
        assert_eq!(texts("pt layers.0:g"), (3, vec!["layers.0:grad ".to_string()]));
        assert_eq!(texts("run -f has"), (7, vec!["has_inf_or_nan ".to_string()]));
        assert_eq!(texts("break layers.").1.len(), 2);
        assert_eq!(texts("break layers.1 b"), (15, vec!["backward".to_string()]));
        assert!(texts("stats x").1.is_empty());
    }
}
