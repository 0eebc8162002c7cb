//! Per-step timing of compiled runs (the role of TensorFlow's `RunMetadata` step stats): which
//! planned step of a session takes the time.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Time accumulated per step of one plan (the updates count as one last entry).
#[derive(Clone, Debug, Default)]
pub(crate) struct StepTimes {
    pub(crate) runs: u64,
    pub(crate) nanos: Vec<u64>,
}

impl StepTimes {
    pub(crate) fn new(steps: usize) -> StepTimes {
        StepTimes { runs: 0, nanos: vec![0; steps + 1] }
    }

    /// Adds the time since `start` to entry `i` and returns now (the next entry's start).
    #[inline]
    pub(crate) fn lap(&mut self, i: usize, start: Instant) -> Instant {
        let now = Instant::now();
        if let Some(n) = self.nanos.get_mut(i) {
            *n += (now - start).as_nanos() as u64;
        }
        now
    }
}

/// Where the time of a session's compiled runs went, step by step (see
/// [`super::Session::profile`]).
#[derive(Clone, Debug, Default)]
pub struct StepProfile {
    /// Runs timed.
    pub runs: u64,
    /// (step description as in `explain`, mean time per run).
    pub steps: Vec<(String, Duration)>,
}

impl StepProfile {
    /// Mean time of one whole run.
    pub fn total(&self) -> Duration {
        self.steps.iter().map(|(_, d)| *d).sum()
    }
}

impl std::fmt::Display for StepProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.total().as_secs_f64().max(1e-12);
        writeln!(f, "{} runs; mean {:.1} us per run", self.runs, total * 1e6)?;
        let mut s = String::new();
        for (i, (what, d)) in self.steps.iter().enumerate() {
            let _ = writeln!(s, "{i:>4}: {:>9.1} us {:>5.1}%  {what}", d.as_secs_f64() * 1e6, 100.0 * d.as_secs_f64() / total);
        }
        f.write_str(&s)
    }
}
