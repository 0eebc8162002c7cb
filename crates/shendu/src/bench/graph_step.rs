//! W4 in graph mode: the same MLP, batch, data, loss and SGD update as `train_step::TrainStep::mlp`,
//! built once as a `Graph` (placeholders, variables, `gradients`, `assign_sub`) and run by a
//! compiled `Session`, which plans its buffers and allocates nothing per step.

use shendu_core::graph::{Graph, Node, Session};
use shendu_core::{DType, Result, Tensor};
use shendu_nn::ModuleExt;

use super::train_step::{TrainStep, LR, MLP_BATCH};

/// A compiled W4 step with its feeds.
pub struct GraphStep {
    session: Session,
    x: Node,
    y: Node,
    loss: Node,
    train: Node,
    xs: Tensor,
    ys: Tensor,
    out: Vec<Tensor>,
    /// Samples per step.
    pub batch: usize,
}

impl GraphStep {
    /// W4: the eager step's initial weights (the zoo MLP from seed 0) and batch, as a graph.
    pub fn mlp() -> Result<GraphStep> {
        let eager = TrainStep::mlp()?;
        let (inputs, labels) = eager.batch_tensors();
        let classes = 10;
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[None, Some(784)]);
        let y = g.placeholder("labels", DType::F32, &[None, Some(classes)]);
        let mut h = x.clone();
        let mut vars = Vec::new();
        let params = eager.model().trainable_params();
        let layers = params.len() / 2;
        for (i, pair) in params.chunks(2).enumerate() {
            let _s = g.scope(&format!("layer{i}"));
            // Linear keeps weight [out, in]; the graph multiplies by its transpose, stored as is.
            let w = g.variable("weight", pair[0].1.value().t()?.contiguous()?);
            let b = g.variable("bias", pair[1].1.value().copy()?);
            h = h.matmul(&w)?.add(&b)?;
            if i + 1 < layers {
                h = h.relu()?;
            }
            vars.extend([w, b]);
        }
        let loss = h.log_softmax(1)?.mul(&y)?.sum(&[1], false)?.mean_all()?.neg()?;
        let grads = g.gradients(&[&loss], &vars.iter().collect::<Vec<_>>())?;
        let mut updates = Vec::new();
        for (v, gv) in vars.iter().zip(grads) {
            let gv = gv.ok_or_else(|| shendu_core::Error::invalid("bench", "a W4 variable has no gradient"))?;
            updates.push(v.assign_sub(&gv.mul_scalar(LR)?)?);
        }
        let train = g.group(&updates.iter().collect::<Vec<_>>())?;
        let session = Session::new(&g);
        let ys = labels.one_hot(classes, DType::F32)?;
        let xs = inputs.reshape(&[MLP_BATCH, 784])?.contiguous()?;
        let out = vec![Tensor::zeros((), DType::F32)?, Tensor::zeros(0, DType::F32)?];
        Ok(GraphStep { session, x, y, loss, train, xs, ys, out, batch: MLP_BATCH })
    }

    /// One compiled step; returns the loss before the update.
    pub fn step(&mut self) -> Result<f64> {
        let (session, out) = (&mut self.session, &mut self.out);
        let feeds = [(&self.x, &self.xs), (&self.y, &self.ys)];
        let fetches = [&self.loss, &self.train];
        shendu_core::cpu::threads::install(|| session.run_into(&fetches, &feeds, out))?;
        self.out[0].to_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Graph and eager steps start from the same weights and data: the same losses.
    #[test]
    fn graph_w4_matches_eager_w4() {
        let mut eager = TrainStep::mlp().unwrap();
        let mut graph = GraphStep::mlp().unwrap();
        for _ in 0..4 {
            let (a, b) = (eager.step().unwrap(), graph.step().unwrap());
            assert!((a - b).abs() < 1e-4 * a.abs(), "eager {a} vs graph {b}");
        }
    }
}
