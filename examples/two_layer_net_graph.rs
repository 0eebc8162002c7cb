//! The two-layer network of `two_layer_net`, in graph mode (TensorFlow 1 style): placeholders
//! for the data, variables for the weights, `gradients` and `assign_sub` for the update, one
//! compiled step run 500 times. Same data, seed and learning rate: it prints the same losses.
//!
//! Run with `cargo run --release --example two_layer_net_graph`.

use shendu::examples_support::graph_mode::train_graph;
use shendu::examples_support::two_layer_net::Config;

fn main() -> shendu_core::Result<()> {
    let cfg = Config::default();
    let (losses, plan) = train_graph(&cfg)?;
    for (t, loss) in losses.iter().enumerate() {
        if t % 50 == 0 || t + 1 == losses.len() {
            println!("{t:>4} {loss:.6e}");
        }
    }
    if let (Some(first), Some(last)) = (losses.first(), losses.last()) {
        println!("loss fell from {first:.4e} to {last:.4e} ({:.2e}x)", first / last);
    }
    println!("\nThe compiled step:\n{plan}");
    Ok(())
}
