//! The classic TensorFlow linear regression in graph mode: placeholders `X` and `Y`, variables
//! `W` and `b`, cost `(W X + b - Y)^2 / (2 n)`, and a gradient-descent update op run once per
//! training sample for 1000 epochs. The fit matches the eager `linear_regression` example.
//!
//! Run with `cargo run --release --example linear_regression_graph`.

use shendu::examples_support::graph_mode::linear_regression_graph;
use shendu::examples_support::linear_regression::{
    half_mse_cost, initial_line, DISPLAY_STEP, EPOCHS, LEARNING_RATE, TEST_X, TEST_Y, TRAIN_X, TRAIN_Y,
};

fn main() -> shendu_core::Result<()> {
    let init = initial_line(42)?;
    println!("Initial W= {:.6} b= {:.6}", init.w, init.b);
    let fit = linear_regression_graph(init, &TRAIN_X, &TRAIN_Y, LEARNING_RATE, EPOCHS, |epoch, l| {
        if epoch.is_multiple_of(DISPLAY_STEP) {
            println!("Epoch: {epoch:04} cost= {:.9} W= {:.6} b= {:.6}", half_mse_cost(l, &TRAIN_X, &TRAIN_Y)?, l.w, l.b);
        }
        Ok(())
    })?;
    println!("Optimization Finished!");
    let training = half_mse_cost(fit, &TRAIN_X, &TRAIN_Y)?;
    println!("Training cost= {training:.9} W= {:.6} b= {:.6}", fit.w, fit.b);
    let testing = half_mse_cost(fit, &TEST_X, &TEST_Y)?;
    println!("Testing cost= {testing:.9}");
    println!("Absolute mean square loss difference: {:.9}", (training - testing).abs());
    Ok(())
}
