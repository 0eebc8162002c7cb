//! Issue 4's accuracy bar on full MNIST (needs ../shared/data/mnist; minutes of training, so
//! ignored by default): `cargo test --release -p shendu --test full_mnist -- --ignored`.
//! MLP 784-512-512-10 at least 98.0% and LeNet-5 at least 99.0% test accuracy within 10 epochs.

mod cli_support;

use std::path::Path;

use cli_support::{command, TempDir};

fn train_full(model: &str, min_accuracy: f64) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    assert!(data.exists(), "full MNIST not found at {}", data.display());
    let out = TempDir::new(&format!("full-mnist-{model}"));
    let result = command()
        .args(["train", "--quiet", "--json", "--epochs", "10", "--model", model])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let summary: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&result.stdout).lines().last().unwrap()).unwrap();
    let acc = summary["test_accuracy"].as_f64().unwrap();
    println!("{model}: {:.2}% test accuracy in {:.0} s", 100.0 * acc, summary["seconds"].as_f64().unwrap());
    assert!(acc >= min_accuracy, "{model}: {acc} below {min_accuracy}");
}

#[test]
#[ignore = "full MNIST, minutes of training"]
fn mlp_reaches_98_percent() {
    train_full("mlp", 0.98);
}

#[test]
#[ignore = "full MNIST, minutes of training"]
fn lenet_reaches_99_percent() {
    train_full("lenet", 0.99);
}
