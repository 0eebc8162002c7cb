//! Reading Darknet `.cfg` files into a [`NetSpec`], by AlexeyAB's rules (`src/parser.c`,
//! `src/option_list.c`): every space, tab and carriage return is removed from each line, lines
//! starting with `#` or `;` are comments, `[section]` starts a layer, `key=value` splits at the
//! first `=`, the first of repeated keys wins, negative layer indices are relative to the layer
//! that names them, and missing keys take Darknet's defaults (`[convolutional]` is logistic).
//!
//! Where Darknet prints a warning and goes on with a guess (an unknown activation, a route to a
//! missing layer, a policy it does not know), this parser returns an error naming the file, the
//! line, the layer and the key instead. Darknet's harmless messages (`Unused field: 'k = v'`) come
//! back as notes.

use std::path::Path;

use shendu_nn::schedule::DarknetPolicy;
use shendu_nn::{Error, Result};

use super::keys::*;
use crate::netspec::{
    Activation, Connected, Conv, CostKind, Crop, Layer, LayerSpec, NetOptions, NetSpec, Pool, Region, Reorg, Route, Shortcut,
    ShortcutWeights, WeightsNormalization, Yolo,
};

/// A parsed cfg: the network and Darknet-style notes about it (unused keys, values Darknet reads
/// differently from how they look), each starting `file:line:`, for the caller to print.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedCfg {
    pub spec: NetSpec,
    pub notes: Vec<String>,
}

/// Reads and parses a cfg file (see [`parse_cfg`]); errors name the file.
pub fn read_cfg(path: impl AsRef<Path>) -> Result<ParsedCfg> {
    let parsed = read_cfg_unchecked(path)?;
    parsed.spec.shapes()?;
    Ok(parsed)
}

/// Reads and parses a cfg file without checking shapes (see [`parse_cfg_unchecked`]).
pub fn read_cfg_unchecked(path: impl AsRef<Path>) -> Result<ParsedCfg> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_cfg_unchecked(&String::from_utf8_lossy(&bytes), Some(&path.display().to_string()))
}

/// Parses cfg text and checks every layer's shape ([`NetSpec::shapes`]), so a cfg that parses is
/// one shendu can build. `origin` (the file name) is named in errors and notes.
///
/// ```
/// let cfg = "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n[route]\nlayers=-1,0\n";
/// let parsed = shendu_vision::darknet::parse_cfg(cfg, Some("tiny.cfg")).unwrap();
/// assert_eq!(parsed.spec.output_shape().unwrap(), shendu_vision::netspec::Chw::new(8, 8, 8));
/// let err = shendu_vision::darknet::parse_cfg(&cfg.replace("-1,0", "-1,5"), Some("tiny.cfg")).unwrap_err();
/// assert!(err.to_string().starts_with("tiny.cfg:11: layer 1 [route]: layers=5 refers to layer 5"), "{err}");
/// ```
pub fn parse_cfg(text: &str, origin: Option<&str>) -> Result<ParsedCfg> {
    let parsed = parse_cfg_unchecked(text, origin)?;
    parsed.spec.shapes()?;
    Ok(parsed)
}

/// Parses cfg text without checking shapes: for callers that change the input first (`shendu
/// summary --input`). Everything else [`parse_cfg`] checks is checked.
pub fn parse_cfg_unchecked(text: &str, origin: Option<&str>) -> Result<ParsedCfg> {
    let loc = Loc { origin };
    let mut sections = lex(text, &loc)?;
    let Some(first) = sections.first() else {
        return Err(loc.error(None, "", "the file has no sections: a cfg starts with [net]"));
    };
    if first.name != "[net]" && first.name != "[network]" {
        let msg = format!("the first section is {}; a cfg starts with [net] (or [network])", first.name);
        return Err(loc.error(Some(first.line), "", &msg));
    }
    let mut notes = Vec::new();
    let net = parse_net(&mut sections[0], &loc, &mut notes)?;
    let mut spec = NetSpec::new(net);
    spec.origin = origin.map(str::to_string);
    for (i, section) in sections.iter_mut().skip(1).enumerate() {
        spec.push(parse_layer(i, section, &loc, &mut notes)?);
    }
    Ok(ParsedCfg { spec, notes })
}

/// Where errors point: the file (if any) and a line.
struct Loc<'a> {
    origin: Option<&'a str>,
}

impl Loc<'_> {
    fn prefix(&self, line: Option<usize>) -> String {
        match (self.origin, line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.to_string(),
            (None, Some(l)) => format!("line {l}"),
            (None, None) => "cfg".to_string(),
        }
    }

    /// `file:line: context: msg`, the format of `NetSpec::layer_error`.
    fn error(&self, line: Option<usize>, context: &str, msg: &str) -> Error {
        let msg = if context.is_empty() { msg.to_string() } else { format!("{context}: {msg}") };
        Error::config(self.prefix(line), msg)
    }
}

struct Entry {
    key: String,
    value: String,
    line: usize,
    used: bool,
}

struct Section {
    /// The header as written, brackets included (`[convolutional]`).
    name: String,
    line: usize,
    entries: Vec<Entry>,
}

/// Darknet's `strip`: removes spaces, tabs, carriage returns and newlines anywhere in a line.
fn strip(line: &str) -> String {
    line.chars().filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n')).collect()
}

/// How errors name the section being read: `[net]` or `layer 3 [route]`.
fn context(sections: &[Section]) -> String {
    match sections.len() {
        0 => String::new(),
        1 => sections[0].name.clone(),
        n => format!("layer {} {}", n - 2, sections[n - 1].name),
    }
}

fn lex(text: &str, loc: &Loc) -> Result<Vec<Section>> {
    let mut sections: Vec<Section> = Vec::new();
    // A byte-order mark would otherwise hide the first `[`.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let s = strip(raw);
        match s.chars().next() {
            None | Some('#') | Some(';') => {}
            Some('[') => sections.push(Section { name: s, line, entries: Vec::new() }),
            Some(_) => {
                let ctx = context(&sections);
                let Some(section) = sections.last_mut() else {
                    return Err(loc.error(Some(line), "", &format!("'{s}' comes before the first section: a cfg starts with [net]")));
                };
                let Some((key, value)) = s.split_once('=') else {
                    return Err(loc.error(Some(line), &ctx, &format!("expected key=value, found '{s}'")));
                };
                if key.is_empty() {
                    return Err(loc.error(Some(line), &ctx, &format!("'=' without a key: '{s}'")));
                }
                if value.is_empty() {
                    return Err(loc.error(Some(line), &ctx, &format!("key '{key}' has no value")));
                }
                section.entries.push(Entry { key: key.to_string(), value: value.to_string(), line, used: false });
            }
        }
    }
    Ok(sections)
}

/// The options of one section, read the way Darknet's `option_find` reads them.
struct Opts<'s, 'l> {
    section: &'s mut Section,
    loc: &'s Loc<'l>,
    /// `[net]` or `layer 3 [route]`, for errors.
    context: String,
    /// The layer index (`None` for `[net]`), for resolving relative references.
    index: Option<usize>,
    notes: &'s mut Vec<String>,
}

impl Opts<'_, '_> {
    fn error(&self, line: usize, msg: &str) -> Error {
        self.loc.error(Some(line), &self.context, msg)
    }

    fn missing(&self, key: &str, what: &str) -> Error {
        self.loc.error(Some(self.section.line), &self.context, &format!("missing required key '{key}' ({what})"))
    }

    /// The first value of `key` (Darknet: the first of repeated keys wins), marked as used.
    fn find(&mut self, key: &str) -> Option<(String, usize)> {
        let e = self.section.entries.iter_mut().find(|e| e.key == key)?;
        e.used = true;
        Some((e.value.clone(), e.line))
    }

    /// A numeric value with Darknet's tolerance for a trailing `#comment` (atoi stops there).
    fn numeric(&mut self, key: &str) -> Option<(String, usize)> {
        let (value, line) = self.find(key)?;
        match value.split_once('#') {
            Some((head, _)) => {
                let prefix = self.loc.prefix(Some(line));
                self.notes.push(format!("{prefix}: '{key} = {value}' reads as '{head}': Darknet ignores the text from '#' on"));
                Some((head.to_string(), line))
            }
            None => Some((value, line)),
        }
    }

    fn int(&mut self, key: &str, default: i64) -> Result<i64> {
        match self.numeric(key) {
            None => Ok(default),
            Some((v, line)) => parse_int(&v).map_err(|why| self.error(line, &format!("{key}={v}: {why}"))),
        }
    }

    fn count(&mut self, key: &str, default: usize) -> Result<usize> {
        match self.numeric(key) {
            None => Ok(default),
            Some((v, line)) => parse_count(&v).map_err(|why| self.error(line, &format!("{key}={v}: {why}"))),
        }
    }

    fn float(&mut self, key: &str, default: f64) -> Result<f64> {
        match self.numeric(key) {
            None => Ok(default),
            Some((v, line)) => parse_float(&v).map_err(|why| self.error(line, &format!("{key}={v}: {why}"))),
        }
    }

    fn flag(&mut self, key: &str, default: bool) -> Result<bool> {
        Ok(self.int(key, default as i64)? != 0)
    }

    fn string(&mut self, key: &str) -> Option<String> {
        self.find(key).map(|(v, _)| v)
    }

    fn list<T>(&mut self, key: &str, item: fn(&str) -> std::result::Result<T, String>) -> Result<Option<(Vec<T>, usize)>> {
        let Some((v, line)) = self.numeric(key) else { return Ok(None) };
        let mut out = Vec::new();
        for (n, part) in v.split(',').enumerate() {
            if part.is_empty() {
                return Err(self.error(line, &format!("{key}={v}: item {} is empty", n + 1)));
            }
            out.push(item(part).map_err(|why| self.error(line, &format!("{key}={v}: '{part}': {why}")))?);
        }
        Ok(Some((out, line)))
    }

    fn activation(&mut self, key: &str, default: Activation) -> Result<Activation> {
        let Some((name, line)) = self.find(key) else { return Ok(default) };
        Activation::parse(&name).ok_or_else(|| {
            let known: Vec<&str> = Activation::ALL.iter().map(|(_, n)| *n).collect();
            self.error(line, &format!("unknown activation '{name}'; known activations: {}", known.join(", ")))
        })
    }

    /// Absolute indices of the layers `key` names (negative: relative to this layer), each of
    /// which must come before this layer.
    fn layer_refs(&mut self, key: &str, what: &str) -> Result<Vec<usize>> {
        let Some((values, line)) = self.list(key, parse_int)? else { return Err(self.missing(key, what)) };
        let i = self.index.unwrap_or(0);
        values.into_iter().map(|v| self.resolve(key, v, i, line)).collect()
    }

    fn resolve(&self, key: &str, v: i64, i: usize, line: usize) -> Result<usize> {
        let abs = if v < 0 { i as i64 + v } else { v };
        if abs >= 0 && abs < i as i64 {
            return Ok(abs as usize);
        }
        let why = if abs < 0 {
            "which does not exist".to_string()
        } else if abs == i as i64 {
            "which is this layer itself".to_string()
        } else {
            "which is not an earlier layer".to_string()
        };
        let before = match i {
            0 => "no layer comes before it".to_string(),
            1 => "only layer 0 comes before it".to_string(),
            _ => format!("layers 0 to {} come before it", i - 1),
        };
        Err(self.error(line, &format!("{key}={v} refers to layer {abs}, {why} ({before})")))
    }

    /// Everything not read, in file order, for `LayerSpec::extra`; notes Darknet's `Unused
    /// field` for keys Darknet itself does not know in this section and for repeated keys, and
    /// that shendu ignores keys which change what Darknet computes.
    /// `known: None` means every key is known (the `[net]` section).
    fn rest(self, known: Option<&[&str]>, unsupported: &[&str]) -> Vec<(String, String)> {
        let mut extra = Vec::new();
        let entries = &self.section.entries;
        for (n, e) in entries.iter().enumerate() {
            if e.used {
                continue;
            }
            let prefix = self.loc.prefix(Some(e.line));
            let repeat = entries[..n].iter().any(|p| p.key == e.key);
            if repeat {
                self.notes.push(format!("{prefix}: Unused field: '{} = {}' (repeats '{}'; the first one counts)", e.key, e.value, e.key));
            } else if known.is_some_and(|k| !k.contains(&e.key.as_str()) && !GENERIC_KEYS.contains(&e.key.as_str())) {
                self.notes.push(format!("{prefix}: Unused field: '{} = {}'", e.key, e.value));
            } else if unsupported.contains(&e.key.as_str()) && e.value != "0" {
                self.notes.push(format!(
                    "{prefix}: '{} = {}' changes what Darknet computes; shendu keeps it in the spec but does not implement it",
                    e.key, e.value
                ));
            }
            extra.push((e.key.clone(), e.value.clone()));
        }
        extra
    }
}

/// An integer in Darknet's range (its `int` is 32 bits).
fn parse_int(v: &str) -> std::result::Result<i64, String> {
    let out_of_range = || format!("out of range (Darknet's integers are 32-bit, {}..={})", i32::MIN, i32::MAX);
    let n = v.parse::<i64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => out_of_range(),
        _ => "expected an integer".to_string(),
    })?;
    i32::try_from(n).map(i64::from).map_err(|_| out_of_range())
}

fn parse_count(v: &str) -> std::result::Result<usize, String> {
    let n = parse_int(v)?;
    if n < 0 {
        return Err("must not be negative".to_string());
    }
    usize::try_from(n).map_err(|_| "out of range".to_string())
}

fn parse_float(v: &str) -> std::result::Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err("expected a finite number".to_string()),
        Err(_) => Err("expected a number".to_string()),
    }
}

fn parse_net(section: &mut Section, loc: &Loc, notes: &mut Vec<String>) -> Result<NetOptions> {
    let line = section.line;
    let context = section.name.clone();
    let mut o = Opts { section, loc, context, index: None, notes };
    let mut n = NetOptions::input(0, 0, 0);
    n.line = Some(line);
    n.max_batches = o.count("max_batches", 0)?;
    n.batch = o.count("batch", 1)?;
    n.learning_rate = o.float("learning_rate", 0.001)?;
    n.momentum = o.float("momentum", 0.9)?;
    n.decay = o.float("decay", 0.0001)?;
    n.subdivisions = o.count("subdivisions", 1)?;
    n.height = o.count("height", 0)?;
    n.width = o.count("width", 0)?;
    n.channels = o.count("channels", 0)?;
    n.burn_in = o.count("burn_in", 0)?;
    n.power = o.float("power", 4.0)?;
    for (key, value) in [("batch", n.batch), ("subdivisions", n.subdivisions)] {
        if value == 0 {
            let at = o.find(key).map(|(_, l)| l).unwrap_or(line);
            return Err(o.error(at, &format!("{key} must be at least 1")));
        }
    }
    let (policy, policy_line) = o.find("policy").unwrap_or(("constant".to_string(), line));
    n.policy = match policy.as_str() {
        "constant" => DarknetPolicy::Constant,
        "steps" => {
            let steps = o.list("steps", parse_count)?;
            let scales = o.list("scales", parse_float)?;
            let (Some((steps, at)), Some((scales, _))) = (steps, scales) else {
                return Err(o.error(policy_line, "policy=steps needs both steps= and scales="));
            };
            if steps.len() != scales.len() {
                return Err(o.error(at, &format!("steps= has {} values but scales= has {}", steps.len(), scales.len())));
            }
            DarknetPolicy::Steps { steps, scales }
        }
        "step" => DarknetPolicy::Step { step: o.count("step", 1)?, scale: o.float("scale", 1.0)? },
        "poly" => DarknetPolicy::Poly { max_batches: n.max_batches },
        "exp" => DarknetPolicy::Exp { gamma: o.float("gamma", 1.0)? },
        "sigmoid" => DarknetPolicy::Sigmoid { gamma: o.float("gamma", 1.0)?, step: o.count("step", 1)? },
        other => {
            let msg = format!("learning-rate policy '{other}' is not supported; shendu knows constant, steps, step, poly, exp, sigmoid");
            return Err(o.error(policy_line, &msg));
        }
    };
    // Darknet reports no unused [net] keys: augmentation and the like are all known there.
    n.extra = o.rest(None, &[]);
    Ok(n)
}

fn parse_layer(i: usize, section: &mut Section, loc: &Loc, notes: &mut Vec<String>) -> Result<LayerSpec> {
    let line = section.line;
    let kind = canonical(&section.name).map_err(|msg| loc.error(Some(line), &format!("layer {i}"), &msg))?;
    let context = format!("layer {i} [{kind}]");
    let mut o = Opts { section, loc, context, index: Some(i), notes };
    let (layer, known, unsupported): (Layer, &[&str], &[&str]) = match kind {
        "convolutional" => (Layer::Conv(parse_conv(&mut o)?), CONV_KNOWN, CONV_UNSUPPORTED),
        "connected" => {
            let mut c = Connected::new(o.count("output", 1)?).activation(o.activation("activation", Activation::Logistic)?);
            c.batch_normalize = o.flag("batch_normalize", false)?;
            c.bias = o.flag("bias", true)?;
            (Layer::Connected(c), &[], &[])
        }
        "maxpool" => (Layer::MaxPool(parse_pool(&mut o)?), MAXPOOL_KNOWN, &["maxpool_depth", "antialiasing"]),
        "local_avgpool" => (Layer::LocalAvgPool(parse_pool(&mut o)?), &[], &[]),
        "avgpool" => (Layer::AvgPool, &[], &[]),
        "route" => {
            let layers = o.layer_refs("layers", "the layers to concatenate")?;
            let groups = o.count("groups", 1)?;
            let group_id = o.count("group_id", 0)?;
            let slice = match o.list("slice", parse_count)? {
                None => None,
                Some((v, _)) if v.len() == 2 => Some((v[0], v[1])),
                Some((v, at)) => return Err(o.error(at, &format!("slice= takes start,end; found {} values", v.len()))),
            };
            (Layer::Route(Route { layers, groups, group_id, slice }), &[], &[])
        }
        "shortcut" => (Layer::Shortcut(parse_shortcut(&mut o)?), &["weights_normalization"], &[]),
        "upsample" => {
            let stride = o.int("stride", 2)?;
            let stride = isize::try_from(stride).map_err(|_| o.error(line, "stride is out of range"))?;
            (Layer::Upsample { stride, scale: o.float("scale", 1.0)? }, &[], &[])
        }
        "dropout" => {
            let probability = o.float("probability", 0.2)?;
            if !(0.0..1.0).contains(&probability) {
                let at = o.find("probability").map(|(_, l)| l).unwrap_or(line);
                return Err(o.error(at, &format!("probability={probability} must be in [0, 1)")));
            }
            (Layer::Dropout { probability }, DROPOUT_KNOWN, &["dropblock"])
        }
        "softmax" => (Layer::Softmax { groups: o.count("groups", 1)?, temperature: o.float("temperature", 1.0)? }, SOFTMAX_KNOWN, &[]),
        "cost" => {
            let kind = match o.find("type") {
                None => CostKind::Sse,
                Some((t, at)) => match t.as_str() {
                    "sse" => CostKind::Sse,
                    "masked" => CostKind::Masked,
                    "smooth" => CostKind::Smooth,
                    "L1" => CostKind::L1,
                    _ => return Err(o.error(at, &format!("unknown cost type '{t}'; known: sse, masked, smooth, L1"))),
                },
            };
            (Layer::Cost { kind, scale: o.float("scale", 1.0)? }, &["ratio"], &[])
        }
        "crop" => {
            let crop =
                Crop { crop_height: o.count("crop_height", 1)?, crop_width: o.count("crop_width", 1)?, flip: o.flag("flip", false)? };
            (Layer::Crop(crop), CROP_KNOWN, &[])
        }
        "scale_channels" => {
            let from = o.layer_refs("from", "the layer whose channels are scaled")?;
            let [from] = from[..] else {
                return Err(o.error(line, &format!("from= names {} layers; [scale_channels] takes one", from.len())));
            };
            (Layer::ScaleChannels { from, activation: o.activation("activation", Activation::Linear)? }, &["scale_wh"], &["scale_wh"])
        }
        "reorg" => (Layer::Reorg(Reorg { stride: o.count("stride", 1)?, reverse: o.flag("reverse", false)? }), &[], &[]),
        "yolo" => (Layer::Yolo(parse_yolo(&mut o)?), YOLO_KNOWN, &[]),
        "region" => (Layer::Region(parse_region(&mut o)?), REGION_KNOWN, &[]),
        "channel_shuffle" => match o.numeric("groups") {
            None => return Err(o.missing("groups", "the number of channel groups")),
            Some((v, at)) => {
                (Layer::ChannelShuffle { groups: parse_count(&v).map_err(|why| o.error(at, &format!("groups={v}: {why}")))? }, &[], &[])
            }
        },
        "batchnorm" => (Layer::BatchNorm, &[], &[]),
        _ => (Layer::Activation(o.activation("activation", Activation::Linear)?), &[], &[]),
    };
    let name = o.string("name");
    let bn_name = o.string("bn_name");
    let extra = o.rest(Some(known), unsupported);
    Ok(LayerSpec { layer, name, bn_name, line: Some(line), extra })
}

fn parse_conv(o: &mut Opts) -> Result<Conv> {
    let filters = o.count("filters", 1)?;
    let groups = o.count("groups", 1)?;
    let size = o.count("size", 1)?;
    // AlexeyAB: stride_x/stride_y win when both are set, `stride` fills in whichever is not.
    let sx = o.int("stride_x", -1)?;
    let sy = o.int("stride_y", -1)?;
    let stride = o.count("stride", 1)?;
    let pick = |s: i64| if s < 1 { Ok(stride) } else { usize::try_from(s) };
    let (Ok(stride_x), Ok(stride_y)) = (pick(sx), pick(sy)) else {
        return Err(o.error(o.section.line, "stride_x/stride_y out of range"));
    };
    let mut dilation = o.count("dilation", 1)?;
    if size == 1 {
        dilation = 1;
    }
    let pad = o.int("pad", 0)?;
    let mut padding = o.count("padding", 0)?;
    if pad != 0 {
        padding = size / 2;
    }
    let mut c = Conv::new(filters, size, 1).groups(groups).dilation(dilation).padding(padding);
    c.stride_x = stride_x;
    c.stride_y = stride_y;
    c.activation = o.activation("activation", Activation::Logistic)?;
    c.batch_normalize = o.flag("batch_normalize", false)?;
    c.bias = o.flag("bias", true)?;
    c.dirac = o.flag("dirac", false)?;
    Ok(c)
}

fn parse_pool(o: &mut Opts) -> Result<Pool> {
    let stride = o.count("stride", 1)?;
    let stride_x = o.count("stride_x", stride)?;
    let stride_y = o.count("stride_y", stride)?;
    let size = o.count("size", stride)?;
    let padding = o.count("padding", size.saturating_sub(1))?;
    Ok(Pool { size, stride_x, stride_y, padding })
}

fn parse_shortcut(o: &mut Opts) -> Result<Shortcut> {
    let from = o.layer_refs("from", "the layers to add")?;
    let activation = o.activation("activation", Activation::Linear)?;
    let weights = match o.find("weights_type") {
        None => ShortcutWeights::None,
        Some((t, at)) => {
            let normalization = match t.as_str() {
                "none" => None,
                "per_feature" | "per_layer" | "per_channel" => Some(match o.find("weights_normalization") {
                    None => WeightsNormalization::None,
                    Some((n, at)) => match n.as_str() {
                        "none" => WeightsNormalization::None,
                        "relu" | "avg_relu" => WeightsNormalization::Relu,
                        "softmax" => WeightsNormalization::Softmax,
                        _ => return Err(o.error(at, &format!("unknown weights_normalization '{n}'; known: none, relu, softmax"))),
                    },
                }),
                _ => return Err(o.error(at, &format!("unknown weights_type '{t}'; known: none, per_feature, per_channel"))),
            };
            match (t.as_str(), normalization) {
                ("per_channel", Some(normalization)) => ShortcutWeights::PerChannel { normalization },
                (_, Some(normalization)) => ShortcutWeights::PerFeature { normalization },
                (_, None) => ShortcutWeights::None,
            }
        }
    };
    Ok(Shortcut { from, activation, weights })
}

/// `anchors=`: `count` (width, height) pairs. Darknet reads at most `2 * count` numbers and
/// leaves missing ones at 0.5; shendu requires them all.
fn anchors(o: &mut Opts, count: usize) -> Result<Vec<(f64, f64)>> {
    let Some((values, line)) = o.list("anchors", parse_float)? else {
        return Err(o.missing("anchors", "the anchor box sizes"));
    };
    if values.len() < 2 * count {
        return Err(o.error(line, &format!("num={count} needs {} anchor values; anchors= has {}", 2 * count, values.len())));
    }
    if values.len() > 2 * count {
        let prefix = o.loc.prefix(Some(line));
        o.notes.push(format!("{prefix}: anchors= has {} values; Darknet reads only the first {} (num={count})", values.len(), 2 * count));
    }
    Ok(values.chunks_exact(2).take(count).map(|p| (p[0], p[1])).collect())
}

fn parse_yolo(o: &mut Opts) -> Result<Yolo> {
    let classes = o.count("classes", 20)?;
    let num = o.count("num", 1)?;
    let Some((mask, _)) = o.list("mask", parse_count)? else {
        return Err(o.missing("mask", "which anchors this head uses"));
    };
    let anchors = anchors(o, num)?;
    Ok(Yolo { classes, mask, anchors, scale_x_y: o.float("scale_x_y", 1.0)? })
}

fn parse_region(o: &mut Opts) -> Result<Region> {
    let coords = o.count("coords", 4)?;
    let classes = o.count("classes", 20)?;
    let num = o.count("num", 1)?;
    let softmax = o.flag("softmax", false)?;
    let anchors = anchors(o, num)?;
    Ok(Region { classes, coords, num, anchors, softmax })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn darknet_lexing_rules() {
        assert_eq!(strip(" fil ters =\t3 \r"), "filters=3");
        assert_eq!(parse_int("2147483647"), Ok(i32::MAX as i64));
        assert!(parse_int("2147483648").unwrap_err().contains("32-bit"));
        assert_eq!(parse_float(".1"), Ok(0.1));
        assert!(parse_float("inf").is_err() && parse_float("1e999").is_err());
        let text = "\u{feff}[net]\n# c\n; c\nwidth = 4\n\n[conv]\nfilters=2\nfilters=3\n";
        let sections = lex(text, &Loc { origin: None }).unwrap();
        assert_eq!(sections.len(), 2);
        assert_eq!((sections[1].name.as_str(), sections[1].line, sections[1].entries.len()), ("[conv]", 6, 2));
    }

    #[test]
    fn references_resolve_relative_and_absolute() {
        let cfg = "[net]\nwidth=4\nheight=4\nchannels=1\n[avgpool]\n[avgpool]\n[route]\nlayers=-1,0,1\n";
        let spec = parse_cfg(cfg, None).unwrap().spec;
        assert_eq!(spec.layers[2].layer, Layer::Route(Route::concat(vec![1, 0, 1])));
        let e = parse_cfg(&cfg.replace("-1,0,1", "2"), None).unwrap_err().to_string();
        assert!(e.contains("layer 2 [route]: layers=2 refers to layer 2, which is this layer itself"), "{e}");
    }
}
