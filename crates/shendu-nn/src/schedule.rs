//! Learning-rate schedules as pure functions of a counter: no state, so resuming from a
//! checkpoint needs only the counter.
//!
//! The counter is whatever the caller steps: PyTorch's schedulers (`StepLR`, `MultiStepLR`,
//! `ExponentialLR`, `PolynomialLR`, `CosineAnnealingLR`) are usually stepped once per epoch, so
//! pass the epoch for their variants to mean what they mean in PyTorch (or the iteration, with
//! sizes in iterations). `CosineWarmup` and the Darknet policies count iterations (Darknet's
//! `batch_num`, the number of batches trained so far).
//!
//! ```
//! use shendu_nn::schedule::Schedule;
//! let s = Schedule::parse("step:size=10,gamma=0.5").unwrap();
//! assert_eq!(s.lr_at(0.1, 25), 0.025);
//! let c = Schedule::parse_with_total("cosine:warmup=100", Some(1000)).unwrap();
//! assert_eq!(c.lr_at(1.0, 50), 0.5);
//! ```

use std::f64::consts::PI;

use crate::{Error, Result};

/// A learning rate as a function of the step (see the module docs for which counter).
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// `base * gamma^(step / step_size)` (integer division; PyTorch's `StepLR`).
    Step { step_size: usize, gamma: f64 },
    /// `base * gamma^(number of milestones <= step)` (PyTorch's `MultiStepLR`).
    MultiStep { milestones: Vec<usize>, gamma: f64 },
    /// `base * gamma^step` (PyTorch's `ExponentialLR`).
    Exponential { gamma: f64 },
    /// `end_lr + (base - end_lr) * (1 - min(step, total) / total)^power` (PyTorch's
    /// `PolynomialLR` when `end_lr` is 0).
    Polynomial { total: usize, power: f64, end_lr: f64 },
    /// Linear warmup from 0 (`base * step / warmup`, so step 0 has rate 0), then a cosine from
    /// `base` down to `min_lr` at `total`, constant after (PyTorch's `CosineAnnealingLR` with
    /// `T_max = total - warmup`, `eta_min = min_lr`, shifted by `warmup`).
    CosineWarmup { warmup: usize, total: usize, min_lr: f64 },
    /// Darknet's `get_current_rate` (AlexeyAB's network.c), counting batches: during the first
    /// `burn_in` batches `base * (step / burn_in)^power`, then the policy.
    Darknet { burn_in: usize, power: f64, policy: DarknetPolicy },
}

/// Darknet's learning-rate policies (the `policy=` of a .cfg's `[net]` section).
#[derive(Clone, Debug, PartialEq)]
pub enum DarknetPolicy {
    /// `constant`: the base rate.
    Constant,
    /// `steps`: the base rate times every `scales[i]` whose `steps[i] <= batch`.
    Steps { steps: Vec<usize>, scales: Vec<f64> },
    /// `poly`: `base * (1 - batch / max_batches)^power` with the schedule's `power`; 0 from
    /// `max_batches` on (Darknet stops there; its formula would go negative).
    Poly { max_batches: usize },
    /// `sigmoid`: `base / (1 + exp(gamma * (batch - step)))`.
    Sigmoid { gamma: f64, step: usize },
    /// `exp`: `base * gamma^batch`.
    Exp { gamma: f64 },
    /// `step`: `base * scale^(batch / step)` (integer division).
    Step { step: usize, scale: f64 },
}

impl Schedule {
    /// The learning rate at `step` for a base rate `base_lr`.
    pub fn lr_at(&self, base_lr: f64, step: usize) -> f64 {
        let t = step as f64;
        match self {
            Schedule::Constant => base_lr,
            Schedule::Step { step_size, gamma } => base_lr * gamma.powf((step / (*step_size).max(1)) as f64),
            Schedule::MultiStep { milestones, gamma } => base_lr * gamma.powf(milestones.iter().filter(|&&m| m <= step).count() as f64),
            Schedule::Exponential { gamma } => base_lr * gamma.powf(t),
            Schedule::Polynomial { total, power, end_lr } => {
                let frac = if *total == 0 { 1.0 } else { t.min(*total as f64) / *total as f64 };
                end_lr + (base_lr - end_lr) * (1.0 - frac).powf(*power)
            }
            Schedule::CosineWarmup { warmup, total, min_lr } => {
                if step < *warmup {
                    return base_lr * t / *warmup as f64;
                }
                let span = total.saturating_sub(*warmup);
                if span == 0 || step >= *total {
                    return if span == 0 { base_lr } else { *min_lr };
                }
                let progress = (step - warmup) as f64 / span as f64;
                min_lr + (base_lr - min_lr) * 0.5 * (1.0 + (PI * progress).cos())
            }
            Schedule::Darknet { burn_in, power, policy } => {
                if step < *burn_in {
                    return base_lr * (t / *burn_in as f64).powf(*power);
                }
                match policy {
                    DarknetPolicy::Constant => base_lr,
                    DarknetPolicy::Steps { steps, scales } => {
                        let mut rate = base_lr;
                        for (&s, &scale) in steps.iter().zip(scales) {
                            if s > step {
                                break;
                            }
                            rate *= scale;
                        }
                        rate
                    }
                    DarknetPolicy::Poly { max_batches } => {
                        if step >= *max_batches {
                            0.0
                        } else {
                            base_lr * (1.0 - t / *max_batches as f64).powf(*power)
                        }
                    }
                    DarknetPolicy::Sigmoid { gamma, step: s } => base_lr / (1.0 + (gamma * (t - *s as f64)).exp()),
                    DarknetPolicy::Exp { gamma } => base_lr * gamma.powf(t),
                    DarknetPolicy::Step { step: s, scale } => base_lr * scale.powf((step / (*s).max(1)) as f64),
                }
            }
        }
    }

    /// Parses a command-line schedule: a name, then `:key=value,...`; lists use `|`.
    ///
    /// - `constant`
    /// - `step:size=1000,gamma=0.1`
    /// - `multistep:milestones=3|6,gamma=0.1`
    /// - `exp:gamma=0.95`
    /// - `poly:total=1000,power=1,end_lr=0`
    /// - `cosine:warmup=100,total=10000,min_lr=0`
    /// - `darknet:policy=steps,steps=400|800,scales=0.1|0.1,burn_in=100,power=4` (also
    ///   `policy=constant|poly|sigmoid|exp|step` with `max_batches`, `gamma`, `step`, `scale`)
    ///
    /// `total` (and Darknet's `max_batches`) are required here; see [`Schedule::parse_with_total`].
    pub fn parse(text: &str) -> Result<Schedule> {
        Schedule::parse_with_total(text, None)
    }

    /// As [`Schedule::parse`], with `total` (the number of training iterations or epochs, as
    /// the caller counts) used where the text leaves `total` / `max_batches` out.
    pub fn parse_with_total(text: &str, total: Option<usize>) -> Result<Schedule> {
        let mut a = Args::new(text)?;
        let s = match a.kind.as_str() {
            "constant" => Schedule::Constant,
            "step" => {
                let step_size = a.usize("size")?.ok_or_else(|| a.err("step needs size=N"))?;
                if step_size == 0 {
                    return Err(a.err("size must be > 0"));
                }
                Schedule::Step { step_size, gamma: a.f64("gamma")?.unwrap_or(0.1) }
            }
            "multistep" => {
                let milestones = a.list("milestones")?.ok_or_else(|| a.err("multistep needs milestones=A|B|..."))?;
                let milestones = milestones.iter().map(|v| a.parse_usize("milestones", v)).collect::<Result<Vec<_>>>()?;
                Schedule::MultiStep { milestones, gamma: a.f64("gamma")?.unwrap_or(0.1) }
            }
            "exp" | "exponential" => Schedule::Exponential { gamma: a.f64("gamma")?.ok_or_else(|| a.err("exp needs gamma=G"))? },
            "poly" | "polynomial" => {
                let total = a.usize("total")?.or(total).ok_or_else(|| a.err("poly needs total=N"))?;
                Schedule::Polynomial { total, power: a.f64("power")?.unwrap_or(1.0), end_lr: a.f64("end_lr")?.unwrap_or(0.0) }
            }
            "cosine" => {
                let warmup = a.usize("warmup")?.unwrap_or(0);
                let total = a.usize("total")?.or(total).ok_or_else(|| a.err("cosine needs total=N"))?;
                Schedule::CosineWarmup { warmup, total, min_lr: a.f64("min_lr")?.unwrap_or(0.0) }
            }
            "darknet" => {
                let policy = match a.take("policy").as_deref().unwrap_or("constant") {
                    "constant" => DarknetPolicy::Constant,
                    "steps" => {
                        let steps = a.list("steps")?.ok_or_else(|| a.err("policy=steps needs steps=A|B|..."))?;
                        let steps = steps.iter().map(|v| a.parse_usize("steps", v)).collect::<Result<Vec<_>>>()?;
                        let scales = a.list("scales")?.ok_or_else(|| a.err("policy=steps needs scales=A|B|..."))?;
                        let scales = scales.iter().map(|v| a.parse_f64("scales", v)).collect::<Result<Vec<_>>>()?;
                        if steps.len() != scales.len() {
                            return Err(a.err(&format!("{} steps but {} scales", steps.len(), scales.len())));
                        }
                        DarknetPolicy::Steps { steps, scales }
                    }
                    "poly" => DarknetPolicy::Poly {
                        max_batches: a.usize("max_batches")?.or(total).ok_or_else(|| a.err("policy=poly needs max_batches=N"))?,
                    },
                    "sigmoid" => DarknetPolicy::Sigmoid {
                        gamma: a.f64("gamma")?.ok_or_else(|| a.err("policy=sigmoid needs gamma=G"))?,
                        step: a.usize("step")?.ok_or_else(|| a.err("policy=sigmoid needs step=N"))?,
                    },
                    "exp" => DarknetPolicy::Exp { gamma: a.f64("gamma")?.ok_or_else(|| a.err("policy=exp needs gamma=G"))? },
                    "step" => {
                        let step = a.usize("step")?.ok_or_else(|| a.err("policy=step needs step=N"))?;
                        if step == 0 {
                            return Err(a.err("step must be > 0"));
                        }
                        DarknetPolicy::Step { step, scale: a.f64("scale")?.unwrap_or(1.0) }
                    }
                    other => return Err(a.err(&format!("unknown darknet policy {other:?} (constant, steps, poly, sigmoid, exp, step)"))),
                };
                Schedule::Darknet { burn_in: a.usize("burn_in")?.unwrap_or(0), power: a.f64("power")?.unwrap_or(4.0), policy }
            }
            other => {
                return Err(a.err(&format!("unknown schedule {other:?} (constant, step, multistep, exp, poly, cosine, darknet)")));
            }
        };
        a.finish()?;
        Ok(s)
    }
}

/// The `key=value` pairs of a schedule flag, consumed one by one so that leftovers are errors.
struct Args {
    text: String,
    kind: String,
    pairs: Vec<(String, String)>,
}

impl Args {
    fn new(text: &str) -> Result<Args> {
        let (kind, rest) = text.trim().split_once(':').unwrap_or((text.trim(), ""));
        let mut pairs = Vec::new();
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(Error::config("schedule", format!("{text:?}: expected key=value, got {part:?}")));
            };
            pairs.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(Args { text: text.to_string(), kind: kind.trim().to_ascii_lowercase(), pairs })
    }

    fn err(&self, msg: &str) -> Error {
        Error::config("schedule", format!("{:?}: {msg}", self.text))
    }

    fn take(&mut self, key: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(i).1)
    }

    fn parse_usize(&self, key: &str, v: &str) -> Result<usize> {
        v.parse().map_err(|_| self.err(&format!("{key}: {v:?} is not a non-negative integer")))
    }

    fn parse_f64(&self, key: &str, v: &str) -> Result<f64> {
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(self.err(&format!("{key}: {v:?} is not a number"))),
        }
    }

    fn usize(&mut self, key: &str) -> Result<Option<usize>> {
        self.take(key).map(|v| self.parse_usize(key, &v)).transpose()
    }

    fn f64(&mut self, key: &str) -> Result<Option<f64>> {
        self.take(key).map(|v| self.parse_f64(key, &v)).transpose()
    }

    fn list(&mut self, key: &str) -> Result<Option<Vec<String>>> {
        Ok(self.take(key).map(|v| v.split('|').map(|s| s.trim().to_string()).collect()))
    }

    fn finish(&self) -> Result<()> {
        match self.pairs.first() {
            None => Ok(()),
            Some((k, _)) => Err(self.err(&format!("unknown key {k:?} for {}", self.kind))),
        }
    }
}
