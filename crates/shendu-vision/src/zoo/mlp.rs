//! A multi-layer perceptron on flattened inputs.

use shendu_nn::layers::{Flatten, Linear, Relu};
use shendu_nn::{Result, Sequential};

use super::blocks::{no_options, Net};
use super::ModelOptions;
use crate::netspec::{Activation, NetSpec};

/// `flatten`, then for each hidden width a Linear + ReLU, then a Linear to the classes.
/// With `hidden = [512, 512]` on MNIST this is BENCH.md's W4 network, 784-512-512-10; its
/// parameters are `layers.0`, `layers.2`, `layers.4` (`.weight`, `.bias`).
pub fn mlp(opts: &ModelOptions, hidden: &[usize]) -> Result<Sequential> {
    let inputs = opts.in_channels * opts.input_hw.0 * opts.input_hw.1;
    let mut layers = Sequential::new();
    let mut width = inputs;
    for &h in hidden {
        layers = layers.push(Linear::new(width, h, opts.dtype)?).push(Relu);
        width = h;
    }
    layers = layers.push(Linear::new(width, opts.classes, opts.dtype)?);
    Ok(Sequential::new().push_named("flatten", Flatten::new()).push_named("layers", layers))
}

/// The MLP as a [`NetSpec`]: fully connected layers named `layers.0`, `layers.2`, ... like
/// [`mlp`]'s.
pub fn mlp_spec(opts: &ModelOptions, hidden: &[usize]) -> Result<NetSpec> {
    no_options("mlp", opts, false, false)?;
    let mut n = Net::new(opts);
    for (i, &h) in hidden.iter().enumerate() {
        n.fc(&format!("layers.{}", 2 * i), h, Activation::Relu);
    }
    n.fc(&format!("layers.{}", 2 * hidden.len()), opts.classes, Activation::Linear);
    Ok(n.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shendu_nn::ModuleExt;

    #[test]
    fn w4_shapes_and_names() {
        let m = mlp(&ModelOptions::mnist(), &[512, 512]).unwrap();
        let p = m.named_params();
        let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias", "layers.4.weight", "layers.4.bias"]);
        assert_eq!(m.param_count(), 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10);
    }
}
