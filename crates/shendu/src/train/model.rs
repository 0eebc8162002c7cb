//! The network a run trains: a zoo model by name, or a Darknet `.cfg` (`--cfg`), checked against
//! the data's image size and classes before anything is written.

use std::path::Path;

use shendu_nn::Module;
use shendu_vision::darknet;
use shendu_vision::netspec::{Layer, NetSpec};
use shendu_vision::zoo::{self, ModelOptions};

use super::TrainConfig;
use crate::cli::{CliError, CliResult};

/// A built network and the spec it came from, when it came from one (cfg files always; zoo
/// models described as a `NetSpec`). The spec is saved into checkpoints (`netspec_cfg`), so a
/// checkpoint rebuilds its own network.
pub struct BuiltModel {
    pub module: Box<dyn Module>,
    pub spec: Option<NetSpec>,
}

/// Builds what `cfg` names for inputs and classes `opts`.
pub fn build(cfg: &TrainConfig, opts: &ModelOptions) -> CliResult<BuiltModel> {
    let Some(path) = &cfg.cfg else {
        let module = zoo::build(&cfg.model, opts)?;
        let spec = zoo::spec(&cfg.model, opts).ok();
        return Ok(BuiltModel { module, spec });
    };
    let spec = read_spec(Path::new(path))?;
    check_fits(&spec, path, opts)?;
    let mut net = spec.build(opts.dtype).map_err(|e| CliError::bad(format!("--cfg {path}: {e}")))?;
    // The trainer's loss takes logits: a trailing [softmax] is left to the loss.
    net.set_logits_output(true);
    Ok(BuiltModel { module: Box::new(net), spec: Some(spec) })
}

/// Reads a cfg, printing Darknet-style notes (unused keys and the like) to stderr.
pub fn read_spec(path: &Path) -> CliResult<NetSpec> {
    let parsed = darknet::read_cfg(path).map_err(|e| CliError::bad(e.to_string()))?;
    for note in &parsed.notes {
        eprintln!("note: {note}");
    }
    Ok(parsed.spec)
}

/// The cfg's input must be the data's image size and its output one score per class.
fn check_fits(spec: &NetSpec, path: &str, opts: &ModelOptions) -> CliResult<()> {
    let input = spec.net.input_shape();
    let (h, w) = opts.input_hw;
    if (input.c, input.h, input.w) != (opts.in_channels, h, w) {
        return Err(CliError::bad(format!(
            "--cfg {path}: [net] takes {} x {} x {} (channels x height x width) but the data's images are {} x {h} x {w}",
            input.c, input.h, input.w, opts.in_channels
        )));
    }
    let shapes = spec.shapes().map_err(|e| CliError::bad(e.to_string()))?;
    let logits = spec
        .output_layer()
        .map(|o| match spec.layers[o].layer {
            Layer::Softmax { .. } if o > 0 => o - 1,
            _ => o,
        })
        .map(|l| shapes[l].output);
    match logits {
        Some(out) if out.len() == opts.classes => Ok(()),
        Some(out) => Err(CliError::bad(format!(
            "--cfg {path}: the network ends in {out} = {} outputs (before any [softmax]) but the data has {} classes",
            out.len(),
            opts.classes
        ))),
        None => Err(CliError::bad(format!("--cfg {path}: the network has no layers"))),
    }
}

/// Copies the cfg's `[net]` training options into `base` (flags applied afterwards override
/// them): batch, learning_rate, momentum, decay, and the learning-rate policy with burn_in,
/// power and max_batches as a `darknet:` schedule.
pub fn apply_net_options(base: &mut TrainConfig, spec: &NetSpec) {
    let n = &spec.net;
    base.batch = n.batch.max(1);
    base.lr = n.learning_rate;
    base.momentum = n.momentum;
    base.weight_decay = n.decay;
    base.schedule = darknet_schedule(spec);
}

/// The `darknet:` schedule string of a cfg's policy (see `shendu_nn::schedule::Schedule::parse`).
pub fn darknet_schedule(spec: &NetSpec) -> String {
    use shendu_nn::schedule::DarknetPolicy as P;
    let n = &spec.net;
    let list = |v: &[String]| v.join("|");
    let policy = match &n.policy {
        P::Constant => "policy=constant".to_string(),
        P::Steps { steps, scales } => format!(
            "policy=steps,steps={},scales={}",
            list(&steps.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            list(&scales.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        ),
        P::Poly { max_batches } => match if n.max_batches > 0 { n.max_batches } else { *max_batches } {
            // No max_batches in the cfg: the poly runs over the whole training.
            0 => "policy=poly".to_string(),
            m => format!("policy=poly,max_batches={m}"),
        },
        P::Sigmoid { gamma, step } => format!("policy=sigmoid,gamma={gamma},step={step}"),
        P::Exp { gamma } => format!("policy=exp,gamma={gamma}"),
        P::Step { step, scale } => format!("policy=step,step={step},scale={scale}"),
    };
    format!("darknet:{policy},burn_in={},power={}", n.burn_in, n.power)
}
