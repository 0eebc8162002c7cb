//! `shendu entropy`: entropy of P and, given Q, cross-entropy, KL both ways and Jensen-Shannon;
//! or the mutual information of a joint table.

use clap::Args;
use serde_json::{json, Value};
use shendu_ml::info::{self, Base, Distribution};

use super::ml::{ml_err, parse_list, print_json};
use super::{CliError, CliResult};

/// Flags of `shendu entropy`.
#[derive(Args, Debug)]
pub struct EntropyArgs {
    /// Distribution P: comma-separated probabilities (or logits with --logits).
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub p: Option<String>,
    /// Distribution Q, with as many outcomes as P.
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub q: Option<String>,
    /// Joint table of (X, Y) for mutual information: rows separated by ';', e.g. "0.25,0.25;0.25,0.25".
    #[arg(long, value_name = "TABLE")]
    pub joint: Option<String>,
    /// Read --p and --q as logits (softmax by a stable log-softmax).
    #[arg(long)]
    pub logits: bool,
    /// Divide probabilities by their sum instead of rejecting a sum other than 1 (with a warning).
    #[arg(long)]
    pub normalize: bool,
    /// Logarithm base: 2 (bits) or e (nats).
    #[arg(long, value_name = "2|e", default_value = "2")]
    pub base: String,
    /// Print one JSON object instead.
    #[arg(long)]
    pub json: bool,
}

fn distribution(flag: &str, text: &str, args: &EntropyArgs) -> CliResult<Distribution> {
    let v = parse_list(flag, text)?;
    if args.logits {
        return Distribution::from_logits(&v).map_err(|e| CliError::bad(format!("{flag}: {e}")));
    }
    let sum: f64 = v.iter().sum();
    if args.normalize && (sum - 1.0).abs() > info::SUM_TOLERANCE {
        eprintln!("shendu entropy: warning: {flag} sums to {sum}; normalised");
    }
    Distribution::from_probs(&v, args.normalize).map_err(|e| CliError::bad(format!("{flag}: {e}")))
}

/// Computes what the flags ask for.
pub fn run(args: EntropyArgs) -> CliResult<()> {
    let base = match args.base.as_str() {
        "2" => Base::Two,
        "e" => Base::E,
        other => return Err(CliError::bad(format!("--base: '{other}' is not 2 or e"))),
    };
    let unit = if base == Base::Two { "bits" } else { "nats" };
    let mut out = serde_json::Map::new();
    let mut lines = Vec::new();
    let fmt = |v: f64| if v.is_infinite() { "inf".to_string() } else { format!("{v:.6}") };
    let num = |v: f64| if v.is_finite() { json!(v) } else { json!("inf") };
    if args.p.is_none() && args.joint.is_none() {
        return Err(CliError::bad("give --p (and optionally --q) or --joint"));
    }
    if args.q.is_some() && args.p.is_none() {
        return Err(CliError::bad("--q needs --p"));
    }
    if let Some(p_text) = &args.p {
        let p = distribution("--p", p_text, &args)?;
        let hp = info::entropy(&p, base);
        lines.push(format!("H(P)      = {} {unit}", fmt(hp)));
        out.insert("entropy_p".into(), num(hp));
        if let Some(q_text) = &args.q {
            let q = distribution("--q", q_text, &args)?;
            if q.len() != p.len() {
                return Err(CliError::bad(format!("--q has {} outcomes but --p has {}", q.len(), p.len())));
            }
            let hq = info::entropy(&q, base);
            let ce = info::cross_entropy(&p, &q, base).map_err(ml_err)?;
            let kl_pq = info::kl_divergence(&p, &q, base).map_err(ml_err)?;
            let kl_qp = info::kl_divergence(&q, &p, base).map_err(ml_err)?;
            let js = info::js_divergence(&p, &q, base).map_err(ml_err)?;
            for (name, key, v) in [
                ("H(Q)     ", "entropy_q", hq),
                ("H(P,Q)   ", "cross_entropy", ce),
                ("KL(P||Q) ", "kl_pq", kl_pq),
                ("KL(Q||P) ", "kl_qp", kl_qp),
                ("JS(P,Q)  ", "js", js),
            ] {
                lines.push(format!("{name} = {} {unit}", fmt(v)));
                out.insert(key.into(), num(v));
            }
        }
    }
    if let Some(table) = &args.joint {
        let rows: Vec<Vec<f64>> = table.split(';').map(|r| parse_list("--joint", r)).collect::<CliResult<_>>()?;
        let cols = rows[0].len();
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != cols) {
            return Err(CliError::bad(format!("--joint: row {} has {} values but row 1 has {cols}", i + 1, r.len())));
        }
        let flat: Vec<f64> = rows.concat();
        let sum: f64 = flat.iter().sum();
        if args.normalize && (sum - 1.0).abs() > info::SUM_TOLERANCE {
            eprintln!("shendu entropy: warning: --joint sums to {sum}; normalised");
        }
        let mi =
            info::mutual_information(&flat, rows.len(), cols, args.normalize, base).map_err(|e| CliError::bad(format!("--joint: {e}")))?;
        lines.push(format!("I(X;Y)    = {} {unit}", fmt(mi)));
        out.insert("mutual_information".into(), num(mi));
    }
    if args.json {
        out.insert("unit".into(), json!(unit));
        return print_json(&Value::Object(out));
    }
    for l in lines {
        println!("{l}");
    }
    Ok(())
}
