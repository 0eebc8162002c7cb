//! `shendu test`: accuracy, per-class accuracy and the confusion matrix of a trained model on the
//! MNIST test split.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::json;
use shendu_data::{DataLoader, Dataset, Mnist, Split};

use super::eval::evaluate;
use super::loaded::{single_line, LoadedModel};
use super::{CliError, CliResult};

/// Flags of `shendu test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Checkpoint or weights file to evaluate: safetensors, whose metadata describes the network
    /// (`netspec_cfg`, or the zoo `model` with its `input`, e.g. 1x28x28, and `classes`) and the
    /// normalization (`normalize` = MEAN,STD, applied to pixels in [0, 1] as in training); or,
    /// with --cfg, a Darknet .weights file (told apart by content).
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Darknet .cfg of the network (Darknet's `classifier valid`): its [net] gives the input
    /// size, its output the classes; pixels are fed as bytes / 255, as Darknet does, unless a
    /// safetensors file's metadata says `normalize`.
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    pub cfg: Option<PathBuf>,
    /// Zoo model to build instead of the one the file's metadata names (lenet, mlp).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Directory with the MNIST test files t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte,
    /// each plain or .gz [default: the 1,000-image subset embedded in shendu].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Print only one JSON object with the figures (accuracy as a fraction, loss, per_class,
    /// confusion with rows = true class) instead of the tables.
    #[arg(long)]
    pub json: bool,
}

/// Evaluates the model on the test split and prints the figures.
pub fn run(args: TestArgs) -> CliResult<()> {
    run_inner(&args).map_err(single_line)
}

fn run_inner(args: &TestArgs) -> CliResult<()> {
    let loaded = LoadedModel::open(&args.weights, args.model.as_deref(), args.cfg.as_deref())?;
    let (dataset, source) = match &args.data {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(CliError::bad(format!("{}: --data must be a directory holding the MNIST files", dir.display())));
            }
            (Mnist::load(dir, Split::Test)?, dir.display().to_string())
        }
        None => (Mnist::embedded(Split::Test)?, "embedded MNIST subset".to_string()),
    };
    let shape = dataset.input_shape();
    let (c, h, w) = loaded.input;
    if shape != [c, h, w] {
        return Err(CliError::bad(format!(
            "{}: the model takes {} inputs but the images of {source} are {}",
            loaded.described_by.display(),
            loaded.input_string(),
            shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
        )));
    }
    if loaded.classes < dataset.num_classes() {
        return Err(CliError::bad(format!(
            "{}: the model predicts {} classes but MNIST has {}",
            loaded.described_by.display(),
            loaded.classes,
            dataset.num_classes()
        )));
    }
    let n = dataset.len();
    let mut loader = DataLoader::new(Arc::new(dataset), args.batch as usize)?;
    if let Some(t) = loaded.transform() {
        loader = loader.transform(t);
    }
    let mut eval = evaluate(loaded.model.as_ref(), &loader, loaded.classes)?;
    eval.class_names = loaded.labels.clone();

    let mut out = std::io::stdout().lock();
    if args.json {
        let mut obj = eval.to_json();
        obj["command"] = json!("test");
        obj["weights"] = json!(args.weights.display().to_string());
        obj["cfg"] = json!(args.cfg.as_ref().map(|c| c.display().to_string()));
        obj["model"] = json!(loaded.name);
        obj["data"] = json!(source);
        writeln!(out, "{obj}")?;
    } else {
        writeln!(out, "model {} from {}, {n} test images from {source}", loaded.name, args.weights.display())?;
        writeln!(
            out,
            "accuracy: {:.2}% ({}/{}), mean loss {:.4}",
            100.0 * eval.accuracy(),
            eval.correct(),
            eval.samples(),
            eval.mean_loss()
        )?;
        write!(out, "{}", eval.report())?;
    }
    Ok(())
}
