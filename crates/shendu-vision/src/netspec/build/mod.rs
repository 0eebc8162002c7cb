//! Turning a [`NetSpec`] into a trainable network: [`NetSpec::build`] gives a [`Network`], a
//! `shendu_nn::Module` whose parameters carry exactly the names, shapes and order of
//! [`NetSpec::params`].
//!
//! The forward pass runs the layers in order, as Darknet does: layer `i` reads layer `i - 1`'s
//! output, and `route`, `shortcut` and `scale_channels` read earlier layers by index. An earlier
//! output is kept only until the last layer that reads it has run (computed once, at build), so
//! a deep network holds a handful of activations rather than all of them.
//!
//! What [`Module::forward`] returns: the output of [`NetSpec::output_layer`] (the last layer that
//! is not a `[cost]`), as `[N, C, H, W]`, or `[N, C]` when that output is `C x 1 x 1` (a
//! classifier's scores, the layout losses take). A Darknet classifier ends in `[softmax]` (and
//! `[cost]`), so its output is probabilities; a trainer wants the scores before the softmax:
//! call [`Network::forward_logits`], or set [`Network::set_logits_output`] so that
//! `Module::forward` returns them (what `shendu train --cfg` does).
//!
//! ```
//! use shendu_core::{DType, Tensor};
//! use shendu_nn::{Mode, Module, ModuleExt};
//! use shendu_vision::netspec::{Activation, Connected, Conv, Layer, LayerSpec, NetOptions, NetSpec, Pool};
//! let mut spec = NetSpec::new(NetOptions::input(1, 8, 8));
//! spec.push(LayerSpec::new(Layer::Conv(Conv::new(4, 3, 1).pad().bn().activation(Activation::Leaky))));
//! spec.push(LayerSpec::new(Layer::MaxPool(Pool::new(2, 2))));
//! spec.push(LayerSpec::new(Layer::Connected(Connected::new(3).activation(Activation::Linear))));
//! spec.push(LayerSpec::new(Layer::Softmax { groups: 1, temperature: 1.0 }));
//! let net = spec.build(DType::F32).unwrap();
//! let x = Tensor::randn(&[2, 1, 8, 8], DType::F32).unwrap();
//! let p = net.forward(&x, Mode::Eval).unwrap();
//! assert_eq!(p.dims(), &[2, 3]);
//! let logits = net.forward_logits(&x, Mode::Eval).unwrap();
//! assert_eq!(logits.softmax(1).unwrap().to_vec::<f32>().unwrap(), p.to_vec::<f32>().unwrap());
//! let names: Vec<String> = net.named_params().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names[0], "0.weight");
//! ```

mod conv;
mod detect;
mod ops;
#[cfg(test)]
mod tests;

pub use detect::{decode_region, decode_yolo, BBox, Detection};

use shendu_core::{DType, Tensor};
use shendu_nn::layers::{BatchNorm2d, BatchNormConfig, Dropout};
use shendu_nn::{join_name, Mode, Module, Param, Result};

use super::{Layer, LayerShapes, NetSpec, ShortcutWeights};
use conv::{ConnectedNode, ConvNode};

/// A network built from a [`NetSpec`]: the spec, its shapes, and each layer's parameters.
pub struct Network {
    spec: NetSpec,
    shapes: Vec<LayerShapes>,
    nodes: Vec<Node>,
    /// `names[i]`: layer `i`'s name ([`NetSpec::layer_name`]), made once rather than per forward.
    names: Vec<String>,
    /// `frees[i]`: the earlier outputs whose last reader is layer `i`.
    frees: Vec<Vec<usize>>,
    /// Whether layer `i`'s output is read by a later layer other than `i + 1`'s plain input.
    kept: Vec<bool>,
    dtype: DType,
    logits_output: bool,
}

/// One layer's parameters (and, for dropout, its module).
enum Node {
    Conv(Box<ConvNode>),
    Connected(Box<ConnectedNode>),
    BatchNorm(BatchNorm2d),
    /// A weighted shortcut's `[inputs]` or `[inputs, C]` weights.
    ShortcutWeights(Param),
    Dropout(Dropout),
    Plain,
}

impl NetSpec {
    /// Builds the network with PyTorch's default initialisation drawn from shendu's seeded
    /// generator (`shendu_core::manual_seed`), so one seed gives one set of weights: conv and
    /// connected weights and biases uniform in `±1/sqrt(fan_in)`, batch norms at weight 1, bias
    /// 0, running mean 0 and variance 1 (eps 1e-5, momentum 0.1), DiracNet's `alpha = 1` and
    /// `beta = 0.1`, weighted-shortcut weights 1 (AlexeyAB's start).
    ///
    /// Errors where the spec's shapes do not work out (see [`NetSpec::shapes`]), for a dtype
    /// that is not f32 or f64, and for a `[reorg]` whose channels Darknet's reorg cannot split.
    pub fn build(&self, dtype: DType) -> Result<Network> {
        if !matches!(dtype, DType::F32 | DType::F64) {
            return Err(self.net_error(format!("a network is built in f32 or f64, not {dtype}")));
        }
        let shapes = self.shapes()?;
        let mut nodes = Vec::with_capacity(self.layers.len());
        for (i, l) in self.layers.iter().enumerate() {
            let x = shapes[i].input;
            let bn = |c: usize| -> Result<BatchNorm2d> { BatchNormConfig::new(c).eps(1e-5).momentum(Some(0.1)).build_2d(dtype) };
            nodes.push(match &l.layer {
                Layer::Conv(c) => Node::Conv(Box::new(ConvNode::new(c, x, dtype)?)),
                Layer::Connected(c) => Node::Connected(Box::new(ConnectedNode::new(c, x, dtype)?)),
                Layer::BatchNorm => Node::BatchNorm(bn(x.c)?),
                Layer::Shortcut(s) => match s.weights {
                    ShortcutWeights::None => Node::Plain,
                    ShortcutWeights::PerFeature { .. } => Node::ShortcutWeights(Param::new(Tensor::ones(&[s.from.len() + 1], dtype)?)),
                    ShortcutWeights::PerChannel { .. } => Node::ShortcutWeights(Param::new(Tensor::ones(&[s.from.len() + 1, x.c], dtype)?)),
                },
                Layer::Dropout { probability } => {
                    Node::Dropout(Dropout::new(*probability).map_err(|e| self.layer_error(i, format!("probability: {e}")))?)
                }
                Layer::Region(r) if r.coords < 4 => {
                    return Err(self.layer_error(i, format!("coords {} must be at least 4 (x, y, w, h)", r.coords)));
                }
                Layer::Reorg(r) if !r.reverse && !x.c.is_multiple_of(r.stride * r.stride) => {
                    return Err(self.layer_error(
                        i,
                        format!(
                            "Darknet's reorg by {s} regroups the channels {c} in blocks of {s}x{s}: they must be divisible by {} (input {x})",
                            r.stride * r.stride,
                            s = r.stride,
                            c = x.c
                        ),
                    ));
                }
                _ => Node::Plain,
            });
        }
        let (frees, kept) = liveness(self);
        let names = (0..self.layers.len()).map(|i| self.layer_name(i)).collect();
        Ok(Network { spec: self.clone(), shapes, nodes, names, frees, kept, dtype, logits_output: false })
    }
}

/// For each layer, the outputs that can be dropped once it has run, and which outputs must be
/// kept past their successor at all.
fn liveness(spec: &NetSpec) -> (Vec<Vec<usize>>, Vec<bool>) {
    let n = spec.layers.len();
    let mut last_use: Vec<Option<usize>> = vec![None; n];
    for (i, l) in spec.layers.iter().enumerate() {
        for r in l.layer.references() {
            if r < i {
                last_use[r] = Some(last_use[r].map_or(i, |u| u.max(i)));
            }
        }
    }
    let mut frees = vec![Vec::new(); n];
    let mut kept = vec![false; n];
    for (j, u) in last_use.iter().enumerate() {
        if let Some(u) = *u {
            kept[j] = true;
            frees[u].push(j);
        }
    }
    (frees, kept)
}

impl Network {
    /// The spec it was built from.
    pub fn spec(&self) -> &NetSpec {
        &self.spec
    }

    /// Every layer's input and output shape for one image.
    pub fn shapes(&self) -> &[LayerShapes] {
        &self.shapes
    }

    /// The dtype of its parameters.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Makes `Module::forward` return [`Network::forward_logits`] (true) or Darknet's output
    /// (false, the default).
    pub fn set_logits_output(&mut self, logits: bool) {
        self.logits_output = logits;
    }

    /// Whether `Module::forward` returns the logits.
    pub fn logits_output(&self) -> bool {
        self.logits_output
    }

    /// The layer whose output [`Network::forward_logits`] returns: the output layer, or the input
    /// of a trailing `[softmax]` (before any `[cost]`). `None`: the network's input.
    pub fn logits_layer(&self) -> Option<usize> {
        let out = self.spec.output_layer()?;
        match self.spec.layers[out].layer {
            Layer::Softmax { .. } => out.checked_sub(1),
            _ => Some(out),
        }
    }

    /// The scores a classifier is trained on: the output before a trailing `[softmax]`, divided
    /// by its temperature (so that its softmax is exactly [`Module::forward`]'s output for one
    /// softmax group), in the layout `forward` uses (`[N, C]` for `C x 1 x 1`). Without a
    /// trailing softmax it is the same as `forward`.
    pub fn forward_logits(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let out = self.spec.output_layer();
        let (layer, temperature) = match out.map(|o| &self.spec.layers[o].layer) {
            Some(Layer::Softmax { temperature, .. }) => (self.logits_layer(), *temperature),
            _ => (out, 1.0),
        };
        let y = self.run_to(x, mode, layer)?;
        let y = if temperature != 1.0 { y.mul_scalar(1.0 / temperature)? } else { y };
        self.present(y, layer)
    }

    /// The outputs of the given layers (in the order given), each `[N, C, H, W]`, from one
    /// forward pass that stops after the last of them: the detection heads of a YOLO network, or
    /// features for transfer learning.
    pub fn forward_layers(&self, x: &Tensor, mode: Mode, layers: &[usize]) -> Result<Vec<Tensor>> {
        if let Some(&bad) = layers.iter().find(|&&l| l >= self.spec.layers.len()) {
            return Err(shendu_nn::Error::layer(
                "Network",
                format!("layer {bad} requested, but the network has {} layers", self.spec.layers.len()),
            ));
        }
        let Some(&end) = layers.iter().max() else { return Ok(Vec::new()) };
        let mut got: Vec<Option<Tensor>> = vec![None; self.spec.layers.len()];
        self.run(x, mode, end + 1, &mut |i, t| {
            if layers.contains(&i) {
                got[i] = Some(t.clone());
            }
        })?;
        layers.iter().map(|&l| got[l].clone().ok_or_else(|| shendu_nn::Error::layer("Network", format!("layer {l} did not run")))).collect()
    }

    /// The indices of the `[yolo]` and `[region]` layers, in order.
    pub fn detection_layers(&self) -> Vec<usize> {
        self.spec.layers.iter().enumerate().filter(|(_, l)| matches!(l.layer, Layer::Yolo(_) | Layer::Region(_))).map(|(i, _)| i).collect()
    }

    /// Runs the network in eval mode and decodes every `[yolo]` and `[region]` layer's output
    /// with [`decode_yolo`] / [`decode_region`]: per image, the detections whose objectness is
    /// above `thresh`, boxes relative to the network's input.
    pub fn detect(&self, x: &Tensor, thresh: f32) -> Result<Vec<Vec<Detection>>> {
        let heads = self.detection_layers();
        let outs = self.forward_layers(x, Mode::Eval, &heads)?;
        let n = x.dims().first().copied().unwrap_or(0);
        let mut all = vec![Vec::new(); n];
        for (&i, out) in heads.iter().zip(&outs) {
            let per_image = match &self.spec.layers[i].layer {
                Layer::Yolo(y) => decode_yolo(out, y, self.spec.net.width, self.spec.net.height, thresh)?,
                Layer::Region(r) => decode_region(out, r, thresh)?,
                _ => continue,
            };
            for (acc, dets) in all.iter_mut().zip(per_image) {
                acc.extend(dets.into_iter().map(|d| Detection { layer: i, ..d }));
            }
        }
        Ok(all)
    }

    /// Checks the input against `[net]`: `[N, channels, height, width]`.
    fn check_input(&self, x: &Tensor) -> Result<()> {
        let want = self.spec.net.input_shape();
        let d = x.dims();
        if d.len() != 4 || d[1] != want.c || d[2] != want.h || d[3] != want.w || d[0] == 0 {
            return Err(self.spec.net_error(format!(
                "input {} does not fit the network: expected [N, {}, {}, {}] ({want}, channels x height x width, with N >= 1)",
                x.shape(),
                want.c,
                want.h,
                want.w
            )));
        }
        if x.dtype() != self.dtype {
            return Err(self.spec.net_error(format!("input is {} but the network's parameters are {}", x.dtype(), self.dtype)));
        }
        Ok(())
    }

    /// The output of `layer` (`None`: the input), `[N, C, H, W]`.
    fn run_to(&self, x: &Tensor, mode: Mode, layer: Option<usize>) -> Result<Tensor> {
        let Some(layer) = layer else {
            self.check_input(x)?;
            return Ok(x.clone());
        };
        let mut last = None;
        self.run(x, mode, layer + 1, &mut |i, t| {
            if i == layer {
                last = Some(t.clone());
            }
        })?;
        last.ok_or_else(|| shendu_nn::Error::layer("Network", format!("layer {layer} did not run")))
    }

    /// Runs layers `0..end`, handing each output to `seen`.
    fn run(&self, x: &Tensor, mode: Mode, end: usize, seen: &mut dyn FnMut(usize, &Tensor)) -> Result<()> {
        self.check_input(x)?;
        let mut outputs: Vec<Option<Tensor>> = vec![None; self.spec.layers.len()];
        let mut prev = x.clone();
        for i in 0..end.min(self.spec.layers.len()) {
            let y = shendu_nn::tap::run_child(&self.names[i], self.spec.layers[i].layer.section(), true, || {
                self.layer_forward(i, &prev, &outputs, mode)
            })?;
            for &j in &self.frees[i] {
                outputs[j] = None;
            }
            if self.kept[i] {
                outputs[i] = Some(y.clone());
            }
            seen(i, &y);
            prev = y;
        }
        Ok(())
    }

    /// `[N, C, 1, 1]` becomes `[N, C]`.
    fn present(&self, y: Tensor, layer: Option<usize>) -> Result<Tensor> {
        let shape = layer.map_or(self.spec.net.input_shape(), |l| self.shapes[l].output);
        if shape.h == 1 && shape.w == 1 && y.rank() == 4 {
            return Ok(y.reshape(&y.dims()[..2])?);
        }
        Ok(y)
    }

    fn layer_forward(&self, i: usize, x: &Tensor, outputs: &[Option<Tensor>], mode: Mode) -> Result<Tensor> {
        let earlier = |r: usize| -> Result<Tensor> {
            outputs[r]
                .clone()
                .ok_or_else(|| self.spec.layer_error(i, format!("layer {r}'s output was not kept (a bug in the liveness plan)")))
        };
        let spec = &self.spec.layers[i];
        let shapes = &self.shapes[i];
        let wrap = |e: shendu_nn::Error| self.spec.layer_error(i, e);
        let y = match (&spec.layer, &self.nodes[i]) {
            (Layer::Conv(c), Node::Conv(node)) => node.forward(c, x, mode),
            (Layer::Connected(c), Node::Connected(node)) => node.forward(c, x, mode),
            (Layer::BatchNorm, Node::BatchNorm(bn)) => bn.forward(x, mode),
            (Layer::Dropout { .. }, Node::Dropout(d)) => d.forward(x, mode),
            (Layer::Shortcut(s), node) => {
                let from: Vec<Tensor> = s.from.iter().map(|&f| earlier(f)).collect::<Result<_>>()?;
                let weights = match node {
                    Node::ShortcutWeights(p) => Some(p.tensor()),
                    _ => None,
                };
                ops::shortcut(x, &from, s, weights.as_ref())
            }
            (Layer::Route(r), _) => {
                let ins: Vec<Tensor> = r.layers.iter().map(|&l| earlier(l)).collect::<Result<_>>()?;
                ops::route(&ins, r)
            }
            (Layer::ScaleChannels { from, activation }, _) => ops::scale_channels(&earlier(*from)?, x, *activation),
            (layer, _) => ops::stateless(layer, x, shapes, mode, &spec.extra),
        };
        y.map_err(wrap)
    }
}

impl Module for Network {
    /// Darknet's output (see the module docs), or the logits after
    /// [`Network::set_logits_output`].
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if self.logits_output {
            return self.forward_logits(x, mode);
        }
        let out = self.spec.output_layer();
        let y = self.run_to(x, mode, out)?;
        self.present(y, out)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        for (i, node) in self.nodes.iter().enumerate() {
            let own = join_name(prefix, &self.names[i]);
            match node {
                Node::Conv(c) => c.visit(&own, &join_name(prefix, &self.spec.bn_name(i)), f),
                Node::Connected(c) => c.visit(&own, &join_name(prefix, &self.spec.bn_name(i)), f),
                Node::BatchNorm(bn) => bn.visit_params(&own, f),
                Node::ShortcutWeights(w) => f(&join_name(&own, "weight"), w),
                Node::Dropout(_) | Node::Plain => {}
            }
        }
    }

    fn type_name(&self) -> &'static str {
        "Network"
    }
}
