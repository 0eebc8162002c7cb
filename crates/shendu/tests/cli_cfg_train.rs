//! `shendu train --cfg FILE` (issue 5): a Darknet cfg trains on MNIST with its [net] options
//! unless flags override them, the checkpoint carries the network (`netspec_cfg`), and a cfg
//! that does not fit the data is refused before anything is written.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use cli_support::{command, TempDir};

fn repo_cfg(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cfg").join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn lenet_cfg_trains_with_its_net_options() {
    let dir = TempDir::new("cfg-train-lenet");
    let out =
        command().args(["train", "--epochs", "2", "--json", "--out"]).arg(&dir).arg("--cfg").arg(repo_cfg("lenet.cfg")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // [net] batch=64, learning_rate=0.05, policy=poly.
    let head = stderr(&out);
    assert!(head.contains("shendu train: lenet (") && head.contains("batch 64") && head.contains("lr 0.05"), "{head}");
    assert!(head.contains("darknet:policy=poly"), "{head}");
    let summary: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let acc = summary["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.93, "LeNet cfg after 2 epochs on the subset: {acc}");
    // The checkpoint carries the network it was trained with.
    let inspect = command().args(["weights", "inspect"]).arg(dir.join("last.safetensors")).output().unwrap();
    let listing = String::from_utf8_lossy(&inspect.stdout);
    assert!(listing.contains("netspec_cfg") && listing.contains("[convolutional]"), "{listing}");
}

#[test]
fn flags_override_net_options() {
    let dir = TempDir::new("cfg-train-override");
    let out = command()
        .args([
            "train",
            "--epochs",
            "1",
            "--limit-train",
            "256",
            "--batch",
            "32",
            "--lr",
            "0.01",
            "--schedule",
            "constant",
            "--quiet",
            "--out",
        ])
        .arg(&dir)
        .arg("--cfg")
        .arg(repo_cfg("lenet.cfg"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let log = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(rec["step"], 8, "256 samples in batches of 32");
    assert_eq!(rec["lr"], 0.01);
}

#[test]
fn a_cfg_that_does_not_fit_the_data_is_refused() {
    let dir = TempDir::new("cfg-train-misfit");
    let rgb = dir.join("rgb.cfg");
    std::fs::write(&rgb, "[net]\nchannels=3\nheight=32\nwidth=32\n[convolutional]\nfilters=4\nsize=3\n[avgpool]\n").unwrap();
    let out = command().args(["train", "--quiet", "--out"]).arg(dir.join("run")).arg("--cfg").arg(&rgb).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("3 x 32 x 32") && stderr(&out).contains("1 x 28 x 28"), "{}", stderr(&out));
    assert!(!dir.join("run").exists(), "nothing is written for a refused run");

    let classes = dir.join("classes.cfg");
    std::fs::write(&classes, "[net]\nchannels=1\nheight=28\nwidth=28\n[connected]\noutput=7\nactivation=linear\n[softmax]\n").unwrap();
    let out = command().args(["train", "--quiet", "--out"]).arg(dir.join("run")).arg("--cfg").arg(&classes).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("7 outputs") && stderr(&out).contains("10 classes"), "{}", stderr(&out));

    let broken = dir.join("broken.cfg");
    std::fs::write(&broken, "[net]\nchannels=1\nheight=28\nwidth=28\n[route]\nlayers=-3\n").unwrap();
    let out = command().args(["train", "--quiet", "--out"]).arg(dir.join("run")).arg("--cfg").arg(&broken).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("broken.cfg:6: layer 0 [route]"), "{}", stderr(&out));
}
