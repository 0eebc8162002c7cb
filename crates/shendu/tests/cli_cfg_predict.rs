//! `shendu predict` and `shendu test` on networks described by a Darknet cfg: `--cfg` with Darknet
//! `.weights` or safetensors, checkpoints that carry their cfg (`netspec_cfg`), and the errors
//! (wrong sizes, shapes, missing files) as one line with exit code 2.

mod cli_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cli_support::{shendu, write_png, TempDir};
use shendu::cli::eval::evaluate;
use shendu_core::{DType, Tensor};
use shendu_data::{DataLoader, Mnist, Normalize, Split};
use shendu_nn::{state, Mode, Module};
use shendu_vision::darknet::{self, weights::WeightsHeader};
use shendu_vision::netspec::Network;

const CFG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny_classifier.cfg");

/// The test cfg built from `seed`, with every parameter and statistic moved off its initial value
/// (running variances kept positive), so that loading any array into the wrong place shows.
fn tiny_net(cfg: &str, seed: u64) -> Network {
    let parsed = darknet::read_cfg(cfg).unwrap();
    assert!(parsed.notes.is_empty(), "{:?}", parsed.notes);
    shendu_core::manual_seed(seed);
    let net = parsed.spec.build(DType::F32).unwrap();
    net.visit_params("", &mut |name, p| {
        if p.dtype() != DType::F32 {
            return;
        }
        let r = Tensor::randn(p.dims(), DType::F32).unwrap().mul_scalar(0.5).unwrap();
        let r = if name.ends_with("running_var") { r.abs().unwrap().add_scalar(0.5).unwrap() } else { r };
        p.set(&r).unwrap();
    });
    net
}

/// Test images `indices` of the embedded MNIST subset written as PNGs, and their bytes.
fn digits(dir: &TempDir, indices: &[usize]) -> (Vec<PathBuf>, Vec<u8>) {
    let test = Mnist::embedded(Split::Test).unwrap();
    let mut paths = Vec::new();
    let mut bytes = Vec::new();
    for &i in indices {
        let px = test.pixels()[i * 784..(i + 1) * 784].to_vec();
        let p = dir.join(&format!("digit{i}.png"));
        write_png(&p, 28, 28, px.clone());
        paths.push(p);
        bytes.extend(px);
    }
    (paths, bytes)
}

/// The network's own output (probabilities: the cfg ends in [softmax]) on `bytes` / 255, each
/// pixel then normalized by `(mean, std)` when given.
fn in_process(net: &Network, bytes: &[u8], normalize: Option<(f32, f32)>) -> Vec<Vec<f64>> {
    let _no_grad = shendu_core::no_grad();
    let (mean, std) = normalize.unwrap_or((0.0, 1.0));
    let x: Vec<f32> = bytes.iter().map(|&b| (b as f32 / 255.0 - mean) / std).collect();
    let n = bytes.len() / 784;
    let y = net.forward(&Tensor::from_vec(x, vec![n, 1, 28, 28]).unwrap(), Mode::Eval).unwrap();
    assert_eq!(y.dims(), &[n, 10]);
    y.to_vec_f64().unwrap().chunks(10).map(|c| c.to_vec()).collect()
}

fn predict_json(extra: &[&str], images: &[PathBuf]) -> serde_json::Value {
    let mut args: Vec<String> = ["predict", "--json"].iter().chain(extra).map(|s| s.to_string()).collect();
    args.extend(images.iter().map(|p| p.to_str().unwrap().to_string()));
    shendu(&args).ok().json()
}

/// Every image's full probability vector from `predict --json` is `want`'s, within 1e-5, and its
/// top class is the arg-max.
fn assert_probabilities(j: &serde_json::Value, want: &[Vec<f64>]) {
    let preds = j["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), want.len());
    for (p, w) in preds.iter().zip(want) {
        let got: Vec<f64> = serde_json::from_value(p["probabilities"].clone()).unwrap();
        assert_eq!(got.len(), 10);
        for (g, e) in got.iter().zip(w) {
            assert!((g - e).abs() < 1e-5, "probabilities {got:?}\n   in-process {w:?}");
        }
        assert!((got.iter().sum::<f64>() - 1.0).abs() < 1e-5, "softmax applied once: {got:?}");
        let best = (0..10).max_by(|&a, &b| got[a].total_cmp(&got[b])).unwrap();
        assert_eq!(p["top"][0]["class"], best);
    }
}

fn evaluate_in_process(net: &mut Network, normalize: bool) -> f64 {
    net.set_logits_output(true);
    let mut loader = DataLoader::new(Arc::new(Mnist::embedded(Split::Test).unwrap()), 250).unwrap();
    if normalize {
        loader = loader.transform(Arc::new(Normalize::mnist()));
    }
    let acc = evaluate(&*net, &loader, 10).unwrap().accuracy();
    net.set_logits_output(false);
    acc
}

fn save_darknet(net: &Network, path: &Path) {
    darknet::weights::save_weights(path, net, WeightsHeader::new(1000), None).unwrap();
}

#[test]
fn predict_and_test_with_cfg_and_darknet_weights() {
    let dir = TempDir::new("cfg-darknet");
    let mut net = tiny_net(CFG, 11);
    let w = dir.join("tiny.weights");
    save_darknet(&net, &w);
    let ws = w.to_str().unwrap();
    let (images, bytes) = digits(&dir, &[0, 1, 2, 3]);
    let want = in_process(&net, &bytes, None);

    let j = predict_json(&["--cfg", CFG, "--weights", ws], &images);
    assert_probabilities(&j, &want);
    assert_eq!(j["cfg"], CFG);
    assert_eq!(j["labels"].as_array().unwrap().len(), 10);

    // Darknet's text output, the top 2 of one image.
    let out = shendu(&["predict", "--cfg", CFG, "--weights", ws, "--top", "2", images[0].to_str().unwrap()]).ok().stdout.clone();
    assert_eq!(out.lines().count(), 3, "{out}");

    // The same tensors as safetensors (no metadata) under --cfg: loaded by name, same result.
    let st = dir.join("tiny.safetensors");
    state::save_safetensors(&st, &state::state_dict(&net), &BTreeMap::new()).unwrap();
    assert_probabilities(&predict_json(&["--cfg", CFG, "--weights", st.to_str().unwrap()], &images), &want);

    // `shendu test` evaluates the embedded subset as the network does in-process, on bytes / 255.
    let acc = evaluate_in_process(&mut net, false);
    let t = shendu(&["test", "--cfg", CFG, "--weights", ws, "--json"]).ok().json();
    assert_eq!(t["samples"], 1000);
    assert!((t["accuracy"].as_f64().unwrap() - acc).abs() < 1e-12, "{} vs {acc}", t["accuracy"]);
    let text = shendu(&["test", "--cfg", CFG, "--weights", ws]).ok().stdout.clone();
    assert!(text.contains("accuracy:") && text.contains(CFG), "{text}");
}

#[test]
fn checkpoint_with_netspec_cfg_describes_itself() {
    let dir = TempDir::new("cfg-netspec");
    let mut net = tiny_net(CFG, 12);
    let ckpt = dir.join("ckpt.safetensors");
    let labels = "zero,one,two,three,four,five,six,seven,eight,nine";
    let meta: BTreeMap<String, String> = [
        ("format", "shendu-checkpoint/1".to_string()),
        ("model", "tiny".to_string()),
        ("netspec_cfg", darknet::to_cfg(net.spec())),
        ("normalize", "0.1307,0.3081".to_string()),
        ("labels", labels.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    state::save_safetensors(&ckpt, &state::state_dict(&net), &meta).unwrap();
    let cs = ckpt.to_str().unwrap();
    let (images, bytes) = digits(&dir, &[4, 5, 6]);

    // No --cfg: the network comes from the metadata, the pixels are normalized as it says.
    let j = predict_json(&["--weights", cs], &images);
    assert_probabilities(&j, &in_process(&net, &bytes, Some((0.1307, 0.3081))));
    assert_eq!(j["model"], "tiny");
    assert_eq!(j["labels"][9], "nine");
    let best = j["predictions"][0]["top"][0]["class"].as_u64().unwrap() as usize;
    assert_eq!(j["predictions"][0]["top"][0]["label"], labels.split(',').nth(best).unwrap());

    let acc = evaluate_in_process(&mut net, true);
    let t = shendu(&["test", "--weights", cs, "--json"]).ok().json();
    assert!((t["accuracy"].as_f64().unwrap() - acc).abs() < 1e-12, "{} vs {acc}", t["accuracy"]);

    // --model still overrides the metadata: the zoo's LeNet does not take these tensors.
    shendu(&["test", "--weights", cs, "--model", "lenet"]).bad_input(&[cs, "Missing key(s)"]);
    // A broken netspec_cfg names the key.
    let broken = dir.join("broken.safetensors");
    let mut bad_meta = meta.clone();
    bad_meta.insert("netspec_cfg".into(), "[convolutional]\nfilters=2\n".into());
    state::save_safetensors(&broken, &state::state_dict(&net), &bad_meta).unwrap();
    shendu(&["test", "--weights", broken.to_str().unwrap()]).bad_input(&[broken.to_str().unwrap(), "netspec_cfg", "[net]"]);
}

#[test]
fn bad_cfg_weights_and_shapes_exit_2_with_one_line() {
    let dir = TempDir::new("cfg-errors");
    let net = tiny_net(CFG, 13);
    let w = dir.join("tiny.weights");
    save_darknet(&net, &w);
    let ws = w.to_str().unwrap();
    let (images, _) = digits(&dir, &[0]);
    let png = images[0].to_str().unwrap();

    // A .weights file 8 bytes short: both sizes and the layer where it runs out.
    let bytes = std::fs::read(&w).unwrap();
    let short = dir.join("short.weights");
    std::fs::write(&short, &bytes[..bytes.len() - 8]).unwrap();
    let ss = short.to_str().unwrap();
    let (have, need) = ((bytes.len() - 8).to_string(), bytes.len().to_string());
    let want = [ss, have.as_str(), need.as_str(), "runs out in layer 3"];
    shendu(&["test", "--cfg", CFG, "--weights", ss]).bad_input(&want);
    shendu(&["predict", "--cfg", CFG, "--weights", ss, png]).bad_input(&want);

    // A 3x224x224 cfg on the 1x28x28 MNIST images: both shapes.
    let big_cfg = dir.join("big.cfg");
    std::fs::write(
        &big_cfg,
        "[net]\nchannels=3\nheight=224\nwidth=224\n[convolutional]\nfilters=2\nsize=3\nstride=4\npad=1\nactivation=leaky\n\
         [avgpool]\n[connected]\noutput=10\nactivation=linear\n[softmax]\n",
    )
    .unwrap();
    let bc = big_cfg.to_str().unwrap();
    let big_w = dir.join("big.weights");
    save_darknet(&darknet::read_cfg(&big_cfg).unwrap().spec.build(DType::F32).unwrap(), &big_w);
    let bw = big_w.to_str().unwrap();
    shendu(&["test", "--cfg", bc, "--weights", bw]).bad_input(&[bc, "3x224x224", "1x28x28"]);
    shendu(&["predict", "--cfg", bc, "--weights", bw, png]).bad_input(&[png, "28x28", "224x224", "--resize"]);
    // The tiny network's weights under the big cfg: the size check catches them.
    shendu(&["test", "--cfg", bc, "--weights", ws]).bad_input(&[ws, "bytes"]);

    // Missing files, each named.
    let absent = dir.join("absent.weights");
    let abs = absent.to_str().unwrap();
    shendu(&["test", "--cfg", CFG, "--weights", abs]).bad_input(&[abs]);
    shendu(&["predict", "--cfg", CFG, "--weights", abs, png]).bad_input(&[abs]);
    let absent_cfg = dir.join("absent.cfg");
    shendu(&["test", "--cfg", absent_cfg.to_str().unwrap(), "--weights", ws]).bad_input(&[absent_cfg.to_str().unwrap()]);

    // Darknet weights without their cfg; safetensors of another network under the cfg.
    shendu(&["test", "--weights", ws]).bad_input(&[ws, "--cfg"]);
    let lenet = dir.join("lenet.safetensors");
    cli_support::save_zoo(&lenet, "lenet", 1, &[]);
    let ls = lenet.to_str().unwrap();
    shendu(&["predict", "--cfg", CFG, "--weights", ls, png]).bad_input(&[ls, "Missing key(s)", "0.weight"]);

    // A cfg whose output is not one score per class.
    let conv_cfg = dir.join("conv.cfg");
    std::fs::write(&conv_cfg, "[net]\nchannels=1\nheight=28\nwidth=28\n[convolutional]\nfilters=2\nsize=3\npad=1\n").unwrap();
    let cc = conv_cfg.to_str().unwrap();
    shendu(&["test", "--cfg", cc, "--weights", ws]).bad_input(&[cc, "2 x 28 x 28", "C x 1 x 1"]);

    // --cfg and --model exclude each other.
    assert_eq!(shendu(&["test", "--cfg", CFG, "--model", "lenet", "--weights", ws]).code, 2);
}
