//! The summary of a network: AlexeyAB Darknet's startup table line for line (its per-layer
//! lines, `Total BFLOPS` and `avg_outputs`, by Darknet's own rules), then shendu's columns:
//! parameters, multiply-accumulates and activation memory per layer.
//!
//! Darknet's rules, from AlexeyAB's `src/parser.c` and the layers' `make_*` functions:
//! - a convolution counts `2 * (c / groups) * filters * size² * out_h * out_w` flops, a pooling
//!   window `size² * c * out_h * out_w`, a shortcut `out_len * sources` (twice that when
//!   weighted); no other layer counts (not even `[connected]`); the total is a float sum;
//! - `avg_outputs` is the integer mean of `outputs` over the layers whose `w` and `h` (Darknet's
//!   *input* size of the layer, the first source's for a route, 0 for `[dropout]` and `[cost]`,
//!   1 for `[connected]`) are both above 1.

use shendu_nn::Result;

use super::{Chw, Layer, LayerSpec, NetSpec, ParamKind, ShortcutWeights, WeightsNormalization};

/// One layer of a [`Summary`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSummary {
    pub index: usize,
    /// The cfg section (`convolutional`).
    pub kind: &'static str,
    /// The parameter-name prefix.
    pub name: String,
    pub input: Chw,
    pub output: Chw,
    /// Trained values (weights, biases, norm scales and shifts).
    pub params: usize,
    /// Saved but untrained values: running means and variances (not the batch counters), so
    /// that `params + buffers` is the float count of a Darknet `.weights` file.
    pub buffers: usize,
    /// Multiply-accumulates for one image: those of convolutions and connected layers.
    pub macs: u64,
    /// The layer's output for one image as f32, in bytes.
    pub activation_bytes: u64,
    /// Darknet's billions of flops (`BF`) for the layer; 0 where Darknet counts none.
    pub bflops: f32,
    /// What Darknet prints for the layer (one line, or several for `[yolo]`).
    pub darknet: Vec<String>,
}

/// Per-layer rows and totals of a network for one image; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub input: Chw,
    pub layers: Vec<LayerSummary>,
    pub params: usize,
    pub buffers: usize,
    pub macs: u64,
    /// All layer outputs for one image as f32 (what a training step keeps), in bytes.
    pub activation_bytes: u64,
    /// Darknet's `Total BFLOPS` (summed in f32, as Darknet does).
    pub total_bflops: f32,
    /// Darknet's `avg_outputs`.
    pub avg_outputs: i64,
    /// Darknet's first line, `mini_batch = ...`, as `darknet detector test` prints it.
    pub darknet_head: String,
}

/// The table header Darknet prints.
pub const DARKNET_HEADER: &str = "   layer   filters  size/strd(dil)      input                output";

impl NetSpec {
    /// The summary table of the network (shapes are checked first).
    ///
    /// ```
    /// use shendu_vision::netspec::{Conv, Layer, LayerSpec, NetOptions, NetSpec};
    /// let mut spec = NetSpec::new(NetOptions::input(3, 8, 8));
    /// spec.push(LayerSpec::new(Layer::Conv(Conv::new(4, 3, 1).pad())));
    /// let s = spec.summary().unwrap();
    /// assert_eq!(s.params, 4 * 3 * 9 + 4);
    /// assert_eq!(s.layers[0].darknet[0], "   0 conv      4       3 x 3/ 1      8 x   8 x   3 ->    8 x   8 x   4 0.000 BF");
    /// assert!(s.darknet_table().ends_with("Total BFLOPS 0.000 \navg_outputs = 256 \n"));
    /// ```
    pub fn summary(&self) -> Result<Summary> {
        let shapes = self.shapes()?;
        let mut params = vec![0usize; self.layers.len()];
        let mut buffers = vec![0usize; self.layers.len()];
        for p in self.params()? {
            let n: usize = p.shape.iter().product();
            match p.kind {
                ParamKind::Weight => params[p.layer] += n,
                ParamKind::Buffer => buffers[p.layer] += n,
                ParamKind::Counter => {}
            }
        }
        // Darknet's `l.w, l.h` of each layer, which decide what avg_outputs averages.
        let mut darknet_wh: Vec<(usize, usize)> = Vec::with_capacity(self.layers.len());
        let (mut total_bflops, mut outputs_sum, mut outputs_count) = (0f32, 0i64, 0i64);
        let mut layers = Vec::with_capacity(self.layers.len());
        for (i, spec) in self.layers.iter().enumerate() {
            let (x, y) = (shapes[i].input, shapes[i].output);
            let (mut darknet, bflops) = darknet_lines(spec, x, y);
            if let Some(first) = darknet.first_mut() {
                *first = format!("{i:4} {first}");
            }
            let wh = match &spec.layer {
                Layer::Connected(_) => (1, 1),
                Layer::Dropout { .. } | Layer::Cost { .. } => (0, 0),
                Layer::Route(r) => r.layers.first().and_then(|&f| darknet_wh.get(f).copied()).unwrap_or((0, 0)),
                _ => (x.w, x.h),
            };
            darknet_wh.push(wh);
            if bflops > 0.0 {
                total_bflops += bflops;
            }
            if wh.0 > 1 && wh.1 > 1 {
                outputs_sum += y.len() as i64;
                outputs_count += 1;
            }
            let macs = match &spec.layer {
                // shapes() bounds each factor to 2^40; their product may still exceed u64.
                Layer::Conv(c) => ((c.filters * (x.c / c.groups.max(1)) * c.size * c.size) as u64).saturating_mul((y.h * y.w) as u64),
                Layer::Connected(c) => (x.len() * c.output) as u64,
                _ => 0,
            };
            layers.push(LayerSummary {
                index: i,
                kind: spec.layer.section(),
                name: self.layer_name(i),
                input: x,
                output: y,
                params: params[i],
                buffers: buffers[i],
                macs,
                activation_bytes: 4 * y.len() as u64,
                bflops,
                darknet,
            });
        }
        let n = &self.net;
        Ok(Summary {
            input: n.input_shape(),
            params: params.iter().sum(),
            buffers: buffers.iter().sum(),
            macs: layers.iter().map(|l| l.macs).sum(),
            activation_bytes: layers.iter().map(|l| l.activation_bytes).sum(),
            layers,
            total_bflops,
            avg_outputs: if outputs_count == 0 { 0 } else { outputs_sum / outputs_count },
            darknet_head: format!("mini_batch = 1, batch = {}, time_steps = 1, train = 0 ", n.subdivisions),
        })
    }
}

impl Summary {
    /// Darknet's table as AlexeyAB's `darknet detector test` prints it: `mini_batch = ...`, the
    /// header, the layers, `Total BFLOPS %5.3f ` and `avg_outputs = %d ` (trailing spaces and
    /// the route lines' tabs included).
    pub fn darknet_table(&self) -> String {
        let mut out = format!("{}\n{DARKNET_HEADER}\n", self.darknet_head);
        for line in self.layers.iter().flat_map(|l| &l.darknet) {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!("Total BFLOPS {:5.3} \navg_outputs = {} \n", self.total_bflops, self.avg_outputs));
        out
    }

    /// shendu's table: per layer the output shape, parameters, multiply-accumulates and output
    /// memory (f32, one image), then the totals.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:>5}  {:<16} {:<24} {:>20} {:>12} {:>14} {:>11}\n",
            "layer", "type", "name", "output (C x H x W)", "params", "MACs", "memory"
        );
        for l in &self.layers {
            out.push_str(&format!(
                "{:>5}  {:<16} {:<24} {:>20} {:>12} {:>14} {:>11}\n",
                l.index,
                l.kind,
                l.name,
                l.output.to_string(),
                grouped(l.params as u64),
                grouped(l.macs),
                mebibytes(l.activation_bytes)
            ));
        }
        out.push_str(&format!(
            "input {} (C x H x W); {} trained parameters + {} running statistics = {} values; {} MACs; {} of activations (f32, one image)\n",
            self.input,
            grouped(self.params as u64),
            grouped(self.buffers as u64),
            grouped((self.params + self.buffers) as u64),
            grouped(self.macs),
            mebibytes(self.activation_bytes)
        ));
        out
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (k, ch) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The first value of a kept key (`jitter`), without a trailing `#comment`.
fn extra<'a>(spec: &'a LayerSpec, key: &str) -> Option<&'a str> {
    spec.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.split('#').next().unwrap_or(v.as_str()))
}

/// A float option as Darknet holds it (f32), for printing.
fn extra_f32(spec: &LayerSpec, key: &str, default: f64) -> f64 {
    extra(spec, key).and_then(|v| v.parse::<f64>().ok()).unwrap_or(default) as f32 as f64
}

/// Darknet's lines for one layer (without the index) and its BF, for input `x`, output `y`.
fn darknet_lines(spec: &LayerSpec, x: Chw, y: Chw) -> (Vec<String>, f32) {
    let io = format!("{:4} x{:4} x{:4} -> {:4} x{:4} x{:4}", x.w, x.h, x.c, y.w, y.h, y.c);
    let line = |s: String| vec![s];
    match &spec.layer {
        Layer::Conv(c) => {
            let nweights = (x.c / c.groups.max(1)) * c.filters * c.size * c.size;
            let mut bf = (2.0 * nweights as f64 * y.h as f64 * y.w as f64 / 1e9) as f32;
            let xnor = extra(spec, "xnor").is_some_and(|v| v != "0");
            let kind = if xnor {
                bf /= 32.0;
                if extra(spec, "bin_output").is_some_and(|v| v != "0") {
                    "convXB"
                } else {
                    "convX "
                }
            } else {
                "conv  "
            };
            let filters = if c.groups > 1 { format!("{:5}/{:4} ", c.filters, c.groups) } else { format!("{:5}      ", c.filters) };
            let geometry = if c.stride_x != c.stride_y {
                format!("{:2}x{:2}/{:2}x{:2} ", c.size, c.size, c.stride_x, c.stride_y)
            } else if c.dilation > 1 {
                format!("{:2} x{:2}/{:2}({:1})", c.size, c.size, c.stride_x, c.dilation)
            } else {
                format!("{:2} x{:2}/{:2}   ", c.size, c.size, c.stride_x)
            };
            (line(format!("{kind}{filters}{geometry}{io} {bf:5.3} BF")), bf)
        }
        Layer::MaxPool(p) | Layer::LocalAvgPool(p) => {
            let bf = (p.size as f64 * p.size as f64 * x.c as f64 * y.h as f64 * y.w as f64 / 1e9) as f32;
            let kind = if matches!(spec.layer, Layer::MaxPool(_)) { "max" } else { "avg" };
            let geometry = if p.stride_x == p.stride_y {
                format!("{kind}               {:2}x{:2}/{:2}   ", p.size, p.size, p.stride_x)
            } else {
                format!("{kind}              {:2}x{:2}/{:2}x{:2} ", p.size, p.size, p.stride_x, p.stride_y)
            };
            (line(format!("{geometry}{io} {bf:5.3} BF")), bf)
        }
        Layer::AvgPool => (line(format!("avg                          {:4} x{:4} x{:4} ->   {:4}", x.w, x.h, x.c, y.c)), 0.0),
        Layer::Route(r) => {
            let mut s = "route ".to_string();
            for l in &r.layers {
                s.push_str(&format!(" {l}"));
            }
            s.push_str(match r.layers.len() {
                n if n > 3 => " \t    ",
                n if n > 1 => " \t            ",
                _ => " \t\t            ",
            });
            s.push_str("           ");
            s.push_str(&if r.groups > 1 { format!("{}/{}", r.group_id, r.groups) } else { "   ".to_string() });
            s.push_str(&format!(" -> {:4} x{:4} x{:4} ", y.w, y.h, y.c));
            (line(s), 0.0)
        }
        Layer::Shortcut(sc) => {
            let (wt, wn) = match sc.weights {
                ShortcutWeights::None => (0, 0),
                ShortcutWeights::PerFeature { normalization } => (1, norm_code(normalization)),
                ShortcutWeights::PerChannel { normalization } => (2, norm_code(normalization)),
            };
            let mut bf = ((y.w * y.h * y.c * sc.from.len()) as f64 / 1e9) as f32;
            if wt != 0 {
                bf *= 2.0;
            }
            let from: String = sc.from.iter().map(|f| format!("{f}, ")).collect();
            let s = format!("Shortcut Layer: {from} wt = {wt}, wn = {wn}, outputs:{:4} x{:4} x{:4} {bf:5.3} BF", y.w, y.h, y.c);
            (line(s), bf)
        }
        Layer::Upsample { stride, .. } => {
            let kind = if *stride < 0 { "downsample      " } else { "upsample        " };
            (line(format!("{kind}        {:2}x  {io}", stride.unsigned_abs())), 0.0)
        }
        Layer::Dropout { probability } => {
            (line(format!("dropout    p = {:.3}        {:4}  ->   {:4}", *probability as f32 as f64, x.len(), x.len())), 0.0)
        }
        Layer::Softmax { .. } => (line(format!("softmax                                        {:4}", x.len())), 0.0),
        Layer::Cost { .. } => (line(format!("cost                                           {:4}", x.len())), 0.0),
        Layer::Connected(c) => (line(format!("connected                            {:4}  ->  {:4}", x.len(), c.output)), 0.0),
        Layer::Crop(c) => (line(format!("Crop Layer: {} x {} -> {} x {} x {} image", x.h, x.w, c.crop_height, c.crop_width, x.c)), 0.0),
        Layer::ScaleChannels { from, .. } => (line(format!("scale Layer: {from}")), 0.0),
        // Darknet's [reorg] is its old reorg, which announces itself on stdout first.
        Layer::Reorg(r) => {
            let s =
                format!("reorg_old              /{:2}  {:4} x{:4} x{:4}   ->  {:4} x{:4} x{:4}", r.stride, x.w, x.h, x.c, y.w, y.h, y.c);
            (vec![String::new(), " reorg_old ".to_string(), s], 0.0)
        }
        Layer::Yolo(yolo) => {
            let loss = extra(spec, "iou_loss").unwrap_or("mse");
            let code = match loss {
                "mse" => 2,
                "giou" => 1,
                "diou" => 3,
                "ciou" => 4,
                _ => 0,
            };
            let mut lines = vec![
                "yolo".to_string(),
                format!(
                    "[yolo] params: iou loss: {loss} ({code}), iou_norm: {:.2}, obj_norm: {:.2}, cls_norm: {:.2}, delta_norm: {:.2}, scale_x_y: {:.2}",
                    extra_f32(spec, "iou_normalizer", 0.75),
                    extra_f32(spec, "obj_normalizer", 1.0),
                    extra_f32(spec, "cls_normalizer", 1.0),
                    extra_f32(spec, "delta_normalizer", 1.0),
                    yolo.scale_x_y as f32 as f64
                ),
            ];
            let nms = extra(spec, "nms_kind").unwrap_or("default");
            if nms != "default" {
                let code = match nms {
                    "greedynms" => 1,
                    "diounms" => 2,
                    _ => 0,
                };
                lines.push(format!("nms_kind: {nms} ({code}), beta = {:.6} ", extra_f32(spec, "beta_nms", 0.6)));
            }
            (lines, 0.0)
        }
        Layer::Region(_) => (line("detection".to_string()), 0.0),
        Layer::BatchNorm => (line(format!("Batch Normalization Layer: {} x {} x {} image", x.w, x.h, x.c)), 0.0),
        Layer::Activation(_) => (line(format!("Activation Layer: {} inputs", x.len())), 0.0),
        // shendu's extension, in the style of the layers above.
        Layer::ChannelShuffle { groups } => (line(format!("shuffle                 {groups:2}g  {io}")), 0.0),
    }
}

fn norm_code(n: WeightsNormalization) -> u8 {
    match n {
        WeightsNormalization::None => 0,
        WeightsNormalization::Relu => 1,
        WeightsNormalization::Softmax => 2,
    }
}
