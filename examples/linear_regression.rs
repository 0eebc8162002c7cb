//! Linear regression two ways, as in the classic TensorFlow and PyTorch examples:
//! 1. `W x + b` fitted by gradient descent with one update per training sample (cost
//!    `(pred - y)^2 / (2 n)`, learning rate 0.01, 1000 epochs);
//! 2. the same model fitted on the full batch with a smooth-L1 loss and SGD.
//!
//! Prints the progress and the train/test costs, and writes `linear_regression.png`.
//! Run with `cargo run --release --example linear_regression`.

use std::path::Path;

use shendu::examples_support::linear_regression::{
    half_mse_cost, initial_line, plot, smooth_l1_cost, train_full_batch_smooth_l1, train_per_sample, Line, DISPLAY_STEP, EPOCHS,
    LEARNING_RATE, TEST_X, TEST_Y, TRAIN_X, TRAIN_Y,
};

type Cost = fn(Line, &[f64], &[f64]) -> shendu_core::Result<f64>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let init = initial_line(42)?;
    println!("Initial W= {:.6} b= {:.6}", init.w, init.b);

    println!("== Per-sample gradient descent, cost sum((pred - y)^2) / (2n)");
    let per_sample = train_per_sample(init, &TRAIN_X, &TRAIN_Y, LEARNING_RATE, EPOCHS, |e, l| progress(e, l, half_mse_cost))?;
    summary(per_sample, half_mse_cost)?;

    println!("== Full batch (PyTorch style), smooth L1 loss (beta 1, mean), SGD lr {LEARNING_RATE}");
    println!("Initial W= {:.6} b= {:.6}", init.w, init.b);
    let full = train_full_batch_smooth_l1(init, &TRAIN_X, &TRAIN_Y, LEARNING_RATE, EPOCHS, |e, l| progress(e, l, smooth_l1_cost))?;
    summary(full, smooth_l1_cost)?;

    let png = Path::new("linear_regression.png");
    plot(png, &[("per-sample GD, squared error", per_sample), ("full-batch SGD, smooth L1", full)])?;
    println!("Wrote {}", png.display());
    Ok(())
}

/// Every DISPLAY_STEP epochs: the cost over the whole training set and the parameters.
fn progress(epoch: usize, l: Line, cost: Cost) -> shendu_core::Result<()> {
    if epoch.is_multiple_of(DISPLAY_STEP) {
        println!("Epoch: {epoch:04} cost= {:.9} W= {:.6} b= {:.6}", cost(l, &TRAIN_X, &TRAIN_Y)?, l.w, l.b);
    }
    Ok(())
}

fn summary(l: Line, cost: Cost) -> shendu_core::Result<()> {
    println!("Optimization Finished!");
    let training = cost(l, &TRAIN_X, &TRAIN_Y)?;
    println!("Training cost= {training:.9} W= {:.6} b= {:.6}", l.w, l.b);
    let testing = cost(l, &TEST_X, &TEST_Y)?;
    println!("Testing cost= {testing:.9}");
    println!("Absolute mean square loss difference: {:.9}", (training - testing).abs());
    Ok(())
}
