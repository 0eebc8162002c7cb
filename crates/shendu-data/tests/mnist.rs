//! IDX parsing errors on hand-made buffers and files (plain and gzip), and the embedded subset.

mod common;

use common::TempDir;
use shendu_data::idx::{self, IdxImages};
use shendu_data::{Dataset, Error, Mnist, Split};

fn images(count: usize, rows: usize, cols: usize) -> IdxImages {
    IdxImages { count, rows, cols, pixels: (0..count * rows * cols).map(|i| (i * 7 % 256) as u8).collect() }
}

fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    dims.iter().for_each(|d| v.extend_from_slice(&d.to_be_bytes()));
    v
}

#[test]
fn round_trip_plain_and_gzip() {
    let im = images(3, 2, 4);
    let raw = idx::encode_images(&im).unwrap();
    let labels = idx::encode_labels(&[0, 9, 3]).unwrap();
    for (a, b) in [(raw.clone(), labels.clone()), (idx::gzip_best(&raw), idx::gzip_best(&labels)), (raw.clone(), idx::gzip_best(&labels))] {
        let m = Mnist::from_bytes(&a, &b, "t").unwrap();
        assert_eq!((m.len(), m.rows(), m.cols()), (3, 2, 4));
        assert_eq!(m.input_shape(), vec![1, 2, 4]);
        let s = m.get(1).unwrap();
        assert_eq!(s.label, 9);
        let want: Vec<f32> = im.pixels[8..16].iter().map(|&p| p as f32 / 255.0).collect();
        assert_eq!(s.input, want);
    }
    assert!(idx::is_gzip(&idx::gzip_best(b"x")) && !idx::is_gzip(&raw));
}

#[test]
fn bad_magic_names_both_numbers() {
    let labels = idx::encode_labels(&[1]).unwrap();
    let e = idx::parse_images(&labels, "data/train-images-idx3-ubyte.gz").unwrap_err().to_string();
    assert!(e.starts_with("data/train-images-idx3-ubyte.gz: bad magic number 0x00000801, expected 0x00000803 (IDX images)"), "{e}");
    let e = idx::parse_labels(&header(0xdeadbeef, &[1, 0]), "lab", 10).unwrap_err().to_string();
    assert_eq!(e, "lab: bad magic number 0xdeadbeef, expected 0x00000801 (IDX labels)");
}

#[test]
fn truncated_and_trailing() {
    let mut raw = header(0x803, &[60000, 28, 28]);
    raw.extend(vec![0u8; 1200]);
    let e = idx::parse_images(&raw, "f").unwrap_err().to_string();
    assert_eq!(
        e,
        "f: truncated: header says 60000 images of 28x28 (47040000 bytes) but the file holds 1200 bytes after the 16-byte header"
    );
    let e = idx::parse_images(&idx::gzip_best(&raw), "f.gz").unwrap_err().to_string();
    assert!(e.ends_with("after the 16-byte header after decompression"), "{e}");

    let mut raw = idx::encode_images(&images(2, 3, 3)).unwrap();
    raw.extend([1, 2, 3]);
    let e = idx::parse_images(&raw, "f").unwrap_err().to_string();
    assert!(e.starts_with("f: trailing garbage: header says 2 images of 3x3 (18 bytes) but the file holds 21 bytes"), "{e}");
    assert!(e.ends_with("(3 extra)"), "{e}");

    let mut lab = idx::encode_labels(&[1, 2]).unwrap();
    lab.push(0);
    let e = idx::parse_labels(&lab, "l", 10).unwrap_err().to_string();
    assert!(e.starts_with("l: trailing garbage: header says 2 labels (2 bytes) but the file holds 3 bytes"), "{e}");
    let e = idx::parse_labels(&lab[..5], "l", 10).unwrap_err().to_string();
    assert_eq!(e, "l: truncated: 5 bytes cannot hold the 8-byte IDX labels header");
    let e = idx::parse_images(&[], "e").unwrap_err().to_string();
    assert_eq!(e, "e: truncated: 0 bytes cannot hold the 16-byte IDX images header");
}

#[test]
fn corrupt_gzip_labels_range_and_count() {
    let gz = idx::gzip_best(&idx::encode_labels(&[1, 2, 3]).unwrap());
    let e = idx::parse_labels(&gz[..gz.len() / 2], "l.gz", 10).unwrap_err().to_string();
    assert!(e.starts_with("l.gz: corrupt gzip stream"), "{e}");
    let e = idx::parse_labels(&idx::encode_labels(&[1, 12]).unwrap(), "l", 10).unwrap_err().to_string();
    assert_eq!(e, "l: label 12 at index 1 is out of range 0..=9 (10 classes)");
    let im = idx::encode_images(&images(3, 2, 2)).unwrap();
    let e = Mnist::from_bytes(&im, &idx::encode_labels(&[1, 2]).unwrap(), "mnist train").unwrap_err().to_string();
    assert_eq!(e, "mnist train: images (3) and labels (2) differ in count");
    let e = idx::parse_images(&header(0x803, &[1, 0, 28]), "z").unwrap_err().to_string();
    assert!(e.contains("images of 0x28"), "{e}");
}

#[test]
fn load_from_directory_plain_gz_and_missing() {
    let dir = TempDir::new("mnist-dir");
    let im = idx::encode_images(&images(4, 2, 2)).unwrap();
    let lab = idx::encode_labels(&[3, 1, 4, 1]).unwrap();
    // Plain images, gzip labels.
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), &im).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), idx::gzip_best(&lab)).unwrap();
    let m = Mnist::load(dir.path(), Split::Test).unwrap();
    assert_eq!(m.labels(), &[3, 1, 4, 1]);

    // A `.gz` name on uncompressed bytes is recognised by content.
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), &im).unwrap();
    let e = Mnist::load(dir.path(), Split::Train).unwrap_err();
    assert!(matches!(e, Error::Missing { ref looked_for, .. } if looked_for == &["train-labels-idx1-ubyte or train-labels-idx1-ubyte.gz"]));
    let msg = e.to_string();
    assert!(msg.contains("MNIST train files") && msg.contains("t10k-images-idx3-ubyte"), "{msg}");
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), &lab).unwrap();
    assert_eq!(Mnist::load(dir.path(), Split::Train).unwrap().len(), 4);

    // A damaged file is named by its path.
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), &im[..20]).unwrap();
    let e = Mnist::load(dir.path(), Split::Test).unwrap_err().to_string();
    assert!(e.contains("t10k-images-idx3-ubyte: truncated"), "{e}");

    let empty = TempDir::new("mnist-empty");
    let e = Mnist::load(empty.path(), Split::Test).unwrap_err().to_string();
    assert!(
        e.ends_with("looked for t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz"),
        "{e}"
    );
}

#[test]
fn embedded_subset_is_stratified() {
    let train = Mnist::embedded(Split::Train).unwrap();
    assert_eq!(train.len(), 6000);
    assert_eq!(train.class_counts(), [600; 10]);
    assert_eq!(train.input_shape(), vec![1, 28, 28]);
    assert_eq!(train.class_names(), (0..10).map(|c| c.to_string()).collect::<Vec<_>>());
    let test = Mnist::embedded(Split::Test).unwrap();
    assert_eq!(test.len(), 1000);
    assert_eq!(test.class_counts(), [100; 10]);

    // Spot checks against the asset bytes (computed independently with Python's gzip).
    let s = train.get(0).unwrap();
    assert_eq!(s.label, 5); // MNIST's first training image, the famous 5.
    assert_eq!(s.input[152], 3.0 / 255.0);
    assert_eq!(s.input[14 * 28 + 14], 240.0 / 255.0);
    assert!(s.input[..152].iter().all(|&v| v == 0.0));
    assert_eq!(train.pixels()[..784].iter().map(|&p| p as u64).sum::<u64>(), 27525);
    assert_eq!(train.get(5999).unwrap().label, 2);
    assert_eq!(train.pixels().iter().map(|&p| p as u64).sum::<u64>(), 157_622_228);
    let t = test.get(1).unwrap();
    assert_eq!((t.label, t.input[179]), (9, 64.0 / 255.0));
    assert_eq!(test.pixels().iter().map(|&p| p as u64).sum::<u64>(), 26_429_353);
    assert!(train.get(6000).unwrap_err().to_string().contains("index 6000 is out of range"));
}

/// When the full MNIST is present, every embedded sample is one of its samples with its label.
#[test]
fn embedded_subset_matches_full_mnist_when_present() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    let Ok(full) = Mnist::load(&dir, Split::Test) else {
        eprintln!("skipped: no full MNIST at {}", dir.display());
        return;
    };
    let sub = Mnist::embedded(Split::Test).unwrap();
    let mut j = 0;
    for i in 0..sub.len() {
        let px = &sub.pixels()[i * 784..(i + 1) * 784];
        while &full.pixels()[j * 784..(j + 1) * 784] != px {
            j += 1;
        }
        assert_eq!(full.labels()[j], sub.labels()[i]);
        j += 1;
    }
}
