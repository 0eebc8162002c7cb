//! The two-layer network of PyTorch's "Learning PyTorch with examples" (the notebook's first
//! PyTorch program): `y_pred = relu(x w1) w2`, loss `sum((y_pred - y)^2)`, plain gradient
//! descent `w -= lr * grad` on seeded random data.

use shendu_core::{DType, Result, Tensor, Var};

/// Sizes and schedule of the run.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub batch: usize,
    pub d_in: usize,
    pub hidden: usize,
    pub d_out: usize,
    pub lr: f64,
    pub steps: usize,
    pub seed: u64,
}

impl Default for Config {
    /// The notebook's values: N=64, D_in=1000, H=100, D_out=10, lr 1e-6, 500 steps.
    fn default() -> Self {
        Config { batch: 64, d_in: 1000, hidden: 100, d_out: 10, lr: 1e-6, steps: 500, seed: 0 }
    }
}

/// Trains and returns the loss of every step (before that step's update).
pub fn train(cfg: &Config) -> Result<Vec<f64>> {
    shendu_core::manual_seed(cfg.seed);
    let x = Tensor::randn([cfg.batch, cfg.d_in], DType::F32)?;
    let y = Tensor::randn([cfg.batch, cfg.d_out], DType::F32)?;
    let w1 = Var::new(Tensor::randn([cfg.d_in, cfg.hidden], DType::F32)?);
    let w2 = Var::new(Tensor::randn([cfg.hidden, cfg.d_out], DType::F32)?);
    let mut losses = Vec::with_capacity(cfg.steps);
    for _ in 0..cfg.steps {
        let y_pred = x.matmul(&w1)?.relu()?.matmul(&w2)?;
        let loss = y_pred.sub(&y)?.sqr()?.sum_all()?;
        losses.push(loss.to_f64()?);
        let grads = loss.backward()?;
        for w in [&w1, &w2] {
            if let Some(g) = grads.get(w) {
                w.sub_assign(&g.mul_scalar(cfg.lr)?)?;
            }
            w.zero_grad();
        }
    }
    Ok(losses)
}
