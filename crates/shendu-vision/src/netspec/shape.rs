//! Shape inference: every layer's input and output `c x h x w`, with Darknet's size rules and an
//! error (file:line, layer index, the rule and the shapes) wherever Darknet would print a silent
//! `0 x 0 x 0` or crash.

use shendu_nn::Result;

use super::{Layer, NetSpec};

/// Channels, height and width of one image's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Chw {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Chw {
    pub fn new(c: usize, h: usize, w: usize) -> Chw {
        Chw { c, h, w }
    }
    /// The number of values (`c * h * w`, Darknet's `outputs`; saturating, so an absurd shape
    /// cannot overflow: [`NetSpec::shapes`] rejects those above [`MAX_VALUES`]).
    pub fn len(&self) -> usize {
        self.c.saturating_mul(self.h).saturating_mul(self.w)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Chw {
    /// `C x H x W`, the order shendu's tensors use (Darknet prints `W x H x C`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} x {} x {}", self.c, self.h, self.w)
    }
}

/// The most values one activation or weight tensor may hold (2^40, 4 TiB as f32): larger ones
/// are configuration mistakes, and the bound keeps every size computed from a spec in range.
pub const MAX_VALUES: usize = 1 << 40;

/// What a layer reads and what it produces. For a route, `input` is its first source's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerShapes {
    pub input: Chw,
    pub output: Chw,
}

/// Darknet's convolution size rule with AlexeyAB's dilated padding: `padding * dilation` cells on
/// each side, the dilated kernel spans `dilation * (size - 1) + 1`; `None` when the kernel does
/// not fit.
pub fn conv_out(input: usize, size: usize, stride: usize, padding: usize, dilation: usize) -> Option<usize> {
    let padded = input.saturating_add(padding.saturating_mul(dilation).saturating_mul(2));
    let span = dilation.saturating_mul(size.max(1) - 1).saturating_add(1);
    (stride > 0 && padded >= span).then(|| (padded - span) / stride + 1)
}

/// Darknet's pooling size rule, `(input + padding - size) / stride + 1`; `None` when the window
/// does not fit.
pub fn pool_out(input: usize, size: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = input.saturating_add(padding);
    (stride > 0 && size > 0 && padded >= size).then(|| (padded - size) / stride + 1)
}

impl NetSpec {
    /// Every layer's input and output shape, for one image. Fails at the first layer whose
    /// configuration does not fit its input, naming it.
    pub fn shapes(&self) -> Result<Vec<LayerShapes>> {
        let input = self.net.input_shape();
        if input.is_empty() {
            return Err(self.net_error(format!("the input {input} (channels x height x width) is empty: set width, height and channels")));
        }
        let mut out: Vec<LayerShapes> = Vec::with_capacity(self.layers.len());
        for (i, spec) in self.layers.iter().enumerate() {
            for r in spec.layer.references() {
                if r >= i {
                    return Err(
                        self.layer_error(i, format!("refers to layer {r}, which is not an earlier layer (layers 0..{i} come before it)"))
                    );
                }
            }
            let prev = if i == 0 { input } else { out[i - 1].output };
            let shapes = self.layer_shapes(i, prev, &out)?;
            if shapes.output.is_empty() {
                return Err(self.layer_error(i, format!("output {} is empty (input {})", shapes.output, shapes.input)));
            }
            self.check_sizes(i, &shapes)?;
            out.push(shapes);
        }
        Ok(out)
    }

    /// The network's output shape (that of [`NetSpec::output_layer`]).
    pub fn output_shape(&self) -> Result<Chw> {
        let shapes = self.shapes()?;
        Ok(self.output_layer().map(|i| shapes[i].output).unwrap_or_else(|| self.net.input_shape()))
    }

    fn layer_shapes(&self, i: usize, x: Chw, done: &[LayerShapes]) -> Result<LayerShapes> {
        let err = |msg: String| self.layer_error(i, msg);
        let same = LayerShapes { input: x, output: x };
        let output = match &self.layers[i].layer {
            Layer::Conv(c) => {
                if c.groups == 0 || c.filters == 0 || c.size == 0 {
                    return Err(err(format!("filters {}, size {} and groups {} must all be at least 1", c.filters, c.size, c.groups)));
                }
                if !x.c.is_multiple_of(c.groups) || c.filters % c.groups != 0 {
                    return Err(err(format!(
                        "input channels {} and filters {} must both be divisible by groups {} (input {x})",
                        x.c, c.filters, c.groups
                    )));
                }
                if c.dirac && (c.groups != 1 || x.c > c.filters) {
                    return Err(err(format!("dirac conv needs groups 1 and filters {} >= input channels {}", c.filters, x.c)));
                }
                let h = conv_out(x.h, c.size, c.stride_y, c.padding, c.dilation);
                let w = conv_out(x.w, c.size, c.stride_x, c.padding, c.dilation);
                match (h, w) {
                    (Some(h), Some(w)) => Chw::new(c.filters, h, w),
                    _ => {
                        let geometry = format!(
                            "{s}x{s}, stride {}x{}, padding {}, dilation {}",
                            c.stride_y,
                            c.stride_x,
                            c.padding,
                            c.dilation,
                            s = c.size
                        );
                        return Err(err(format!("kernel {geometry} does not fit input {x}: zero-size output")));
                    }
                }
            }
            Layer::Connected(c) => {
                if c.output == 0 {
                    return Err(err("output must be at least 1".to_string()));
                }
                Chw::new(c.output, 1, 1)
            }
            Layer::MaxPool(p) | Layer::LocalAvgPool(p) => {
                match (pool_out(x.h, p.size, p.stride_y, p.padding), pool_out(x.w, p.size, p.stride_x, p.padding)) {
                    (Some(h), Some(w)) => Chw::new(x.c, h, w),
                    _ => {
                        let geometry = format!("{s}x{s}, stride {}x{}, padding {}", p.stride_y, p.stride_x, p.padding, s = p.size);
                        return Err(err(format!("window {geometry} does not fit input {x}: zero-size output")));
                    }
                }
            }
            Layer::AvgPool => Chw::new(x.c, 1, 1),
            Layer::Route(r) => return self.route_shapes(i, r, done),
            Layer::Shortcut(s) => {
                for &f in &s.from {
                    let other = done[f].output;
                    if other != x {
                        return Err(err(format!("adds layer {f}'s output {other} to the previous layer's output {x}: shapes differ")));
                    }
                }
                x
            }
            Layer::Upsample { stride, .. } => {
                let s = stride.unsigned_abs();
                if s == 0 {
                    return Err(err("stride must not be 0".to_string()));
                }
                if *stride > 0 {
                    Chw::new(x.c, x.h.saturating_mul(s), x.w.saturating_mul(s))
                } else {
                    Chw::new(x.c, x.h / s, x.w / s)
                }
            }
            Layer::Dropout { .. } | Layer::Cost { .. } | Layer::BatchNorm | Layer::Activation(_) => x,
            Layer::Softmax { groups, .. } => {
                if *groups == 0 || !x.len().is_multiple_of(*groups) {
                    return Err(err(format!("{} inputs cannot be split into {groups} softmax groups", x.len())));
                }
                x
            }
            Layer::ChannelShuffle { groups } => {
                if *groups == 0 || !x.c.is_multiple_of(*groups) {
                    return Err(err(format!("channels {} are not divisible by groups {groups} (input {x})", x.c)));
                }
                x
            }
            Layer::Crop(c) => {
                if c.crop_height > x.h || c.crop_width > x.w {
                    return Err(err(format!("crop {}x{} is larger than the input {x}", c.crop_height, c.crop_width)));
                }
                Chw::new(x.c, c.crop_height, c.crop_width)
            }
            Layer::ScaleChannels { from, .. } => {
                let target = done[*from].output;
                if x.h != 1 || x.w != 1 || x.c != target.c {
                    return Err(err(format!(
                        "scales layer {from}'s output {target} by the previous output {x}, which must be {} x 1 x 1",
                        target.c
                    )));
                }
                target
            }
            Layer::Reorg(r) => {
                let s = r.stride;
                if s == 0 {
                    return Err(err("stride must be at least 1".to_string()));
                }
                if r.reverse {
                    let s2 = s.saturating_mul(s);
                    if !x.c.is_multiple_of(s2) {
                        return Err(err(format!("reverse reorg by {s} needs channels divisible by {s2} (input {x})")));
                    }
                    Chw::new(x.c / s2, x.h.saturating_mul(s), x.w.saturating_mul(s))
                } else {
                    if !x.h.is_multiple_of(s) || !x.w.is_multiple_of(s) {
                        return Err(err(format!("reorg by {s} needs height and width divisible by {s} (input {x})")));
                    }
                    Chw::new(x.c.saturating_mul(s).saturating_mul(s), x.h / s, x.w / s)
                }
            }
            Layer::Yolo(y) => {
                let want = y.mask.len().saturating_mul(y.classes.saturating_add(5));
                if x.c != want {
                    return Err(err(format!(
                        "input has {} channels; {} anchors x ({} classes + 5) need {want}",
                        x.c,
                        y.mask.len(),
                        y.classes
                    )));
                }
                if let Some(m) = y.mask.iter().find(|&&m| m >= y.anchors.len()) {
                    return Err(err(format!("mask {m} picks a missing anchor: there are {} anchors", y.anchors.len())));
                }
                x
            }
            Layer::Region(r) => {
                let want = r.num.saturating_mul(r.classes.saturating_add(r.coords).saturating_add(1));
                if x.c != want {
                    return Err(err(format!(
                        "input has {} channels; {} anchors x ({} classes + {} coords + 1) need {want}",
                        x.c, r.num, r.classes, r.coords
                    )));
                }
                x
            }
        };
        Ok(LayerShapes { output, ..same })
    }

    /// Rejects outputs and weight tensors above [`MAX_VALUES`], so that nothing computed from
    /// the shapes (parameter counts, MACs) can overflow.
    fn check_sizes(&self, i: usize, s: &LayerShapes) -> Result<()> {
        let (x, y) = (s.input, s.output);
        let len = y.c.checked_mul(y.h).and_then(|n| n.checked_mul(y.w));
        if len.is_none_or(|n| n > MAX_VALUES) {
            return Err(self.layer_error(i, format!("output {y} is too large (more than 2^40 values; input {x})")));
        }
        let weights = match &self.layers[i].layer {
            Layer::Conv(c) => {
                c.filters.checked_mul(x.c / c.groups.max(1)).and_then(|n| n.checked_mul(c.size)).and_then(|n| n.checked_mul(c.size))
            }
            Layer::Connected(c) => x.len().checked_mul(c.output),
            _ => Some(0),
        };
        if weights.is_none_or(|n| n > MAX_VALUES) {
            return Err(self.layer_error(i, format!("its weights are too large (more than 2^40 values; input {x})")));
        }
        Ok(())
    }

    fn route_shapes(&self, i: usize, r: &super::Route, done: &[LayerShapes]) -> Result<LayerShapes> {
        let err = |msg: String| self.layer_error(i, msg);
        let Some(&first) = r.layers.first() else {
            return Err(err("layers= names no layer".to_string()));
        };
        if r.groups == 0 || r.group_id >= r.groups {
            return Err(err(format!("group_id {} must be below groups {}", r.group_id, r.groups)));
        }
        let head = done[first].output;
        let mut c = 0;
        for &l in &r.layers {
            let s = done[l].output;
            if (s.h, s.w) != (head.h, head.w) {
                return Err(err(format!(
                    "layer {l}'s output {s} and layer {first}'s output {head} differ in height or width: cannot concatenate"
                )));
            }
            if !s.c.is_multiple_of(r.groups) {
                return Err(err(format!("layer {l}'s {} channels are not divisible by groups {}", s.c, r.groups)));
            }
            c += s.c / r.groups;
        }
        if let Some((start, end)) = r.slice {
            if start >= end || end > c {
                return Err(err(format!("slice {start}..{end} is not a non-empty range within the {c} routed channels")));
            }
            c = end - start;
        }
        Ok(LayerShapes { input: head, output: Chw::new(c, head.h, head.w) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netspec::{Activation, Conv, LayerSpec, NetOptions, Pool, Route, Shortcut};

    #[test]
    fn darknet_size_rules() {
        // yolov3-tiny's 2x2 stride-1 maxpool keeps 13; stride 2 on 13 gives 7.
        assert_eq!(pool_out(13, 2, 1, 1), Some(13));
        assert_eq!(pool_out(13, 2, 2, 1), Some(7));
        assert_eq!(pool_out(416, 2, 2, 1), Some(208));
        // pad=1 3x3 keeps the size; stride 2 halves (rounding up).
        assert_eq!(conv_out(13, 3, 1, 1, 1), Some(13));
        assert_eq!(conv_out(13, 3, 2, 1, 1), Some(7));
        assert_eq!(conv_out(224, 7, 2, 3, 1), Some(112));
        // Dilation 2 with padding 1 (in dilated cells) keeps the size too.
        assert_eq!(conv_out(20, 3, 1, 1, 2), Some(20));
        assert_eq!(conv_out(2, 5, 1, 0, 1), None);
    }

    #[test]
    fn shapes_and_errors_name_the_layer() {
        let mut spec = NetSpec::new(NetOptions::input(3, 16, 16));
        spec.origin = Some("tiny.cfg".into());
        let c0 = spec.push(LayerSpec::new(Layer::Conv(Conv::new(8, 3, 1).pad().activation(Activation::Leaky))));
        spec.push(LayerSpec::new(Layer::MaxPool(Pool::new(2, 2))));
        spec.push(LayerSpec::new(Layer::Route(Route::concat(vec![c0]))));
        spec.push(LayerSpec::new(Layer::Shortcut(Shortcut::add(c0, Activation::Linear))));
        let s = spec.shapes().unwrap();
        assert_eq!(s[1].output, Chw::new(8, 8, 8));
        assert_eq!(s[3].output, Chw::new(8, 16, 16));

        spec.layers[3].layer = Layer::Shortcut(Shortcut::add(1, Activation::Linear));
        spec.layers[3].line = Some(40);
        let e = spec.shapes().unwrap_err().to_string();
        assert!(e.contains("tiny.cfg:40") && e.contains("layer 3 [shortcut]") && e.contains("8 x 8 x 8"), "{e}");

        spec.layers.truncate(1);
        spec.push(LayerSpec::new(Layer::Conv(Conv::new(4, 3, 1).groups(3))));
        let e = spec.shapes().unwrap_err().to_string();
        assert!(e.contains("layer 1 [convolutional]") && e.contains("divisible by groups 3"), "{e}");
    }
}
