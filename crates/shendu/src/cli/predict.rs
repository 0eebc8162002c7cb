//! `shendu predict`: the top classes of a trained model for each image, Darknet's way
//! (` 98.31%: 7`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use image::imageops::FilterType;
use image::{DynamicImage, ImageReader};
use serde_json::json;
use shendu_core::Tensor;
use shendu_nn::Mode;

use super::loaded::{single_line, LoadedModel};
use super::{CliError, CliResult};

/// Flags of `shendu predict`.
#[derive(Args, Debug)]
#[command(after_help = "Images follow the MNIST convention: a white (bright) digit on a black background, \
    the size the model was trained on (28x28 for MNIST models). Colour images are converted to \
    grayscale for 1-channel models. Scans of dark ink on white paper need --invert.")]
pub struct PredictArgs {
    /// Checkpoint or weights file: safetensors, whose metadata describes the network
    /// (`netspec_cfg`, or the zoo `model` with its `input`, e.g. 1x28x28), the normalization
    /// (`normalize` = MEAN,STD) and optionally the class names (`labels`, comma separated); or,
    /// with --cfg, a Darknet .weights file (told apart by content).
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Darknet .cfg of the network (Darknet's `classifier predict`): its [net] gives the input
    /// size, its output the classes; pixels are fed as bytes / 255, as Darknet does, unless a
    /// safetensors file's metadata says `normalize`.
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    pub cfg: Option<PathBuf>,
    /// Zoo model to build instead of the one the file's metadata names (lenet, mlp).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// How many of the most probable classes to print per image (at most the number of classes).
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub top: u32,
    /// Inverts the pixels (255 - value) first: for a dark digit on a light background.
    #[arg(long)]
    pub invert: bool,
    /// Scales images of another size to the model's input size (bilinear) instead of refusing them.
    #[arg(long)]
    pub resize: bool,
    /// Print only one JSON object: {"predictions": [{"image", "top": [{"label", "class", "probability"}],
    /// "probabilities": [every class's probability, in class order]}], "labels": [...], ...}.
    #[arg(long)]
    pub json: bool,
    /// PNG or JPEG images to classify.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,
}

/// Loads every image first (so a bad one stops the command before any output), classifies them
/// in one batch and prints the top classes of each.
pub fn run(args: PredictArgs) -> CliResult<()> {
    run_inner(&args).map_err(single_line)
}

fn run_inner(args: &PredictArgs) -> CliResult<()> {
    let loaded = LoadedModel::open(&args.weights, args.model.as_deref(), args.cfg.as_deref())?;
    let (c, h, w) = loaded.input;
    if c != 1 && c != 3 {
        return Err(CliError::bad(format!(
            "{}: the model takes {} inputs; predict reads grayscale (1 channel) or RGB (3 channels) images",
            loaded.described_by.display(),
            loaded.input_string()
        )));
    }
    let mut pixels = Vec::with_capacity(args.images.len() * c * h * w);
    for path in &args.images {
        pixels.extend(read_image(path, (c, h, w), args.invert, args.resize)?);
    }
    loaded.prepare(&mut pixels);
    let n = args.images.len();
    let probs = {
        let _no_grad = shendu_core::no_grad();
        let x = Tensor::from_vec(pixels, vec![n, c, h, w])?;
        // Every model returns scores before any softmax (cfg networks: the input of a trailing
        // [softmax], divided by its temperature), so this is the only softmax applied.
        let logits = loaded.model.forward(&x, Mode::Eval)?;
        if logits.dims() != [n, loaded.classes] {
            return Err(CliError::bad(format!(
                "{}: the model outputs {:?} for {n} images; expected [{n}, {}] class scores",
                loaded.described_by.display(),
                logits.dims(),
                loaded.classes
            )));
        }
        logits.softmax(1)?.to_vec_f64()?
    };
    let k = (args.top as usize).min(loaded.classes);
    let mut out = std::io::stdout().lock();
    let mut predictions = Vec::with_capacity(n);
    for (path, row) in args.images.iter().zip(probs.chunks(loaded.classes)) {
        let mut order: Vec<usize> = (0..row.len()).collect();
        // Stable: equal probabilities keep class order.
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        order.truncate(k);
        if args.json {
            let top: Vec<_> = order.iter().map(|&i| json!({"label": loaded.labels[i], "class": i, "probability": row[i]})).collect();
            predictions.push(json!({"image": path.display().to_string(), "top": top, "probabilities": row}));
        } else {
            writeln!(out, "{}", path.display())?;
            for &i in &order {
                writeln!(out, "{:5.2}%: {}", 100.0 * row[i], loaded.labels[i])?;
            }
        }
    }
    if args.json {
        let obj = json!({
            "command": "predict",
            "weights": args.weights.display().to_string(),
            "cfg": args.cfg.as_ref().map(|c| c.display().to_string()),
            "model": loaded.name,
            "labels": loaded.labels,
            "predictions": predictions,
        });
        writeln!(out, "{obj}")?;
    }
    Ok(())
}

/// The image at `path` as `c x h x w` values in [0, 1] (CHW), checked against the model's size.
fn read_image(path: &Path, (c, h, w): (usize, usize, usize), invert: bool, resize: bool) -> CliResult<Vec<f32>> {
    let bad = |msg: String| CliError::bad(format!("{}: {msg}", path.display()));
    let reader = ImageReader::open(path).map_err(|e| bad(e.to_string()))?;
    let img =
        reader.with_guessed_format().map_err(|e| bad(e.to_string()))?.decode().map_err(|e| bad(format!("cannot decode the image: {e}")))?;
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let img = if (iw, ih) == (w, h) {
        img
    } else if resize {
        img.resize_exact(w as u32, h as u32, FilterType::Triangle)
    } else {
        return Err(bad(format!(
            "the image is {iw}x{ih} (width x height) but the model takes {w}x{h}; pass --resize to scale it (shendu does not resize silently)"
        )));
    };
    let mut values = channels_first(&img, c);
    if invert {
        for v in &mut values {
            *v = 255 - *v;
        }
    }
    Ok(values.into_iter().map(|v| v as f32 / 255.0).collect())
}

/// The 8-bit pixels, grayscale for one channel or RGB planes one after another for three.
fn channels_first(img: &DynamicImage, c: usize) -> Vec<u8> {
    if c == 1 {
        return img.to_luma8().into_raw();
    }
    let rgb = img.to_rgb8();
    let n = (rgb.width() * rgb.height()) as usize;
    let mut out = vec![0; 3 * n];
    for (i, px) in rgb.pixels().enumerate() {
        for ch in 0..3 {
            out[ch * n + i] = px.0[ch];
        }
    }
    out
}
