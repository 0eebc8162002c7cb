//! W4 (MLP training step) and W5 (LeNet-5 training step) of BENCH.md, and the zoo models'
//! training steps of issue 5 (Z1 ResNet-20, Z2 MobileNet v2 28x28, Z3 ShuffleNet v2 28x28).
//!
//! Both build their network with the zoo, the loss with `shendu_nn::loss::cross_entropy` and the
//! update with `shendu_nn::optim::Sgd`, so the step timed here is the step `shendu train` runs.

use shendu_core::{DType, Result, Rng, Tensor};
use shendu_nn::loss::{cross_entropy, CrossEntropyOpts};
use shendu_nn::optim::{Optimizer, Sgd, SgdConfig};
use shendu_nn::{Mode, Module, ModuleExt};
use shendu_vision::zoo::{self, ModelOptions};

/// W4's batch size.
pub const MLP_BATCH: usize = 128;
/// W5's batch size.
pub const LENET_BATCH: usize = 64;
/// W4 and W5's learning rate (plain SGD, no momentum).
pub const LR: f64 = 0.01;

/// One of the two training workloads, ready to step.
pub struct TrainStep {
    model: Box<dyn Module>,
    opt: Sgd,
    x: Tensor,
    y: Tensor,
    ce: CrossEntropyOpts,
    /// Samples per step.
    pub batch: usize,
}

/// Turns a `shendu_nn::Error` into a core error so the bench's `Result` carries it.
fn nn_err(e: shendu_nn::Error) -> shendu_core::Error {
    match e {
        shendu_nn::Error::Core(e) => e,
        other => shendu_core::Error::invalid("bench", other.to_string()),
    }
}

impl TrainStep {
    /// W4: MLP 784-512-512-10 with ReLU, batch 128.
    pub fn mlp() -> Result<TrainStep> {
        shendu_core::manual_seed(0);
        let model = zoo::mlp(&ModelOptions::mnist(), &[512, 512]).map_err(nn_err)?;
        TrainStep::new(Box::new(model), [1, 28, 28], MLP_BATCH)
    }

    /// W5: LeNet-5 on 1x28x28, batch 64.
    pub fn lenet() -> Result<TrainStep> {
        shendu_core::manual_seed(0);
        let model = zoo::lenet5(&ModelOptions::mnist()).map_err(nn_err)?;
        TrainStep::new(Box::new(model), [1, 28, 28], LENET_BATCH)
    }

    /// Any zoo model at the input and classes it was designed for (issue 5's benchmarks:
    /// `resnet20` at batch 32, `mobilenet_v2_mnist` and `shufflenet_v2_mnist` at batch 64).
    pub fn zoo(name: &str, batch: usize) -> Result<TrainStep> {
        shendu_core::manual_seed(0);
        let opts = ModelOptions::for_model(name).map_err(nn_err)?;
        let model = zoo::build(name, &opts).map_err(nn_err)?;
        let (h, w) = opts.input_hw;
        TrainStep::new(model, [opts.in_channels, h, w], batch)
    }

    /// A fixed random batch (standard-normal images, uniform labels) from seed 1.
    fn new(model: Box<dyn Module>, [c, h, w]: [usize; 3], batch: usize) -> Result<TrainStep> {
        let mut rng = Rng::new(1);
        let x = Tensor::randn_with([batch, c, h, w], DType::F32, &mut rng)?;
        let labels: Vec<i64> = (0..batch).map(|_| rng.below(10) as i64).collect();
        let y = Tensor::from_vec(labels, &[batch])?;
        let opt = Sgd::new(model.trainable_params(), SgdConfig { lr: LR, ..Default::default() }).map_err(nn_err)?;
        Ok(TrainStep { model, opt, x, y, ce: CrossEntropyOpts::default(), batch })
    }

    /// The fixed batch: inputs `[batch, 1, 28, 28]` and i64 labels.
    pub fn batch_tensors(&self) -> (Tensor, Tensor) {
        (self.x.clone(), self.y.clone())
    }

    /// The network being trained.
    pub fn model(&self) -> &dyn Module {
        self.model.as_ref()
    }

    /// One training step (clear the gradients, forward, loss, backward, SGD update); returns
    /// the loss before the update.
    ///
    /// The step runs inside shendu's thread pool: its many small parallel kernels then split
    /// their work from a pool thread, which runs one part itself and lets an idle worker take
    /// the other, instead of handing every kernel to the pool and sleeping until it is done
    /// (on 2 cores W5 runs ~15% faster this way).
    pub fn step(&mut self) -> Result<f64> {
        shendu_core::cpu::threads::install(|| self.step_here())
    }

    fn step_here(&mut self) -> Result<f64> {
        self.opt.zero_grad();
        let logits = self.model.forward(&self.x, Mode::Train).map_err(nn_err)?;
        let loss = cross_entropy(&logits, &self.y, &self.ce).map_err(nn_err)?;
        loss.backward()?;
        self.opt.step().map_err(nn_err)?;
        loss.to_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_lower_the_loss() {
        for mut s in [TrainStep::mlp().unwrap(), TrainStep::lenet().unwrap()] {
            let l0 = s.step().unwrap();
            let mut l = l0;
            for _ in 0..5 {
                l = s.step().unwrap();
            }
            assert!(l0.is_finite() && l < l0, "loss {l0} -> {l}");
        }
    }
}
