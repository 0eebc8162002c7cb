//! W4 and W5 in graph mode: the same network, batch, data, loss and SGD update as
//! `train_step::TrainStep::mlp` and `TrainStep::lenet`, built once as a `Graph` (placeholders,
//! variables, `gradients`, `assign_sub`) and run by a compiled `Session`, which plans its
//! buffers and allocates nothing per step.

use shendu_core::graph::{Graph, Node, Session};
use shendu_core::{Conv2dParams, DType, Error, Padding, Result, Tensor};
use shendu_nn::ModuleExt;

use super::train_step::{TrainStep, LENET_BATCH, LR, MLP_BATCH};

const CLASSES: usize = 10;

/// A trained variable and how to read it back in the eager model's layout.
struct Weight {
    /// The eager parameter's dotted name.
    name: String,
    var: Node,
    /// Stored as the transpose of the eager `[out, in]` Linear weight.
    transposed: bool,
}

/// A compiled training step with its feeds.
pub struct GraphStep {
    graph: Graph,
    session: Session,
    x: Node,
    y: Node,
    loss: Node,
    train: Node,
    xs: Tensor,
    ys: Tensor,
    out: Vec<Tensor>,
    weights: Vec<Weight>,
    /// Samples per step.
    pub batch: usize,
}

/// The eager model's trainable parameters: (name, value).
fn params_of(eager: &TrainStep) -> Vec<(String, Tensor)> {
    eager.model().trainable_params().into_iter().map(|(n, p)| (n, p.value())).collect()
}

/// `h · wᵀ + b` with a Linear layer's weight and bias as graph variables; the weight is stored
/// transposed (`[in, out]`), which the planner's matmul reads row by row.
fn linear(g: &Graph, h: &Node, (wn, w): &(String, Tensor), (bn, b): &(String, Tensor), weights: &mut Vec<Weight>) -> Result<Node> {
    let wv = g.variable("weight", w.t()?.contiguous()?);
    let bv = g.variable("bias", b.copy()?);
    let y = h.matmul(&wv)?.add(&bv)?;
    weights.push(Weight { name: wn.clone(), var: wv, transposed: true });
    weights.push(Weight { name: bn.clone(), var: bv, transposed: false });
    Ok(y)
}

impl GraphStep {
    /// W4: the eager step's initial weights (the zoo MLP from seed 0) and batch, as a graph.
    pub fn mlp() -> Result<GraphStep> {
        let eager = TrainStep::mlp()?;
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[None, Some(784)]);
        let params = params_of(&eager);
        let layers = params.len() / 2;
        let mut weights = Vec::new();
        let mut h = x.clone();
        for (i, pair) in params.chunks(2).enumerate() {
            let _s = g.scope(&format!("layer{i}"));
            h = linear(&g, &h, &pair[0], &pair[1], &mut weights)?;
            if i + 1 < layers {
                h = h.relu()?;
            }
        }
        let (inputs, _) = eager.batch_tensors();
        let xs = inputs.reshape(&[MLP_BATCH, 784])?.contiguous()?;
        GraphStep::finish(g, x, xs, h, weights, &eager, MLP_BATCH)
    }

    /// W5: LeNet-5 with the eager step's initial weights (the zoo LeNet from seed 0) and batch:
    /// conv 6@5x5 pad 2, ReLU, max pool 2, conv 16@5x5, ReLU, max pool 2, fc 120, ReLU, fc 84,
    /// ReLU, fc 10.
    pub fn lenet() -> Result<GraphStep> {
        let eager = TrainStep::lenet()?;
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[None, Some(1), Some(28), Some(28)]);
        let params = params_of(&eager);
        if params.len() != 10 {
            return Err(Error::invalid("bench", format!("LeNet-5 has 10 parameters, the zoo model {}", params.len())));
        }
        let mut weights = Vec::new();
        let mut h = x.clone();
        let pads = [Conv2dParams::default().with_pad(2), Conv2dParams::default()];
        for (i, (pair, p)) in params[..4].chunks(2).zip(pads).enumerate() {
            let _s = g.scope(&format!("conv{i}"));
            let ((wn, w), (bn, b)) = (&pair[0], &pair[1]);
            let wv = g.variable("weight", w.copy()?);
            let bv = g.variable("bias", b.copy()?);
            let c = b.dims()[0];
            h = h.conv2d(&wv, &p)?.add(&bv.reshape(vec![1, c, 1, 1])?)?.relu()?;
            h = h.max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false)?;
            weights.push(Weight { name: wn.clone(), var: wv, transposed: false });
            weights.push(Weight { name: bn.clone(), var: bv, transposed: false });
        }
        h = h.flatten(1usize, 3)?;
        for (i, pair) in params[4..].chunks(2).enumerate() {
            let _s = g.scope(&format!("fc{i}"));
            h = linear(&g, &h, &pair[0], &pair[1], &mut weights)?;
            if i < 2 {
                h = h.relu()?;
            }
        }
        let (xs, _) = eager.batch_tensors();
        GraphStep::finish(g, x, xs.contiguous()?, h, weights, &eager, LENET_BATCH)
    }

    /// Softmax cross-entropy of `logits` against the eager batch's labels (one-hot), the
    /// gradients and the SGD updates, and the session.
    fn finish(g: Graph, x: Node, xs: Tensor, logits: Node, weights: Vec<Weight>, eager: &TrainStep, batch: usize) -> Result<GraphStep> {
        let y = g.placeholder("labels", DType::F32, &[None, Some(CLASSES)]);
        let loss = logits.log_softmax(1)?.mul(&y)?.sum(&[1], false)?.mean_all()?.neg()?;
        let vars: Vec<&Node> = weights.iter().map(|w| &w.var).collect();
        let grads = g.gradients(&[&loss], &vars)?;
        let mut updates = Vec::new();
        for (w, gv) in weights.iter().zip(grads) {
            let gv = gv.ok_or_else(|| Error::invalid("bench", format!("variable {} has no gradient", w.name)))?;
            updates.push(w.var.assign_sub(&gv.mul_scalar(LR)?)?);
        }
        let train = g.group(&updates.iter().collect::<Vec<_>>())?;
        let session = Session::new(&g);
        let (_, labels) = eager.batch_tensors();
        let ys = labels.one_hot(CLASSES, DType::F32)?;
        let out = vec![Tensor::zeros((), DType::F32)?, Tensor::zeros(0, DType::F32)?];
        Ok(GraphStep { graph: g, session, x, y, loss, train, xs, ys, out, weights, batch })
    }

    /// One compiled step; returns the loss before the update.
    pub fn step(&mut self) -> Result<f64> {
        let (session, out) = (&mut self.session, &mut self.out);
        let feeds = [(&self.x, &self.xs), (&self.y, &self.ys)];
        let fetches = [&self.loss, &self.train];
        shendu_core::cpu::threads::install(|| session.run_into(&fetches, &feeds, out))?;
        self.out[0].to_f64()
    }

    /// The current weights under the eager model's parameter names and in its layouts.
    pub fn weights(&self) -> Result<Vec<(String, Tensor)>> {
        self.weights
            .iter()
            .map(|w| {
                let v = self.graph.value_of(&w.var)?;
                Ok((w.name.clone(), if w.transposed { v.t()?.contiguous()? } else { v }))
            })
            .collect()
    }

    /// Where the time of `runs` more steps goes, step by step (see `Session::profile`).
    pub fn profile(&mut self, runs: usize) -> Result<shendu_core::graph::StepProfile> {
        self.session.set_profiling(true);
        let r = (0..runs).try_for_each(|_| self.step().map(drop));
        let p = self.session.profile();
        self.session.set_profiling(false);
        r.map(|_| p)
    }

    /// The compiled plan in words (see `Session::explain`).
    pub fn explain(&self) -> String {
        self.session.explain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `|a - b| <= tol * max(|a|, |b|, 1e-3)` elementwise.
    fn assert_close(a: &Tensor, b: &Tensor, tol: f64, what: &str) {
        assert_eq!(a.shape(), b.shape(), "{what}");
        let (a, b) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            assert!((p - q).abs() <= tol * p.abs().max(q.abs()).max(1e-3), "{what}[{i}]: graph {p} vs eager {q}");
        }
    }

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

    /// W5: the same losses for 3 steps (the first traced, the others planned) and the same
    /// weights after them, name by name.
    #[test]
    fn graph_w5_matches_eager_w5() {
        let mut eager = TrainStep::lenet().unwrap();
        let mut graph = GraphStep::lenet().unwrap();
        for _ in 0..3 {
            let (a, b) = (eager.step().unwrap(), graph.step().unwrap());
            assert!((a - b).abs() < 1e-4 * a.abs(), "eager {a} vs graph {b}");
        }
        let want = params_of(&eager);
        let got = graph.weights().unwrap();
        assert_eq!(got.len(), want.len());
        for ((gn, g), (en, e)) in got.iter().zip(&want) {
            assert_eq!(gn, en);
            assert_close(g, e, 1e-4, gn);
        }
    }
}
