//! `shendu train` through the binary: the default run, checkpoints that survive SIGKILL,
//! bit-identical resume, and bad input.

mod cli_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use cli_support::{command, TempDir};

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "failed: {}\nstderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

fn json_summary(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// The README's main command: no flags at all, LeNet-5 on the embedded subset.
#[test]
fn default_run_reaches_95_percent_and_writes_its_files() {
    let dir = TempDir::new("train-default");
    let out = run_ok(command().arg("train").current_dir(&dir));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let acc: f64 = stdout.split("test accuracy ").nth(1).and_then(|s| s.split('%').next()).and_then(|s| s.parse().ok()).unwrap();
    assert!(acc >= 95.0, "test accuracy {acc}% below 95%: {stdout}");
    let run = dir.join("runs/lenet");
    for f in ["last.safetensors", "best.safetensors", "metrics.jsonl", "chart.png"] {
        assert!(run.join(f).metadata().map(|m| m.len() > 0).unwrap_or(false), "{f} missing");
    }
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 8);
    let png = std::fs::read(run.join("chart.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

fn small_run(out: &Path) -> Command {
    let mut c = command();
    c.args(["train", "--quiet", "--json", "--threads", "1", "--limit-train", "640", "--batch", "32", "--schedule", "constant"])
        .arg("--out")
        .arg(out);
    c
}

/// 4 epochs straight and 2 + resume 2 give the same bytes of weights and optimizer state.
#[test]
fn resume_is_bit_identical() {
    let dir = TempDir::new("train-resume");
    let (a, b) = (dir.join("a"), dir.join("b"));
    run_ok(small_run(&a).args(["--epochs", "4", "--model", "mlp"]));
    run_ok(small_run(&b).args(["--epochs", "2", "--model", "mlp"]));
    let resumed = run_ok(
        command().args(["train", "--quiet", "--json", "--threads", "1", "--epochs", "4", "--resume"]).arg(b.join("last.safetensors")),
    );
    assert_eq!(json_summary(&resumed)["epochs"], 4);
    let (ta, ma) = shendu_nn::state::load_safetensors(a.join("last.safetensors")).unwrap();
    let (tb, mb) = shendu_nn::state::load_safetensors(b.join("last.safetensors")).unwrap();
    assert_eq!(ta.len(), tb.len());
    for ((na, xa), (nb, xb)) in ta.iter().zip(&tb) {
        assert_eq!(na, nb);
        assert_eq!(xa.to_vec_f64().unwrap(), xb.to_vec_f64().unwrap(), "{na} differs after resume");
    }
    assert_eq!(ma.get("step"), mb.get("step"));
    assert_eq!(ma.get("rng_state"), mb.get("rng_state"));
    assert_eq!(std::fs::read_to_string(b.join("metrics.jsonl")).unwrap().lines().count(), 4);
}

/// SIGKILL while the second checkpoint is being written: the first stays loadable, and the
/// run resumes from it.
#[cfg(unix)]
#[test]
fn sigkill_during_checkpoint_write_keeps_the_previous_one() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("train-kill");
    let mut child = small_run(&dir)
        .args(["--epochs", "3", "--model", "mlp"])
        .env("SHENDU_TEST_CHECKPOINT_PAUSE_MS", "60000")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Epoch 1 writes new files (no pause); epoch 2 replaces last.safetensors and pauses halfway.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let paused = stderr.lines().map_while(|l| l.ok()).any(|l| l.contains("checkpoint write paused"));
    assert!(paused, "the run ended without replacing a checkpoint");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let last = dir.join("last.safetensors");
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(leftovers.iter().any(|n| n.starts_with(".last.safetensors.tmp")), "the kill did not land mid-write: {leftovers:?}");
    let (tensors, meta) = shendu_nn::state::load_safetensors(&last).unwrap();
    assert_eq!(meta.get("epoch").map(String::as_str), Some("1"));
    assert!(tensors.iter().any(|(n, _)| n == "layers.0.weight"));
    let resumed = run_ok(command().args(["train", "--quiet", "--json", "--threads", "1", "--resume"]).arg(&last));
    assert_eq!(json_summary(&resumed)["epochs"], 3);
}

#[test]
fn bad_input_exits_2_with_one_line_and_no_output() {
    let dir = TempDir::new("train-bad");
    let out_dir = dir.join("out");
    let truncated = dir.join("mnist");
    std::fs::create_dir_all(&truncated).unwrap();
    for f in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        // A valid header claiming more data than the file holds.
        let magic: u32 = if f.contains("images") { 0x803 } else { 0x801 };
        let mut bytes = magic.to_be_bytes().to_vec();
        bytes.extend(100u32.to_be_bytes());
        if f.contains("images") {
            bytes.extend(28u32.to_be_bytes());
            bytes.extend(28u32.to_be_bytes());
        }
        bytes.extend([0u8; 10]);
        std::fs::write(truncated.join(f), bytes).unwrap();
    }
    let corrupt = dir.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--lr".into(), "-0.1".into()], "--lr"),
        (vec!["--model".into(), "resnet9000".into()], "resnet9000"),
        (vec!["--optimizer".into(), "lbfgs".into()], "--optimizer"),
        (vec!["--data".into(), truncated.display().to_string()], "train-images-idx3-ubyte"),
        (vec!["--data".into(), dir.join("nowhere").display().to_string()], "nowhere"),
        (vec!["--resume".into(), corrupt.display().to_string()], "corrupt.safetensors"),
        (vec!["--schedule".into(), "zigzag".into()], "--schedule"),
    ];
    for (args, needle) in cases {
        let out = command().arg("train").args(&args).arg("--out").arg(&out_dir).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: one line expected, got {stderr}");
        assert!(stderr.contains(needle), "{args:?}: '{needle}' not named in {stderr}");
        assert!(!out_dir.exists(), "{args:?}: left {out_dir:?} behind");
    }
}
