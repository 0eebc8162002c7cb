//! Per-sample transforms, applied by the loader before batching. Random transforms draw only
//! from the `Rng` they are handed, which the loader seeds from (seed, epoch, sample index): the
//! augmentation of a sample is the same whichever thread makes it and whenever a run resumes.

use std::sync::Arc;

use shendu_core::Rng;

use crate::{Error, Result};

/// A per-sample transform of a row-major input of `shape` (CHW for images), in place. It may
/// change the shape (a crop), in which case it rewrites `shape` and resizes `input`.
pub trait Transform: Send + Sync {
    fn apply(&self, input: &mut Vec<f32>, shape: &mut Vec<usize>, rng: &mut Rng) -> Result<()>;
}

/// Any `Fn(&mut Vec<f32>, &mut Vec<usize>, &mut Rng) -> Result<()>` closure is a transform.
impl<F> Transform for F
where
    F: Fn(&mut Vec<f32>, &mut Vec<usize>, &mut Rng) -> Result<()> + Send + Sync,
{
    fn apply(&self, input: &mut Vec<f32>, shape: &mut Vec<usize>, rng: &mut Rng) -> Result<()> {
        self(input, shape, rng)
    }
}

fn check_len(op: &'static str, input: &[f32], shape: &[usize]) -> Result<()> {
    let n: usize = shape.iter().product();
    if input.len() != n {
        return Err(Error::invalid(op, format!("input has {} values but shape {shape:?} needs {n}", input.len())));
    }
    Ok(())
}

fn chw(op: &'static str, input: &[f32], shape: &[usize]) -> Result<(usize, usize, usize)> {
    let &[c, h, w] = shape else {
        return Err(Error::invalid(op, format!("expects a [channels, height, width] image but got shape {shape:?}")));
    };
    check_len(op, input, shape)?;
    Ok((c, h, w))
}

/// Applies transforms in order.
#[derive(Clone, Default)]
pub struct Compose(pub Vec<Arc<dyn Transform>>);

impl Transform for Compose {
    fn apply(&self, input: &mut Vec<f32>, shape: &mut Vec<usize>, rng: &mut Rng) -> Result<()> {
        self.0.iter().try_for_each(|t| t.apply(input, shape, rng))
    }
}

/// `(x - mean[c]) / std[c]` per channel (dimension 0 of the shape; for a 1-d input of features,
/// per feature). One mean and std apply to every channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalize {
    /// MNIST's statistics: mean 0.1307, std 0.3081.
    pub fn mnist() -> Normalize {
        Normalize { mean: vec![crate::MNIST_MEAN], std: vec![crate::MNIST_STD] }
    }
}

impl Transform for Normalize {
    fn apply(&self, input: &mut Vec<f32>, shape: &mut Vec<usize>, _rng: &mut Rng) -> Result<()> {
        const OP: &str = "Normalize";
        check_len(OP, input, shape)?;
        let channels = shape.first().copied().unwrap_or(1);
        if self.mean.len() != self.std.len() || (self.mean.len() != 1 && self.mean.len() != channels) {
            return Err(Error::invalid(
                OP,
                format!(
                    "{} means and {} stds for an input of shape {shape:?} ({channels} channels); give 1 or {channels} of each",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        if let Some(s) = self.std.iter().find(|s| **s == 0.0 || !s.is_finite()) {
            return Err(Error::invalid(OP, format!("std {s} cannot divide; every std must be finite and nonzero")));
        }
        let inner = input.len().checked_div(channels).unwrap_or(0);
        for (c, chunk) in input.chunks_mut(inner.max(1)).enumerate() {
            let k = if self.mean.len() == 1 { 0 } else { c };
            let (m, inv) = (self.mean[k], 1.0 / self.std[k]);
            chunk.iter_mut().for_each(|v| *v = (*v - m) * inv);
        }
        Ok(())
    }
}

/// A random `size = (height, width)` crop of the image zero-padded by `padding` on every side
/// (torchvision's `RandomCrop(size, padding)`; CIFAR's usual is size 32, padding 4).
#[derive(Clone, Debug, PartialEq)]
pub struct RandomCrop {
    pub size: (usize, usize),
    pub padding: usize,
}

impl RandomCrop {
    /// Crops at a given top-left corner of the padded image; `apply` draws the corner.
    pub fn crop_at(&self, input: &mut Vec<f32>, shape: &mut Vec<usize>, top: usize, left: usize) -> Result<()> {
        const OP: &str = "RandomCrop";
        let (c, h, w) = chw(OP, input, shape)?;
        let (th, tw) = self.size;
        let (ph, pw) = (h + 2 * self.padding, w + 2 * self.padding);
        if th == 0 || tw == 0 || th > ph || tw > pw || top > ph - th || left > pw - tw {
            return Err(Error::invalid(
                OP,
                format!("cannot crop {th}x{tw} at ({top}, {left}) from a {h}x{w} image padded by {} to {ph}x{pw}", self.padding),
            ));
        }
        let mut out = vec![0.0f32; c * th * tw];
        for ch in 0..c {
            for y in 0..th {
                // Row y of the crop is row (top + y - padding) of the image, if that exists.
                let Some(sy) = (top + y).checked_sub(self.padding).filter(|&sy| sy < h) else { continue };
                for x in 0..tw {
                    if let Some(sx) = (left + x).checked_sub(self.padding).filter(|&sx| sx < w) {
                        out[(ch * th + y) * tw + x] = input[(ch * h + sy) * w + sx];
                    }
                }
            }
        }
        *input = out;
        *shape = vec![c, th, tw];
        Ok(())
    }
}

impl Transform for RandomCrop {
    fn apply(&self, input: &mut Vec<f32>, shape: &mut Vec<usize>, rng: &mut Rng) -> Result<()> {
        let (_, h, w) = chw("RandomCrop", input, shape)?;
        let (ph, pw) = (h + 2 * self.padding, w + 2 * self.padding);
        let top = rng.below((ph.saturating_sub(self.size.0) + 1) as u64) as usize;
        let left = rng.below((pw.saturating_sub(self.size.1) + 1) as u64) as usize;
        self.crop_at(input, shape, top, left)
    }
}

/// Mirrors the image left-right with probability `p`.
#[derive(Clone, Debug, PartialEq)]
pub struct RandomHorizontalFlip(pub f64);

impl Transform for RandomHorizontalFlip {
    fn apply(&self, input: &mut Vec<f32>, shape: &mut Vec<usize>, rng: &mut Rng) -> Result<()> {
        let (_, _, w) = chw("RandomHorizontalFlip", input, shape)?;
        if rng.bernoulli(self.0) && w > 0 {
            input.chunks_mut(w).for_each(|row| row.reverse());
        }
        Ok(())
    }
}

/// A random rotation by up to `degrees` either way, translation by up to `translate = (fx, fy)`
/// of the width and height (rounded to whole pixels), and scaling by a factor drawn from
/// `scale = (min, max)`, about the image center; bilinear sampling, zero outside the image.
#[derive(Clone, Debug, PartialEq)]
pub struct RandomAffine {
    pub degrees: f32,
    pub translate: Option<(f32, f32)>,
    pub scale: Option<(f32, f32)>,
}

impl Transform for RandomAffine {
    fn apply(&self, input: &mut Vec<f32>, shape: &mut Vec<usize>, rng: &mut Rng) -> Result<()> {
        const OP: &str = "RandomAffine";
        let (_, h, w) = chw(OP, input, shape)?;
        let (fx, fy) = self.translate.unwrap_or((0.0, 0.0));
        let (s0, s1) = self.scale.unwrap_or((1.0, 1.0));
        if !(self.degrees >= 0.0 && fx >= 0.0 && fy >= 0.0 && s0 > 0.0 && s1 >= s0) {
            return Err(Error::invalid(OP, format!("needs degrees >= 0, translate >= 0 and 0 < scale.0 <= scale.1, got {self:?}")));
        }
        let mut sym = |m: f64| (rng.uniform() * 2.0 - 1.0) * m;
        let angle = sym(self.degrees as f64) as f32;
        let tx = sym(fx as f64 * w as f64).round() as f32;
        let ty = sym(fy as f64 * h as f64).round() as f32;
        let s = s0 + (s1 - s0) * rng.uniform() as f32;
        affine(input, shape, angle, (tx, ty), s)
    }
}

/// Rotates a CHW image by `angle_deg` (counter-clockwise as displayed), scales it by `scale` about
/// its center, then shifts it by `translate = (x, y)` pixels (right and down); bilinear sampling
/// with zero fill. The deterministic core of [`RandomAffine`].
pub fn affine(input: &mut [f32], shape: &[usize], angle_deg: f32, translate: (f32, f32), scale: f32) -> Result<()> {
    let (c, h, w) = chw("affine", input, shape)?;
    if scale.is_nan() || scale <= 0.0 || !angle_deg.is_finite() {
        return Err(Error::invalid("affine", format!("needs a finite angle and a positive scale, got {angle_deg} and {scale}")));
    }
    let (sin, cos) = angle_deg.to_radians().sin_cos();
    let (cx, cy) = ((w as f32 - 1.0) * 0.5, (h as f32 - 1.0) * 0.5);
    let mut out = vec![0.0f32; input.len()];
    for y in 0..h {
        for x in 0..w {
            // Inverse map: undo the shift, then the scale, then the rotation.
            let dx = (x as f32 - cx - translate.0) / scale;
            let dy = (y as f32 - cy - translate.1) / scale;
            let sx = cx + cos * dx - sin * dy;
            let sy = cy + sin * dx + cos * dy;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (ax, ay) = (sx - x0, sy - y0);
            let taps = [
                (x0, y0, (1.0 - ax) * (1.0 - ay)),
                (x0 + 1.0, y0, ax * (1.0 - ay)),
                (x0, y0 + 1.0, (1.0 - ax) * ay),
                (x0 + 1.0, y0 + 1.0, ax * ay),
            ];
            for ch in 0..c {
                let plane = &input[ch * h * w..(ch + 1) * h * w];
                let mut acc = 0.0;
                for &(tx, ty, wt) in &taps {
                    if wt != 0.0 && tx >= 0.0 && ty >= 0.0 && (tx as usize) < w && (ty as usize) < h {
                        acc += wt * plane[ty as usize * w + tx as usize];
                    }
                }
                out[(ch * h + y) * w + x] = acc;
            }
        }
    }
    input.copy_from_slice(&out);
    Ok(())
}
