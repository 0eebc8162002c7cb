//! `shendu knn`: k-nearest-neighbour classification (accuracy and confusion matrix) or regression
//! (MSE) of a test set against a training set, MNIST directories or CSV files.

use std::path::Path;

use clap::Args;
use serde_json::json;
use shendu_data::{CsvDataset, Dataset, LabelColumn, Mnist, Split};
use shendu_ml::knn::{self, Metric, Weights};
use shendu_ml::Matrix;

use super::ml::{ml_err, print_json};
use super::{CliError, CliResult};

/// Flags of `shendu knn`.
#[derive(Args, Debug)]
pub struct KnnArgs {
    /// Training data: an MNIST directory (its train-* files), a CSV file, or "embedded" (the
    /// 6,000-image MNIST subset built into shendu).
    #[arg(long, value_name = "DIR|FILE.csv")]
    pub train: String,
    /// Test data: an MNIST directory (its t10k-* files), a CSV file, or "embedded".
    #[arg(long, value_name = "DIR|FILE.csv")]
    pub test: String,
    /// Number of neighbours.
    #[arg(short, long, value_name = "K", default_value_t = 1)]
    pub k: usize,
    /// l2, l1 or cosine.
    #[arg(long, value_name = "NAME", default_value = "l2")]
    pub metric: String,
    /// uniform or distance (1/d).
    #[arg(long, value_name = "NAME", default_value = "uniform")]
    pub weights: String,
    /// Predict the CSV label column as a number (mean of the neighbours) and report the MSE.
    #[arg(long)]
    pub regression: bool,
    /// CSV label column: first, last, or a 1-based column number.
    #[arg(long, value_name = "COL", default_value = "last")]
    pub label: String,
    /// Classify only the first N test samples (0 = all).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub limit_test: usize,
    /// Print one JSON object instead.
    #[arg(long)]
    pub json: bool,
}

/// Samples, their class names (for classification) and their numeric targets.
struct Data {
    x: Matrix,
    classes: Vec<String>,
    labels: Vec<usize>,
    targets: Vec<f64>,
}

fn mnist(m: Mnist) -> CliResult<Data> {
    let x = Matrix::new(m.pixels().iter().map(|&p| p as f32 / 255.0).collect(), m.labels().len(), m.rows() * m.cols()).map_err(ml_err)?;
    let labels: Vec<usize> = m.labels().iter().map(|&l| l as usize).collect();
    Ok(Data { x, classes: (0..10).map(|c| c.to_string()).collect(), targets: labels.iter().map(|&l| l as f64).collect(), labels })
}

fn load(spec: &str, split: Split, label: LabelColumn) -> CliResult<Data> {
    if spec == "embedded" {
        return mnist(Mnist::embedded(split)?);
    }
    let path = Path::new(spec);
    if path.is_dir() {
        return mnist(Mnist::load(path, split)?);
    }
    let csv = CsvDataset::load(path, label, None)?;
    let x = Matrix::new(csv.features().to_vec(), csv.len(), csv.num_features()).map_err(|e| CliError::bad(format!("{spec}: {e}")))?;
    let targets = csv.targets_f64().to_vec();
    let labels = targets.iter().map(|&t| if t >= 0.0 && t.fract() == 0.0 { t as usize } else { usize::MAX }).collect();
    Ok(Data { x, classes: csv.class_names(), labels, targets })
}

/// Runs k-NN as the flags say.
pub fn run(args: KnnArgs) -> CliResult<()> {
    let metric = match args.metric.as_str() {
        "l2" => Metric::L2,
        "l1" => Metric::L1,
        "cosine" => Metric::Cosine,
        other => return Err(CliError::bad(format!("--metric: '{other}' is not l2, l1 or cosine"))),
    };
    let weights = match args.weights.as_str() {
        "uniform" => Weights::Uniform,
        "distance" => Weights::Distance,
        other => return Err(CliError::bad(format!("--weights: '{other}' is not uniform or distance"))),
    };
    let label = match args.label.as_str() {
        "first" => LabelColumn::First,
        "last" => LabelColumn::Last,
        n => match n.parse::<usize>() {
            Ok(c) if c >= 1 => LabelColumn::Index(c - 1),
            _ => return Err(CliError::bad(format!("--label: '{n}' is not first, last or a column number from 1"))),
        },
    };
    if args.k == 0 {
        return Err(CliError::bad("-k: must be at least 1"));
    }
    let train = load(&args.train, Split::Train, label)?;
    let mut test = load(&args.test, Split::Test, label)?;
    if train.x.cols() != test.x.cols() {
        return Err(CliError::bad(format!("--train samples have {} features but --test samples have {}", train.x.cols(), test.x.cols())));
    }
    if args.k > train.x.rows() {
        return Err(CliError::bad(format!("-k {} is larger than the {} training samples", args.k, train.x.rows())));
    }
    if args.limit_test > 0 && args.limit_test < test.x.rows() {
        let n = args.limit_test;
        test.x = Matrix::new(test.x.data()[..n * test.x.cols()].to_vec(), n, test.x.cols()).map_err(ml_err)?;
        test.labels.truncate(n);
        test.targets.truncate(n);
    }
    let t0 = std::time::Instant::now();
    let nb = knn::kneighbors(&train.x, &test.x, args.k, metric).map_err(ml_err)?;
    if args.regression {
        let pred = knn::regress(&nb, &train.targets, weights).map_err(ml_err)?;
        let mse = pred.iter().zip(&test.targets).map(|(p, t)| (p - t).powi(2)).sum::<f64>() / pred.len().max(1) as f64;
        let seconds = t0.elapsed().as_secs_f64();
        if args.json {
            return print_json(&json!({"k": args.k, "metric": args.metric, "test_samples": pred.len(), "mse": mse, "seconds": seconds}));
        }
        println!("{}-NN regression on {} test samples: MSE {mse:.6} ({seconds:.2}s)", args.k, pred.len());
        return Ok(());
    }
    // Classes by name, so that CSV files whose label sets differ still line up.
    let mut names: Vec<String> = train.classes.clone();
    for c in &test.classes {
        if !names.contains(c) {
            names.push(c.clone());
        }
    }
    let remap = |d: &Data, which: &str| -> CliResult<Vec<usize>> {
        d.labels
            .iter()
            .map(|&l| {
                let name = d.classes.get(l).ok_or_else(|| {
                    CliError::bad(format!("{which}: label {l} is not a class index (use --regression for numeric targets)"))
                })?;
                Ok(names.iter().position(|n| n == name).unwrap_or(0))
            })
            .collect()
    };
    let (ytr, yte) = (remap(&train, "--train")?, remap(&test, "--test")?);
    let pred = knn::classify(&nb, &ytr, names.len(), weights).map_err(ml_err)?;
    let seconds = t0.elapsed().as_secs_f64();
    let correct = pred.iter().zip(&yte).filter(|(p, t)| p == t).count();
    let accuracy = correct as f64 / pred.len().max(1) as f64;
    let confusion = knn::confusion_matrix(&yte, &pred, names.len());
    if args.json {
        return print_json(&json!({
            "k": args.k, "metric": args.metric, "weights": args.weights, "test_samples": pred.len(),
            "accuracy": accuracy, "error": 1.0 - accuracy, "classes": names, "confusion": confusion, "seconds": seconds,
        }));
    }
    println!(
        "{}-NN ({}, {}): accuracy {:.2}% ({correct} / {}), error {:.2}% ({seconds:.2}s)",
        args.k,
        args.metric,
        args.weights,
        100.0 * accuracy,
        pred.len(),
        100.0 * (1.0 - accuracy)
    );
    println!("confusion matrix (rows: true class, columns: predicted):");
    let w = names.iter().map(|n| n.len()).max().unwrap_or(1).max(confusion.iter().flatten().max().map_or(1, |m| m.to_string().len()));
    println!("{:>w$} {}", "", names.iter().map(|n| format!("{n:>w$}")).collect::<Vec<_>>().join(" "));
    for (name, row) in names.iter().zip(&confusion) {
        println!("{name:>w$} {}", row.iter().map(|c| format!("{c:>w$}")).collect::<Vec<_>>().join(" "));
    }
    Ok(())
}
