//! The notebook's two-layer net: the loss falls by more than eight orders of magnitude in 500
//! steps (PyTorch: from about 3e7 to about 1e-4).

use shendu::examples_support::two_layer_net::{train, Config};

#[test]
fn loss_falls_by_more_than_eight_orders_of_magnitude() {
    let losses = train(&Config::default()).unwrap();
    assert_eq!(losses.len(), 500);
    let (first, last) = (losses[0], losses[499]);
    assert!(first > 1e6, "initial loss {first} (PyTorch starts near 3e7)");
    assert!(last.is_finite() && first / last > 1e8, "loss went from {first} to {last}");
    // Plain gradient descent at this rate decreases the loss at (almost) every step.
    let rises = losses.windows(2).filter(|w| w[1] > w[0] * 1.001).count();
    assert!(rises < 5, "{rises} steps increased the loss");
}
