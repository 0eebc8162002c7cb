//! The debugger's command language: one command a line, words separated by spaces.

use super::filters::Filter;
use crate::cli::{CliError, CliResult};

/// Steps `run -f` takes at most unless told (`max N`).
pub const DEFAULT_MAX_STEPS: usize = 1000;

/// When a breakpoint pauses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Forward,
    Backward,
}

impl When {
    pub fn name(self) -> &'static str {
        match self {
            When::Forward => "forward",
            When::Backward => "backward",
        }
    }
}

/// A parsed command.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `run [N]`: finish the step in progress or take steps until N have completed.
    Run(usize),
    /// `run -f FILTER [max N]`.
    RunUntil {
        filter: Filter,
        max: usize,
    },
    /// `list_tensors [pattern]`.
    ListTensors(Option<String>),
    /// `print_tensor NAME [slice]`.
    PrintTensor {
        name: String,
        slice: Option<String>,
    },
    /// `watch NAME` (no name: list the watches).
    Watch(Option<String>),
    /// `unwatch [NAME]` (no name: all).
    Unwatch(Option<String>),
    /// `break LAYER [forward|backward]` (no layer: list the breakpoints).
    Break(Option<(String, When)>),
    /// `unbreak [LAYER]` (no layer: all).
    Unbreak(Option<String>),
    Stats,
    Help,
    Quit,
    /// An empty line or a comment.
    Nothing,
}

/// The command words with their aliases and one-line help, in the order `help` lists them.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("run", "[N]", "take N training steps (default 1); a paused step counts as one"),
    ("run", "-f FILTER [max N]", "step until a tensor trips FILTER: has_inf_or_nan, large_grad[:T] (default 1e3), dead_relu"),
    ("list_tensors", "[PATTERN]", "every tensor of the current step with shape, dtype, min/max/mean/std, % zeros, non-finite (alias lt)"),
    ("print_tensor", "NAME [SLICE]", "print a tensor, or a slice of it such as [0, :5] or [0:2, 3] (alias pt)"),
    ("watch", "NAME", "print NAME's statistics after every step (NAME may be a pattern); no NAME lists the watches"),
    ("unwatch", "[NAME]", "stop watching NAME (all without one)"),
    (
        "break",
        "LAYER [forward|backward]",
        "pause as LAYER makes its output (inside the forward pass) or after the backward pass makes its gradient",
    ),
    ("unbreak", "[LAYER]", "remove LAYER's breakpoints (all without one)"),
    ("stats", "", "steps, learning rate, and the loss history"),
    ("help", "", "this list"),
    ("quit", "", "leave the debugger (also exit, Ctrl-D)"),
];

/// Every word that starts a command (for completion).
pub const WORDS: &[&str] = &[
    "run",
    "continue",
    "list_tensors",
    "lt",
    "print_tensor",
    "pt",
    "watch",
    "unwatch",
    "break",
    "unbreak",
    "stats",
    "help",
    "quit",
    "exit",
];

impl Command {
    /// Parses one line.
    pub fn parse(line: &str) -> CliResult<Command> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&head, args)) = words.split_first() else { return Ok(Command::Nothing) };
        if head.starts_with('#') {
            return Ok(Command::Nothing);
        }
        let too_many = |usage: &str| Err(CliError::bad(format!("{head}: too many arguments; usage: {usage}")));
        match head {
            "run" | "r" | "continue" | "c" => parse_run(args),
            "list_tensors" | "lt" => match args {
                [] => Ok(Command::ListTensors(None)),
                [p] => Ok(Command::ListTensors(Some(p.to_string()))),
                _ => too_many("list_tensors [PATTERN]"),
            },
            "print_tensor" | "pt" => match args {
                [] => Err(CliError::bad("print_tensor: which tensor? usage: print_tensor NAME [SLICE]; list_tensors shows the names")),
                // A slice may contain spaces: `[0, :5]`.
                [name, rest @ ..] => {
                    let slice = (!rest.is_empty()).then(|| rest.join(" "));
                    Ok(Command::PrintTensor { name: name.to_string(), slice })
                }
            },
            "watch" => match args {
                [] => Ok(Command::Watch(None)),
                [n] => Ok(Command::Watch(Some(n.to_string()))),
                _ => too_many("watch NAME"),
            },
            "unwatch" => match args {
                [] => Ok(Command::Unwatch(None)),
                [n] => Ok(Command::Unwatch(Some(n.to_string()))),
                _ => too_many("unwatch [NAME]"),
            },
            "break" | "b" => match args {
                [] => Ok(Command::Break(None)),
                [layer] => Ok(Command::Break(Some((layer.to_string(), When::Forward)))),
                [layer, "forward" | "fwd" | "f"] => Ok(Command::Break(Some((layer.to_string(), When::Forward)))),
                [layer, "backward" | "bwd" | "b"] => Ok(Command::Break(Some((layer.to_string(), When::Backward)))),
                [_, other] => Err(CliError::bad(format!("break: '{other}' is neither forward nor backward"))),
                _ => too_many("break LAYER [forward|backward]"),
            },
            "unbreak" | "delete" => match args {
                [] => Ok(Command::Unbreak(None)),
                [l] => Ok(Command::Unbreak(Some(l.to_string()))),
                _ => too_many("unbreak [LAYER]"),
            },
            "stats" => no_args(args, head, Command::Stats),
            "help" | "h" | "?" => Ok(Command::Help),
            "quit" | "q" | "exit" => no_args(args, head, Command::Quit),
            other => Err(CliError::bad(format!("unknown command '{other}'; `help` lists the commands"))),
        }
    }
}

fn no_args(args: &[&str], head: &str, c: Command) -> CliResult<Command> {
    match args {
        [] => Ok(c),
        _ => Err(CliError::bad(format!("{head} takes no arguments"))),
    }
}

fn count(word: &str, what: &str) -> CliResult<usize> {
    match word.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(CliError::bad(format!("run: {what} must be a positive whole number, got '{word}'"))),
    }
}

fn parse_run(args: &[&str]) -> CliResult<Command> {
    match args {
        [] => Ok(Command::Run(1)),
        [n] if !n.starts_with('-') => Ok(Command::Run(count(n, "the number of steps")?)),
        ["-f" | "--filter", filter, rest @ ..] => {
            let filter = Filter::parse(filter)?;
            let max = match rest {
                [] => DEFAULT_MAX_STEPS,
                ["max" | "--max", n] | [n] => count(n, "max")?,
                _ => return Err(CliError::bad("run: usage: run -f FILTER [max N]")),
            };
            Ok(Command::RunUntil { filter, max })
        }
        _ => Err(CliError::bad("run: usage: run [N] or run -f FILTER [max N]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_commands() {
        let p = |s: &str| Command::parse(s).unwrap();
        assert_eq!(p("run"), Command::Run(1));
        assert_eq!(p("  run 5 "), Command::Run(5));
        assert_eq!(p("run -f has_inf_or_nan"), Command::RunUntil { filter: Filter::HasInfOrNan, max: DEFAULT_MAX_STEPS });
        assert_eq!(p("run -f large_grad:10 max 20"), Command::RunUntil { filter: Filter::LargeGrad(10.0), max: 20 });
        assert_eq!(p("lt *:grad"), Command::ListTensors(Some("*:grad".into())));
        assert_eq!(
            p("print_tensor layers.0:output [0, :5]"),
            Command::PrintTensor { name: "layers.0:output".into(), slice: Some("[0, :5]".into()) }
        );
        assert_eq!(p("break layers.2 backward"), Command::Break(Some(("layers.2".into(), When::Backward))));
        assert_eq!(p("break layers.2"), Command::Break(Some(("layers.2".into(), When::Forward))));
        assert_eq!(p("# a comment"), Command::Nothing);
        assert_eq!(p(""), Command::Nothing);
        assert_eq!(p("exit"), Command::Quit);
    }

    #[test]
    fn rejects_bad_commands_with_a_hint() {
        let e = |s: &str| Command::parse(s).unwrap_err().to_string();
        assert!(e("runn").contains("help"));
        assert!(e("run 0").contains("positive"));
        assert!(e("run -f nan").contains("has_inf_or_nan"));
        assert!(e("break x sideways").contains("sideways"));
        assert!(e("print_tensor").contains("list_tensors"));
    }
}
