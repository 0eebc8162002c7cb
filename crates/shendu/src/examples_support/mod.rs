//! Procedures of the example programs in `examples/`, here so integration tests can call them.

pub mod linear_regression;
pub mod two_layer_net;
pub mod graph_mode;
