//! `shendu weights inspect|diff|copy` through the binary: figures checked against the tensors,
//! every transfer rule, and bad input exiting with code 2 with no output file left behind.

mod cli_support;

use std::collections::BTreeMap;

use cli_support::{mnist_meta, save_zoo, shendu, TempDir};
use shendu_core::{DType, Tensor};
use shendu_nn::state;
use shendu_nn::ModuleExt;

#[test]
fn inspect_lists_every_tensor_with_statistics() {
    let dir = TempDir::new("w-inspect");
    let f = dir.join("lenet.safetensors");
    let net = save_zoo(&f, "lenet", 1, &[]);
    let fs = f.to_str().unwrap();
    let j = shendu(&["weights", "inspect", fs, "--json"]).ok().json();
    let tensors = j["tensors"].as_array().unwrap();
    let params = net.named_params();
    assert_eq!(tensors.len(), params.len());
    for (t, (name, p)) in tensors.iter().zip(&params) {
        assert_eq!(t["name"], name.as_str());
        assert_eq!(t["dtype"], "f32");
        assert_eq!(t["shape"], serde_json::json!(p.dims()));
        let v = p.value().to_vec_f64().unwrap();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert_eq!(t["numel"], v.len());
        // JSON numbers come back within a rounding of the f64 written.
        let close = |key: &str, want: f64| assert!((t[key].as_f64().unwrap() - want).abs() <= 1e-12 * want.abs().max(1e-3), "{name} {key}");
        close("min", v.iter().copied().fold(f64::INFINITY, f64::min));
        close("max", v.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        close("mean", mean);
        close("std", std);
    }
    assert_eq!(j["totals"]["numel"], 61706);
    assert_eq!(j["totals"]["bytes"], 61706 * 4);
    assert_eq!(j["metadata"]["model"], "lenet");

    let text = shendu(&["weights", "inspect", fs]).ok().stdout.clone();
    assert!(text.contains("features.3.weight    f32    [16, 6, 5, 5]   2400"), "{text}");
    assert!(text.contains("  input = 1x28x28") && text.contains("total: 10 tensor(s), 61706 value(s), 246824 byte(s)"), "{text}");

    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, b"not safetensors").unwrap();
    shendu(&["weights", "inspect", bad.to_str().unwrap()]).bad_input(&[bad.to_str().unwrap()]);
    shendu(&["weights", "inspect", dir.0.to_str().unwrap()]).bad_input(&["is a directory"]);
}

#[test]
fn diff_reports_differences_and_leftovers() {
    let dir = TempDir::new("w-diff");
    let (a, b, c) = (dir.join("a.safetensors"), dir.join("b.safetensors"), dir.join("c.safetensors"));
    save_zoo(&a, "lenet", 1, &[]);
    save_zoo(&b, "lenet", 1, &[("epoch", "3")]);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let j = shendu(&["weights", "diff", a, b, "--json"]).ok().json();
    assert_eq!(j["identical"], 10);
    assert_eq!(j["same_tensors"], true);
    assert_eq!(j["metadata_differs"][0], "epoch: only in B");

    // c: one tensor changed by 0.5, one of another shape, one renamed, one in f64.
    let (mut t, _) = state::load_safetensors(a).unwrap();
    t[0].1 = t[0].1.add_scalar(0.5).unwrap();
    t[1].1 = Tensor::zeros(&[7], DType::F32).unwrap();
    t[2].0 = "renamed".into();
    t[3].1 = t[3].1.to_dtype(DType::F64).unwrap();
    state::save_safetensors(&c, &t, &mnist_meta("lenet")).unwrap();
    let j = shendu(&["weights", "diff", a, c.to_str().unwrap(), "--json"]).ok().json();
    let first = &j["tensors"][0];
    assert_eq!(first["name"], "features.0.weight");
    assert!((first["max_abs"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    assert!(first["rel"].as_f64().unwrap() > 0.0);
    assert_eq!(j["shape_mismatch"][0]["name"], "features.0.bias");
    assert_eq!(j["only_in_a"], serde_json::json!(["features.3.weight"]));
    assert_eq!(j["only_in_b"], serde_json::json!(["renamed"]));
    assert_eq!(j["dtype_differs"][0]["name"], "features.3.bias");
    assert_eq!(j["identical"], 7, "the f64 copy holds the same values");
    let text = shendu(&["weights", "diff", a, c.to_str().unwrap()]).ok().stdout.clone();
    for want in ["only in A: features.3.weight", "only in B: renamed", "shape mismatch: features.0.bias A [6] B [7]", "7 identical"] {
        assert!(text.contains(want), "lacks {want:?}:\n{text}");
    }
    shendu(&["weights", "diff", a, "/nonexistent/x.safetensors"]).bad_input(&["/nonexistent/x.safetensors"]);
}

/// A LeNet state dict under DataParallel's names (`module.features.0.weight`, ...).
fn save_wrapped(path: &std::path::Path, seed: u64) -> Vec<(String, Tensor)> {
    shendu_core::manual_seed(seed);
    let net = shendu_vision::zoo::build("lenet", &shendu_vision::zoo::ModelOptions::mnist()).unwrap();
    let sd: Vec<(String, Tensor)> = state::state_dict(&net).into_iter().map(|(n, t)| (format!("module.{n}"), t)).collect();
    let meta: BTreeMap<String, String> = [("normalize".to_string(), "0.1307,0.3081".to_string())].into();
    state::save_safetensors(path, &sd, &meta).unwrap();
    sd
}

fn assert_loaded(out: &std::path::Path, src: &[(String, Tensor)], strip: &str) {
    let (t, meta) = state::load_safetensors(out).unwrap();
    assert_eq!(meta.get("model").map(String::as_str), Some("lenet"));
    assert_eq!(t.len(), src.len());
    for ((n, v), (sn, sv)) in t.iter().zip(src) {
        assert_eq!(n, &sn.replacen(strip, "", 1));
        assert_eq!(v.to_vec::<f32>().unwrap(), sv.to_vec::<f32>().unwrap(), "{n}");
    }
}

#[test]
fn copy_by_each_rule_into_a_model_or_a_file() {
    let dir = TempDir::new("w-copy");
    let src = dir.join("wrapped.safetensors");
    let sd = save_wrapped(&src, 7);
    let s = src.to_str().unwrap();

    // Suffix rule into a fresh zoo model: the notebook's DataParallel case, strict.
    let out = dir.join("suffix.safetensors");
    let r = shendu(&["weights", "copy", "--from", s, "--to-model", "lenet", "--out", out.to_str().unwrap(), "--strict"]);
    r.ok();
    assert!(r.stdout.contains("transfer plan: 10 pair(s), 0 source tensor(s) unused, 0 destination param(s) untouched, 0 problem(s)"));
    assert!(r.stdout.contains("module.classifier.4.weight -> classifier.4.weight [10, 84]"), "{}", r.stdout);
    assert_loaded(&out, &sd, "module.");
    let (_, meta) = state::load_safetensors(&out).unwrap();
    assert_eq!(meta.get("normalize").map(String::as_str), Some("0.1307,0.3081"), "the source's normalization travels");
    shendu(&["test", "--weights", out.to_str().unwrap(), "--json"]).ok();

    // Regex and order rules give the same file; map copies just the pairs named.
    let out2 = dir.join("regex.safetensors");
    shendu(&["weights", "copy", "--from", s, "--to-model", "lenet", "--out", out2.to_str().unwrap(), "--regex", r"^module\.(.*)$=>$1"])
        .ok();
    assert_loaded(&out2, &sd, "module.");
    let out3 = dir.join("order.safetensors");
    shendu(&["weights", "copy", "--from", s, "--to-model", "lenet", "--out", out3.to_str().unwrap(), "--rule", "order", "--strict"]).ok();
    assert_loaded(&out3, &sd, "module.");

    // Into an existing file with --map: only the named tensor changes, metadata is DST's.
    let dst = dir.join("dst.safetensors");
    save_zoo(&dst, "lenet", 9, &[("epoch", "4")]);
    let out4 = dir.join("map.safetensors");
    let j = shendu(&[
        "weights",
        "copy",
        "--from",
        s,
        "--to",
        dst.to_str().unwrap(),
        "--out",
        out4.to_str().unwrap(),
        "--map",
        "module.features.0.bias=features.0.bias",
        "--json",
    ])
    .ok()
    .json();
    assert_eq!(j["pairs"].as_array().unwrap().len(), 1);
    assert_eq!(j["dst_untouched"].as_array().unwrap().len(), 9);
    let d = shendu(&["weights", "diff", dst.to_str().unwrap(), out4.to_str().unwrap(), "--json"]).ok().json();
    assert_eq!(d["identical"], 9);
    assert_eq!(d["metadata_differs"], serde_json::json!([]));

    // --dry-run prints the plan and writes nothing.
    let dry = dir.join("dry.safetensors");
    let r = shendu(&["weights", "copy", "--from", s, "--to-model", "mlp", "--out", dry.to_str().unwrap(), "--rule", "order", "--dry-run"]);
    assert!(r.ok().stdout.contains("dry run: nothing written") && !dry.exists());
    shendu(&["weights", "copy", "--from", s, "--to-model", "lenet", "--dry-run"]).ok();
}

#[test]
fn copy_failures_exit_2_and_leave_no_file() {
    let dir = TempDir::new("w-copy-bad");
    let src = dir.join("wrapped.safetensors");
    save_wrapped(&src, 7);
    let s = src.to_str().unwrap();
    let out = dir.join("out.safetensors");
    let o = out.to_str().unwrap();
    let before = dir.files();

    // Strict with leftovers: an MLP takes nothing by suffix from LeNet.
    let r = shendu(&[
        "weights",
        "copy",
        "--from",
        s,
        "--to-model",
        "lenet",
        "--out",
        o,
        "--rule",
        "map",
        "--map",
        "module.features.0.bias=features.0.bias",
        "--strict",
    ]);
    r.bad_input(&["--strict", "9 destination param(s) untouched", "9 source tensor(s) unused"]);
    shendu(&["weights", "copy", "--from", s, "--to-model", "mlp", "--out", o]).bad_input(&[s, "nothing to copy"]);
    // A map naming a tensor that does not exist is a problem; strict refuses it.
    shendu(&["weights", "copy", "--from", s, "--to-model", "lenet", "--out", o, "--map", "nope=features.0.bias", "--strict"])
        .bad_input(&["--strict", "1 problem(s)"]);
    shendu(&["weights", "copy", "--from", s, "--to-model", "resnet", "--out", o]).bad_input(&["--to-model", "unknown model 'resnet'"]);
    shendu(&["weights", "copy", "--from", s, "--to-model", "lenet", "--out", o, "--regex", "(=>x"])
        .bad_input(&["--regex", "not a valid regex"]);
    shendu(&["weights", "copy", "--from", s, "--to-model", "lenet", "--out", o, "--map", "novalue"]).bad_input(&["--map", "'novalue'"]);
    shendu(&["weights", "copy", "--from", s, "--to-model", "lenet", "--out", o, "--rule", "order", "--map", "a=b"]).bad_input(&["--map"]);
    let missing_dir = dir.join("no/such/dir/out.safetensors");
    shendu(&["weights", "copy", "--from", s, "--to-model", "lenet", "--out", missing_dir.to_str().unwrap()])
        .bad_input(&["--out", "does not exist"]);

    let corrupt = dir.join("corrupt.safetensors");
    let bytes = std::fs::read(&src).unwrap();
    std::fs::write(&corrupt, &bytes[..bytes.len() / 2]).unwrap();
    shendu(&["weights", "copy", "--from", corrupt.to_str().unwrap(), "--to-model", "lenet", "--out", o])
        .bad_input(&[corrupt.to_str().unwrap()]);
    shendu(&["weights", "copy", "--from", s, "--to", corrupt.to_str().unwrap(), "--out", o]).bad_input(&[corrupt.to_str().unwrap()]);

    let mut after = dir.files();
    after.retain(|f| f != "corrupt.safetensors");
    assert_eq!(after, before, "a failed copy left files behind");
}
