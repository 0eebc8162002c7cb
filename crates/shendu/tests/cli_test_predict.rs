//! `shendu test` and `shendu predict` through the binary: happy paths on checkpoints made here,
//! and every kind of bad input exiting with code 2 and one line naming the file or flag.

mod cli_support;

use std::sync::Arc;

use cli_support::{save_zoo, shendu, write_png, TempDir};
use shendu::cli::eval::evaluate;
use shendu::examples_support::finetune::{pretrain_lenet, Config};
use shendu_data::{idx, DataLoader, Mnist, Normalize, Split};
use shendu_nn::state;

/// Writes the embedded test subset as the two standard t10k files (gzip or plain).
fn write_test_split(dir: &std::path::Path, gz: bool) -> Mnist {
    let m = Mnist::embedded(Split::Test).unwrap();
    let (images, labels) = (idx::encode_images(m.images()).unwrap(), idx::encode_labels(m.labels()).unwrap());
    let (ni, nl) = Split::Test.file_names();
    if gz {
        std::fs::write(dir.join(format!("{ni}.gz")), idx::gzip_best(&images)).unwrap();
        std::fs::write(dir.join(format!("{nl}.gz")), idx::gzip_best(&labels)).unwrap();
    } else {
        std::fs::write(dir.join(ni), &images).unwrap();
        std::fs::write(dir.join(nl), &labels).unwrap();
    }
    m
}

#[test]
fn test_reports_accuracy_per_class_and_confusion() {
    let dir = TempDir::new("test-happy");
    let w = dir.join("lenet.safetensors");
    save_zoo(&w, "lenet", 1, &[("normalize", "0.1307,0.3081")]);
    let w = w.to_str().unwrap();

    let j = shendu(&["test", "--weights", w, "--json"]).ok().json();
    assert_eq!(j["command"], "test");
    assert_eq!(j["model"], "lenet");
    assert_eq!(j["samples"], 1000);
    let confusion: Vec<Vec<u64>> = serde_json::from_value(j["confusion"].clone()).unwrap();
    assert_eq!(confusion.len(), 10);
    for (t, row) in confusion.iter().enumerate() {
        assert_eq!(row.iter().sum::<u64>(), 100, "the subset has 100 images of class {t}");
        assert_eq!(j["per_class"][t]["correct"], row[t]);
    }
    let correct: u64 = (0..10).map(|i| confusion[i][i]).sum();
    assert_eq!(j["correct"], correct);
    assert!((j["accuracy"].as_f64().unwrap() - correct as f64 / 1000.0).abs() < 1e-12);

    let text = shendu(&["test", "--weights", w, "--batch", "64"]).ok().stdout.clone();
    for want in ["accuracy:", "per-class accuracy:", "confusion matrix (rows: true class, columns: predicted class):", "true\\pred"] {
        assert!(text.contains(want), "{text}");
    }
    assert!(text.contains(&format!("({correct}/1000)")), "the batch size must not change the result:\n{text}");

    // The same images from a directory, gzip and plain, give the same figures.
    for gz in [true, false] {
        let data = TempDir::new(if gz { "test-data-gz" } else { "test-data-plain" });
        write_test_split(&data.0, gz);
        let jd = shendu(&["test", "--weights", w, "--data", data.0.to_str().unwrap(), "--json"]).ok().json();
        assert_eq!(jd["confusion"], j["confusion"]);
    }
}

#[test]
fn trained_lenet_tests_and_predicts_through_the_cli() {
    let cfg = Config { pretrain_epochs: 1, max_batches: Some(50), ..Config::default() };
    let (lenet, acc) = pretrain_lenet(&cfg).unwrap();
    assert!(acc > 0.8, "50 steps of LeNet reach only {acc}");
    let dir = TempDir::new("trained");
    let w = dir.join("trained.safetensors");
    let mut meta = cli_support::mnist_meta("lenet");
    meta.insert("normalize".into(), "0.1307,0.3081".into());
    state::save_module(&w, &lenet, &meta).unwrap();
    let ws = w.to_str().unwrap();

    // `shendu test` normalizes as training did: it reproduces the in-process accuracy.
    let j = shendu(&["test", "--weights", ws, "--json"]).ok().json();
    assert!((j["accuracy"].as_f64().unwrap() - acc).abs() < 1e-9, "{} vs {acc}", j["accuracy"]);

    // `shendu predict` on test images written as PNG agrees with the model on the batch.
    let test = Mnist::embedded(Split::Test).unwrap();
    let loader = DataLoader::new(Arc::new(test.clone()), 500).unwrap().transform(Arc::new(Normalize::mnist()));
    assert!((evaluate(lenet.as_ref(), &loader, 10).unwrap().accuracy() - acc).abs() < 1e-12);
    let mut paths = Vec::new();
    for i in (0..1000).step_by(100).take(10) {
        let p = dir.join(&format!("digit{i}.png"));
        write_png(&p, 28, 28, test.pixels()[i * 784..(i + 1) * 784].to_vec());
        paths.push((p, test.labels()[i]));
    }
    let mut args: Vec<String> = ["predict", "--weights", ws, "--top", "3"].iter().map(|s| s.to_string()).collect();
    args.extend(paths.iter().map(|(p, _)| p.to_str().unwrap().to_string()));
    let out = shendu(&args).ok().stdout.clone();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10 * 4, "{out}");
    let mut right = 0;
    for (k, (p, label)) in paths.iter().enumerate() {
        assert_eq!(lines[4 * k], p.to_str().unwrap());
        let mut last = f64::INFINITY;
        for line in &lines[4 * k + 1..4 * k + 4] {
            // `%5.2f%%: label`
            let (pct, lab) = line.split_once("%: ").unwrap_or_else(|| panic!("bad line {line:?}"));
            assert!(pct.len() >= 5 && lab.parse::<u8>().is_ok(), "bad line {line:?}");
            let v: f64 = pct.trim().parse().unwrap();
            assert!(v <= last && (0.0..=100.0).contains(&v));
            last = v;
        }
        right += usize::from(lines[4 * k + 1].ends_with(&format!(": {label}")));
    }
    assert!(right >= 7, "only {right} of 10 digits right:\n{out}");

    // A black-on-white copy with --invert predicts exactly as the original; --json agrees.
    let (p0, _) = &paths[0];
    let inverted = dir.join("inverted.png");
    write_png(&inverted, 28, 28, test.pixels()[..784].iter().map(|v| 255 - v).collect());
    let a = shendu(&["predict", "--weights", ws, "--json", p0.to_str().unwrap()]).ok().json();
    let b = shendu(&["predict", "--weights", ws, "--json", "--invert", inverted.to_str().unwrap()]).ok().json();
    assert_eq!(a["predictions"][0]["top"], b["predictions"][0]["top"]);
    assert_eq!(a["predictions"][0]["top"].as_array().unwrap().len(), 5);
    let p: f64 = a["predictions"][0]["top"].as_array().unwrap().iter().map(|t| t["probability"].as_f64().unwrap()).sum();
    assert!(p > 0.0 && p <= 1.0 + 1e-9);
}

#[test]
fn bad_data_files_exit_2_naming_the_file() {
    let dir = TempDir::new("bad-data");
    let w = dir.join("w.safetensors");
    save_zoo(&w, "lenet", 2, &[]);
    let w = w.to_str().unwrap();
    let (ni, nl) = Split::Test.file_names();

    let data = TempDir::new("bad-data-truncated");
    write_test_split(&data.0, false);
    let images = data.join(ni);
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..bytes.len() - 1000]).unwrap();
    shendu(&["test", "--weights", w, "--data", data.0.to_str().unwrap()]).bad_input(&[images.to_str().unwrap()]);

    let data = TempDir::new("bad-data-magic");
    write_test_split(&data.0, true);
    std::fs::write(data.join(&format!("{nl}.gz")), idx::gzip_best(&[0, 0, 9, 9, 0, 0, 0, 1, 3])).unwrap();
    shendu(&["test", "--weights", w, "--data", data.0.to_str().unwrap()]).bad_input(&[nl, "magic"]);

    let data = TempDir::new("bad-data-gz");
    write_test_split(&data.0, true);
    let gz = data.join(&format!("{ni}.gz"));
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    shendu(&["test", "--weights", w, "--data", data.0.to_str().unwrap()]).bad_input(&[gz.to_str().unwrap()]);

    let empty = TempDir::new("bad-data-empty");
    shendu(&["test", "--weights", w, "--data", empty.0.to_str().unwrap()])
        .bad_input(&[empty.0.to_str().unwrap(), "t10k-images-idx3-ubyte"]);
    let missing = dir.join("no-such-dir");
    shendu(&["test", "--weights", w, "--data", missing.to_str().unwrap()]).bad_input(&[missing.to_str().unwrap(), "--data"]);
}

#[test]
fn bad_weights_and_models_exit_2_naming_the_file_or_flag() {
    let dir = TempDir::new("bad-weights");
    let png = dir.join("ok.png");
    write_png(&png, 28, 28, vec![0; 784]);
    let png = png.to_str().unwrap();

    let corrupt = dir.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": garbage}").unwrap();
    let c = corrupt.to_str().unwrap();
    shendu(&["test", "--weights", c]).bad_input(&[c]);
    shendu(&["predict", "--weights", c, png]).bad_input(&[c]);

    let good = dir.join("good.safetensors");
    save_zoo(&good, "lenet", 3, &[]);
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    shendu(&["test", "--weights", truncated.to_str().unwrap()]).bad_input(&[truncated.to_str().unwrap()]);

    // MLP tensors under a LeNet label: every missing and unexpected name on one line.
    let mismatched = dir.join("mismatched.safetensors");
    save_zoo(&mismatched, "mlp", 4, &[("model", "lenet")]);
    let m = mismatched.to_str().unwrap();
    shendu(&["test", "--weights", m]).bad_input(&[m, "Missing key(s)", "features.0.weight", "Unexpected key(s)", "layers.0.weight"]);
    shendu(&["predict", "--weights", m, png]).bad_input(&[m, "Missing key(s)"]);
    // LeNet weights built for 5 classes under a 10-class label: size mismatch.
    let five = dir.join("five.safetensors");
    let mut opts = shendu_vision::zoo::ModelOptions::mnist();
    opts.classes = 5;
    let net = shendu_vision::zoo::build("lenet", &opts).unwrap();
    state::save_module(&five, &net, &cli_support::mnist_meta("lenet")).unwrap();
    shendu(&["test", "--weights", five.to_str().unwrap()]).bad_input(&[five.to_str().unwrap(), "size mismatch for classifier.4.weight"]);

    let g = good.to_str().unwrap();
    shendu(&["test", "--weights", g, "--model", "resnet999"]).bad_input(&["--model", "unknown model 'resnet999'", "lenet"]);
    shendu(&["predict", "--weights", g, "--model", "nope", png]).bad_input(&["--model", "unknown model 'nope'"]);
    let unknown = dir.join("unknown.safetensors");
    save_zoo(&unknown, "lenet", 5, &[("model", "alexnet")]);
    shendu(&["test", "--weights", unknown.to_str().unwrap()]).bad_input(&[unknown.to_str().unwrap(), "unknown model 'alexnet'"]);
    let bad_norm = dir.join("bad-norm.safetensors");
    save_zoo(&bad_norm, "lenet", 5, &[("normalize", "0.1,0")]);
    shendu(&["test", "--weights", bad_norm.to_str().unwrap()]).bad_input(&[bad_norm.to_str().unwrap(), "normalize"]);

    let absent = dir.join("absent.safetensors");
    shendu(&["test", "--weights", absent.to_str().unwrap()]).bad_input(&[absent.to_str().unwrap()]);
    // The model given explicitly works on a file without metadata.
    let bare = dir.join("bare.safetensors");
    let net = shendu_vision::zoo::build("lenet", &shendu_vision::zoo::ModelOptions::mnist()).unwrap();
    state::save_module(&bare, &net, &Default::default()).unwrap();
    shendu(&["test", "--weights", bare.to_str().unwrap()]).bad_input(&["pass --model"]);
    shendu(&["test", "--weights", bare.to_str().unwrap(), "--model", "lenet", "--json"]).ok();
}

#[test]
fn bad_images_exit_2_before_any_prediction() {
    let dir = TempDir::new("bad-images");
    let w = dir.join("w.safetensors");
    save_zoo(&w, "lenet", 6, &[]);
    let w = w.to_str().unwrap();
    let ok = dir.join("ok.png");
    write_png(&ok, 28, 28, vec![0; 784]);
    let big = dir.join("big.png");
    write_png(&big, 32, 30, vec![0; 32 * 30]);
    let (ok, big) = (ok.to_str().unwrap(), big.to_str().unwrap());

    let r = shendu(&["predict", "--weights", w, ok, big]);
    r.bad_input(&[big, "32x30", "28x28", "--resize"]);
    assert!(r.stdout.is_empty(), "no prediction is printed when an image is bad:\n{}", r.stdout);
    let out = shendu(&["predict", "--weights", w, "--resize", "--top", "2", ok, big]).ok().stdout.clone();
    assert_eq!(out.lines().count(), 6, "{out}");

    let not_png = dir.join("broken.png");
    std::fs::write(&not_png, b"\x89PNG\r\n\x1a\nthis is not a png").unwrap();
    shendu(&["predict", "--weights", w, not_png.to_str().unwrap()]).bad_input(&[not_png.to_str().unwrap()]);
    let absent = dir.join("absent.png");
    shendu(&["predict", "--weights", w, absent.to_str().unwrap()]).bad_input(&[absent.to_str().unwrap()]);

    // JPEG and colour are accepted (converted to grayscale); --top above the classes is capped.
    let jpg = dir.join("colour.jpg");
    image::RgbImage::from_pixel(28, 28, image::Rgb([200, 10, 10])).save(&jpg).unwrap();
    let j = shendu(&["predict", "--weights", w, "--top", "50", "--json", jpg.to_str().unwrap()]).ok().json();
    assert_eq!(j["predictions"][0]["top"].as_array().unwrap().len(), 10);
}
