//! What the user sees while training: an indicatif bar on a terminal (step, loss, running
//! accuracy, samples/s, ETA), plain lines when the output is a file or a pipe.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of one epoch.
pub struct EpochProgress {
    bar: Option<ProgressBar>,
    epoch: usize,
    epochs: usize,
    steps: usize,
    start: Instant,
    last_line: Instant,
}

impl EpochProgress {
    /// A bar when stderr is a terminal (and `quiet` is off), plain lines otherwise.
    pub fn new(epoch: usize, epochs: usize, steps: usize, quiet: bool) -> EpochProgress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("epoch {prefix} [{bar:20}] {pos}/{len} {msg} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("{}/{epochs}", epoch + 1));
            bar
        });
        EpochProgress { bar, epoch, epochs, steps, start: Instant::now(), last_line: Instant::now() }
    }

    /// Reports that `done` steps of this epoch are finished.
    pub fn update(&mut self, done: usize, samples: usize, loss: f64, accuracy: f64, quiet: bool) {
        let rate = samples as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
        let msg = format!("loss {loss:.4} acc {:.1}% {rate:.0}/s", 100.0 * accuracy);
        match &self.bar {
            Some(bar) => {
                bar.set_position(done as u64);
                bar.set_message(msg);
            }
            // Without a terminal, a line every 10 seconds keeps logs short but alive.
            None if !quiet && self.last_line.elapsed().as_secs_f64() >= 10.0 && done < self.steps => {
                eprintln!("epoch {}/{} step {done}/{}: {msg}", self.epoch + 1, self.epochs, self.steps);
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    /// Removes the bar (the caller prints the epoch's summary line).
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
