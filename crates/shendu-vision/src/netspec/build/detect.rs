//! Decoding the outputs of `[yolo]` and `[region]` layers into boxes, as AlexeyAB's
//! `get_yolo_detections` / pjreddie's `get_region_detections` do for an image at the network's
//! own size (their `correct_*_boxes` step is then the identity).

use shendu_core::{DType, Tensor};
use shendu_nn::{Error, Result};

use crate::netspec::{Region, Yolo};

/// A box by its centre and size, relative to the network input (0..1 across the image).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// One detected box.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub objectness: f32,
    /// Per class, `objectness * class score`, or 0 where that is not above the threshold.
    pub probs: Vec<f32>,
    /// The layer that produced it (set by `Network::detect`; 0 from the decode functions).
    pub layer: usize,
}

/// `[N, C, H, W]` as f32 values in row-major order.
fn values(t: &Tensor, what: &str) -> Result<(Vec<f32>, [usize; 4])> {
    let [n, c, h, w] = match *t.dims() {
        [n, c, h, w] => [n, c, h, w],
        _ => return Err(Error::layer(what, format!("output {} is not [N, C, H, W]", t.shape()))),
    };
    Ok((t.detach().to_dtype(DType::F32)?.to_vec::<f32>()?, [n, c, h, w]))
}

/// The detections of one `[yolo]` layer's forward output `[N, anchors * (5 + classes), H, W]`,
/// per image: for each cell (row-major) and each of the layer's anchors, a detection when the
/// objectness is above `thresh`, with (AlexeyAB's `get_yolo_box`)
/// `x = (col + tx) / W`, `y = (row + ty) / H`, `w = exp(tw) * anchor_w / net_w`,
/// `h = exp(th) * anchor_h / net_h` (`tx`, `ty` already through the layer's logistic).
///
/// ```
/// use shendu_core::Tensor;
/// use shendu_vision::netspec::{decode_yolo, Yolo};
/// let yolo = Yolo { classes: 1, mask: vec![0], anchors: vec![(10.0, 20.0)], scale_x_y: 1.0 };
/// // One 1x2 grid: cell 1 has objectness 0.9 and class score 0.5.
/// let v = vec![0.5f32, 0.25, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.1, 0.9, 0.5, 0.5];
/// let out = Tensor::from_vec(v, &[1, 6, 1, 2]).unwrap();
/// let dets = decode_yolo(&out, &yolo, 40, 40, 0.25).unwrap();
/// assert_eq!(dets[0].len(), 1);
/// let d = &dets[0][0];
/// assert_eq!((d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h), (0.625, 0.5, 0.25, 0.5));
/// assert_eq!(d.probs, vec![0.45]);
/// ```
pub fn decode_yolo(output: &Tensor, yolo: &Yolo, net_w: usize, net_h: usize, thresh: f32) -> Result<Vec<Vec<Detection>>> {
    let (v, [n, c, h, w]) = values(output, "yolo")?;
    let a = yolo.mask.len();
    let per = yolo.classes + 5;
    if c != a * per {
        return Err(Error::layer(
            "yolo",
            format!("output {} has {c} channels; {a} anchors x ({} classes + 5) need {}", output.shape(), yolo.classes, a * per),
        ));
    }
    let anchors: Vec<(f64, f64)> = yolo
        .mask
        .iter()
        .map(|&m| {
            yolo.anchors
                .get(m)
                .copied()
                .ok_or_else(|| Error::layer("yolo", format!("mask {m} picks a missing anchor: there are {}", yolo.anchors.len())))
        })
        .collect::<Result<_>>()?;
    let hw = h * w;
    let mut all = Vec::with_capacity(n);
    for b in 0..n {
        let mut dets = Vec::new();
        for i in 0..hw {
            let (row, col) = (i / w, i % w);
            for (k, &(aw, ah)) in anchors.iter().enumerate() {
                let base = (b * a + k) * per * hw + i;
                let at = |e: usize| v[base + e * hw];
                let objectness = at(4);
                if objectness <= thresh {
                    continue;
                }
                let bbox = BBox {
                    x: (col as f32 + at(0)) / w as f32,
                    y: (row as f32 + at(1)) / h as f32,
                    w: (at(2).exp() as f64 * aw / net_w as f64) as f32,
                    h: (at(3).exp() as f64 * ah / net_h as f64) as f32,
                };
                let probs = (0..yolo.classes).map(|j| objectness * at(5 + j)).map(|p| if p > thresh { p } else { 0.0 }).collect();
                dets.push(Detection { bbox, objectness, probs, layer: 0 });
            }
        }
        all.push(dets);
    }
    Ok(all)
}

/// The detections of one `[region]` layer's forward output `[N, num * (coords + 1 + classes), H,
/// W]`, per image (pjreddie's `get_region_box`, anchors in grid cells): `x = (col + tx) / W`,
/// `y = (row + ty) / H`, `w = exp(tw) * anchor_w / W`, `h = exp(th) * anchor_h / H`, kept when the
/// objectness is above `thresh`.
pub fn decode_region(output: &Tensor, region: &Region, thresh: f32) -> Result<Vec<Vec<Detection>>> {
    let (v, [n, c, h, w]) = values(output, "region")?;
    let per = region.coords + 1 + region.classes;
    if c != region.num * per || region.coords < 4 {
        return Err(Error::layer(
            "region",
            format!(
                "output {} does not hold {} anchors x ({} coords >= 4 + 1 + {} classes)",
                output.shape(),
                region.num,
                region.coords,
                region.classes
            ),
        ));
    }
    if region.anchors.len() < region.num {
        return Err(Error::layer("region", format!("num {} anchors but only {} given", region.num, region.anchors.len())));
    }
    let hw = h * w;
    let mut all = Vec::with_capacity(n);
    for b in 0..n {
        let mut dets = Vec::new();
        for i in 0..hw {
            let (row, col) = (i / w, i % w);
            for (k, &(aw, ah)) in region.anchors.iter().take(region.num).enumerate() {
                let base = (b * region.num + k) * per * hw + i;
                let at = |e: usize| v[base + e * hw];
                let objectness = at(region.coords);
                if objectness <= thresh {
                    continue;
                }
                let bbox = BBox {
                    x: (col as f32 + at(0)) / w as f32,
                    y: (row as f32 + at(1)) / h as f32,
                    w: (at(2).exp() as f64 * aw / w as f64) as f32,
                    h: (at(3).exp() as f64 * ah / h as f64) as f32,
                };
                let probs =
                    (0..region.classes).map(|j| objectness * at(region.coords + 1 + j)).map(|p| if p > thresh { p } else { 0.0 }).collect();
                dets.push(Detection { bbox, objectness, probs, layer: 0 });
            }
        }
        all.push(dets);
    }
    Ok(all)
}
