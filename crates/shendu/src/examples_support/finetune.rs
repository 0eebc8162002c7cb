//! Fine-tuning by weight transfer, the notebook's recipe: train LeNet-5, copy its convolution
//! weights into a differently built network with the name-suffix rule, freeze them, and train
//! only the new head.
//!
//! The suffix rule pairs a destination name with the source names that contain it at a position
//! above 0 (`k.find(_k) > 0`): it strips leading parts of the source names, never adds them. So,
//! as in the notebook, the pretrained weights come as saved from a `DataParallel`-style wrapper:
//! the trained LeNet sits inside a module named `module`, its state dict reads
//! `module.features.0.weight`, ..., `module.classifier.4.bias`. The new network keeps the
//! backbone's names (`features.0`, `features.3`) and replaces the classifier by a head of its own
//! (`head.fc1`, `head.fc2`, `head.fc3`), which no source name contains: the plan pairs the four
//! convolution tensors, leaves the head untouched and the old classifier unused.

use std::sync::Arc;

use shendu_core::{DType, Padding};
use shendu_data::{DataLoader, Mnist, Normalize, Split};
use shendu_nn::layers::{Conv2dConfig, Flatten, Linear, MaxPool2d, Relu};
use shendu_nn::loss::{cross_entropy, CrossEntropyOpts};
use shendu_nn::optim::{Optimizer, Sgd, SgdConfig};
use shendu_nn::state::{self, plan_transfer, TransferPlan, TransferRule};
use shendu_nn::{Mode, Module, ModuleExt, Param, Sequential};
use shendu_vision::zoo::{self, ModelOptions};

use crate::cli::eval::evaluate;
use crate::cli::{CliError, CliResult};

/// The schedule of the run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Epochs of LeNet-5 on the embedded training subset (6,000 images).
    pub pretrain_epochs: usize,
    /// Epochs of the new head with the backbone frozen.
    pub head_epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub momentum: f64,
    pub seed: u64,
    /// At most this many batches per epoch (tests use a few; `None` for whole epochs).
    pub max_batches: Option<usize>,
}

impl Default for Config {
    /// Two epochs of LeNet, one of the head, batch 64, SGD lr 0.05 with momentum 0.9.
    fn default() -> Self {
        Config { pretrain_epochs: 2, head_epochs: 1, batch: 64, lr: 0.05, momentum: 0.9, seed: 0, max_batches: None }
    }
}

/// What the run measured. Accuracies are fractions on the embedded test subset (1,000 images).
pub struct Outcome {
    /// LeNet-5 after pretraining.
    pub lenet_accuracy: f64,
    /// The transfer plan (made with [`plan_transfer`], printed before it was applied).
    pub plan: TransferPlan,
    /// The parameters frozen after the copy.
    pub frozen: Vec<String>,
    /// The new network with the copied backbone and its freshly initialised head.
    pub accuracy_before: f64,
    /// The new network after training the head.
    pub accuracy_after: f64,
    /// Every frozen value is bit-for-bit what was copied in.
    pub frozen_unchanged: bool,
    /// Some head value differs from its initial one.
    pub head_changed: bool,
}

/// The new network: LeNet's convolution backbone under the same names (`features.0`,
/// `features.3`), then `head.fc1` (400 -> 120), `head.fc2` (120 -> 84), `head.fc3` (84 -> 10).
pub fn finetune_net(opts: &ModelOptions) -> CliResult<Sequential> {
    let dt = opts.dtype;
    let features = Sequential::new()
        .push(Conv2dConfig::new(opts.in_channels, 6, 5).padding(Padding::Explicit { top: 2, bottom: 2, left: 2, right: 2 }).build(dt)?)
        .push(Relu)
        .push(MaxPool2d::new(2))
        .push(Conv2dConfig::new(6, 16, 5).build(dt)?)
        .push(Relu)
        .push(MaxPool2d::new(2));
    let (h, w) = opts.input_hw;
    let flat = 16 * ((h / 2).saturating_sub(4) / 2) * ((w / 2).saturating_sub(4) / 2);
    let head = Sequential::new()
        .push_named("fc1", Linear::new(flat, 120, dt)?)
        .push_named("relu1", Relu)
        .push_named("fc2", Linear::new(120, 84, dt)?)
        .push_named("relu2", Relu)
        .push_named("fc3", Linear::new(84, opts.classes, dt)?);
    Ok(Sequential::new().push_named("features", features).push_named("flatten", Flatten::new()).push_named("head", head))
}

/// The embedded MNIST training and test loaders, normalized as `shendu train` does.
pub fn loaders(batch: usize, seed: u64) -> CliResult<(DataLoader, DataLoader)> {
    let norm = Arc::new(Normalize::mnist());
    let train = DataLoader::new(Arc::new(Mnist::embedded(Split::Train)?), batch)?.shuffle(true).seed(seed).transform(norm.clone());
    let test = DataLoader::new(Arc::new(Mnist::embedded(Split::Test)?), 500)?.transform(norm);
    Ok((train, test))
}

/// Plain SGD training of `params` (the trainable ones of `model`) for `epochs`; returns the mean
/// loss of the last epoch.
pub fn train(model: &dyn Module, params: Vec<(String, Param)>, loader: &DataLoader, epochs: usize, cfg: &Config) -> CliResult<f64> {
    let mut opt = Sgd::new(params, SgdConfig { lr: cfg.lr, momentum: cfg.momentum, ..Default::default() })?;
    let ce = CrossEntropyOpts::default();
    let mut last = f64::NAN;
    for epoch in 0..epochs {
        let (mut sum, mut n) = (0.0, 0usize);
        for batch in loader.epoch(epoch).take(cfg.max_batches.unwrap_or(usize::MAX)) {
            let batch = batch?;
            let logits = model.forward(&batch.inputs, Mode::Train)?;
            let loss = cross_entropy(&logits, &batch.targets, &ce)?;
            opt.zero_grad();
            loss.backward()?;
            opt.step()?;
            sum += loss.to_vec_f64()?.first().copied().unwrap_or(f64::NAN);
            n += 1;
        }
        last = sum / n.max(1) as f64;
    }
    Ok(last)
}

/// Trains zoo LeNet-5 on the embedded subset; returns it with its test accuracy.
pub fn pretrain_lenet(cfg: &Config) -> CliResult<(Box<dyn Module>, f64)> {
    shendu_core::manual_seed(cfg.seed);
    let (train_loader, test_loader) = loaders(cfg.batch, cfg.seed)?;
    let lenet = zoo::build("lenet", &ModelOptions::mnist())?;
    train(lenet.as_ref(), lenet.trainable_params(), &train_loader, cfg.pretrain_epochs, cfg)?;
    let acc = evaluate(lenet.as_ref(), &test_loader, test_loader.dataset().num_classes())?.accuracy();
    Ok((lenet, acc))
}

fn values(params: &[(String, Param)], pred: impl Fn(&str) -> bool) -> CliResult<Vec<Vec<f32>>> {
    params.iter().filter(|(n, _)| pred(n)).map(|(_, p)| Ok(p.value().to_dtype(DType::F32)?.to_vec::<f32>()?)).collect()
}

/// The whole recipe; `log` receives the lines the example prints.
pub fn run(cfg: &Config, log: &mut dyn FnMut(&str)) -> CliResult<Outcome> {
    let (lenet, lenet_accuracy) = pretrain_lenet(cfg)?;
    log(&format!("LeNet-5 after {} epoch(s): test accuracy {:.2}%", cfg.pretrain_epochs, 100.0 * lenet_accuracy));
    // As saved from a DataParallel wrapper: every name gains a `module.` prefix.
    let pretrained = Sequential::new().push_named("module", lenet);
    let src = state::state_dict(&pretrained);

    let (_, test_loader) = loaders(cfg.batch, cfg.seed)?;
    let classes = test_loader.dataset().num_classes();
    let net = finetune_net(&ModelOptions::mnist())?;
    let dst = net.named_params();
    let plan = plan_transfer(&src, &dst, &TransferRule::SuffixMatch)?;
    log(&format!("dry run of the suffix rule:\n{plan}"));
    if !plan.is_clean() {
        return Err(CliError::internal(format!("the transfer plan has problems: {:?}", plan.problems)));
    }
    plan.apply(&dst)?;
    let frozen = state::freeze(&net, "features");
    log(&format!("frozen: {}", frozen.join(", ")));
    let is_frozen = |n: &str| frozen.iter().any(|f| f == n);
    let frozen_before = values(&dst, is_frozen)?;
    let head_before = values(&dst, |n| n.starts_with("head."))?;
    let accuracy_before = evaluate(&net, &test_loader, classes)?.accuracy();
    log(&format!("new network, copied backbone and untrained head: test accuracy {:.2}%", 100.0 * accuracy_before));

    let (train_loader, _) = loaders(cfg.batch, cfg.seed.wrapping_add(1))?;
    let trainable = net.trainable_params();
    log(&format!("training {} tensor(s) of the head for {} epoch(s)", trainable.len(), cfg.head_epochs));
    let loss = train(&net, trainable, &train_loader, cfg.head_epochs, cfg)?;
    let accuracy_after = evaluate(&net, &test_loader, classes)?.accuracy();
    log(&format!("after training the head (last epoch's mean loss {loss:.4}): test accuracy {:.2}%", 100.0 * accuracy_after));

    let frozen_unchanged = values(&dst, is_frozen)? == frozen_before;
    let head_changed = values(&dst, |n| n.starts_with("head."))? != head_before;
    Ok(Outcome { lenet_accuracy, plan, frozen, accuracy_before, accuracy_after, frozen_unchanged, head_changed })
}
