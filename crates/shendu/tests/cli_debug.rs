//! `shendu debug` (issue 7): driven by a command file, the debugger runs the diverging MLP
//! (learning rate 50) until a tensor holds a NaN or infinity, names it and the step, lists the
//! step's activations and gradients and prints one; and on a terminal (tmux) the prompt has
//! history and tab completion.

mod cli_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{command, number_after, TempDir, BIN};

/// What `command` printed: the output after its echo, up to the next prompt.
fn section<'a>(text: &'a str, command: &str) -> &'a str {
    let after = text.split(&format!("shendu-debug> {command}\n")).nth(1).unwrap_or_else(|| panic!("no '{command}' in: {text}"));
    after.split("shendu-debug> ").next().unwrap_or("")
}

/// The `list_tensors` row of `name` (its first cell is exactly the name).
fn row<'a>(listing: &'a str, name: &str) -> Option<&'a str> {
    listing.lines().find(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn command_file_runs_to_the_first_nan_and_shows_the_tensors() {
    let dir = TempDir::new("debug-script");
    let script = dir.join("commands.txt");
    std::fs::write(
        &script,
        "# the MLP at lr 50 diverges within a few steps\n\
         run -f has_inf_or_nan\n\
         list_tensors\n\
         print_tensor layers.4:output [0:2, :5]\n\
         run\n\
         list_tensors :grad\n\
         stats\n\
         quit\n",
    )
    .unwrap();
    let out = command().args(["debug", "--model", "mlp", "--lr", "50", "--threads", "1", "--commands"]).arg(&script).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));

    // Each command is echoed after the prompt.
    assert!(text.contains("shendu-debug> run -f has_inf_or_nan\n"), "{text}");
    // "has_inf_or_nan tripped at step 6, forward pass: tensor layers.4:output (Linear): 296 of its 640 values ..."
    let trip = text.lines().find(|l| l.starts_with("has_inf_or_nan tripped at step")).unwrap_or_else(|| panic!("no trip: {text}"));
    let step = number_after(trip, "at step");
    assert!((2..=10).contains(&step), "{trip}");
    let tensor = trip.split("tensor ").nth(1).and_then(|t| t.split([' ', ':']).next()).unwrap();
    assert!(["layers.0", "layers.1", "layers.2", "layers.3", "layers.4"].contains(&tensor), "{trip}");
    assert!(trip.contains("values are NaN or infinite"), "{trip}");
    // The steps before it printed their (growing) losses.
    for k in 1..step {
        assert!(text.contains(&format!("step {k}: loss ")), "{text}");
    }

    // Paused after the forward pass: input, parameters, every layer output and the loss.
    let listing = section(&text, "list_tensors");
    assert!(listing.starts_with(&format!("step {step}, paused after its forward pass")), "{listing}");
    for name in ["input", "layers.0.weight", "flatten:output", "layers.0:output", "layers.1:output", "layers.4:output", "loss"] {
        let r = row(listing, name).unwrap_or_else(|| panic!("no row {name}: {listing}"));
        assert!(r.contains(" f32 "), "{r}");
    }
    assert!(row(listing, "layers.1:output").unwrap().contains("[64, 512]"), "{listing}");
    // The loss is NaN: its one value is non-finite (last column).
    assert!(row(listing, "loss").unwrap().trim_end().ends_with(" 1"), "{listing}");
    assert!(row(listing, "layers.4:grad").is_none(), "gradients before the backward pass: {listing}");

    // A printed slice, PyTorch style.
    let printed = section(&text, "print_tensor layers.4:output [0:2, :5]");
    assert!(printed.starts_with(&format!("layers.4:output[0:2, :5] (step {step}): [2, 5] f32")), "{printed}");
    assert!(printed.lines().nth(1).unwrap().starts_with("tensor([["), "{printed}");

    // Finishing the step makes the gradients: of each layer output and of each parameter.
    assert!(text.contains(&format!("step {step}: loss nan")), "{text}");
    let grads = section(&text, "list_tensors :grad");
    for name in ["layers.4:grad", "layers.3:grad", "layers.0:grad", "layers.0.weight:grad", "layers.4.bias:grad"] {
        assert!(row(grads, name).is_some(), "no row {name}: {grads}");
    }
    assert!(row(grads, "layers.1:output").is_none(), "{grads}");
    assert!(text.contains(&format!("steps completed: {step} ")), "{text}");
}

#[test]
fn piped_commands_breakpoints_watches_and_errors() {
    // Piped (not a terminal): commands are read one a line and echoed, as with --commands.
    let mut child = command()
        .args(["debug", "--model", "mlp", "--threads", "1", "--limit-train", "256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let commands = "break layers.2 forward\nbreak layers.2 backward\nwatch loss\nrun 3\n\
                    list_tensors :output\nprint_tensor layers.3:output\nrun\n\
                    list_tensors layers.2\nunbreak\nrun\nfrobnicate\nprint_tensor nothing\n";
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), commands.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // A script with failed commands runs to its end, then exits with status 2.
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 command(s) of the script failed"));

    // The forward breakpoint pauses inside the forward pass: layers.3 and layers.4 have not run.
    assert!(text.contains("breakpoint layers.2 forward at step 1: layers.2:output is ready; the layers after it have not run"), "{text}");
    let nested = "shendu-debug [layers.2 forward]> ";
    let listing = text.split(&format!("{nested}list_tensors :output\n")).nth(1).unwrap_or_else(|| panic!("no nested prompt: {text}"));
    let listing = listing.split(nested).next().unwrap();
    for name in ["flatten:output", "layers.0:output", "layers.1:output", "layers.2:output"] {
        assert!(row(listing, name).is_some(), "no row {name}: {listing}");
    }
    assert!(row(listing, "layers.3:output").is_none() && row(listing, "loss").is_none(), "{listing}");
    assert!(
        text.contains(&format!("{nested}print_tensor layers.3:output\nerror: print_tensor: no tensor 'layers.3:output' yet")),
        "{text}"
    );

    // `run` resumes; the backward breakpoint pauses after the backward pass.
    assert!(text.contains(&format!("{nested}run\nbreakpoint layers.2 backward at step 1: layers.2:grad is ready")), "{text}");
    let listing = section(&text, "list_tensors layers.2");
    assert!(listing.starts_with("step 1, paused after its backward pass (update pending)"), "{listing}");
    for name in ["layers.2.weight", "layers.2:output", "layers.2:grad", "layers.2.weight:grad"] {
        assert!(row(listing, name).is_some(), "no row {name}: {listing}");
    }
    assert!(text.contains("step 1: loss ") && text.contains("  watch loss: [] f32 min "), "{text}");
    assert!(text.contains("error: unknown command 'frobnicate'"), "{text}");
    assert!(text.contains("error: print_tensor: no tensor 'nothing'"), "{text}");
}

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").args(["-L", &self.socket, "-f", "/dev/null"]).args(args).output().unwrap()
    }
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "dbg"]).stdout).into_owned()
    }
    /// Waits until the screen satisfies `ready` (20 s at most) and returns it.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "waited 20 s for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "dbg"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The last line of the screen that shows the prompt.
fn prompt_line(screen: &str) -> String {
    screen.lines().rfind(|l| l.starts_with("shendu-debug>")).unwrap_or("").trim_end().to_string()
}

#[test]
fn terminal_prompt_has_history_and_completion() {
    if Command::new("tmux").arg("-V").output().map(|o| !o.status.success()).unwrap_or(true) {
        eprintln!("note: tmux is not installed; skipping the terminal test of `shendu debug`");
        return;
    }
    let tmux = Tmux { socket: format!("shendu-debug-test-{}", std::process::id()) };
    let cmdline = format!("'{BIN}' debug --model mlp --threads 1 --limit-train 256");
    let started = tmux.cmd(&["new-session", "-d", "-s", "dbg", "-x", "200", "-y", "50", &cmdline]);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    tmux.wait_for("the prompt", |s| prompt_line(s) == "shendu-debug>");

    // Tab completes a command word (with its space, which the pane capture trims: `2` below
    // makes `run 2`)...
    tmux.keys(&["ru", "Tab"]);
    tmux.wait_for("`ru` to complete to `run `", |s| prompt_line(s) == "shendu-debug> run");
    tmux.keys(&["2", "Enter"]);
    tmux.wait_for("two steps", |s| s.contains("step 2: loss "));
    // ... and the up arrow recalls the last command: two more steps.
    tmux.keys(&["Up"]);
    tmux.wait_for("`run 2` recalled", |s| prompt_line(s) == "shendu-debug> run 2");
    tmux.keys(&["Enter"]);
    tmux.wait_for("steps 3 and 4", |s| s.contains("step 4: loss "));
    // Tab completes tensor names too.
    tmux.keys(&["print_tensor layers.2.b", "Tab"]);
    tmux.wait_for("a completed tensor name", |s| prompt_line(s) == "shendu-debug> print_tensor layers.2.bias");
    tmux.keys(&[" [:3]", "Enter"]);
    let screen = tmux.wait_for("the printed tensor", |s| s.contains("layers.2.bias[:3] (step 4): [3] f32"));
    assert!(screen.lines().any(|l| l.starts_with("tensor([")), "{screen}");
    tmux.keys(&["quit", "Enter"]);
}
