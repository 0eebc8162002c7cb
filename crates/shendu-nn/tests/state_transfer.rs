//! Weight transfer between models whose names differ, and freezing by prefix.

use shendu_core::{DType, Tensor};
use shendu_nn::layers::Linear;
use shendu_nn::state::{self, plan_transfer, transfer, Regex, TransferRule};
use shendu_nn::{ModuleExt, Param, Sequential};

fn t(dims: &[usize], v: f64) -> Tensor {
    Tensor::full(dims, v, DType::F32).unwrap()
}

fn named(v: &[(&str, Tensor)]) -> Vec<(String, Tensor)> {
    v.iter().map(|(n, t)| (n.to_string(), t.clone())).collect()
}

/// `conv1` and `fc` stand-ins: two linears named as in the notebook.
fn small_net() -> Sequential {
    Sequential::new().push_named("conv1", Linear::new(3, 4, DType::F32).unwrap()).push_named("fc", Linear::new(4, 2, DType::F32).unwrap())
}

fn value(net: &Sequential, name: &str) -> Vec<f32> {
    net.named_params().into_iter().find(|(n, _)| n == name).unwrap().1.value().to_vec::<f32>().unwrap()
}

#[test]
fn suffix_match_is_the_notebook_loop() {
    // A checkpoint saved from a DataParallel wrapper, with one more head than the new model.
    let src = named(&[
        ("module.conv1.weight", t(&[4, 3], 1.0)),
        ("module.conv1.bias", t(&[4], 2.0)),
        ("module.fc.weight", t(&[10, 4], 3.0)),
        ("module.fc.bias", t(&[10], 4.0)),
        ("module.aux.weight", t(&[1], 5.0)),
    ]);
    let net = small_net();
    let before_fc = value(&net, "fc.weight");
    let plan = plan_transfer(&src, &net.named_params(), &TransferRule::SuffixMatch).unwrap();
    let pairs: Vec<(&str, &str)> = plan.pairs.iter().map(|(s, d, _)| (s.as_str(), d.as_str())).collect();
    assert_eq!(pairs, [("module.conv1.weight", "conv1.weight"), ("module.conv1.bias", "conv1.bias")]);
    assert_eq!(plan.dst_untouched, ["fc.weight", "fc.bias"]);
    assert_eq!(plan.src_unused, ["module.fc.weight", "module.fc.bias", "module.aux.weight"]);
    assert_eq!(plan.problems.len(), 2);
    let report = plan.to_string();
    for line in [
        "transfer plan: 2 pair(s), 3 source tensor(s) unused, 2 destination param(s) untouched, 2 problem(s)",
        "  module.conv1.weight -> conv1.weight [4, 3]",
        "  module.fc.weight [10, 4] f32",
        "  fc.weight [2, 4] f32",
        "module.fc.weight -> fc.weight: shape mismatch, source [10, 4] but destination [2, 4]",
    ] {
        assert!(report.contains(line), "{report}\nlacks: {line}");
    }
    // Planning copied nothing; applying copies the pairs only.
    assert_ne!(value(&net, "conv1.weight"), vec![1.0; 12]);
    assert_eq!(plan.apply(&net.named_params()).unwrap(), 2);
    assert_eq!(value(&net, "conv1.weight"), vec![1.0; 12]);
    assert_eq!(value(&net, "conv1.bias"), vec![2.0; 4]);
    assert_eq!(value(&net, "fc.weight"), before_fc);
}

#[test]
fn suffix_match_ambiguity_and_position_zero() {
    // `0.weight` occurs in both `module.0.weight` and `module.10.weight`.
    let src = named(&[("module.0.weight", t(&[2], 1.0)), ("module.10.weight", t(&[2], 2.0)), ("1.weight", t(&[2], 3.0))]);
    let dst = vec![("0.weight".to_string(), Param::new(t(&[2], 0.0))), ("1.weight".to_string(), Param::new(t(&[2], 0.0)))];
    let plan = plan_transfer(&src, &dst, &TransferRule::SuffixMatch).unwrap();
    assert!(plan.pairs.is_empty(), "{plan}");
    assert_eq!(plan.problems, ["0.weight: ambiguous, contained in 2 source names (module.0.weight, module.10.weight); none copied"]);
    // `1.weight` equals a source name (position 0) and is not a notebook match.
    assert_eq!(plan.dst_untouched, ["0.weight", "1.weight"]);
    assert_eq!(plan.apply(&dst).unwrap(), 0);
    assert_eq!(dst[0].1.value().to_vec::<f32>().unwrap(), vec![0.0; 2]);
}

#[test]
fn regex_rules_first_match_wins() {
    let src = named(&[
        ("backbone.layer0.w", t(&[4, 3], 1.0)),
        ("backbone.layer0.b", t(&[4], 2.0)),
        ("head.w", t(&[2, 4], 3.0)),
        ("head.b", t(&[2], 4.0).to_dtype(DType::F16).unwrap()),
        ("optimizer.step", Tensor::scalar(3i64)),
    ]);
    let rule = TransferRule::regex(&[
        (r"^backbone\.layer0\.w$", "conv1.weight"),
        (r"^backbone\.layer0\.(\w)$", "conv1.${1}ias"),
        (r"^head\.w$", "fc.weight"),
        (r"^head\.b$", "fc.bias"),
        (r"^optimizer\.(.*)$", "opt.$1"),
    ])
    .unwrap();
    let net = small_net();
    let plan = transfer(&src, &net, &rule).unwrap();
    assert_eq!(plan.pairs.len(), 4, "{plan}");
    assert!(plan.is_clean());
    assert_eq!(plan.src_unused, ["optimizer.step"]);
    let report = plan.to_string();
    assert!(report.contains("optimizer.step [] i64 (renamed to opt.step: no such destination)"), "{report}");
    assert!(report.contains("head.b -> fc.bias [2] (f16 -> f32)"), "{report}");
    assert_eq!(value(&net, "conv1.bias"), vec![2.0; 4]);
    assert_eq!(value(&net, "fc.bias"), vec![4.0; 2]);

    // Two sources renamed onto one destination: neither is copied.
    let clash = TransferRule::Regex(vec![(Regex::new(r"^backbone\.layer0\.[wb]$").unwrap(), "conv1.bias".into())]);
    let plan = plan_transfer(&src, &net.named_params(), &clash).unwrap();
    assert_eq!(plan.problems, ["conv1.bias: proposed by several sources (backbone.layer0.w, backbone.layer0.b); none copied"]);
    assert!(TransferRule::regex(&[("(", "x")]).unwrap_err().to_string().contains("TransferRule::regex \"(\""));
}

#[test]
fn explicit_map() {
    let src = named(&[("a", t(&[4, 3], 1.0)), ("b", t(&[4], 2.0)), ("c", Tensor::zeros(&[4], DType::I64).unwrap())]);
    let net = small_net();
    let map = TransferRule::Map(vec![
        ("a".into(), "conv1.weight".into()),
        ("c".into(), "conv1.bias".into()),
        ("b".into(), "fc.nope".into()),
        ("zz".into(), "fc.bias".into()),
    ]);
    let plan = plan_transfer(&src, &net.named_params(), &map).unwrap();
    assert_eq!(plan.pairs, [("a".to_string(), "conv1.weight".to_string(), vec![4, 3])]);
    assert_eq!(
        plan.problems,
        [
            "c -> conv1.bias: dtype mismatch, source i64 but destination f32",
            "map b -> fc.nope: no destination param fc.nope",
            "map zz -> fc.bias: no source tensor zz",
        ]
    );
    assert_eq!(plan.apply(&net.named_params()).unwrap(), 1);
    // A plan applied to a model that no longer fits is refused whole.
    let other = Sequential::new().push_named("conv1", Linear::new(5, 4, DType::F32).unwrap());
    let e = plan.apply(&other.named_params()).unwrap_err().to_string();
    assert!(e.contains("a -> conv1.weight: the destination is now [4, 5] f32, the source [4, 3] f32"), "{e}");
    // Duplicate source names are refused up front.
    let dup = named(&[("a", t(&[1], 0.0)), ("a", t(&[1], 0.0))]);
    assert!(plan_transfer(&dup, &net.named_params(), &map).is_err());
}

#[test]
fn order_and_shape_pairs_by_position_per_shape() {
    // Source in the same layer order, other names, an extra tensor and an i64 counter.
    let src = named(&[
        ("l0.kernel", t(&[4, 3], 1.0)),
        ("steps", Tensor::scalar(9i64)),
        ("l0.offset", t(&[4], 2.0)),
        ("l1.kernel", t(&[2, 4], 3.0)),
        ("l1.offset", t(&[2], 4.0)),
        ("l2.offset", t(&[2], 5.0)),
    ]);
    let net = small_net();
    let plan = transfer(&src, &net, &TransferRule::OrderAndShape).unwrap();
    let pairs: Vec<(&str, &str)> = plan.pairs.iter().map(|(s, d, _)| (s.as_str(), d.as_str())).collect();
    assert_eq!(pairs, [("l0.kernel", "conv1.weight"), ("l0.offset", "conv1.bias"), ("l1.kernel", "fc.weight"), ("l1.offset", "fc.bias")]);
    assert_eq!(plan.src_unused, ["steps", "l2.offset"]);
    assert!(plan.dst_untouched.is_empty());
    assert_eq!(value(&net, "fc.bias"), vec![4.0; 2]);
}

#[test]
fn freeze_by_prefix_and_predicate() {
    let net = Sequential::new()
        .push_named("features", Sequential::new().push(Linear::new(2, 2, DType::F32).unwrap()).push(Linear::new(2, 2, DType::F32).unwrap()))
        .push_named("classifier", Linear::new(2, 1, DType::F32).unwrap());
    assert_eq!(state::freeze(&net, "features"), ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias"]);
    let trainable: Vec<String> = net.trainable_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(trainable, ["classifier.weight", "classifier.bias"]);
    assert_eq!(state::unfreeze(&net, "features.1"), ["features.1.weight", "features.1.bias"]);
    assert_eq!(state::freeze_where(&net, |n| n.ends_with(".bias")), ["features.0.bias", "features.1.bias", "classifier.bias"]);
    assert_eq!(net.trainable_params().len(), 2);
    assert!(state::freeze(&net, "nothing").is_empty());
}
