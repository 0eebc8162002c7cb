//! Writing a [`NetSpec`] as a Darknet `.cfg` that parses back to the same spec.
//!
//! Keys at their Darknet default are left out, except where the section's kept keys
//! (`LayerSpec::extra`, written last, in their order) repeat a key: then it is written first so
//! that it stays the one that counts ("the first of repeated keys wins").

use std::fmt::{Display, Write};

use shendu_nn::schedule::DarknetPolicy;

use crate::netspec::{Activation, CostKind, Layer, NetSpec, ShortcutWeights, WeightsNormalization};

/// The cfg text of `spec`: `[net]`, then one section per layer; references are written
/// relative (`layers=-1,-4`), as Darknet's own cfgs mostly do.
pub fn to_cfg(spec: &NetSpec) -> String {
    let mut out = String::new();
    write_net(&mut out, spec);
    for (i, l) in spec.layers.iter().enumerate() {
        let _ = write!(out, "\n[{}]\n", l.layer.section());
        let mut s = SectionWriter { out: &mut out, extra: &l.extra };
        write_layer(&mut s, i, &l.layer);
        if let Some(name) = &l.name {
            s.put("name", name);
        }
        if let Some(name) = &l.bn_name {
            s.put("bn_name", name);
        }
        for (k, v) in &l.extra {
            s.put(k, v);
        }
    }
    out
}

struct SectionWriter<'a> {
    out: &'a mut String,
    extra: &'a [(String, String)],
}

impl SectionWriter<'_> {
    fn has(&self, keys: &[&str]) -> bool {
        self.extra.iter().any(|(k, _)| keys.contains(&k.as_str()))
    }

    fn put(&mut self, key: &str, value: impl Display) {
        let _ = writeln!(self.out, "{key}={value}");
    }

    /// Writes `key` when it differs from Darknet's default or a kept key repeats it.
    fn put_if(&mut self, key: &str, value: impl Display, non_default: bool) {
        if non_default || self.has(&[key]) {
            self.put(key, value);
        }
    }

    fn flag(&mut self, key: &str, value: bool, default: bool) {
        self.put_if(key, value as u8, value != default);
    }
}

fn write_net(out: &mut String, spec: &NetSpec) {
    let n = &spec.net;
    let mut s = SectionWriter { out, extra: &n.extra };
    s.out.push_str("[net]\n");
    s.put("batch", n.batch);
    s.put("subdivisions", n.subdivisions);
    s.put("width", n.width);
    s.put("height", n.height);
    s.put("channels", n.channels);
    s.put("momentum", n.momentum);
    s.put("decay", n.decay);
    s.put("learning_rate", n.learning_rate);
    s.put("burn_in", n.burn_in);
    s.put("power", n.power);
    s.put("max_batches", n.max_batches);
    match &n.policy {
        DarknetPolicy::Constant => s.put("policy", "constant"),
        DarknetPolicy::Steps { steps, scales } => {
            s.put("policy", "steps");
            s.put("steps", list(steps));
            s.put("scales", list(scales));
        }
        DarknetPolicy::Step { step, scale } => {
            s.put("policy", "step");
            s.put("step", step);
            s.put("scale", scale);
        }
        // The poly policy's length is [net]'s max_batches, written above.
        DarknetPolicy::Poly { .. } => s.put("policy", "poly"),
        DarknetPolicy::Exp { gamma } => {
            s.put("policy", "exp");
            s.put("gamma", gamma);
        }
        DarknetPolicy::Sigmoid { gamma, step } => {
            s.put("policy", "sigmoid");
            s.put("gamma", gamma);
            s.put("step", step);
        }
    }
    for (k, v) in &n.extra {
        s.put(k, v);
    }
}

fn list<T: Display>(items: &[T]) -> String {
    items.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}

/// References as Darknet writes them: relative to the layer (`-1` is the previous one).
fn relative(i: usize, refs: &[usize]) -> String {
    list(&refs.iter().map(|&r| r as i64 - i as i64).collect::<Vec<_>>())
}

fn anchors(anchors: &[(f64, f64)]) -> String {
    list(&anchors.iter().flat_map(|&(w, h)| [w, h]).collect::<Vec<_>>())
}

fn write_layer(s: &mut SectionWriter, i: usize, layer: &Layer) {
    match layer {
        Layer::Conv(c) => {
            s.put("filters", c.filters);
            s.put("size", c.size);
            s.put("stride", c.stride_x);
            if c.stride_x != c.stride_y || s.has(&["stride_x", "stride_y"]) {
                s.put("stride_x", c.stride_x);
                s.put("stride_y", c.stride_y);
            }
            if s.has(&["pad", "padding"]) {
                s.put("pad", 0);
                s.put("padding", c.padding);
            } else if c.padding != 0 && c.padding == c.size / 2 {
                s.put("pad", 1);
            } else if c.padding != 0 {
                s.put("padding", c.padding);
            }
            s.put_if("groups", c.groups, c.groups != 1);
            s.put_if("dilation", c.dilation, c.dilation != 1);
            s.flag("batch_normalize", c.batch_normalize, false);
            s.flag("bias", c.bias, true);
            s.flag("dirac", c.dirac, false);
            s.put("activation", c.activation.name());
        }
        Layer::Connected(c) => {
            s.put("output", c.output);
            s.flag("batch_normalize", c.batch_normalize, false);
            s.flag("bias", c.bias, true);
            s.put("activation", c.activation.name());
        }
        Layer::MaxPool(p) | Layer::LocalAvgPool(p) => {
            s.put("size", p.size);
            s.put("stride", p.stride_x);
            if p.stride_x != p.stride_y || s.has(&["stride_x", "stride_y"]) {
                s.put("stride_x", p.stride_x);
                s.put("stride_y", p.stride_y);
            }
            s.put_if("padding", p.padding, p.padding != p.size.saturating_sub(1));
        }
        Layer::AvgPool | Layer::BatchNorm => {}
        Layer::Route(r) => {
            s.put("layers", relative(i, &r.layers));
            s.put_if("groups", r.groups, r.groups != 1);
            s.put_if("group_id", r.group_id, r.group_id != 0);
            if let Some((a, b)) = r.slice {
                s.put("slice", format!("{a},{b}"));
            }
        }
        Layer::Shortcut(sc) => {
            s.put("from", relative(i, &sc.from));
            s.put("activation", sc.activation.name());
            let (kind, norm) = match sc.weights {
                ShortcutWeights::None => ("none", None),
                ShortcutWeights::PerFeature { normalization } => ("per_feature", Some(normalization)),
                ShortcutWeights::PerChannel { normalization } => ("per_channel", Some(normalization)),
            };
            s.put_if("weights_type", kind, norm.is_some());
            if let Some(norm) = norm {
                let name = match norm {
                    WeightsNormalization::None => "none",
                    WeightsNormalization::Relu => "relu",
                    WeightsNormalization::Softmax => "softmax",
                };
                s.put("weights_normalization", name);
            }
        }
        Layer::Upsample { stride, scale } => {
            s.put("stride", stride);
            s.put_if("scale", scale, *scale != 1.0);
        }
        Layer::Dropout { probability } => s.put("probability", probability),
        Layer::Softmax { groups, temperature } => {
            s.put_if("groups", groups, *groups != 1);
            s.put_if("temperature", temperature, *temperature != 1.0);
        }
        Layer::Cost { kind, scale } => {
            let name = match kind {
                CostKind::Sse => "sse",
                CostKind::Masked => "masked",
                CostKind::Smooth => "smooth",
                CostKind::L1 => "L1",
            };
            s.put_if("type", name, *kind != CostKind::Sse);
            s.put_if("scale", scale, *scale != 1.0);
        }
        Layer::Crop(c) => {
            s.put("crop_height", c.crop_height);
            s.put("crop_width", c.crop_width);
            s.flag("flip", c.flip, false);
        }
        Layer::ScaleChannels { from, activation } => {
            s.put("from", relative(i, &[*from]));
            s.put_if("activation", activation.name(), *activation != Activation::Linear);
        }
        Layer::Reorg(r) => {
            s.put("stride", r.stride);
            s.flag("reverse", r.reverse, false);
        }
        Layer::Yolo(y) => {
            s.put("mask", list(&y.mask));
            s.put("anchors", anchors(&y.anchors));
            s.put("classes", y.classes);
            s.put("num", y.anchors.len());
            s.put_if("scale_x_y", y.scale_x_y, y.scale_x_y != 1.0);
        }
        Layer::Region(r) => {
            s.put("anchors", anchors(&r.anchors));
            s.put("classes", r.classes);
            s.put("coords", r.coords);
            s.put("num", r.num);
            s.flag("softmax", r.softmax, false);
        }
        Layer::ChannelShuffle { groups } => s.put("groups", groups),
        Layer::Activation(a) => s.put("activation", a.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::darknet::parse_cfg;

    #[test]
    fn repeated_default_keys_stay_behind_the_first() {
        // `activation=logistic` is the default (not written) but is repeated: writing only the
        // repeat would make it the value that counts and drop it from the kept keys.
        let cfg = "[net]\nwidth=4\nheight=4\nchannels=1\n[convolutional]\nactivation=logistic\npad=1\nsize=3\npad=0\nactivation=relu\n";
        let first = parse_cfg(cfg, None).unwrap().spec;
        let written = to_cfg(&first);
        let again = parse_cfg(&written, None).unwrap().spec;
        assert_eq!(again.layers[0].layer, first.layers[0].layer, "{written}");
        assert_eq!(again.layers[0].extra, first.layers[0].extra, "{written}");
        assert!(written.contains("pad=0\npadding=1\n"), "{written}");
    }
}
