//! Evaluation of a classifier over a data loader: accuracy, per-class accuracy, mean loss and the
//! confusion matrix. `shendu test` prints it; the trainer calls [`evaluate`] after every epoch.

use std::fmt::Write as _;

use serde_json::json;
use shendu_data::DataLoader;
use shendu_nn::loss::{cross_entropy, CrossEntropyOpts, Reduction};
use shendu_nn::{Mode, Module};

use super::{CliError, CliResult};

/// What [`evaluate`] counted. `confusion[t][p]` is the number of samples of true class `t`
/// predicted as `p`.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Class names, one per row and column of `confusion`.
    pub class_names: Vec<String>,
    /// Rows: true class; columns: predicted class.
    pub confusion: Vec<Vec<u64>>,
    /// The cross-entropy summed over every sample (divide by [`Evaluation::samples`] for the mean).
    pub loss_sum: f64,
}

/// One row of the per-class table.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassScore {
    pub class: String,
    /// Samples whose true class this is.
    pub total: u64,
    /// Of those, how many were predicted right.
    pub correct: u64,
}

impl ClassScore {
    /// `correct / total`, or `None` when the class has no samples.
    pub fn accuracy(&self) -> Option<f64> {
        (self.total > 0).then(|| self.correct as f64 / self.total as f64)
    }
}

impl Evaluation {
    /// An empty tally over `classes` classes named `0`, `1`, ...
    pub fn new(classes: usize) -> Evaluation {
        Evaluation { class_names: (0..classes).map(|c| c.to_string()).collect(), confusion: vec![vec![0; classes]; classes], loss_sum: 0.0 }
    }

    /// The number of samples evaluated.
    pub fn samples(&self) -> u64 {
        self.confusion.iter().flatten().sum()
    }

    /// The number predicted right (the diagonal).
    pub fn correct(&self) -> u64 {
        self.confusion.iter().enumerate().map(|(i, row)| row[i]).sum()
    }

    /// The fraction predicted right, in [0, 1]; 0 when nothing was evaluated.
    pub fn accuracy(&self) -> f64 {
        match self.samples() {
            0 => 0.0,
            n => self.correct() as f64 / n as f64,
        }
    }

    /// The mean cross-entropy per sample; 0 when nothing was evaluated.
    pub fn mean_loss(&self) -> f64 {
        match self.samples() {
            0 => 0.0,
            n => self.loss_sum / n as f64,
        }
    }

    /// Accuracy within each true class.
    pub fn per_class(&self) -> Vec<ClassScore> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(i, row)| ClassScore { class: self.class_names[i].clone(), total: row.iter().sum(), correct: row[i] })
            .collect()
    }

    /// The per-class table and the confusion matrix, right-aligned columns, for a terminal.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let name_w = self.class_names.iter().map(|n| n.len()).max().unwrap_or(1).max(5);
        let _ = writeln!(out, "per-class accuracy:");
        let _ = writeln!(out, "  {:>name_w$}  {:>7}  {:>7}  {:>8}", "class", "correct", "total", "accuracy");
        for s in self.per_class() {
            let acc = s.accuracy().map(|a| format!("{:.2}%", 100.0 * a)).unwrap_or_else(|| "-".into());
            let _ = writeln!(out, "  {:>name_w$}  {:>7}  {:>7}  {:>8}", s.class, s.correct, s.total, acc);
        }
        let _ = writeln!(out, "confusion matrix (rows: true class, columns: predicted class):");
        let widest = self.confusion.iter().flatten().max().copied().unwrap_or(0).to_string().len();
        let cell_w = widest.max(self.class_names.iter().map(|n| n.len()).max().unwrap_or(1)).max(5);
        let head_w = name_w.max("true\\pred".len());
        let _ = write!(out, "  {:>head_w$}", "true\\pred");
        for n in &self.class_names {
            let _ = write!(out, " {n:>cell_w$}");
        }
        out.push('\n');
        for (name, row) in self.class_names.iter().zip(&self.confusion) {
            let _ = write!(out, "  {name:>head_w$}");
            for v in row {
                let _ = write!(out, " {v:>cell_w$}");
            }
            out.push('\n');
        }
        out
    }

    /// The figures as a JSON object: `samples`, `correct`, `accuracy` (a fraction), `loss` (mean
    /// cross-entropy), `per_class` (objects with `class`, `correct`, `total`, `accuracy` or null)
    /// and `confusion` (rows: true class).
    pub fn to_json(&self) -> serde_json::Value {
        let per_class: Vec<_> = self
            .per_class()
            .into_iter()
            .map(|s| json!({"class": s.class, "correct": s.correct, "total": s.total, "accuracy": s.accuracy()}))
            .collect();
        json!({
            "samples": self.samples(),
            "correct": self.correct(),
            "accuracy": self.accuracy(),
            "loss": self.mean_loss(),
            "per_class": per_class,
            "confusion": self.confusion,
        })
    }
}

/// Runs `model` in eval mode without recording gradients over one pass of `loader` (epoch 0:
/// in order unless the loader shuffles) and tallies predictions (arg-max of the logits) against
/// the targets. The model must output `[batch, classes]` logits and every target must be below
/// `classes`; otherwise the error (bad input: a model and data that do not fit) says which.
pub fn evaluate(model: &dyn Module, loader: &DataLoader, classes: usize) -> CliResult<Evaluation> {
    if classes == 0 {
        return Err(CliError::bad("evaluate: a classifier needs at least one class"));
    }
    let _no_grad = shendu_core::no_grad();
    let mut eval = Evaluation::new(classes);
    let names = loader.dataset().class_names();
    if names.len() == classes {
        eval.class_names = names;
    }
    let ce = CrossEntropyOpts { reduction: Reduction::Sum, ..Default::default() };
    for batch in loader.epoch(0) {
        let batch = batch?;
        let logits = model.forward(&batch.inputs, Mode::Eval)?;
        let b = batch.len();
        if logits.dims() != [b, classes] {
            return Err(CliError::bad(format!(
                "the model outputs {:?} for a batch of {b} inputs {:?}; expected [{b}, {classes}] class scores",
                logits.dims(),
                batch.inputs.dims()
            )));
        }
        let targets = batch.targets.to_vec::<i64>()?;
        if let Some(&t) = targets.iter().find(|&&t| t < 0 || t as usize >= classes) {
            return Err(CliError::bad(format!(
                "the data has label {t} but the model predicts only {classes} classes (0..={})",
                classes - 1
            )));
        }
        let predicted = logits.argmax(1, false)?.to_vec::<i64>()?;
        for (&t, &p) in targets.iter().zip(&predicted) {
            // argmax of a [b, classes] tensor lies in 0..classes.
            if let Some(cell) = eval.confusion[t as usize].get_mut(p as usize) {
                *cell += 1;
            }
        }
        eval.loss_sum += cross_entropy(&logits, &batch.targets, &ce)?.to_vec_f64()?.first().copied().unwrap_or(0.0);
    }
    Ok(eval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_and_report() {
        let mut e = Evaluation::new(3);
        e.confusion = vec![vec![5, 1, 0], vec![0, 3, 1], vec![0, 0, 0]];
        e.loss_sum = 5.0;
        assert_eq!((e.samples(), e.correct()), (10, 8));
        assert!((e.accuracy() - 0.8).abs() < 1e-12 && (e.mean_loss() - 0.5).abs() < 1e-12);
        let pc = e.per_class();
        assert_eq!(pc[1], ClassScore { class: "1".into(), total: 4, correct: 3 });
        assert_eq!(pc[2].accuracy(), None);
        let r = e.report();
        assert!(r.contains("  true\\pred     0     1     2\n"), "{r}");
        assert!(r.contains("          0     5     1     0\n"), "{r}");
        assert!(r.contains("83.33%") && r.contains(" -\n"), "{r}");
        let j = e.to_json();
        assert_eq!(j["confusion"][1][2], 1);
        assert!(j["per_class"][2]["accuracy"].is_null());
    }
}
