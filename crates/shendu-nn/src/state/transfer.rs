//! Copying weights between models whose parameter names differ (a checkpoint saved from a
//! `DataParallel` wrapper, a backbone reused in another network, ...), planned first so that
//! the plan can be printed and checked (a dry run) before any value is copied.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use regex::Regex;
use shendu_core::{DType, Tensor};

use super::load::convertible;
use crate::{Error, Module, ModuleExt, Param, Result};

/// How source tensor names are matched to destination parameter names.
#[derive(Clone, Debug)]
pub enum TransferRule {
    /// Explicit `(source, destination)` pairs. Names absent on either side are problems.
    Map(Vec<(String, String)>),
    /// Rename rules applied to each source name: the first rule whose regex matches rewrites the
    /// name with [`Regex::replace`] (the leftmost match only, `$1` and `${name}` expand; anchor
    /// with `^`/`$` for whole-name rules); a name no rule matches is kept as it is. The renamed
    /// source is paired with the destination of that exact name.
    Regex(Vec<(Regex, String)>),
    /// The classic notebook loop `for _k in dst: for k in src: if k.find(_k) > 0: dst[_k] = src[k]`:
    /// a destination name is paired with the source names that contain it at a byte position
    /// above 0 (the first occurrence counts, as with Python's `str.find`), so
    /// `module.conv1.weight` feeds `conv1.weight`. An identical name (position 0) does not
    /// match. A destination with several candidates is reported as ambiguous and gets none
    /// (the notebook silently kept the last). Note that `0.weight` also occurs in
    /// `module.10.weight`: with bare `Sequential` names prefer [`TransferRule::Regex`].
    SuffixMatch,
    /// Pairs by position among tensors of one shape: the k-th source tensor of shape S goes to
    /// the k-th destination parameter of shape S (float dtypes count as one kind, each integer
    /// dtype as its own). Tensors without a partner are left over. Only sound when both models
    /// register their layers in the same order: check the printed plan.
    OrderAndShape,
}

impl TransferRule {
    /// A [`TransferRule::Regex`] from `(pattern, replacement)` strings; the error names the
    /// pattern that does not compile.
    pub fn regex(rules: &[(&str, &str)]) -> Result<TransferRule> {
        let compiled = rules
            .iter()
            .map(|(p, r)| {
                Regex::new(p).map(|re| (re, r.to_string())).map_err(|e| Error::config(format!("TransferRule::regex {p:?}"), e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TransferRule::Regex(compiled))
    }
}

/// The outcome of [`plan_transfer`]: what would be copied where, and what would not. Its
/// `Display` prints every pair and every leftover: the dry-run report.
#[derive(Clone, Debug)]
pub struct TransferPlan {
    /// `(source name, destination name, shape)`, in destination order.
    pub pairs: Vec<(String, String, Vec<usize>)>,
    /// Source tensors that feed no destination.
    pub src_unused: Vec<String>,
    /// Destination parameters that receive nothing.
    pub dst_untouched: Vec<String>,
    /// Why some candidates are not in `pairs`: shape or dtype mismatches, ambiguities, names of
    /// a [`TransferRule::Map`] that do not exist.
    pub problems: Vec<String>,
    /// The source values of `pairs`, in the same order.
    values: Vec<Tensor>,
    /// `(dtype change, if any)` of each pair, for the report.
    casts: Vec<Option<(DType, DType)>>,
    /// Shape, dtype and (for renames) the new name of each leftover, for the report.
    unused_info: Vec<String>,
    untouched_info: Vec<String>,
}

impl TransferPlan {
    /// No problems (leftovers are allowed: a new head is usually untouched).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Copies the planned pairs into the parameters of `dst` (found by name), converting float
    /// dtypes. Everything is checked before the first copy, so an error leaves `dst` unchanged.
    /// Returns how many parameters were written.
    pub fn apply(&self, dst: &[(String, Param)]) -> Result<usize> {
        let by_name: HashMap<&str, &Param> = dst.iter().rev().map(|(n, p)| (n.as_str(), p)).collect();
        let mut errors = Vec::new();
        let mut ready = Vec::with_capacity(self.pairs.len());
        for ((src, name, _), value) in self.pairs.iter().zip(&self.values) {
            match by_name.get(name.as_str()) {
                None => errors.push(format!("{src} -> {name}: no destination named {name}")),
                Some(p) if p.dims() != value.dims() || !convertible(value.dtype(), p.dtype()) => errors.push(format!(
                    "{src} -> {name}: the destination is now {:?} {}, the source {:?} {}",
                    p.dims(),
                    p.dtype(),
                    value.dims(),
                    value.dtype()
                )),
                Some(p) => ready.push((*p, value)),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Load { path: None, report: format!("cannot apply the transfer plan:\n\t{}", errors.join("\n\t")) });
        }
        let converted = ready.into_iter().map(|(p, v)| Ok((p, v.to_dtype(p.dtype())?))).collect::<Result<Vec<_>>>()?;
        for (p, v) in &converted {
            p.set(v)?;
        }
        Ok(converted.len())
    }
}

impl fmt::Display for TransferPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "transfer plan: {} pair(s), {} source tensor(s) unused, {} destination param(s) untouched, {} problem(s)",
            self.pairs.len(),
            self.src_unused.len(),
            self.dst_untouched.len(),
            self.problems.len()
        )?;
        if !self.pairs.is_empty() {
            write!(f, "\npairs:")?;
            for ((src, dst, shape), cast) in self.pairs.iter().zip(&self.casts) {
                write!(f, "\n  {src} -> {dst} {shape:?}")?;
                if let Some((from, to)) = cast {
                    write!(f, " ({from} -> {to})")?;
                }
            }
        }
        for (title, names, info) in
            [("source unused", &self.src_unused, &self.unused_info), ("destination untouched", &self.dst_untouched, &self.untouched_info)]
        {
            if !names.is_empty() {
                write!(f, "\n{title}:")?;
                for (n, i) in names.iter().zip(info) {
                    write!(f, "\n  {n} {i}")?;
                }
            }
        }
        if !self.problems.is_empty() {
            write!(f, "\nproblems:")?;
            for p in &self.problems {
                write!(f, "\n  {p}")?;
            }
        }
        Ok(())
    }
}

/// Plans copying `src` tensors into `dst` parameters by `rule`, copying nothing: print the plan
/// to check it, then [`TransferPlan::apply`] it. Every proposed pair must agree in shape and
/// be float-to-float or of one dtype, or it becomes a problem; a destination proposed by
/// several sources gets none of them. Duplicate names within `src` or within `dst` are errors.
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::Linear, state::{plan_transfer, TransferRule}, ModuleExt, Sequential};
/// let src = vec![
///     ("module.fc.weight".to_string(), Tensor::ones(&[2, 3], DType::F32).unwrap()),
///     ("module.fc.bias".to_string(), Tensor::ones(&[2], DType::F32).unwrap()),
/// ];
/// let dst = Sequential::new().push_named("fc", Linear::new(3, 2, DType::F32).unwrap());
/// let plan = plan_transfer(&src, &dst.named_params(), &TransferRule::SuffixMatch).unwrap();
/// assert!(plan.to_string().contains("module.fc.weight -> fc.weight [2, 3]"));
/// assert_eq!(plan.apply(&dst.named_params()).unwrap(), 2);
/// ```
pub fn plan_transfer(src: &[(String, Tensor)], dst: &[(String, Param)], rule: &TransferRule) -> Result<TransferPlan> {
    let src_index = index_of(src.iter().map(|(n, _)| n.as_str()), "source tensors")?;
    let dst_index = index_of(dst.iter().map(|(n, _)| n.as_str()), "destination params")?;
    let mut problems = Vec::new();
    // (source index, destination index) candidates, before shape checks.
    let mut proposals: Vec<(usize, usize)> = Vec::new();
    let mut renamed: HashMap<usize, String> = HashMap::new();
    match rule {
        TransferRule::Map(map) => {
            for (s, d) in map {
                match (src_index.get(s.as_str()), dst_index.get(d.as_str())) {
                    (Some(&i), Some(&j)) => proposals.push((i, j)),
                    (si, dj) => {
                        let mut missing = Vec::new();
                        if si.is_none() {
                            missing.push(format!("no source tensor {s}"));
                        }
                        if dj.is_none() {
                            missing.push(format!("no destination param {d}"));
                        }
                        problems.push(format!("map {s} -> {d}: {}", missing.join(" and ")));
                    }
                }
            }
        }
        TransferRule::Regex(rules) => {
            for (i, (name, _)) in src.iter().enumerate() {
                let new = rules.iter().find(|(re, _)| re.is_match(name)).map(|(re, rep)| re.replace(name, rep.as_str()).into_owned());
                let target = new.as_deref().unwrap_or(name);
                match dst_index.get(target) {
                    Some(&j) => proposals.push((i, j)),
                    None if new.is_some() => {
                        renamed.insert(i, target.to_string());
                    }
                    None => {}
                }
            }
        }
        TransferRule::SuffixMatch => {
            for (j, (d, _)) in dst.iter().enumerate() {
                let candidates: Vec<usize> = (0..src.len()).filter(|&i| src[i].0.find(d.as_str()).is_some_and(|at| at > 0)).collect();
                match candidates.as_slice() {
                    [] => {}
                    [i] => proposals.push((*i, j)),
                    many => problems.push(format!(
                        "{d}: ambiguous, contained in {} source names ({}); none copied",
                        many.len(),
                        many.iter().map(|&i| src[i].0.as_str()).collect::<Vec<_>>().join(", ")
                    )),
                }
            }
        }
        TransferRule::OrderAndShape => {
            let key = |dims: &[usize], dt: DType| (dims.to_vec(), if dt.is_float() { None } else { Some(dt) });
            let mut queues: HashMap<(Vec<usize>, Option<DType>), VecDeque<usize>> = HashMap::new();
            for (i, (_, t)) in src.iter().enumerate() {
                queues.entry(key(t.dims(), t.dtype())).or_default().push_back(i);
            }
            for (j, (_, p)) in dst.iter().enumerate() {
                if let Some(i) = queues.get_mut(&key(p.dims(), p.dtype())).and_then(|q| q.pop_front()) {
                    proposals.push((i, j));
                }
            }
        }
    }

    // A destination proposed more than once receives nothing.
    let mut by_dst: HashMap<usize, Vec<usize>> = HashMap::new();
    for &(i, j) in &proposals {
        by_dst.entry(j).or_default().push(i);
    }
    let mut chosen: Vec<(usize, usize)> = Vec::new();
    for (j, sources) in by_dst {
        let (t, p) = (&src[sources[0]].1, &dst[j].1);
        if sources.len() > 1 {
            let names: Vec<&str> = sources.iter().map(|&i| src[i].0.as_str()).collect();
            problems.push(format!("{}: proposed by several sources ({}); none copied", dst[j].0, names.join(", ")));
        } else if t.dims() != p.dims() {
            problems.push(format!(
                "{} -> {}: shape mismatch, source {:?} but destination {:?}",
                src[sources[0]].0,
                dst[j].0,
                t.dims(),
                p.dims()
            ));
        } else if !convertible(t.dtype(), p.dtype()) {
            problems.push(format!(
                "{} -> {}: dtype mismatch, source {} but destination {}",
                src[sources[0]].0,
                dst[j].0,
                t.dtype(),
                p.dtype()
            ));
        } else {
            chosen.push((sources[0], j));
        }
    }
    chosen.sort_by_key(|&(_, j)| j);
    problems.sort();

    let mut src_used = vec![false; src.len()];
    let mut dst_used = vec![false; dst.len()];
    let mut plan = TransferPlan {
        pairs: Vec::new(),
        src_unused: Vec::new(),
        dst_untouched: Vec::new(),
        problems,
        values: Vec::new(),
        casts: Vec::new(),
        unused_info: Vec::new(),
        untouched_info: Vec::new(),
    };
    for (i, j) in chosen {
        src_used[i] = true;
        dst_used[j] = true;
        let (t, p) = (&src[i].1, &dst[j].1);
        plan.pairs.push((src[i].0.clone(), dst[j].0.clone(), p.dims().to_vec()));
        plan.values.push(t.clone());
        plan.casts.push((t.dtype() != p.dtype()).then_some((t.dtype(), p.dtype())));
    }
    for (i, (name, t)) in src.iter().enumerate().filter(|(i, _)| !src_used[*i]) {
        plan.src_unused.push(name.clone());
        let rename = renamed.get(&i).map(|r| format!(" (renamed to {r}: no such destination)")).unwrap_or_default();
        plan.unused_info.push(format!("{:?} {}{rename}", t.dims(), t.dtype()));
    }
    for (_, (name, p)) in dst.iter().enumerate().filter(|(j, _)| !dst_used[*j]) {
        plan.dst_untouched.push(name.clone());
        plan.untouched_info.push(format!("{:?} {}", p.dims(), p.dtype()));
    }
    Ok(plan)
}

/// Plans by `rule` from `src` into the module's parameters and buffers and applies the plan;
/// returns it for printing.
pub fn transfer<M: Module + ?Sized>(src: &[(String, Tensor)], module: &M, rule: &TransferRule) -> Result<TransferPlan> {
    let dst = module.named_params();
    let plan = plan_transfer(src, &dst, rule)?;
    plan.apply(&dst)?;
    Ok(plan)
}

fn index_of<'a>(names: impl Iterator<Item = &'a str>, what: &str) -> Result<HashMap<&'a str, usize>> {
    let mut index = HashMap::new();
    let mut duplicates = Vec::new();
    for (i, n) in names.enumerate() {
        if index.insert(n, i).is_some() {
            duplicates.push(n);
        }
    }
    if duplicates.is_empty() {
        Ok(index)
    } else {
        Err(Error::config("plan_transfer", format!("duplicate names among the {what}: {duplicates:?}")))
    }
}
