//! Procedures of the example programs in `examples/`, here so integration tests can call them.

pub mod graph_mode;
pub mod linear_regression;
pub mod two_layer_net;
