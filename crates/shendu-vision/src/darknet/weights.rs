//! Darknet `.weights` files: reading them into a network built from a [`NetSpec`] (or into a
//! name -> tensor map), writing them back, and Darknet's `partial`.
//!
//! The format (`load_weights_upto` / `save_weights_upto`, little-endian): a header of `int32
//! major, minor, revision` and the images `seen`, a `uint64` when `major * 10 + minor >= 2`
//! (AlexeyAB writes 0.2.5, pjreddie 0.2.0) and a `uint32` in older files; then, layer after
//! layer, raw float32 arrays:
//!
//! | layer | arrays, in file order |
//! |---|---|
//! | `[convolutional]` | biases `[n]` (the batch norm's shift when it has one); with batch norm its scales, running means, running variances `[n]`; weights `[n, c/groups, k, k]` |
//! | `[connected]` | biases `[out]`; weights `[out, in]` (stored `[in, out]` when `major > 1000` or `minor > 1000`); with batch norm its scales, means, variances `[out]` |
//! | `[batchnorm]` | biases, scales, running means, running variances `[c]` (AlexeyAB's order) |
//! | weighted `[shortcut]` | weights `[inputs]` or `[inputs, c]` |
//!
//! Other layers hold nothing. shendu's extensions keep files that Darknet can read wherever
//! Darknet can read the cfg: a conv or connected layer with `bias=0` (and no batch norm) still
//! stores `n` biases, all zero (Darknet ignores the key and adds them, so both compute the same);
//! reading nonzero biases into such a layer is an error. A DiracNet conv (`dirac=1`) stores its
//! `alpha [n]` and then `beta [n]` right after its weights (Darknet cannot run such a layer).
//!
//! Before reading anything, the file's size is checked against the network's (header plus 4
//! bytes per float); a mismatch names the file, both sizes, and the layer where the file runs
//! out. Writing goes to a temporary file that is renamed over the target, so a crash never
//! leaves a half-written file.
//!
//! ```
//! use shendu_core::DType;
//! use shendu_vision::darknet::weights::{read_weights, save_weights, WeightsHeader};
//! use shendu_vision::netspec::{Activation, Conv, Layer, LayerSpec, NetOptions, NetSpec};
//! let mut spec = NetSpec::new(NetOptions::input(3, 8, 8));
//! spec.push(LayerSpec::new(Layer::Conv(Conv::new(4, 3, 1).pad().bn().activation(Activation::Leaky))));
//! let net = spec.build(DType::F32).unwrap();
//! let dir = std::env::temp_dir().join(format!("shendu-doc-weights-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("tiny.weights");
//! save_weights(&path, &net, WeightsHeader::new(64), None).unwrap();
//! // header 20 bytes + 4 x (4 biases + 3 x 4 batch-norm values + 4*3*3*3 weights)
//! assert_eq!(std::fs::metadata(&path).unwrap().len(), 20 + 4 * (4 + 12 + 108));
//! let (header, tensors) = read_weights(&path, &spec, None).unwrap();
//! assert_eq!(header.seen, 64);
//! assert_eq!(tensors[0].0, "0.bn.bias");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use shendu_core::{DType, Tensor};
use shendu_nn::state::NamedTensors;
use shendu_nn::{Error, Module, Result};

use crate::netspec::{Layer, NetSpec, Network, ShortcutWeights};

/// The header of a `.weights` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightsHeader {
    pub major: i32,
    pub minor: i32,
    pub revision: i32,
    /// Images trained on so far (Darknet's `*net->seen`).
    pub seen: u64,
}

impl WeightsHeader {
    /// AlexeyAB's current version, 0.2.5, with `seen` images.
    pub fn new(seen: u64) -> WeightsHeader {
        WeightsHeader { major: 0, minor: 2, revision: 5, seen }
    }

    /// Whether `seen` is stored as 8 bytes (versions 0.2 and later) rather than 4.
    pub fn seen_is_u64(&self) -> bool {
        self.major as i64 * 10 + self.minor as i64 >= 2
    }

    /// Whether connected weights are stored transposed (`[in, out]`).
    pub fn transposed(&self) -> bool {
        self.major > 1000 || self.minor > 1000
    }

    /// The header's size in bytes: 20, or 16 for old files.
    pub fn len(&self) -> usize {
        if self.seen_is_u64() {
            20
        } else {
            16
        }
    }

    /// Never empty; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn to_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(20);
        b.extend_from_slice(&self.major.to_le_bytes());
        b.extend_from_slice(&self.minor.to_le_bytes());
        b.extend_from_slice(&self.revision.to_le_bytes());
        if self.seen_is_u64() {
            b.extend_from_slice(&self.seen.to_le_bytes());
        } else {
            // Old files count in 32 bits; a larger count saturates rather than wraps.
            b.extend_from_slice(&(self.seen.min(u32::MAX as u64) as u32).to_le_bytes());
        }
        b
    }

    /// Parses the header at the start of `bytes`.
    fn parse(bytes: &[u8], path: &Path) -> Result<WeightsHeader> {
        let int = |at: usize| bytes.get(at..at + 4).map(|s| i32::from_le_bytes([s[0], s[1], s[2], s[3]]));
        let too_short = || Error::format(path, format!("{} bytes is too short for a Darknet weights header (16 or 20 bytes)", bytes.len()));
        let (Some(major), Some(minor), Some(revision)) = (int(0), int(4), int(8)) else { return Err(too_short()) };
        let mut h = WeightsHeader { major, minor, revision, seen: 0 };
        h.seen = if h.seen_is_u64() {
            let s = bytes.get(12..20).ok_or_else(too_short)?;
            u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
        } else {
            int(12).ok_or_else(too_short)? as u32 as u64
        };
        Ok(h)
    }
}

/// One float array of the file: which tensor it is and how many floats it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightsEntry {
    /// The layer it belongs to.
    pub layer: usize,
    /// The parameter's name in the state dict; `None` for the zero biases of a layer without a
    /// bias.
    pub name: Option<String>,
    /// The parameter's shape (`[len]` for the zero biases).
    pub shape: Vec<usize>,
    /// Whether it is a connected layer's weight (stored transposed in transposed files).
    pub connected_weight: bool,
}

impl WeightsEntry {
    /// The number of floats.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every array of a `.weights` file for `spec`, in file order (the table in the module docs).
pub fn weights_layout(spec: &NetSpec) -> Result<Vec<WeightsEntry>> {
    let shapes = spec.shapes()?;
    let mut out = Vec::new();
    for (i, l) in spec.layers.iter().enumerate() {
        let x = shapes[i].input;
        let own = |leaf: &str| Some(format!("{}.{leaf}", spec.layer_name(i)));
        let bn = |leaf: &str| Some(format!("{}.{leaf}", spec.bn_name(i)));
        let mut push = |name: Option<String>, shape: Vec<usize>, connected_weight: bool| {
            out.push(WeightsEntry { layer: i, name, shape, connected_weight })
        };
        let bias = |has_bias: bool, has_bn: bool| -> Option<String> {
            match (has_bn, has_bias) {
                (true, _) => bn("bias"),
                (false, true) => own("bias"),
                (false, false) => None,
            }
        };
        match &l.layer {
            Layer::Conv(c) => {
                let n = c.filters;
                push(bias(c.bias, c.batch_normalize), vec![n], false);
                if c.batch_normalize {
                    for leaf in ["weight", "running_mean", "running_var"] {
                        push(bn(leaf), vec![n], false);
                    }
                }
                push(own("weight"), vec![n, x.c / c.groups.max(1), c.size, c.size], false);
                if c.dirac {
                    push(own("alpha"), vec![n], false);
                    push(own("beta"), vec![n], false);
                }
            }
            Layer::Connected(c) => {
                let n = c.output;
                push(bias(c.bias, c.batch_normalize), vec![n], false);
                push(own("weight"), vec![n, x.len()], true);
                if c.batch_normalize {
                    for leaf in ["weight", "running_mean", "running_var"] {
                        push(bn(leaf), vec![n], false);
                    }
                }
            }
            Layer::BatchNorm => {
                for leaf in ["bias", "weight", "running_mean", "running_var"] {
                    push(own(leaf), vec![x.c], false);
                }
            }
            Layer::Shortcut(s) => match s.weights {
                ShortcutWeights::None => {}
                ShortcutWeights::PerFeature { .. } => push(own("weight"), vec![s.from.len() + 1], false),
                ShortcutWeights::PerChannel { .. } => push(own("weight"), vec![s.from.len() + 1, x.c], false),
            },
            _ => {}
        }
    }
    Ok(out)
}

/// The size in bytes of a file with `header` holding layers `0..cutoff` (all with `None`).
pub fn weights_file_len(spec: &NetSpec, header: &WeightsHeader, cutoff: Option<usize>) -> Result<u64> {
    let cut = cutoff.unwrap_or(usize::MAX);
    let floats: usize = weights_layout(spec)?.iter().filter(|e| e.layer < cut).map(WeightsEntry::len).sum();
    Ok(header.len() as u64 + 4 * floats as u64)
}

/// Byte offsets where each layer's block ends: `ends[i]` is the file size holding layers `0..=i`.
fn layer_ends(layout: &[WeightsEntry], layers: usize, header_len: usize) -> Vec<u64> {
    let mut ends = vec![0u64; layers];
    let mut at = header_len as u64;
    let mut e = layout.iter().peekable();
    for (i, end) in ends.iter_mut().enumerate() {
        while let Some(entry) = e.next_if(|x| x.layer == i) {
            at += 4 * entry.len() as u64;
        }
        *end = at;
    }
    ends
}

/// Checks that a file of `actual` bytes holds at least layers `0..cutoff` and ends at a layer
/// boundary (exactly the whole network when `cutoff` is `None`).
fn check_size(
    spec: &NetSpec,
    layout: &[WeightsEntry],
    header: &WeightsHeader,
    cutoff: Option<usize>,
    actual: u64,
    path: &Path,
) -> Result<()> {
    let n = spec.layers.len();
    let cut = cutoff.unwrap_or(n).min(n);
    let ends = layer_ends(layout, n, header.len());
    let expected = if cut == 0 { header.len() as u64 } else { ends[cut - 1] };
    let full = ends.last().copied().unwrap_or(header.len() as u64);
    let upto = if cut == n { "the whole network".to_string() } else { format!("layers 0..{cut}") };
    // The layer whose block the file stops inside (there is one whenever `actual < full`).
    let stops_in = || match ends.iter().position(|&e| e > actual) {
        Some(i) => format!("layer {i} ({}) [{}]", spec.layer_name(i), spec.layers[i].layer.section()),
        None => "no layer".to_string(),
    };
    let version = format!("version {}.{}.{}, header {} bytes", header.major, header.minor, header.revision, header.len());
    if actual < expected {
        let mut msg = format!("the file is {actual} bytes but {upto} needs {expected} ({version}): it runs out in {}", stops_in());
        if let Some(k) = ends.iter().position(|&e| e == actual) {
            msg += &format!(
                "; it ends exactly after layer {k}, as a file cut by `partial` at {} layers does: load it with cutoff {}",
                k + 1,
                k + 1
            );
        }
        return Err(Error::format(path, msg));
    }
    let at_boundary = actual == header.len() as u64 || ends.contains(&actual);
    let ok = if cutoff.is_none() { actual == full } else { actual <= full && at_boundary };
    if !ok {
        let msg = if actual > full {
            format!("the file is {actual} bytes, {} more than the {full} the whole network needs ({version}): it was written for another network", actual - full)
        } else if cutoff.is_none() {
            format!("the file is {actual} bytes but the whole network needs {full} ({version}): it runs out in {}", stops_in())
        } else {
            format!("the file is {actual} bytes, which does not end at a layer boundary ({version}): it stops inside {}", stops_in())
        };
        return Err(Error::format(path, msg));
    }
    Ok(())
}

/// Reads the arrays of layers `0..cutoff` (all with `None`) from the bytes of a `.weights` file;
/// `path` names the file in errors.
pub fn weights_from_bytes(bytes: &[u8], spec: &NetSpec, cutoff: Option<usize>, path: &Path) -> Result<(WeightsHeader, NamedTensors)> {
    let header = WeightsHeader::parse(bytes, path)?;
    let layout = weights_layout(spec)?;
    check_size(spec, &layout, &header, cutoff, bytes.len() as u64, path)?;
    let cut = cutoff.unwrap_or(usize::MAX);
    let mut at = header.len();
    let mut out = Vec::new();
    for e in layout.iter().filter(|e| e.layer < cut) {
        let n = e.len();
        let floats: Vec<f32> = bytes[at..at + 4 * n].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        at += 4 * n;
        let Some(name) = &e.name else {
            if floats.iter().any(|&v| v != 0.0) {
                return Err(Error::format(
                    path,
                    format!(
                        "layer {} ({}) [{}] has no bias (bias=0) but the file holds nonzero biases for it",
                        e.layer,
                        spec.layer_name(e.layer),
                        spec.layers[e.layer].layer.section()
                    ),
                ));
            }
            continue;
        };
        let t = if e.connected_weight && header.transposed() {
            Tensor::from_vec(floats, &[e.shape[1], e.shape[0]])?.t()?.contiguous()?
        } else {
            Tensor::from_vec(floats, e.shape.clone())?
        };
        out.push((name.clone(), t));
    }
    Ok((header, out))
}

/// Reads a `.weights` file for `spec`: the header and the f32 tensors of layers `0..cutoff` (all
/// with `None`) by their state-dict names. The size is checked before anything is read.
pub fn read_weights(path: impl AsRef<Path>, spec: &NetSpec, cutoff: Option<usize>) -> Result<(WeightsHeader, NamedTensors)> {
    let path = path.as_ref();
    let mut f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let actual = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut head = Vec::with_capacity(20);
    (&mut f).take(20).read_to_end(&mut head).map_err(|e| Error::io(path, e))?;
    let header = WeightsHeader::parse(&head, path)?;
    check_size(spec, &weights_layout(spec)?, &header, cutoff, actual, path)?;
    let mut bytes = head;
    f.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    weights_from_bytes(&bytes, spec, cutoff, path)
}

/// Loads a `.weights` file into `net` (converting to its dtype) and returns the header. Layers
/// from `cutoff` on keep their values.
pub fn load_weights(path: impl AsRef<Path>, net: &Network, cutoff: Option<usize>) -> Result<WeightsHeader> {
    let path = path.as_ref();
    let (header, tensors) = read_weights(path, net.spec(), cutoff)?;
    let mut params = HashMap::new();
    net.visit_params("", &mut |name, p| {
        params.insert(name.to_string(), p.clone());
    });
    for (name, t) in tensors {
        let p = params.get(&name).ok_or_else(|| Error::format(path, format!("the network has no parameter '{name}'")))?;
        p.set(&t.to_dtype(p.dtype())?).map_err(|e| Error::format(path, format!("{name}: {e}")))?;
    }
    Ok(header)
}

/// The bytes of a `.weights` file holding layers `0..cutoff` (all with `None`) of `spec`, taking
/// each tensor by name from `tensors`.
pub fn weights_to_bytes(
    spec: &NetSpec,
    header: &WeightsHeader,
    tensors: &dyn Fn(&str) -> Option<Tensor>,
    cutoff: Option<usize>,
) -> Result<Vec<u8>> {
    let layout = weights_layout(spec)?;
    let cut = cutoff.unwrap_or(usize::MAX);
    let mut out = header.to_bytes();
    for e in layout.iter().filter(|e| e.layer < cut) {
        let Some(name) = &e.name else {
            out.extend(std::iter::repeat_n(0u8, 4 * e.len()));
            continue;
        };
        let t = tensors(name).ok_or_else(|| spec.layer_error(e.layer, format!("no tensor '{name}' to write")))?;
        if t.dims() != e.shape.as_slice() {
            return Err(spec.layer_error(e.layer, format!("tensor '{name}' is {} but the layer needs {:?}", t.shape(), e.shape)));
        }
        let t = if e.connected_weight && header.transposed() { t.t()? } else { t };
        for v in t.detach().to_dtype(DType::F32)?.to_vec::<f32>()? {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

/// Writes a `.weights` file of `spec` from named tensors, atomically.
pub fn write_weights(
    path: impl AsRef<Path>,
    spec: &NetSpec,
    header: &WeightsHeader,
    tensors: &[(String, Tensor)],
    cutoff: Option<usize>,
) -> Result<()> {
    let map: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let bytes = weights_to_bytes(spec, header, &|name| map.get(name).map(|t| (*t).clone()), cutoff)?;
    write_atomic(path.as_ref(), &bytes)
}

/// Writes `net`'s layers `0..cutoff` (all with `None`) to a `.weights` file, atomically.
pub fn save_weights(path: impl AsRef<Path>, net: &Network, header: WeightsHeader, cutoff: Option<usize>) -> Result<()> {
    let mut params = HashMap::new();
    net.visit_params("", &mut |name, p| {
        params.insert(name.to_string(), p.value());
    });
    let bytes = weights_to_bytes(net.spec(), &header, &|name| params.get(name).cloned(), cutoff)?;
    write_atomic(path.as_ref(), &bytes)
}

/// Darknet's `partial`: the first `cutoff` layers of `input` written to `output` with `seen`
/// reset to 0 (how `yolov4-tiny.conv.29` is made from `yolov4-tiny.weights`). Returns the
/// header written.
pub fn partial(spec: &NetSpec, input: impl AsRef<Path>, output: impl AsRef<Path>, cutoff: usize) -> Result<WeightsHeader> {
    let (header, tensors) = read_weights(input, spec, Some(cutoff))?;
    let out = WeightsHeader { seen: 0, ..header };
    write_weights(output, spec, &out, &tensors, Some(cutoff))?;
    Ok(out)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let Some(name) = path.file_name() else {
        return Err(Error::format(path, "cannot write weights: the path does not end in a file name"));
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    // The rename is durable once the directory is synced (not possible on every platform).
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
