//! `shendu weights copy`: plans a weight transfer between differently named models, prints the
//! plan, and writes the destination with the copied values atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args, ValueEnum};
use serde_json::json;
use shendu_core::Tensor;
use shendu_nn::state::{self, plan_transfer, Metadata, NamedTensors, Regex, TransferPlan, TransferRule};
use shendu_nn::{ModuleExt, Param};
use shendu_vision::zoo::{self, ModelOptions};

use super::loaded::{parse_input, parse_normalize};
use super::weights::read;
use super::{CliError, CliResult};
use crate::train::checkpoint::{write_atomic, OPTIMIZER_PREFIX};

/// Parameters with their dotted names, as `ModuleExt::named_params` gives them.
type NamedParams = Vec<(String, Param)>;

/// How source names are matched to destination names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RuleArg {
    /// A destination name found inside a source name at a position above 0 (the notebook's
    /// `k.find(_k) > 0`): `module.features.0.weight` feeds `features.0.weight`.
    Suffix,
    /// The k-th source tensor of a shape feeds the k-th destination parameter of that shape.
    Order,
    /// Explicit pairs given by --map SRC=DST.
    Map,
    /// Source names renamed by --regex 'PATTERN=>REPLACEMENT' rules, then matched exactly.
    Regex,
}

/// Flags of `shendu weights copy`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("destination").required(true).args(["to", "to_model"])))]
#[command(after_help = "The rule defaults to map when --map is given, regex when --regex is given, suffix otherwise. \
    Optimizer state (optimizer.* tensors) of a checkpoint is neither copied nor kept.")]
pub struct CopyArgs {
    /// The file to take tensors from (checkpoint or weights).
    #[arg(long, value_name = "SRC")]
    pub from: PathBuf,
    /// The weights file whose tensors receive the values; its other tensors and its metadata are
    /// kept in OUT.
    #[arg(long, value_name = "DST")]
    pub to: Option<PathBuf>,
    /// Instead of --to: a freshly initialised zoo model (lenet, mlp) receives the values, with
    /// SRC's input size, classes and normalization when SRC's metadata has them.
    #[arg(long, value_name = "NAME")]
    pub to_model: Option<String>,
    /// The file to write (atomically: nothing is left behind on failure). Not needed with --dry-run.
    #[arg(long, value_name = "OUT", required_unless_present = "dry_run")]
    pub out: Option<PathBuf>,
    /// How names are matched.
    #[arg(long, value_enum, value_name = "RULE")]
    pub rule: Option<RuleArg>,
    /// An explicit pair for --rule map, repeatable: SRC_NAME=DST_NAME.
    #[arg(long = "map", value_name = "SRC=DST")]
    pub maps: Vec<String>,
    /// A rename rule for --rule regex, repeatable: 'PATTERN=>REPLACEMENT' (the first rule whose
    /// pattern matches a source name rewrites it; $1 and ${name} expand).
    #[arg(long = "regex", value_name = "PATTERN=>REPLACEMENT")]
    pub regexes: Vec<String>,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Fail unless every destination parameter receives a value, every source tensor is used
    /// and the plan has no problems (PyTorch's strict loading).
    #[arg(long)]
    pub strict: bool,
    /// The seed of the fresh model's initialisation with --to-model.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Print only one JSON object with the plan (pairs, leftovers, problems) and what was written.
    #[arg(long)]
    pub json: bool,
}

/// The transfer rule the flags ask for; conflicting or incomplete flags are errors naming them.
pub fn rule_from_flags(rule: Option<RuleArg>, maps: &[String], regexes: &[String]) -> CliResult<(RuleArg, TransferRule)> {
    let kind = match (rule, maps.is_empty(), regexes.is_empty()) {
        (None, false, false) => return Err(CliError::bad("--map, --regex: give one kind of rule, not both")),
        (None, false, true) => RuleArg::Map,
        (None, true, false) => RuleArg::Regex,
        (None, true, true) => RuleArg::Suffix,
        (Some(r), _, _) => r,
    };
    if kind != RuleArg::Map && !maps.is_empty() {
        return Err(CliError::bad("--map: only used with --rule map"));
    }
    if kind != RuleArg::Regex && !regexes.is_empty() {
        return Err(CliError::bad("--regex: only used with --rule regex"));
    }
    let rule = match kind {
        RuleArg::Suffix => TransferRule::SuffixMatch,
        RuleArg::Order => TransferRule::OrderAndShape,
        RuleArg::Map => {
            if maps.is_empty() {
                return Err(CliError::bad("--rule map: give at least one --map SRC=DST"));
            }
            let pairs = maps
                .iter()
                .map(|m| match m.split_once('=') {
                    Some((s, d)) if !s.trim().is_empty() && !d.trim().is_empty() => Ok((s.trim().to_string(), d.trim().to_string())),
                    _ => Err(CliError::bad(format!("--map: '{m}' is not SRC_NAME=DST_NAME"))),
                })
                .collect::<CliResult<Vec<_>>>()?;
            TransferRule::Map(pairs)
        }
        RuleArg::Regex => {
            if regexes.is_empty() {
                return Err(CliError::bad("--rule regex: give at least one --regex 'PATTERN=>REPLACEMENT'"));
            }
            let rules = regexes
                .iter()
                .map(|r| {
                    let (p, rep) =
                        r.split_once("=>").ok_or_else(|| CliError::bad(format!("--regex: '{r}' is not PATTERN=>REPLACEMENT")))?;
                    let re = Regex::new(p).map_err(|e| CliError::bad(format!("--regex: '{p}' is not a valid regex: {e}")))?;
                    Ok((re, rep.to_string()))
                })
                .collect::<CliResult<Vec<_>>>()?;
            TransferRule::Regex(rules)
        }
    };
    Ok((kind, rule))
}

/// The model tensors of a checkpoint or weights file (optimizer state left out) with its
/// metadata and the number of optimizer tensors dropped.
fn model_tensors(path: &Path) -> CliResult<(NamedTensors, Metadata, usize)> {
    let (tensors, metadata) = read(path)?;
    let total = tensors.len();
    let model: Vec<_> = tensors.into_iter().filter(|(n, _)| !n.starts_with(OPTIMIZER_PREFIX)).collect();
    let dropped = total - model.len();
    Ok((model, metadata, dropped))
}

/// A fresh zoo model's parameters and the metadata describing it.
fn fresh_model(name: &str, src_meta: &BTreeMap<String, String>, seed: u64) -> CliResult<(NamedParams, Metadata)> {
    let mut opts = ModelOptions::mnist();
    let mut meta = BTreeMap::new();
    if let Some((c, h, w)) = src_meta.get("input").and_then(|s| parse_input(s)) {
        opts.in_channels = c;
        opts.input_hw = (h, w);
    }
    if let Some(classes) = src_meta.get("classes").and_then(|c| c.parse::<usize>().ok()).filter(|&c| c > 0) {
        opts.classes = classes;
    }
    if let Some(n) = src_meta.get("normalize").filter(|n| parse_normalize(n).is_some()) {
        meta.insert("normalize".to_string(), n.clone());
    }
    shendu_core::manual_seed(seed);
    let model = zoo::build(name, &opts).map_err(|e| match e {
        shendu_nn::Error::Config { msg, .. } => CliError::bad(format!("--to-model: {msg}")),
        other => other.into(),
    })?;
    meta.insert("model".to_string(), name.to_string());
    meta.insert("input".to_string(), format!("{}x{}x{}", opts.in_channels, opts.input_hw.0, opts.input_hw.1));
    meta.insert("classes".to_string(), opts.classes.to_string());
    Ok((model.named_params(), meta))
}

/// Plans, prints, checks and (unless a dry run) applies and writes the transfer.
pub fn run(args: &CopyArgs) -> CliResult<()> {
    let (kind, rule) = rule_from_flags(args.rule, &args.maps, &args.regexes)?;
    if let Some(out) = &args.out {
        check_out(out)?;
    }
    let (src, src_meta, _) = model_tensors(&args.from)?;
    let (dst, metadata, dst_dropped, dst_label) = match (&args.to, &args.to_model) {
        (Some(to), _) => {
            let (tensors, meta, dropped) = model_tensors(to)?;
            (tensors.into_iter().map(|(n, t)| (n, Param::buffer(t))).collect::<Vec<_>>(), meta, dropped, to.display().to_string())
        }
        (None, Some(name)) => {
            let (params, meta) = fresh_model(name, &src_meta, args.seed)?;
            (params, meta, 0, format!("a fresh {name}"))
        }
        (None, None) => return Err(CliError::bad("--to, --to-model: give one destination")),
    };
    let plan = plan_transfer(&src, &dst, &rule)?;
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(out, "{} -> {dst_label} by the {} rule", args.from.display(), format!("{kind:?}").to_lowercase())?;
        writeln!(out, "{plan}")?;
        if dst_dropped > 0 {
            writeln!(out, "note: the {dst_dropped} optimizer-state tensor(s) of the destination are not kept (stale for new weights)")?;
        }
    }
    if args.strict && !(plan.is_clean() && plan.dst_untouched.is_empty() && plan.src_unused.is_empty()) {
        return Err(CliError::bad(format!(
            "--strict: the transfer is not exact: {} problem(s), {} destination param(s) untouched, {} source tensor(s) unused{}",
            plan.problems.len(),
            plan.dst_untouched.len(),
            plan.src_unused.len(),
            if args.json { "" } else { " (see the plan above)" }
        )));
    }
    if plan.pairs.is_empty() {
        return Err(CliError::bad(format!(
            "{}: no source tensor matches a destination parameter by the {} rule; nothing to copy",
            args.from.display(),
            format!("{kind:?}").to_lowercase()
        )));
    }
    let written = match (&args.out, args.dry_run) {
        (Some(path), false) => {
            plan.apply(&dst)?;
            let tensors: Vec<(String, Tensor)> = dst.iter().map(|(n, p)| (n.clone(), p.value())).collect();
            let bytes = state::to_safetensors_bytes(&tensors, &metadata)?;
            write_atomic(path, &bytes)?;
            Some(path)
        }
        _ => None,
    };
    if args.json {
        writeln!(out, "{}", plan_json(&plan, args, written))?;
    } else if let Some(path) = written {
        writeln!(out, "wrote {}: {} tensor(s), {} copied", path.display(), dst.len(), plan.pairs.len())?;
    } else {
        writeln!(out, "dry run: nothing written")?;
    }
    Ok(())
}

/// OUT must be a file path in an existing directory.
fn check_out(out: &Path) -> CliResult<()> {
    if out.is_dir() {
        return Err(CliError::bad(format!("{}: --out is a directory; give a file name", out.display())));
    }
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(CliError::bad(format!("{}: --out: the directory {} does not exist", out.display(), dir.display())));
    }
    Ok(())
}

fn plan_json(plan: &TransferPlan, args: &CopyArgs, written: Option<&PathBuf>) -> serde_json::Value {
    let pairs: Vec<_> = plan.pairs.iter().map(|(s, d, shape)| json!({"src": s, "dst": d, "shape": shape})).collect();
    json!({
        "command": "weights copy",
        "from": args.from.display().to_string(),
        "to": args.to.as_ref().map(|p| p.display().to_string()),
        "to_model": args.to_model,
        "pairs": pairs,
        "src_unused": plan.src_unused,
        "dst_untouched": plan.dst_untouched,
        "problems": plan.problems,
        "dry_run": args.dry_run,
        "out": written.map(|p| p.display().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_pick_the_rule() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(matches!(rule_from_flags(None, &[], &[]).unwrap(), (RuleArg::Suffix, TransferRule::SuffixMatch)));
        assert!(matches!(rule_from_flags(None, &s(&["a=b"]), &[]).unwrap(), (RuleArg::Map, TransferRule::Map(_))));
        assert!(matches!(rule_from_flags(None, &[], &s(&["^m\\.(.*)=>$1"])).unwrap(), (RuleArg::Regex, TransferRule::Regex(_))));
        for (rule, maps, regexes, want) in [
            (Some(RuleArg::Map), s(&[]), s(&[]), "--rule map"),
            (Some(RuleArg::Order), s(&["a=b"]), s(&[]), "--map"),
            (None, s(&["ab"]), s(&[]), "--map: 'ab'"),
            (None, s(&[]), s(&["(=>x"]), "--regex: '(' is not a valid regex"),
            (None, s(&["a=b"]), s(&["a=>b"]), "--map, --regex"),
        ] {
            let e = rule_from_flags(rule, &maps, &regexes).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        }
    }
}
