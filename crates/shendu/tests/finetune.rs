//! The `finetune` example's procedure, shortened: the suffix rule pairs exactly the convolution
//! tensors, the frozen backbone does not move, the new head trains and reaches a real accuracy.

use shendu::examples_support::finetune::{run, Config};

#[test]
fn finetune_copies_freezes_and_trains_the_head() {
    let cfg = Config { pretrain_epochs: 1, head_epochs: 1, max_batches: Some(60), ..Config::default() };
    let mut lines = Vec::new();
    let o = run(&cfg, &mut |l| lines.push(l.to_string())).unwrap();
    let pairs: Vec<(&str, &str)> = o.plan.pairs.iter().map(|(s, d, _)| (s.as_str(), d.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("module.features.0.weight", "features.0.weight"),
            ("module.features.0.bias", "features.0.bias"),
            ("module.features.3.weight", "features.3.weight"),
            ("module.features.3.bias", "features.3.bias"),
        ]
    );
    assert!(o.plan.is_clean());
    assert_eq!(o.plan.dst_untouched.len(), 6, "the head receives nothing");
    assert!(o.plan.dst_untouched.iter().all(|n| n.starts_with("head.fc")));
    assert_eq!(o.plan.src_unused.len(), 6, "the old classifier is left over");
    assert_eq!(o.frozen, ["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias"]);
    assert!(o.frozen_unchanged, "frozen weights moved");
    assert!(o.head_changed, "the head did not train");
    assert!(o.lenet_accuracy > 0.8, "LeNet after 60 steps: {}", o.lenet_accuracy);
    assert!(o.accuracy_before < 0.4, "an untrained head should be near chance: {}", o.accuracy_before);
    assert!(o.accuracy_after > 0.8, "the head after 60 steps on the frozen backbone: {}", o.accuracy_after);
    assert!(lines.iter().any(|l| l.contains("dry run of the suffix rule") && l.contains("module.features.3.bias -> features.3.bias [16]")));
}
