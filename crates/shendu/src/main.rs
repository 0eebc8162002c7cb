//! The `shendu` command line: one subcommand per task, each in `shendu::cli`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shendu::cli;

#[derive(Parser)]
#[command(name = "shendu", version, about = "shendu: train, test, inspect and benchmark neural networks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Trains a network (LeNet-5 on the embedded MNIST subset when no flags are given).
    Train(Box<cli::train::TrainArgs>),
    /// Runs the benchmark workloads of BENCH.md (P0 FMA peak, W1 sgemm, W2 conv, W3 dwconv, W4 MLP, W5 LeNet).
    Bench(cli::bench::BenchArgs),
    /// Evaluates a checkpoint on the MNIST test split: accuracy, per-class accuracy, confusion matrix.
    Test(cli::test_cmd::TestArgs),
    /// Classifies images with a checkpoint and prints the top classes of each (` 98.31%: 7`).
    Predict(cli::predict::PredictArgs),
    /// Inspects, compares and copies weights files (safetensors).
    Weights(cli::weights::WeightsArgs),
    /// A network's layer table (Darknet's, then parameters, MACs, memory) from a .cfg or a zoo model.
    Summary(cli::summary::SummaryArgs),
    /// Gradient descent for a linear model by hand: sweep, sgd or batch (the notebook's three variants).
    Gd(cli::gd::GdArgs),
    /// Entropy, cross-entropy, KL and Jensen-Shannon divergences, mutual information.
    Entropy(cli::entropy::EntropyArgs),
    /// Empirical Rademacher complexity of a finite or a linear class, by Monte Carlo.
    Rademacher(cli::rademacher::RademacherArgs),
    /// k-nearest-neighbour classification or regression (MNIST directories or CSV files).
    Knn(cli::knn::KnnArgs),
    /// k-means clustering of a CSV file, with a Voronoi picture for 2-D data.
    Kmeans(cli::kmeans::KMeansArgs),
    /// Draws a run's logs: `plot stats LOG` (per-layer gradient norm and activation std from train --log-stats).
    Plot(cli::plot::PlotArgs),
    /// Steps through a training run interactively: run until a NaN, list and print activations and gradients, breakpoints.
    Debug(Box<cli::debug::DebugArgs>),
    /// Reads a metrics log and names the usual suspects of a run that does not learn, with evidence.
    Doctor(cli::doctor::DoctorArgs),
}

fn main() -> ExitCode {
    shendu::alloc::configure();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => cli::train::run(*args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Test(args) => cli::test_cmd::run(args),
        Command::Predict(args) => cli::predict::run(args),
        Command::Weights(args) => cli::weights::run(args),
        Command::Summary(args) => cli::summary::run(args),
        Command::Gd(args) => cli::gd::run(args),
        Command::Entropy(args) => cli::entropy::run(args),
        Command::Rademacher(args) => cli::rademacher::run(args),
        Command::Knn(args) => cli::knn::run(args),
        Command::Kmeans(args) => cli::kmeans::run(args),
        Command::Plot(args) => cli::plot::run(args),
        Command::Doctor(args) => cli::doctor::run(args),
        Command::Debug(args) => cli::debug::run(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shendu: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
