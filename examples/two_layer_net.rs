//! The two-layer network of PyTorch's "Learning PyTorch with examples", in eager shendu:
//! `y_pred = relu(x w1) w2`, loss `sum((y_pred - y)^2)`, 500 steps of plain gradient descent
//! with learning rate 1e-6 on random data. The loss falls by more than eight orders of magnitude.
//! The procedure lives in `shendu::examples_support::two_layer_net`, where a test checks it.
//!
//! Run with `cargo run --release --example two_layer_net`.

use shendu::examples_support::two_layer_net::{train, Config};

fn main() -> shendu_core::Result<()> {
    let cfg = Config::default();
    let losses = train(&cfg)?;
    for (t, loss) in losses.iter().enumerate() {
        if t % 50 == 0 || t + 1 == losses.len() {
            println!("{t:>4} {loss:.6e}");
        }
    }
    if let (Some(first), Some(last)) = (losses.first(), losses.last()) {
        println!("loss fell from {first:.4e} to {last:.4e} ({:.2e}x)", first / last);
    }
    Ok(())
}
