//! DataLoader coverage, determinism and prefetch; transforms on small known inputs.

use std::sync::Arc;

use shendu_core::Rng;
use shendu_data::transforms::affine;
use shendu_data::{
    Batch, Compose, DataLoader, Dataset, Normalize, RandomAffine, RandomCrop, RandomHorizontalFlip, Result, Sample, Subset, Transform,
};

/// Sample i is a 1x2x3 image filled with i, labelled i % 4.
struct Toy(usize);

impl Dataset for Toy {
    fn len(&self) -> usize {
        self.0
    }
    fn get(&self, index: usize) -> Result<Sample> {
        Ok(Sample { input: vec![index as f32; 6], label: (index % 4) as i64 })
    }
    fn input_shape(&self) -> Vec<usize> {
        vec![1, 2, 3]
    }
    fn num_classes(&self) -> usize {
        4
    }
}

fn collect(loader: &DataLoader, epoch: usize) -> Vec<Batch> {
    loader.epoch(epoch).map(|b| b.unwrap()).collect()
}

fn flat(batches: &[Batch]) -> (Vec<usize>, Vec<f32>, Vec<i64>) {
    let mut idx = Vec::new();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for b in batches {
        idx.extend(&b.indices);
        x.extend(b.inputs.to_vec::<f32>().unwrap());
        y.extend(b.targets.to_vec::<i64>().unwrap());
    }
    (idx, x, y)
}

#[test]
fn every_index_once_per_epoch() {
    let loader = DataLoader::new(Arc::new(Toy(103)), 10).unwrap().shuffle(true).seed(5);
    assert_eq!(loader.len_batches(), 11);
    let batches = collect(&loader, 0);
    assert_eq!(batches.len(), 11);
    assert_eq!(batches[0].inputs.dims(), &[10, 1, 2, 3]);
    assert_eq!(batches[0].targets.dims(), &[10]);
    assert_eq!(batches[10].inputs.dims(), &[3, 1, 2, 3]);
    let (mut idx, x, y) = flat(&batches);
    // Rows carry their own sample's data and label.
    for (k, &i) in idx.iter().enumerate() {
        assert_eq!(x[k * 6], i as f32);
        assert_eq!(y[k], (i % 4) as i64);
    }
    assert_ne!(idx, (0..103).collect::<Vec<_>>(), "shuffled");
    idx.sort();
    assert_eq!(idx, (0..103).collect::<Vec<_>>());
    assert_ne!(loader.order(0), loader.order(1), "each epoch has its own order");
}

#[test]
fn unshuffled_order_and_drop_last() {
    let loader = DataLoader::new(Arc::new(Toy(25)), 10).unwrap().drop_last(true);
    assert_eq!(loader.len_batches(), 2);
    let (idx, _, _) = flat(&collect(&loader, 3));
    assert_eq!(idx, (0..20).collect::<Vec<_>>());
    let loader = loader.drop_last(false);
    assert_eq!(loader.len_batches(), 3);
    assert_eq!(collect(&loader, 0)[2].indices, vec![20, 21, 22, 23, 24]);
    assert!(DataLoader::new(Arc::new(Toy(3)), 0).is_err());
    assert_eq!(DataLoader::new(Arc::new(Toy(0)), 4).unwrap().epoch(0).count(), 0);
    assert!(loader.batch(0, 3).is_err());
}

fn augmenting(loader: DataLoader) -> DataLoader {
    // Adds per-sample noise, so any dependence on thread or call order would show.
    let noise = |x: &mut Vec<f32>, _: &mut Vec<usize>, rng: &mut Rng| -> Result<()> {
        x.iter_mut().for_each(|v| *v += rng.uniform() as f32);
        Ok(())
    };
    let t = Compose(vec![Arc::new(noise), Arc::new(RandomHorizontalFlip(0.5))]);
    loader.transform(Arc::new(t))
}

#[test]
fn deterministic_and_independent_of_prefetch_and_workers() {
    let base = augmenting(DataLoader::new(Arc::new(Toy(97)), 8).unwrap().shuffle(true).seed(42));
    let want: Vec<_> = (0..3).map(|e| flat(&collect(&base, e))).collect();
    assert_eq!(want[1], flat(&collect(&base, 1)), "same (seed, epoch), same batches");
    assert_ne!(want[0], want[1]);
    for (prefetch, workers) in [(1, 1), (2, 1), (4, 3), (16, 4), (3, 8)] {
        let l = base.clone().prefetch(prefetch).num_workers(workers);
        // Resuming at epoch 2 directly gives the batches of the uninterrupted run.
        assert_eq!(flat(&collect(&l, 2)), want[2], "prefetch {prefetch} workers {workers}");
        assert_eq!(flat(&collect(&l, 0)), want[0]);
    }
    // Resuming mid-epoch.
    let full = collect(&base, 1);
    let tail: Vec<_> = base.clone().prefetch(2).epoch_from(1, 7).map(|b| b.unwrap()).collect();
    assert_eq!(flat(&tail), flat(&full[7..]));
    assert_eq!(flat(&[base.batch(1, 4).unwrap()]), flat(&full[4..5]));
    let other = base.clone().seed(43);
    assert_ne!(flat(&collect(&other, 0)), want[0]);
}

#[test]
fn dropping_a_prefetching_epoch_stops_early() {
    let l = DataLoader::new(Arc::new(Toy(10_000)), 4).unwrap().prefetch(8).num_workers(2);
    let mut e = l.epoch(0);
    assert_eq!(e.len(), 2500);
    assert_eq!(e.next().unwrap().unwrap().indices, vec![0, 1, 2, 3]);
    drop(e); // Must join the workers rather than hang or run to the end.
}

#[test]
fn errors_of_samples_and_shapes_reach_the_consumer() {
    let sub = Subset::new(Arc::new(Toy(5)), vec![4, 0, 2]).unwrap();
    assert_eq!(sub.get(0).unwrap().label, 0);
    assert!(Subset::new(Arc::new(Toy(5)), vec![5]).is_err());
    let bad = |x: &mut Vec<f32>, s: &mut Vec<usize>, _: &mut Rng| -> Result<()> {
        if x[0] == 2.0 {
            *x = vec![0.0; 7];
            *s = vec![7];
        }
        Ok(())
    };
    let l = DataLoader::new(Arc::new(sub), 3).unwrap().transform(Arc::new(bad)).prefetch(2);
    let e = l.epoch(0).next().unwrap().unwrap_err().to_string();
    assert_eq!(e, "DataLoader: sample 2 has shape [7] but earlier samples of its batch have [1, 2, 3]; samples must agree to stack");
    let lying = |x: &mut Vec<f32>, _: &mut Vec<usize>, _: &mut Rng| -> Result<()> {
        x.push(0.0);
        Ok(())
    };
    let l = l.transform(Arc::new(lying));
    let e = l.epoch(0).next().unwrap().unwrap_err().to_string();
    assert_eq!(e, "DataLoader: the transform left sample 0 with 7 values for shape [1, 2, 3] (6 values)");
}

fn image(c: usize, h: usize, w: usize) -> (Vec<f32>, Vec<usize>) {
    ((0..c * h * w).map(|i| i as f32 + 1.0).collect(), vec![c, h, w])
}

#[test]
fn normalize_exact_values() {
    let (mut x, mut s) = (vec![0.0, 1.0, 0.5, 0.5], vec![2, 1, 2]);
    let n = Normalize { mean: vec![0.5, 0.25], std: vec![0.5, 0.25] };
    n.apply(&mut x, &mut s, &mut Rng::new(0)).unwrap();
    assert_eq!(x, vec![-1.0, 1.0, 1.0, 1.0]);
    let mut x = vec![0.1307f32];
    Normalize::mnist().apply(&mut x, &mut vec![1, 1, 1], &mut Rng::new(0)).unwrap();
    assert_eq!(x[0], 0.0);
    let three = Normalize { mean: vec![0.0; 3], std: vec![1.0; 3] };
    let e = three.apply(&mut vec![0.0; 4], &mut vec![2, 1, 2], &mut Rng::new(0)).unwrap_err().to_string();
    assert!(e.starts_with("Normalize: 3 means and 3 stds for an input of shape [2, 1, 2] (2 channels)"), "{e}");
}

#[test]
fn crop_with_padding_shifts_content() {
    let crop = RandomCrop { size: (2, 3), padding: 1 };
    let (mut x, mut s) = image(1, 2, 3); // [[1,2,3],[4,5,6]]
    crop.crop_at(&mut x, &mut s, 0, 0).unwrap();
    assert_eq!(s, vec![1, 2, 3]);
    assert_eq!(x, vec![0.0, 0.0, 0.0, 0.0, 1.0, 2.0]); // content moved down-right by one
    let (mut x, mut s) = image(1, 2, 3);
    crop.crop_at(&mut x, &mut s, 2, 2).unwrap();
    assert_eq!(x, vec![5.0, 6.0, 0.0, 0.0, 0.0, 0.0]); // moved up-left by one
    let (mut x, mut s) = image(2, 2, 3);
    crop.crop_at(&mut x, &mut s, 1, 1).unwrap();
    assert_eq!(x, image(2, 2, 3).0, "centered crop of the padded image is the image");
    assert!(crop.crop_at(&mut image(1, 2, 3).0, &mut vec![1, 2, 3], 3, 0).is_err());
    // Random corners stay in range and preserve the shape.
    let crop = RandomCrop { size: (4, 4), padding: 2 };
    let mut rng = Rng::new(1);
    for _ in 0..50 {
        let (mut x, mut s) = image(3, 4, 4);
        crop.apply(&mut x, &mut s, &mut rng).unwrap();
        assert_eq!((x.len(), s), (48, vec![3, 4, 4]));
    }
}

#[test]
fn flip_mirrors_rows() {
    let (mut x, mut s) = image(2, 2, 3);
    RandomHorizontalFlip(1.0).apply(&mut x, &mut s, &mut Rng::new(0)).unwrap();
    assert_eq!(x, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0, 12.0, 11.0, 10.0]);
    let (mut y, mut s) = image(2, 2, 3);
    RandomHorizontalFlip(0.0).apply(&mut y, &mut s, &mut Rng::new(0)).unwrap();
    assert_eq!(y, image(2, 2, 3).0);
    let e = RandomHorizontalFlip(1.0).apply(&mut vec![0.0; 4], &mut vec![4], &mut Rng::new(0)).unwrap_err().to_string();
    assert_eq!(e, "RandomHorizontalFlip: expects a [channels, height, width] image but got shape [4]");
}

#[test]
fn affine_identity_rotation_and_translation() {
    let (mut x, s) = image(1, 3, 3);
    affine(&mut x, &s, 0.0, (0.0, 0.0), 1.0).unwrap();
    assert_eq!(x, image(1, 3, 3).0);
    // 90 degrees counter-clockwise: the top row becomes the left column, read bottom-up.
    let (mut x, s) = image(1, 3, 3); // [[1,2,3],[4,5,6],[7,8,9]]
    affine(&mut x, &s, 90.0, (0.0, 0.0), 1.0).unwrap();
    let r: Vec<f32> = x.iter().map(|v| v.round()).collect();
    assert_eq!(r, vec![3.0, 6.0, 9.0, 2.0, 5.0, 8.0, 1.0, 4.0, 7.0]);
    let (mut x, s) = image(1, 2, 3);
    affine(&mut x, &s, 0.0, (1.0, 0.0), 1.0).unwrap();
    assert_eq!(x, vec![0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
    // RandomAffine with only translation moves content by whole pixels within the bound.
    let t = RandomAffine { degrees: 0.0, translate: Some((0.25, 0.0)), scale: None };
    let mut rng = Rng::new(3);
    for _ in 0..20 {
        let (mut x, mut s) = image(1, 1, 4);
        t.apply(&mut x, &mut s, &mut rng).unwrap();
        let shifts = [vec![2.0, 3.0, 4.0, 0.0], vec![1.0, 2.0, 3.0, 4.0], vec![0.0, 1.0, 2.0, 3.0]];
        assert!(shifts.contains(&x), "{x:?}");
    }
    assert!(RandomAffine { degrees: -1.0, translate: None, scale: None }.apply(&mut x_of(9), &mut vec![1, 3, 3], &mut rng).is_err());
}

fn x_of(n: usize) -> Vec<f32> {
    vec![0.0; n]
}

#[test]
fn mnist_pipeline_end_to_end() {
    let train = shendu_data::Mnist::embedded(shendu_data::Split::Train).unwrap();
    let t = Compose(vec![
        Arc::new(RandomAffine { degrees: 10.0, translate: Some((0.1, 0.1)), scale: Some((0.9, 1.1)) }),
        Arc::new(Normalize::mnist()),
    ]);
    let l = DataLoader::new(Arc::new(train), 256).unwrap().shuffle(true).transform(Arc::new(t)).prefetch(4).num_workers(2);
    let mut n = 0;
    for b in l.epoch(0) {
        let b = b.unwrap();
        assert_eq!(&b.inputs.dims()[1..], &[1, 28, 28]);
        n += b.len();
    }
    assert_eq!(n, 6000);
}
