//! `NetSpec`: the one description of a network that both the Darknet `.cfg` parser and the Rust
//! zoo constructors produce (DESIGN.md, "One model description").
//!
//! A spec is a list of layers in Darknet's sense: layer `i` reads the output of layer `i - 1`
//! unless it is a `route`, and `route`, `shortcut` and `scale_channels` name earlier layers by
//! absolute index. Only a `NetSpec` builds a network, computes the summary table and writes
//! itself back to cfg, so those three can never disagree about a model.
//!
//! Conventions that are Darknet's (AlexeyAB's fork), kept so real cfgs mean what they mean there:
//! - convolution padding is symmetric, in cells of the *dilated* kernel: a dilated conv pads
//!   `padding * dilation` on each side (what AlexeyAB's im2col does);
//! - pooling pads `padding` cells in total, `padding / 2` before and the rest after;
//! - `batch_normalize=1` puts a batch norm between a conv (or connected) layer and its
//!   activation, and the layer then has no bias of its own (the norm's shift plays that role).
//!
//! shendu's extensions (all optional keys, ignored by Darknet): `name=` and `bn_name=` set the
//! parameter names (so zoo models carry torchvision's names), `bias=0` drops a conv's or
//! connected layer's bias when there is no batch norm, `dirac=1` makes a conv DiracNet's
//! `diag(a)·I + diag(b)·W/‖W‖`, and the `[channel_shuffle] groups=N` layer.
//!
//! ```
//! use shendu_vision::netspec::{Activation, Conv, Layer, LayerSpec, NetOptions, NetSpec};
//! let mut spec = NetSpec::new(NetOptions::input(1, 28, 28));
//! spec.push(LayerSpec::new(Layer::Conv(Conv::new(8, 3, 1).pad().activation(Activation::Relu))));
//! spec.push(LayerSpec::new(Layer::AvgPool));
//! let shapes = spec.shapes().unwrap();
//! assert_eq!(shapes[0].output, shendu_vision::netspec::Chw::new(8, 28, 28));
//! assert_eq!(shapes[1].output, shendu_vision::netspec::Chw::new(8, 1, 1));
//! ```

mod build;
mod layers;
mod params;
mod shape;
mod summary;

pub use build::{decode_region, decode_yolo, BBox, Detection, Network};
pub use layers::{
    Activation, Connected, Conv, CostKind, Crop, Layer, Pool, Region, Reorg, Route, Shortcut, ShortcutWeights, WeightsNormalization, Yolo,
};
pub use params::{ParamKind, ParamSpec};
pub use shape::{Chw, LayerShapes, MAX_VALUES};
pub use summary::{LayerSummary, Summary, DARKNET_HEADER};

use shendu_nn::schedule::DarknetPolicy;
use shendu_nn::Error;

/// A whole network: the `[net]` options and the layers in order.
#[derive(Clone, Debug, PartialEq)]
pub struct NetSpec {
    pub net: NetOptions,
    pub layers: Vec<LayerSpec>,
    /// The file the spec was read from, named in errors (`None` for zoo models).
    pub origin: Option<String>,
}

/// The `[net]` section: the input and Darknet's training options.
#[derive(Clone, Debug, PartialEq)]
pub struct NetOptions {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Images per optimizer step (Darknet's `batch`; a step's images are split into
    /// `subdivisions` forward passes).
    pub batch: usize,
    pub subdivisions: usize,
    pub learning_rate: f64,
    pub momentum: f64,
    /// L2 weight decay.
    pub decay: f64,
    pub policy: DarknetPolicy,
    pub burn_in: usize,
    /// The exponent of burn-in and of the `poly` policy.
    pub power: f64,
    /// The length of training in batches (Darknet's `max_batches`; 0: not set).
    pub max_batches: usize,
    /// Every other key of the section in file order (augmentation and the like), kept so that
    /// writing the spec back loses nothing.
    pub extra: Vec<(String, String)>,
    /// The line of the `[net]` header, if read from a file.
    pub line: Option<usize>,
}

impl NetOptions {
    /// An input of `channels x height x width` with Darknet's defaults for everything else.
    pub fn input(channels: usize, height: usize, width: usize) -> NetOptions {
        NetOptions {
            channels,
            height,
            width,
            batch: 1,
            subdivisions: 1,
            learning_rate: 0.001,
            momentum: 0.9,
            decay: 0.0001,
            policy: DarknetPolicy::Constant,
            burn_in: 0,
            power: 4.0,
            max_batches: 0,
            extra: Vec::new(),
            line: None,
        }
    }

    /// The input shape.
    pub fn input_shape(&self) -> Chw {
        Chw::new(self.channels, self.height, self.width)
    }
}

/// One layer: what it computes, its parameter name and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    pub layer: Layer,
    /// The prefix of the layer's parameter names (`layer1.0.conv1`); `None`: the layer's index.
    pub name: Option<String>,
    /// The prefix of the batch norm's parameters when the layer has `batch_normalize`
    /// (`layer1.0.bn1`); `None`: `<name>.bn`.
    pub bn_name: Option<String>,
    /// The line of the section header in `NetSpec::origin`, for errors.
    pub line: Option<usize>,
    /// Keys of the section that shendu reads but does not model (a yolo layer's `jitter`),
    /// in file order, written back unchanged.
    pub extra: Vec<(String, String)>,
}

impl LayerSpec {
    /// A layer with default names and no source line.
    pub fn new(layer: Layer) -> LayerSpec {
        LayerSpec { layer, name: None, bn_name: None, line: None, extra: Vec::new() }
    }

    /// Sets the parameter-name prefix.
    pub fn named(mut self, name: impl Into<String>) -> LayerSpec {
        self.name = Some(name.into());
        self
    }

    /// Sets the batch norm's parameter-name prefix.
    pub fn bn_named(mut self, name: impl Into<String>) -> LayerSpec {
        self.bn_name = Some(name.into());
        self
    }
}

impl NetSpec {
    /// An empty network on the given input.
    pub fn new(net: NetOptions) -> NetSpec {
        NetSpec { net, layers: Vec::new(), origin: None }
    }

    /// Appends a layer and returns its index (what later routes and shortcuts refer to).
    pub fn push(&mut self, layer: LayerSpec) -> usize {
        self.layers.push(layer);
        self.layers.len() - 1
    }

    /// The index the next pushed layer will get.
    pub fn next_index(&self) -> usize {
        self.layers.len()
    }

    /// The parameter-name prefix of layer `i`: its `name`, or its index.
    pub fn layer_name(&self, i: usize) -> String {
        self.layers.get(i).and_then(|l| l.name.clone()).unwrap_or_else(|| i.to_string())
    }

    /// The parameter-name prefix of layer `i`'s batch norm.
    pub fn bn_name(&self, i: usize) -> String {
        self.layers.get(i).and_then(|l| l.bn_name.clone()).unwrap_or_else(|| format!("{}.bn", self.layer_name(i)))
    }

    /// The index of the layer whose output is the network's output: the last that is not a
    /// `[cost]` (Darknet's `get_network_output_layer`).
    pub fn output_layer(&self) -> Option<usize> {
        self.layers.iter().rposition(|l| !matches!(l.layer, Layer::Cost { .. }))
    }

    /// An error about layer `i`, naming the file and line when the spec came from a file:
    /// `yolov3-tiny.cfg:112: layer 13 [route]: ...`.
    pub fn layer_error(&self, i: usize, msg: impl std::fmt::Display) -> Error {
        let kind = self.layers.get(i).map(|l| l.layer.section()).unwrap_or("?");
        let line = self.layers.get(i).and_then(|l| l.line);
        Error::config(self.location(line), format!("layer {i} [{kind}]: {msg}"))
    }

    /// An error about the `[net]` section.
    pub fn net_error(&self, msg: impl std::fmt::Display) -> Error {
        Error::config(self.location(self.net.line), format!("[net]: {msg}"))
    }

    /// `file:line`, `file`, `line N` or `network`, whatever is known.
    fn location(&self, line: Option<usize>) -> String {
        match (&self.origin, line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            (None, Some(l)) => format!("line {l}"),
            (None, None) => "network".to_string(),
        }
    }
}
