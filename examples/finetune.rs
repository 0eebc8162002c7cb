//! Fine-tuning by weight transfer, the notebook's recipe: train LeNet-5 on the embedded MNIST
//! subset, copy its convolution weights into a differently built network (new head
//! `head.fc1/fc2/fc3`) with the name-suffix rule (`k.find(_k) > 0`, from a checkpoint named as a
//! `DataParallel` wrapper saves it: `module.features.0.weight`), freeze them, and train only the
//! new head. Prints the dry-run transfer plan and the test accuracy before and after, and checks
//! that the frozen weights did not move.
//! The procedure lives in `shendu::examples_support::finetune`, where a test checks it.
//!
//! Run with `cargo run --release --example finetune`.

use std::time::Instant;

use shendu::examples_support::finetune::{run, Config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let cfg = Config::default();
    let outcome = run(&cfg, &mut |line| println!("{line}"))?;
    assert!(outcome.frozen_unchanged, "the frozen backbone changed during head training");
    assert!(outcome.head_changed, "the head did not train");
    println!(
        "test accuracy: LeNet-5 {:.2}%, new network before head training {:.2}%, after {:.2}%; frozen weights unchanged ({:.1} s)",
        100.0 * outcome.lenet_accuracy,
        100.0 * outcome.accuracy_before,
        100.0 * outcome.accuracy_after,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
