//! The two-layer network of PyTorch's "Learning PyTorch with examples", in eager shendu:
//! `y_pred = relu(x w1) w2`, loss `sum((y_pred - y)^2)`, 500 steps of plain gradient descent
//! with learning rate 1e-6 on random data. The loss falls by more than eight orders of magnitude.
//!
//! Run with `cargo run --release --example two_layer_net`.

use shendu_core::{DType, Result, Tensor, Var};

fn main() -> Result<()> {
    // Batch size, input, hidden and output dimensions.
    let (n, d_in, h, d_out) = (64, 1000, 100, 10);
    let lr = 1e-6;
    let steps = 500;

    shendu_core::manual_seed(0);
    let x = Tensor::randn([n, d_in], DType::F32)?;
    let y = Tensor::randn([n, d_out], DType::F32)?;
    let w1 = Var::new(Tensor::randn([d_in, h], DType::F32)?);
    let w2 = Var::new(Tensor::randn([h, d_out], DType::F32)?);

    let mut first = None;
    let mut last = 0.0;
    for t in 0..steps {
        let y_pred = x.matmul(&w1)?.relu()?.matmul(&w2)?;
        let loss = y_pred.sub(&y)?.sqr()?.sum_all()?;
        last = loss.to_f64()?;
        first.get_or_insert(last);
        if t % 50 == 0 || t == steps - 1 {
            println!("{t:>4} {last:.6e}");
        }
        let grads = loss.backward()?;
        for w in [&w1, &w2] {
            if let Some(g) = grads.get(w) {
                w.sub_assign(&g.mul_scalar(lr)?)?;
            }
            w.zero_grad();
        }
    }
    let first = first.unwrap_or(last);
    println!("loss fell from {first:.4e} to {last:.4e} ({:.2e}x)", first / last);
    Ok(())
}
