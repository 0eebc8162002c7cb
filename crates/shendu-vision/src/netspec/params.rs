//! The parameters a spec's network has: names, shapes and roles, in state-dict order. The
//! builder creates exactly these (a test holds it to that), the `.weights` reader and writer walk
//! them, and the summary counts them, so all three agree on what a model holds.

use shendu_nn::Result;

use super::{Layer, NetSpec, ShortcutWeights};

/// What a named tensor of a network is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Trained by the optimizer.
    Weight,
    /// Saved and loaded but not trained (a batch norm's running mean and variance).
    Buffer,
    /// A batch norm's `num_batches_tracked`: an i64 scalar buffer, as in PyTorch.
    Counter,
}

/// One named tensor of a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    /// Dotted name (`layer1.0.bn1.running_mean`).
    pub name: String,
    pub shape: Vec<usize>,
    pub kind: ParamKind,
    /// The layer it belongs to.
    pub layer: usize,
}

impl NetSpec {
    /// Every parameter and buffer in state-dict order: per layer, a conv's or connected layer's
    /// `weight` then `bias` (when it has one), then its batch norm's `weight`, `bias`,
    /// `running_mean`, `running_var`, `num_batches_tracked` (PyTorch's order).
    ///
    /// ```
    /// use shendu_vision::netspec::{Conv, Layer, LayerSpec, NetOptions, NetSpec};
    /// let mut spec = NetSpec::new(NetOptions::input(3, 8, 8));
    /// spec.push(LayerSpec::new(Layer::Conv(Conv::new(4, 3, 1).bn())).named("conv1").bn_named("bn1"));
    /// let names: Vec<String> = spec.params().unwrap().into_iter().map(|p| p.name).collect();
    /// assert_eq!(names, ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"]);
    /// assert_eq!(spec.param_count().unwrap(), 4 * 3 * 9 + 8);
    /// ```
    pub fn params(&self) -> Result<Vec<ParamSpec>> {
        let shapes = self.shapes()?;
        let mut out = Vec::new();
        for (i, spec) in self.layers.iter().enumerate() {
            let x = shapes[i].input;
            let mut push = |name: String, shape: Vec<usize>, kind: ParamKind| out.push(ParamSpec { name, shape, kind, layer: i });
            let own = |leaf: &str| format!("{}.{leaf}", self.layer_name(i));
            let (bias_len, bn_len) = match &spec.layer {
                Layer::Conv(c) => {
                    push(own("weight"), vec![c.filters, x.c / c.groups, c.size, c.size], ParamKind::Weight);
                    if c.dirac {
                        push(own("alpha"), vec![c.filters], ParamKind::Weight);
                        push(own("beta"), vec![c.filters], ParamKind::Weight);
                    }
                    own_bias_and_norm(c.filters, c.bias, c.batch_normalize)
                }
                Layer::Connected(c) => {
                    push(own("weight"), vec![c.output, x.len()], ParamKind::Weight);
                    own_bias_and_norm(c.output, c.bias, c.batch_normalize)
                }
                Layer::BatchNorm => {
                    push_norm(&mut push, &self.layer_name(i), x.c);
                    (None, None)
                }
                Layer::Shortcut(s) => {
                    let inputs = s.from.len() + 1;
                    match s.weights {
                        ShortcutWeights::None => {}
                        ShortcutWeights::PerFeature { .. } => push(own("weight"), vec![inputs], ParamKind::Weight),
                        ShortcutWeights::PerChannel { .. } => push(own("weight"), vec![inputs, x.c], ParamKind::Weight),
                    }
                    (None, None)
                }
                _ => (None, None),
            };
            if let Some(n) = bias_len {
                push(own("bias"), vec![n], ParamKind::Weight);
            }
            if let Some(n) = bn_len {
                push_norm(&mut push, &self.bn_name(i), n);
            }
        }
        Ok(out)
    }

    /// The number of trained values (PyTorch's `sum(p.numel() for p in model.parameters())`).
    pub fn param_count(&self) -> Result<usize> {
        Ok(self.params()?.iter().filter(|p| p.kind == ParamKind::Weight).map(|p| p.shape.iter().product::<usize>()).sum())
    }
}

/// `(bias length, batch-norm channels)` of a conv or connected layer with `n` outputs.
fn own_bias_and_norm(n: usize, bias: bool, batch_normalize: bool) -> (Option<usize>, Option<usize>) {
    match (batch_normalize, bias) {
        (true, _) => (None, Some(n)),
        (false, true) => (Some(n), None),
        (false, false) => (None, None),
    }
}

fn push_norm(push: &mut impl FnMut(String, Vec<usize>, ParamKind), prefix: &str, c: usize) {
    push(format!("{prefix}.weight"), vec![c], ParamKind::Weight);
    push(format!("{prefix}.bias"), vec![c], ParamKind::Weight);
    push(format!("{prefix}.running_mean"), vec![c], ParamKind::Buffer);
    push(format!("{prefix}.running_var"), vec![c], ParamKind::Buffer);
    push(format!("{prefix}.num_batches_tracked"), vec![], ParamKind::Counter);
}
