//! `shendu summary`: a network's layer table, from a Darknet cfg or a zoo model: Darknet's own
//! table (AlexeyAB's format, `Total BFLOPS` and `avg_outputs` by Darknet's rules), then shendu's
//! columns (parameters, MACs, activation memory).

use clap::Args;
use serde_json::json;
use shendu_core::DType;
use shendu_vision::netspec::{Chw, NetSpec, Summary};
use shendu_vision::{darknet, zoo};

use super::loaded::parse_input;
use super::ml::print_json;
use super::{CliError, CliResult};
use crate::train::mem_report::{self, MemPlan};

/// Flags of `shendu summary`.
#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// A Darknet .cfg file.
    #[arg(long, value_name = "FILE", conflicts_with = "model", required_unless_present = "model")]
    pub cfg: Option<String>,
    /// A zoo model (see `shendu train --help` for the names).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// The input as CxHxW, overriding the cfg's [net] width/height/channels (zoo models: the
    /// input the model was designed for: 3x224x224, 3x32x32 for CIFAR models, 1x28x28 for
    /// lenet, mlp and the *_mnist models).
    #[arg(long, value_name = "CxHxW")]
    pub input: Option<String>,
    /// Classes of a zoo model (default 1000 for ImageNet models, else 10).
    #[arg(long, value_name = "N")]
    pub classes: Option<usize>,
    /// Print one JSON object instead of the tables.
    #[arg(long)]
    pub json: bool,
    /// Also write the network as a Darknet .cfg to FILE (zoo models become cfg files that
    /// `shendu train --cfg` trains and that read back to the same network).
    #[arg(long, value_name = "FILE")]
    pub write_cfg: Option<std::path::PathBuf>,
    /// Also print the training memory per layer at --batch (parameters, gradients, optimizer
    /// state, activations kept for backward) and the predicted peak, measured on one probe
    /// training step on zeros, as `shendu train --mem-report` does.
    #[arg(long)]
    pub memory: bool,
    /// Batch size of the --memory section.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Optimizer of the --memory section: sgd (with momentum), adam, adamw or rmsprop.
    #[arg(long, value_name = "NAME", default_value = "sgd")]
    pub optimizer: String,
}

/// Prints the summary the flags ask for.
pub fn run(args: SummaryArgs) -> CliResult<()> {
    let input = match &args.input {
        None => None,
        Some(raw) => Some(parse_input(raw).ok_or_else(|| CliError::bad(format!("--input {raw}: expected CxHxW, e.g. 3x416x416")))?),
    };
    let (spec, source) = match (&args.cfg, &args.model) {
        (Some(path), _) => {
            let parsed = darknet::read_cfg_unchecked(path)?;
            for note in &parsed.notes {
                eprintln!("{note}");
            }
            let mut spec = parsed.spec;
            if let Some((c, h, w)) = input {
                (spec.net.channels, spec.net.height, spec.net.width) = (c, h, w);
            }
            (spec, path.clone())
        }
        (None, Some(name)) => {
            // The input and classes the model was designed for, unless the flags say otherwise.
            let mut opts = zoo::ModelOptions::for_model(name)?;
            if let Some((c, h, w)) = input {
                (opts.in_channels, opts.input_hw) = (c, (h, w));
            }
            opts.classes = args.classes.unwrap_or(opts.classes);
            opts.dtype = DType::F32;
            (zoo::spec(name, &opts)?, format!("model {name}"))
        }
        (None, None) => return Err(CliError::bad("give --cfg FILE or --model NAME")),
    };
    let summary = spec.summary()?;
    if let Some(path) = &args.write_cfg {
        let text = format!("# {source}, written by `shendu summary --write-cfg`\n{}", darknet::to_cfg(&spec));
        std::fs::write(path, text).map_err(|e| CliError::bad(format!("--write-cfg {}: cannot write: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
    }
    let memory = match args.memory {
        true => Some(memory_plan(&spec, &args)?),
        false => None,
    };
    if args.json {
        let mut value = to_json(&summary, &source);
        if let Some(plan) = &memory {
            value["memory"] = serde_json::to_value(plan).map_err(|e| CliError::internal(e.to_string()))?;
            value["memory"]["predicted_peak_bytes"] = json!(plan.predicted_peak());
        }
        return print_json(&value);
    }
    print!("{}", summary.darknet_table());
    println!();
    print!("{}", summary.table());
    if let Some(plan) = &memory {
        println!();
        print!("{}", mem_report::render_plan(plan, &source));
    }
    Ok(())
}

/// The `--memory` section: one probe training step of the built network at `--batch`.
fn memory_plan(spec: &NetSpec, args: &SummaryArgs) -> CliResult<MemPlan> {
    if !crate::train::OPTIMIZERS.contains(&args.optimizer.as_str()) {
        return Err(CliError::bad(format!(
            "--optimizer: unknown optimizer '{}'; choose one of {}",
            args.optimizer,
            crate::train::OPTIMIZERS.join(", ")
        )));
    }
    let mut net = spec.build(DType::F32)?;
    // The probe's loss takes logits: a trailing [softmax] is left to it, as in training.
    net.set_logits_output(true);
    let input = spec.net.input_shape();
    let batch = args.batch as usize;
    let factor = mem_report::optimizer_state_factor(&args.optimizer, 0.9);
    // No data loader here: the prediction is the network's alone.
    MemPlan::probe(&net, &[input.c, input.h, input.w], (batch, batch), factor, 0)
}

fn chw(s: Chw) -> serde_json::Value {
    json!([s.c, s.h, s.w])
}

fn to_json(s: &Summary, source: &str) -> serde_json::Value {
    let layers: Vec<serde_json::Value> = s
        .layers
        .iter()
        .map(|l| {
            json!({
                "index": l.index,
                "type": l.kind,
                "name": l.name,
                "input": chw(l.input),
                "output": chw(l.output),
                "params": l.params,
                "buffers": l.buffers,
                "macs": l.macs,
                "activation_bytes": l.activation_bytes,
                "bflops": l.bflops,
                "darknet": l.darknet,
            })
        })
        .collect();
    json!({
        "source": source,
        "input": chw(s.input),
        "layers": layers,
        "params": s.params,
        "buffers": s.buffers,
        "macs": s.macs,
        "activation_bytes": s.activation_bytes,
        "darknet_total_bflops": s.total_bflops,
        "darknet_avg_outputs": s.avg_outputs,
        "darknet_table": s.darknet_table(),
    })
}
