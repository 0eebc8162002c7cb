//! `shendu train --check-numerics` (issue 7): an MLP at learning rate 50 diverges; the check names
//! the first op that made a NaN or infinity, its layer path and step, and the dump it writes
//! loads in `shendu weights inspect`.

mod cli_support;

use cli_support::{command, number_after, TempDir};

#[test]
fn lr_50_divergence_is_traced_to_op_layer_and_step() {
    let dir = TempDir::new("numerics-lr50");
    let args = ["train", "--model", "mlp", "--lr", "50", "--epochs", "1", "--threads", "1", "--quiet"];

    // Without the check the run only notices a NaN loss, some steps later.
    let plain = command().args(args).arg("--out").arg(dir.join("plain")).output().unwrap();
    let plain_err = String::from_utf8_lossy(&plain.stderr);
    assert!(!plain.status.success() && plain_err.contains("training diverged"), "{plain_err}");
    let diverged_at = number_after(&plain_err, " step ");

    let out_dir = dir.join("checked");
    let checked = command().args(args).arg("--out").arg(&out_dir).arg("--check-numerics").output().unwrap();
    let err = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(1), "{err}");
    let line = err.lines().find(|l| l.contains("check-numerics:")).unwrap_or_else(|| panic!("no report: {err}"));
    // "check-numerics: forward of matmul produced Inf at step 6 (epoch 1), layer layers.4"
    assert!(line.contains(" of ") && (line.contains("produced NaN") || line.contains("produced Inf")), "{line}");
    let step = number_after(line, "at step");
    assert!(step >= 1 && step <= diverged_at, "first non-finite at step {step}, loss NaN at step {diverged_at}: {line}");
    let layer = line.rsplit("layer ").next().unwrap().trim();
    assert!(["layers.0", "layers.1", "layers.2", "layers.3", "layers.4"].contains(&layer), "not an MLP layer path: {line}");
    assert!(err.contains("input 0: [") && err.contains("NaN,"), "input statistics missing: {err}");

    // The dump holds the op's inputs, and the layer's parameters when it has any.
    let dump = out_dir.join("numerics-dump.safetensors");
    let inspect = command().args(["weights", "inspect"]).arg(&dump).output().unwrap();
    let listing = String::from_utf8_lossy(&inspect.stdout);
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    assert!(listing.contains("input.0"), "{listing}");
    assert!(listing.contains(&format!("layer = {layer}")) && listing.contains(&format!("step = {step}")), "{listing}");
    if matches!(layer, "layers.0" | "layers.2" | "layers.4") {
        assert!(listing.contains(&format!("{layer}.weight")), "{listing}");
    }
}

#[test]
fn log_stats_lines_and_their_plot() {
    let dir = TempDir::new("numerics-stats");
    let run = command()
        .args(["train", "--model", "mlp", "--epochs", "1", "--limit-train", "640", "--log-stats", "3", "--quiet", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let log = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let stats: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter(|v| v["kind"] == "stats").collect();
    // 10 steps of 64 samples: steps 1, 4, 7, 10.
    let steps: Vec<u64> = stats.iter().map(|v| v["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [1, 4, 7, 10]);
    let layers = stats[0]["layers"].as_array().unwrap();
    let linear: Vec<&serde_json::Value> = layers.iter().filter(|l| l["type"] == "Linear").collect();
    assert_eq!(linear.len(), 3, "{layers:?}");
    for l in &linear {
        let (g, w, r) = (l["grad_norm"].as_f64().unwrap(), l["weight_norm"].as_f64().unwrap(), l["update_ratio"].as_f64().unwrap());
        assert!(g > 0.0 && w > 0.0 && r > 0.0, "{l}");
        // At step 1 SGD's momentum buffer is the gradient itself, so the update is lr (0.05 at
        // the cosine's start) times the gradient: ratio x weight norm = 0.05 x grad norm, up to
        // the weights' change in norm (tiny at this learning rate).
        assert!((r * w - 0.05 * g).abs() < 0.02 * 0.05 * g, "update {} vs lr x grad {}", r * w, 0.05 * g);
        assert!(l["act_std"].as_f64().unwrap() > 0.0);
    }
    let relu = layers.iter().find(|l| l["type"] == "Relu").unwrap();
    let zeros = relu["act_zero_fraction"].as_f64().unwrap();
    assert!(zeros > 0.2 && zeros < 0.8, "ReLU zero fraction {zeros}");

    let png = dir.join("stats.png");
    let plot = command().args(["plot", "stats"]).arg(dir.join("metrics.jsonl")).output().unwrap();
    assert!(plot.status.success(), "{}", String::from_utf8_lossy(&plot.stderr));
    assert!(std::fs::metadata(&png).map(|m| m.len() > 10_000).unwrap_or(false));
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "{\"epoch\": 1}\n").unwrap();
    let none = command().args(["plot", "stats"]).arg(&empty).output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--log-stats"));
}
