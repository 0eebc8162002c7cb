//! `shendu train --mem-report`: the prediction made from one probe step before training agrees
//! with the peak resident set measured over the run, less the fixed runtime overhead (the
//! resident set with no tensors left), within 20% (issue 7). Linux only: the resident set comes
//! from /proc.
#![cfg(target_os = "linux")]

mod cli_support;
use cli_support::{shendu, TempDir};

/// Trains as `args` say with `--mem-report --json` and returns the prediction's relative error,
/// after checking the report's parts add up.
fn prediction_error(tag: &str, args: &[&str]) -> f64 {
    let dir = TempDir::new(tag);
    let out = dir.0.display().to_string();
    let mut all = vec!["train", "--mem-report", "--json", "--quiet", "--threads", "1", "--out", &out];
    all.extend_from_slice(args);
    let run = shendu(&all);
    run.ok();
    let json = run.json();
    let mem = &json["memory"];
    let n = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v} in {mem}"));
    let predicted = n(&mem["predicted_peak_bytes"]);
    let measured = n(&mem["model_peak_rss_bytes"]);
    let overhead = n(&mem["measured"]["fixed_overhead"]);
    // The parts: parameters, gradients and optimizer state are the parameter list's sizes, and
    // the layers' activations add up to the total.
    let layers = mem["layers"].as_array().unwrap();
    let layer_sum: f64 = layers.iter().map(|l| n(&l["kept"])).sum();
    assert_eq!(layer_sum, n(&mem["activation_bytes"]));
    assert!(n(&mem["step_bytes"]) > n(&mem["activation_bytes"]), "a step holds more than its forward's activations: {mem}");
    assert!(overhead > 1e6 && measured > 1e6, "implausible measurement: {mem}");
    // The report is printed for people too.
    assert!(run.stderr.contains("predicted peak: parameters"), "{}", run.stderr);
    assert!(run.stderr.contains("fixed runtime overhead"), "{}", run.stderr);
    (predicted - measured) / measured
}

#[test]
fn lenet_prediction_matches_the_resident_set() {
    // The default run's model and batch on the embedded subset; SGD with momentum.
    let err = prediction_error("mem-lenet", &["--epochs", "1", "--limit-train", "640"]);
    assert!(err.abs() <= 0.20, "LeNet: predicted peak off by {:+.1}%", 100.0 * err);
}

#[test]
fn resnet20_prediction_matches_the_resident_set() {
    let err = prediction_error("mem-resnet20", &["--model", "resnet20", "--epochs", "1", "--limit-train", "128"]);
    assert!(err.abs() <= 0.20, "ResNet-20: predicted peak off by {:+.1}%", 100.0 * err);
}

#[test]
fn adam_state_counts_twice_the_parameters() {
    let dir = TempDir::new("mem-adam");
    let out = dir.0.display().to_string();
    let run = shendu(&[
        "train",
        "--mem-report",
        "--json",
        "--quiet",
        "--optimizer",
        "adam",
        "--epochs",
        "1",
        "--limit-train",
        "64",
        "--out",
        &out,
    ]);
    run.ok();
    let mem = &run.json()["memory"];
    assert_eq!(mem["optimizer_bytes"].as_u64().unwrap(), 2 * mem["grads_bytes"].as_u64().unwrap());
    // LeNet-5's 61,706 f32 parameters.
    assert_eq!(mem["params_bytes"].as_u64().unwrap(), 61_706 * 4);
}
