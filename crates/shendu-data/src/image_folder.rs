//! Images in one subfolder per class (`root/cat/001.png`, `root/dog/xyz.jpg`), decoded at load.

use std::path::{Path, PathBuf};

use crate::dataset::check_index;
use crate::{Dataset, Error, Result, Sample};

/// An image-classification dataset from a folder tree: the sorted subfolder names are the class
/// names, and every PNG or JPEG inside one is a sample of that class. Images are decoded once at
/// load (in parallel) and kept as u8; `get` gives CHW f32 in [0, 1].
#[derive(Clone, Debug)]
pub struct ImageFolder {
    classes: Vec<String>,
    paths: Vec<PathBuf>,
    labels: Vec<i64>,
    channels: usize,
    width: usize,
    height: usize,
    /// HWC u8 pixels, image after image.
    pixels: Vec<u8>,
}

fn is_image(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Decodes one image to HWC u8 with 1 or 3 channels, resized when `resize` is given.
fn decode(path: &Path, grayscale: bool, resize: Option<(u32, u32)>) -> Result<(u32, u32, Vec<u8>)> {
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(|e| Error::format(path.display().to_string(), format!("cannot decode image: {e}")))?;
    let img = match resize {
        Some((w, h)) if (img.width(), img.height()) != (w, h) => img.resize_exact(w, h, image::imageops::FilterType::Triangle),
        _ => img,
    };
    let (w, h) = (img.width(), img.height());
    let px = if grayscale { img.into_luma8().into_raw() } else { img.into_rgb8().into_raw() };
    Ok((w, h, px))
}

impl ImageFolder {
    /// Loads `root`; every image must be `size = (width, height)` when given, else the size of
    /// the first image. A mismatch is an error naming the file and both sizes.
    pub fn load(root: impl AsRef<Path>, size: Option<(u32, u32)>, grayscale: bool) -> Result<ImageFolder> {
        ImageFolder::build(root.as_ref(), size, false, grayscale)
    }

    /// Loads `root`, resizing every image to `size = (width, height)` (bilinear).
    pub fn load_resized(root: impl AsRef<Path>, size: (u32, u32), grayscale: bool) -> Result<ImageFolder> {
        ImageFolder::build(root.as_ref(), Some(size), true, grayscale)
    }

    fn build(root: &Path, size: Option<(u32, u32)>, resize: bool, grayscale: bool) -> Result<ImageFolder> {
        if let Some((w, h)) = size {
            if w == 0 || h == 0 {
                return Err(Error::invalid("ImageFolder::load", format!("size {w}x{h} must be positive")));
            }
        }
        let mut classes = Vec::new();
        let mut files: Vec<(PathBuf, i64)> = Vec::new();
        for dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
            let label = classes.len() as i64;
            classes.push(dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            files.extend(sorted_entries(&dir)?.into_iter().filter(|p| p.is_file() && is_image(p)).map(|p| (p, label)));
        }
        if classes.is_empty() {
            return Err(Error::format(root.display().to_string(), "no class subfolders (expected root/<class>/<image>.png)"));
        }
        if files.is_empty() {
            return Err(Error::format(root.display().to_string(), format!("no PNG or JPEG images in the {} class folders", classes.len())));
        }

        let decoded = decode_all(&files, grayscale, if resize { size } else { None });
        let mut expected: Option<((u32, u32), String)> = size.map(|s| (s, "the requested size".to_string()));
        let channels = if grayscale { 1 } else { 3 };
        let mut pixels = Vec::new();
        for ((path, _), result) in files.iter().zip(decoded) {
            let (w, h, px) = result?;
            match &expected {
                None => {
                    pixels.reserve(files.len() * px.len());
                    expected = Some(((w, h), format!("the first image {}", path.display())));
                }
                Some(((ew, eh), what)) if (*ew, *eh) != (w, h) => {
                    return Err(Error::format(
                        path.display().to_string(),
                        format!("image is {w}x{h} (width x height) but {what} is {ew}x{eh}; use ImageFolder::load_resized to resize"),
                    ));
                }
                Some(_) => {}
            }
            pixels.extend_from_slice(&px);
        }
        let ((width, height), _) = expected.unwrap_or(((0, 0), String::new()));
        let (paths, labels) = files.into_iter().unzip();
        Ok(ImageFolder { classes, paths, labels, channels, width: width as usize, height: height as usize, pixels })
    }

    /// The image files, in sample order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
    /// The class index of each sample.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }
}

/// Decodes the files on all cores, keeping file order.
fn decode_all(files: &[(PathBuf, i64)], grayscale: bool, resize: Option<(u32, u32)>) -> Vec<Result<(u32, u32, Vec<u8>)>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len()).max(1);
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|(p, _)| decode(p, grayscale, resize)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .zip(files.chunks(chunk))
            .flat_map(|(h, part)| match h.join() {
                Ok(v) => v,
                Err(_) => part.iter().map(|(p, _)| Err(Error::format(p.display().to_string(), "the image decoder panicked"))).collect(),
            })
            .collect()
    })
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        check_index("ImageFolder::get", index, self.labels.len())?;
        let (c, hw) = (self.channels, self.width * self.height);
        let px = &self.pixels[index * c * hw..(index + 1) * c * hw];
        let mut input = vec![0.0f32; c * hw];
        for (i, chunk) in px.chunks_exact(c).enumerate() {
            for (ch, &v) in chunk.iter().enumerate() {
                input[ch * hw + i] = v as f32 / 255.0;
            }
        }
        Ok(Sample { input, label: self.labels[index] })
    }
    fn input_shape(&self) -> Vec<usize> {
        vec![self.channels, self.height, self.width]
    }
    fn num_classes(&self) -> usize {
        self.classes.len()
    }
    fn class_names(&self) -> Vec<String> {
        self.classes.clone()
    }
}
