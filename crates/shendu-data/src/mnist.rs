//! MNIST (and any dataset in MNIST's four-file IDX layout, such as Fashion-MNIST) from a
//! directory, from bytes, or from the stratified subset embedded in this crate.

use std::path::{Path, PathBuf};

use crate::dataset::check_index;
use crate::idx::{self, IdxImages};
use crate::{Dataset, Error, Result, Sample};

/// Which half of MNIST.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// 60,000 training images (`train-*`).
    Train,
    /// 10,000 test images (`t10k-*`).
    Test,
}

impl Split {
    /// The standard file names (without `.gz`) of images and labels.
    pub fn file_names(self) -> (&'static str, &'static str) {
        match self {
            Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// MNIST's per-channel mean and standard deviation of pixels in [0, 1] (training set).
pub const MNIST_MEAN: f32 = 0.1307;
/// See [`MNIST_MEAN`].
pub const MNIST_STD: f32 = 0.3081;

const NUM_CLASSES: usize = 10;

static EMBEDDED_TRAIN_IMAGES: &[u8] = include_bytes!("../assets/mnist-subset/train-images-idx3-ubyte.gz");
static EMBEDDED_TRAIN_LABELS: &[u8] = include_bytes!("../assets/mnist-subset/train-labels-idx1-ubyte.gz");
static EMBEDDED_TEST_IMAGES: &[u8] = include_bytes!("../assets/mnist-subset/t10k-images-idx3-ubyte.gz");
static EMBEDDED_TEST_LABELS: &[u8] = include_bytes!("../assets/mnist-subset/t10k-labels-idx1-ubyte.gz");

/// MNIST-format images with their labels. Pixels stay u8 in memory (47 MB for the full training
/// set rather than 188 MB as f32) and are scaled to [0, 1] per sample in [`Dataset::get`].
#[derive(Clone, Debug)]
pub struct Mnist {
    images: IdxImages,
    labels: Vec<u8>,
    name: String,
}

impl Mnist {
    /// Loads a split from `dir`, which holds the standard file names, each plain or gzip
    /// (recognised by content, so a `.gz` name on a decompressed file also works).
    pub fn load(dir: impl AsRef<Path>, split: Split) -> Result<Mnist> {
        let dir = dir.as_ref();
        let (images_name, labels_name) = split.file_names();
        let find = |base: &str| -> Option<PathBuf> { [dir.join(base), dir.join(format!("{base}.gz"))].into_iter().find(|p| p.is_file()) };
        let (images_path, labels_path) = (find(images_name), find(labels_name));
        let (Some(images_path), Some(labels_path)) = (images_path.clone(), labels_path.clone()) else {
            let mut looked_for = Vec::new();
            for (base, found) in [(images_name, &images_path), (labels_name, &labels_path)] {
                if found.is_none() {
                    looked_for.push(format!("{base} or {base}.gz"));
                }
            }
            return Err(Error::Missing {
                dir: dir.to_path_buf(),
                what: format!(
                    "MNIST {} files (the standard names are train-images-idx3-ubyte, train-labels-idx1-ubyte, \
                     t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each plain or .gz)",
                    split.name()
                ),
                looked_for,
            });
        };
        let images = idx::parse_images(&idx::read_file(&images_path)?, &images_path.display().to_string())?;
        let labels = idx::parse_labels(&idx::read_file(&labels_path)?, &labels_path.display().to_string(), NUM_CLASSES)?;
        Mnist::from_parts(images, labels, &dir.display().to_string())
    }

    /// Parses an images file and a labels file given as bytes (plain or gzip). `name_for_errors`
    /// prefixes every error ("mnist train" gives "mnist train images: bad magic number ...").
    pub fn from_bytes(images: &[u8], labels: &[u8], name_for_errors: &str) -> Result<Mnist> {
        let images = idx::parse_images(images, &format!("{name_for_errors} images"))?;
        let labels = idx::parse_labels(labels, &format!("{name_for_errors} labels"), NUM_CLASSES)?;
        Mnist::from_parts(images, labels, name_for_errors)
    }

    /// The stratified subset compiled into this crate: 6,000 training images (600 per class) or
    /// 1,000 test images (100 per class), for examples and tests that must run without downloads.
    /// See `assets/mnist-subset/README.md` for how it was drawn.
    pub fn embedded(split: Split) -> Result<Mnist> {
        let (images, labels) = match split {
            Split::Train => (EMBEDDED_TRAIN_IMAGES, EMBEDDED_TRAIN_LABELS),
            Split::Test => (EMBEDDED_TEST_IMAGES, EMBEDDED_TEST_LABELS),
        };
        Mnist::from_bytes(images, labels, &format!("embedded mnist-subset {}", split.name()))
    }

    /// Builds a dataset from already-parsed parts, checking that their counts agree.
    pub fn from_parts(images: IdxImages, labels: Vec<u8>, name: &str) -> Result<Mnist> {
        if images.count != labels.len() {
            return Err(Error::format(name, format!("images ({}) and labels ({}) differ in count", images.count, labels.len())));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= NUM_CLASSES) {
            return Err(Error::format(name, format!("label {l} at index {i} is out of range 0..=9")));
        }
        Ok(Mnist { images, labels, name: name.to_string() })
    }

    /// Image height.
    pub fn rows(&self) -> usize {
        self.images.rows
    }
    /// Image width.
    pub fn cols(&self) -> usize {
        self.images.cols
    }
    /// All pixels, u8, image after image in row-major order.
    pub fn pixels(&self) -> &[u8] {
        &self.images.pixels
    }
    /// All labels, 0..=9.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
    /// The raw images, e.g. for re-encoding a subset.
    pub fn images(&self) -> &IdxImages {
        &self.images
    }
    /// How many samples each class has.
    pub fn class_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
    /// The directory or name the data came from.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Dataset for Mnist {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        check_index("Mnist::get", index, self.labels.len())?;
        let n = self.images.rows * self.images.cols;
        let px = &self.images.pixels[index * n..(index + 1) * n];
        Ok(Sample { input: px.iter().map(|&p| p as f32 / 255.0).collect(), label: self.labels[index] as i64 })
    }
    fn input_shape(&self) -> Vec<usize> {
        vec![1, self.images.rows, self.images.cols]
    }
    fn num_classes(&self) -> usize {
        NUM_CLASSES
    }
}
