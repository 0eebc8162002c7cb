//! The layer kinds of a `NetSpec`, one variant per Darknet section, with Darknet's defaults.

/// What one layer computes. Layer references (`Route::layers`, `Shortcut::from`, ...) are
/// absolute indices into `NetSpec::layers`, always earlier than the layer itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// `[convolutional]`.
    Conv(Conv),
    /// `[connected]`: a fully connected layer on the flattened input.
    Connected(Connected),
    /// `[maxpool]`.
    MaxPool(Pool),
    /// `[local_avgpool]`: average pooling over windows (only in-bounds cells are averaged).
    LocalAvgPool(Pool),
    /// `[avgpool]`: global average pooling to `c x 1 x 1`.
    AvgPool,
    /// `[route]`: channel concatenation of earlier layers, or a slice of their channels.
    Route(Route),
    /// `[shortcut]`: the previous layer plus earlier layers of the same shape.
    Shortcut(Shortcut),
    /// `[upsample]`: nearest-neighbour by `stride` (a negative stride downsamples), times `scale`.
    Upsample { stride: isize, scale: f64 },
    /// `[dropout]`: inverted dropout with drop `probability` in training, identity in eval.
    Dropout { probability: f64 },
    /// `[softmax]` over channels (`groups` independent softmaxes), at `temperature`.
    Softmax { groups: usize, temperature: f64 },
    /// `[cost]`: marks the loss; passes its input through.
    Cost { kind: CostKind, scale: f64 },
    /// `[crop]`: a centred `crop_height x crop_width` window (Darknet's test-time crop).
    Crop(Crop),
    /// `[scale_channels] from=`: the output of layer `from` times the previous layer's
    /// `c x 1 x 1` output, per channel (squeeze-and-excitation).
    ScaleChannels { from: usize, activation: Activation },
    /// `[reorg]`: space-to-depth by `stride` (or depth-to-space with `reverse`).
    Reorg(Reorg),
    /// `[yolo]`: YOLOv3 detection head (logistic on x, y, objectness and classes).
    Yolo(Yolo),
    /// `[region]`: YOLOv2 detection head.
    Region(Region),
    /// `[channel_shuffle] groups=N` (shendu's extension): ShuffleNet's channel shuffle.
    ChannelShuffle { groups: usize },
    /// `[batchnorm]`: a batch norm on its own (pre-activation networks: DenseNet).
    BatchNorm,
    /// `[activation] activation=...`: an activation on its own.
    Activation(Activation),
}

impl Layer {
    /// The cfg section name, without brackets (`convolutional`, `route`, ...).
    pub fn section(&self) -> &'static str {
        match self {
            Layer::Conv(_) => "convolutional",
            Layer::Connected(_) => "connected",
            Layer::MaxPool(_) => "maxpool",
            Layer::LocalAvgPool(_) => "local_avgpool",
            Layer::AvgPool => "avgpool",
            Layer::Route(_) => "route",
            Layer::Shortcut(_) => "shortcut",
            Layer::Upsample { .. } => "upsample",
            Layer::Dropout { .. } => "dropout",
            Layer::Softmax { .. } => "softmax",
            Layer::Cost { .. } => "cost",
            Layer::Crop(_) => "crop",
            Layer::ScaleChannels { .. } => "scale_channels",
            Layer::Reorg(_) => "reorg",
            Layer::Yolo(_) => "yolo",
            Layer::Region(_) => "region",
            Layer::ChannelShuffle { .. } => "channel_shuffle",
            Layer::BatchNorm => "batchnorm",
            Layer::Activation(_) => "activation",
        }
    }

    /// The earlier layers this one reads besides its predecessor (or instead of it, for a
    /// route), as absolute indices.
    pub fn references(&self) -> Vec<usize> {
        match self {
            Layer::Route(r) => r.layers.clone(),
            Layer::Shortcut(s) => s.from.clone(),
            Layer::ScaleChannels { from, .. } => vec![*from],
            _ => Vec::new(),
        }
    }
}

/// `[convolutional]`. Build with [`Conv::new`] and the setters.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    pub filters: usize,
    pub size: usize,
    pub stride_x: usize,
    pub stride_y: usize,
    /// Cells of padding on each side, in units of the dilated kernel (see the module docs).
    /// A cfg's `pad=1` means `size / 2`.
    pub padding: usize,
    pub groups: usize,
    pub dilation: usize,
    pub activation: Activation,
    pub batch_normalize: bool,
    /// Whether the conv has its own bias (only meaningful without batch norm; Darknet: always).
    pub bias: bool,
    /// DiracNet's parametrisation (shendu's extension `dirac=1`).
    pub dirac: bool,
}

impl Conv {
    /// `filters` kernels of `size x size` at `stride`, no padding, Darknet's default activation
    /// (logistic), a bias, no batch norm.
    pub fn new(filters: usize, size: usize, stride: usize) -> Conv {
        Conv {
            filters,
            size,
            stride_x: stride,
            stride_y: stride,
            padding: 0,
            groups: 1,
            dilation: 1,
            activation: Activation::Logistic,
            batch_normalize: false,
            bias: true,
            dirac: false,
        }
    }
    /// Darknet's `pad=1`: `size / 2` on each side ("same" for odd sizes at stride 1).
    pub fn pad(mut self) -> Conv {
        self.padding = self.size / 2;
        self
    }
    pub fn padding(mut self, padding: usize) -> Conv {
        self.padding = padding;
        self
    }
    pub fn groups(mut self, groups: usize) -> Conv {
        self.groups = groups;
        self
    }
    pub fn dilation(mut self, dilation: usize) -> Conv {
        self.dilation = dilation;
        self
    }
    pub fn activation(mut self, activation: Activation) -> Conv {
        self.activation = activation;
        self
    }
    /// Batch norm after the conv (and no conv bias).
    pub fn bn(mut self) -> Conv {
        self.batch_normalize = true;
        self
    }
    /// No bias (torchvision's convs before a separate norm).
    pub fn no_bias(mut self) -> Conv {
        self.bias = false;
        self
    }
    pub fn dirac(mut self) -> Conv {
        self.dirac = true;
        self
    }
}

/// `[connected]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Connected {
    pub output: usize,
    pub activation: Activation,
    pub batch_normalize: bool,
    pub bias: bool,
}

impl Connected {
    /// `output` units, Darknet's default activation (logistic), a bias, no batch norm.
    pub fn new(output: usize) -> Connected {
        Connected { output, activation: Activation::Logistic, batch_normalize: false, bias: true }
    }
    pub fn activation(mut self, activation: Activation) -> Connected {
        self.activation = activation;
        self
    }
}

/// `[maxpool]` and `[local_avgpool]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub size: usize,
    pub stride_x: usize,
    pub stride_y: usize,
    /// Total padding per axis: `padding / 2` before, the rest after. Darknet's default is
    /// `size - 1`.
    pub padding: usize,
}

impl Pool {
    /// A `size x size` window at `stride` with Darknet's default padding (`size - 1`).
    pub fn new(size: usize, stride: usize) -> Pool {
        Pool { size, stride_x: stride, stride_y: stride, padding: size.saturating_sub(1) }
    }
    pub fn padding(mut self, padding: usize) -> Pool {
        self.padding = padding;
        self
    }
}

/// `[route]`: concatenates the channels of `layers` in order; with `groups > 1` it takes group
/// `group_id` of each input's channels (AlexeyAB's channel split, as in CSP and ShuffleNet v2).
/// shendu's extension `slice=start,end` then keeps channels `start..end` of that result (the
/// uneven split of DPN's dual paths).
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub layers: Vec<usize>,
    pub groups: usize,
    pub group_id: usize,
    pub slice: Option<(usize, usize)>,
}

impl Route {
    /// Concatenation of `layers`.
    pub fn concat(layers: Vec<usize>) -> Route {
        Route { layers, groups: 1, group_id: 0, slice: None }
    }
    /// Group `group_id` of `groups` of one layer's channels.
    pub fn split(layer: usize, groups: usize, group_id: usize) -> Route {
        Route { layers: vec![layer], groups, group_id, slice: None }
    }
    /// Channels `start..end` of one layer's output.
    pub fn slice(layer: usize, start: usize, end: usize) -> Route {
        Route { layers: vec![layer], groups: 1, group_id: 0, slice: Some((start, end)) }
    }
}

/// `[shortcut]`: the previous layer's output plus those of `from`, then the activation.
#[derive(Clone, Debug, PartialEq)]
pub struct Shortcut {
    pub from: Vec<usize>,
    pub activation: Activation,
    pub weights: ShortcutWeights,
}

impl Shortcut {
    /// An unweighted sum with the previous layer, then `activation`.
    pub fn add(from: usize, activation: Activation) -> Shortcut {
        Shortcut { from: vec![from], activation, weights: ShortcutWeights::None }
    }
}

/// AlexeyAB's weighted shortcut (`weights_type`, `weights_normalization`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShortcutWeights {
    None,
    /// One weight per input (`from.len() + 1` of them).
    PerFeature {
        normalization: WeightsNormalization,
    },
    /// One weight per input and channel.
    PerChannel {
        normalization: WeightsNormalization,
    },
}

/// How weighted-shortcut weights are normalised before use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsNormalization {
    None,
    Relu,
    Softmax,
}

/// `[cost] type=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CostKind {
    Sse,
    Masked,
    Smooth,
    L1,
}

/// `[crop]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Crop {
    pub crop_height: usize,
    pub crop_width: usize,
    pub flip: bool,
}

/// `[reorg]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reorg {
    pub stride: usize,
    pub reverse: bool,
}

/// `[yolo]`: `mask` picks this head's anchors out of `anchors` (pairs of width, height in input
/// pixels).
#[derive(Clone, Debug, PartialEq)]
pub struct Yolo {
    pub classes: usize,
    pub mask: Vec<usize>,
    pub anchors: Vec<(f64, f64)>,
    /// AlexeyAB's `scale_x_y` (1: plain logistic offsets).
    pub scale_x_y: f64,
}

/// `[region]` (YOLOv2): `num` anchors (in grid cells), `coords` box numbers, softmax classes.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    pub classes: usize,
    pub coords: usize,
    pub num: usize,
    pub anchors: Vec<(f64, f64)>,
    pub softmax: bool,
}

/// The activations a cfg can name (Darknet's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// The sigmoid, Darknet's default for conv and connected layers.
    Logistic,
    Relu,
    Relu6,
    /// Darknet's leaky ReLU, slope 0.1.
    Leaky,
    Linear,
    Tanh,
    Elu,
    Selu,
    /// `x * sigmoid(x)`.
    Swish,
    /// `x * tanh(softplus(x))`.
    Mish,
    /// `x` for `x > 0`, `x^2/2 + x` for `-2 < x <= 0`, else 0.
    HardMish,
    Gelu,
}

impl Activation {
    /// Every activation with its cfg name.
    pub const ALL: [(Activation, &'static str); 12] = [
        (Activation::Logistic, "logistic"),
        (Activation::Relu, "relu"),
        (Activation::Relu6, "relu6"),
        (Activation::Leaky, "leaky"),
        (Activation::Linear, "linear"),
        (Activation::Tanh, "tanh"),
        (Activation::Elu, "elu"),
        (Activation::Selu, "selu"),
        (Activation::Swish, "swish"),
        (Activation::Mish, "mish"),
        (Activation::HardMish, "hard_mish"),
        (Activation::Gelu, "gelu"),
    ];

    /// The cfg name (`leaky`).
    pub fn name(self) -> &'static str {
        Activation::ALL.iter().find(|(a, _)| *a == self).map(|(_, n)| *n).unwrap_or("linear")
    }

    /// The activation a cfg names, or `None` for a name Darknet does not have.
    pub fn parse(name: &str) -> Option<Activation> {
        Activation::ALL.iter().find(|(_, n)| *n == name).map(|(a, _)| *a)
    }
}
