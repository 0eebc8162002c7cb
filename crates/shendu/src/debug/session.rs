//! The training run under the debugger, steppable one phase at a time: a step is its forward
//! pass (layer outputs recorded by the tap), its backward pass (the gradients of the parameters
//! and of every recorded output, through [`Tensor::backward_keeping`]) and the optimizer update.
//! Between phases the run can pause, with everything the step has made so far on show.

use std::sync::Arc;

use shendu_core::Tensor;
use shendu_data::{Batch, DataLoader, Normalize, MNIST_MEAN, MNIST_STD};
use shendu_nn::loss::{cross_entropy, CrossEntropyOpts};
use shendu_nn::optim::Optimizer;
use shendu_nn::schedule::Schedule;
use shendu_nn::{clip, tap, Mode, Module, ModuleExt};
use shendu_vision::netspec::{Activation, Layer, NetSpec};

use crate::cli::{CliError, CliResult};
use crate::train::{load_data, model, model_options, TrainConfig};

/// Which part of a step ran last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The forward pass: input, layer outputs and loss exist.
    Forward,
    /// The backward pass: gradients exist too; the update has not happened.
    Backward,
    /// The optimizer update: the step is complete.
    Update,
}

/// A tensor of the current (or last) step, under its debugger name.
#[derive(Clone)]
pub struct Named {
    /// `input`, `loss`, `layers.2:output`, `layers.2:grad`, `layers.2.weight`, `layers.2.weight:grad`.
    pub name: String,
    /// The layer it belongs to (its dotted path), if any.
    pub layer: Option<String>,
    /// The layer's kind (`Relu`, `Linear`, `convolutional/relu`) for layer outputs.
    pub kind: Option<String>,
    /// A parameter's value (updated in place by the step's update).
    pub param: bool,
    pub tensor: Tensor,
}

/// A layer of the model as the tap sees it.
#[derive(Clone, Debug)]
pub struct LayerInfo {
    pub path: String,
    pub kind: String,
}

/// A step that has started and not yet finished.
struct Pending {
    recorded: Vec<tap::Recorded>,
    logits: Tensor,
    loss: Tensor,
    targets: Tensor,
    phase: Phase,
}

/// The debugged training run.
pub struct Session {
    pub config: TrainConfig,
    model: Box<dyn Module>,
    optimizer: Box<dyn Optimizer>,
    schedule: Schedule,
    loader: DataLoader,
    spec: Option<NetSpec>,
    layers: Vec<LayerInfo>,
    /// Completed steps.
    pub steps: usize,
    /// Loss of each completed step.
    pub losses: Vec<f64>,
    /// Accuracy on the batch of each completed step.
    pub accuracies: Vec<f64>,
    tensors: Vec<Named>,
    pending: Option<Pending>,
}

impl Session {
    /// Loads the data and builds the model and optimizer as a training run of `config` would.
    pub fn new(config: TrainConfig) -> CliResult<Session> {
        config.validate()?;
        let (train_set, _) = load_data(&config)?;
        let model_opts = model_options(train_set.as_ref())?;
        shendu_core::manual_seed(config.seed);
        let built = model::build(&config, &model_opts)?;
        let optimizer = config.build_optimizer(built.module.trainable_params())?;
        let normalize = Arc::new(Normalize { mean: vec![MNIST_MEAN], std: vec![MNIST_STD] });
        let loader = DataLoader::new(train_set, config.batch)?.shuffle(true).seed(config.seed).transform(normalize);
        // The schedule `shendu train` would follow over its epochs, so a session retraces a run.
        let schedule = config.schedule(config.epochs * loader.len_batches())?;
        let mut session = Session {
            config,
            model: built.module,
            optimizer,
            schedule,
            loader,
            spec: built.spec,
            layers: Vec::new(),
            steps: 0,
            losses: Vec::new(),
            accuracies: Vec::new(),
            tensors: Vec::new(),
            pending: None,
        };
        session.layers = session.discover_layers()?;
        Ok(session)
    }

    /// The layers (paths and kinds) of one evaluation-mode forward pass, without gradients: the
    /// names breakpoints and completion know before the first step.
    fn discover_layers(&self) -> CliResult<Vec<LayerInfo>> {
        let batch = self.loader.batch(0, 0)?;
        let _no_grad = shendu_core::no_grad();
        let _tap = tap::open();
        self.model.forward(&batch.inputs, Mode::Eval)?;
        Ok(tap::take().iter().map(|r| LayerInfo { path: r.path.clone(), kind: self.kind_of(r) }).collect())
    }

    /// A layer's kind: its type, with a cfg layer's activation (`convolutional/relu`).
    fn kind_of(&self, r: &tap::Recorded) -> String {
        let act = self.spec.as_ref().and_then(|spec| {
            let i = (0..spec.layers.len()).find(|&i| spec.layer_name(i) == r.path)?;
            match &spec.layers[i].layer {
                Layer::Conv(c) => Some(c.activation),
                Layer::Connected(c) => Some(c.activation),
                _ => None,
            }
        });
        match act {
            Some(a) => format!("{}/{}", r.type_name, activation_name(a)),
            None => r.type_name.to_string(),
        }
    }

    pub fn model(&self) -> &dyn Module {
        self.model.as_ref()
    }
    pub fn optimizer_name(&self) -> &'static str {
        self.optimizer.name()
    }
    /// The learning rate of the step in progress, or of the next one.
    pub fn lr(&self) -> f64 {
        self.schedule.lr_at(self.config.lr, self.steps)
    }
    pub fn batches_per_epoch(&self) -> usize {
        self.loader.len_batches()
    }
    pub fn train_samples(&self) -> usize {
        self.loader.dataset().len()
    }
    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    /// The tensors of the step in progress, or of the last step.
    pub fn tensors(&self) -> &[Named] {
        &self.tensors
    }

    /// The 1-based number of the step in progress (or of the last one when none is).
    pub fn current_step(&self) -> usize {
        self.steps + usize::from(self.pending.is_some())
    }

    /// Where the step in progress is paused; `None` between steps.
    pub fn paused_after(&self) -> Option<Phase> {
        self.pending.as_ref().map(|p| p.phase)
    }

    /// Every name a tensor can have in a step (for completion and for checking `watch`).
    pub fn known_names(&self) -> Vec<String> {
        let mut names = vec!["input".to_string(), "loss".to_string()];
        for l in &self.layers {
            names.push(format!("{}:output", l.path));
            names.push(format!("{}:grad", l.path));
        }
        for (name, _) in self.model.named_params() {
            names.push(format!("{name}:grad"));
            names.push(name);
        }
        for t in &self.tensors {
            if !names.contains(&t.name) {
                names.push(t.name.clone());
            }
        }
        names
    }

    /// Runs the next phase of the current step (starting a step if none is in progress) and
    /// returns which phase it was. The tensors it made are `tensors()[from..]` with `from` the
    /// length before the call (0 for a forward pass, which starts a new list); an update
    /// changes the parameters' values in place.
    pub fn advance(&mut self) -> CliResult<Phase> {
        match self.pending.as_ref().map(|p| p.phase) {
            None => self.forward(),
            Some(Phase::Forward) => self.backward(),
            Some(Phase::Backward) => self.update(),
            Some(Phase::Update) => Err(CliError::internal("debug: a finished step was left pending")),
        }
    }

    /// The parameters as tensors (`layers.2.weight`). They share storage with the model, so
    /// after an update they show the updated values.
    pub fn parameters(&self) -> Vec<Named> {
        self.model
            .named_params()
            .into_iter()
            .map(|(name, param)| {
                let layer = name.rsplit_once('.').map(|(l, _)| l.to_string());
                Named { name, layer, kind: None, param: true, tensor: param.value() }
            })
            .collect()
    }

    /// Drops the step in progress (after a failure): the next `advance` starts the step again.
    pub fn abandon_step(&mut self) {
        self.pending = None;
        self.optimizer.zero_grad();
    }

    fn forward(&mut self) -> CliResult<Phase> {
        let per_epoch = self.loader.len_batches().max(1);
        let batch: Batch = self.loader.batch(self.steps / per_epoch, self.steps % per_epoch)?;
        self.optimizer.set_lr(self.schedule.lr_at(self.config.lr, self.steps));
        self.optimizer.zero_grad();
        let tap = tap::open();
        let logits = self.model.forward(&batch.inputs, Mode::Train);
        let recorded = tap::take();
        drop(tap);
        let logits = logits?;
        let loss = cross_entropy(&logits, &batch.targets, &CrossEntropyOpts::default())?;
        let mut tensors = vec![Named { name: "input".into(), layer: None, kind: None, param: false, tensor: batch.inputs.clone() }];
        tensors.extend(self.parameters());
        for r in &recorded {
            tensors.push(Named {
                name: format!("{}:output", r.path),
                layer: Some(r.path.clone()),
                kind: Some(self.kind_of(r)),
                param: false,
                tensor: r.output.detach(),
            });
        }
        tensors.push(Named { name: "loss".into(), layer: None, kind: None, param: false, tensor: loss.detach() });
        self.tensors = tensors;
        self.pending = Some(Pending { recorded, logits, loss, targets: batch.targets, phase: Phase::Forward });
        Ok(Phase::Forward)
    }

    fn backward(&mut self) -> CliResult<Phase> {
        let p = self.pending.as_mut().ok_or_else(|| CliError::internal("debug: no step in progress"))?;
        let keep: Vec<&Tensor> = p.recorded.iter().map(|r| &r.output).collect();
        let grads = p.loss.backward_keeping(&keep)?;
        // Backward order: the gradient reaches the last layer first.
        for r in p.recorded.iter().rev() {
            if let Some(g) = grads.get(&r.output) {
                self.tensors.push(Named {
                    name: format!("{}:grad", r.path),
                    layer: Some(r.path.clone()),
                    kind: None,
                    param: false,
                    tensor: g.clone(),
                });
            }
        }
        for (name, param) in self.model.named_params() {
            if let Some(g) = param.grad() {
                let layer = name.rsplit_once('.').map(|(l, _)| l.to_string());
                self.tensors.push(Named { name: format!("{name}:grad"), layer, kind: None, param: false, tensor: g });
            }
        }
        if self.config.clip_norm > 0.0 {
            clip::clip_grad_norm(&self.model.trainable_params(), self.config.clip_norm, 2.0)?;
        }
        p.phase = Phase::Backward;
        Ok(Phase::Backward)
    }

    fn update(&mut self) -> CliResult<Phase> {
        let p = self.pending.take().ok_or_else(|| CliError::internal("debug: no step in progress"))?;
        self.optimizer.step()?;
        self.losses.push(p.loss.to_f64()?);
        self.accuracies.push(shendu_nn::loss::accuracy(&p.logits.detach(), &p.targets)?);
        self.steps += 1;
        Ok(Phase::Update)
    }
}

/// A cfg activation's name as the cfg writes it.
fn activation_name(a: Activation) -> String {
    format!("{a:?}").to_lowercase()
}
