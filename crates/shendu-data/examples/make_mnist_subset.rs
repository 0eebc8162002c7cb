//! Regenerates `assets/mnist-subset/`: a stratified subset of MNIST (600 training and 100 test
//! images per class), drawn by a fixed seed and written as the four standard IDX files, gzipped
//! at the best level with a zero timestamp so reruns give identical bytes.
//!
//! cargo run -p shendu-data --example make_mnist_subset -- /work/shared/data/mnist crates/shendu-data/assets/mnist-subset

use std::path::Path;

use shendu_core::Rng;
use shendu_data::idx::{self, IdxImages};
use shendu_data::{Mnist, Split};

const SEED: u64 = 20_240_611;

/// Indices of `per_class` samples of every class: each class's indices shuffled by one seeded
/// generator (classes in order 0..=9), the first `per_class` kept, the union sorted back into
/// dataset order.
fn stratified(labels: &[u8], per_class: usize, rng: &mut Rng) -> Result<Vec<usize>, String> {
    let mut chosen = Vec::new();
    for class in 0..10u8 {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if idx.len() < per_class {
            return Err(format!("class {class} has only {} samples, {per_class} wanted", idx.len()));
        }
        for i in (1..idx.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            idx.swap(i, j);
        }
        chosen.extend_from_slice(&idx[..per_class]);
    }
    chosen.sort_unstable();
    Ok(chosen)
}

fn write_subset(src: &Mnist, chosen: &[usize], out: &Path, split: Split) -> Result<(), Box<dyn std::error::Error>> {
    let n = src.rows() * src.cols();
    let mut pixels = Vec::with_capacity(chosen.len() * n);
    for &i in chosen {
        pixels.extend_from_slice(&src.pixels()[i * n..(i + 1) * n]);
    }
    let labels: Vec<u8> = chosen.iter().map(|&i| src.labels()[i]).collect();
    let images = IdxImages { count: chosen.len(), rows: src.rows(), cols: src.cols(), pixels };
    let (images_name, labels_name) = split.file_names();
    for (name, raw) in [(images_name, idx::encode_images(&images)?), (labels_name, idx::encode_labels(&labels)?)] {
        let path = out.join(format!("{name}.gz"));
        let gz = idx::gzip_best(&raw);
        std::fs::write(&path, &gz)?;
        println!("{}: {} bytes", path.display(), gz.len());
    }
    let subset = Mnist::from_parts(images, labels, "subset")?;
    println!("{split:?}: {} samples, class counts {:?}", chosen.len(), subset.class_counts());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, out] = args.as_slice() else {
        return Err("usage: make_mnist_subset <mnist dir> <out dir>".into());
    };
    let out = Path::new(out);
    std::fs::create_dir_all(out)?;
    let mut rng = Rng::new(SEED);
    for (split, per_class) in [(Split::Train, 600), (Split::Test, 100)] {
        let mnist = Mnist::load(src, split)?;
        let chosen = stratified(mnist.labels(), per_class, &mut rng)?;
        write_subset(&mnist, &chosen, out, split)?;
    }
    Ok(())
}
