//! `Sequential`: modules applied one after another, named by position or by choice.

use shendu_core::Tensor;

use crate::{join_name, Mode, Module, Param, Result};

/// A chain of modules. Children are named `0`, `1`, ... like PyTorch's `nn.Sequential`, or by the
/// name given to [`Sequential::push_named`].
///
/// ```
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::{layers::{Linear, Relu}, Mode, Module, Sequential};
/// let net = Sequential::new().push(Linear::new(2, 2, DType::F64).unwrap()).push(Relu);
/// let y = net.forward(&Tensor::ones(&[1, 2], DType::F64).unwrap(), Mode::Eval).unwrap();
/// assert!(y.to_vec::<f64>().unwrap().iter().all(|v| *v >= 0.0));
/// ```
#[derive(Default)]
pub struct Sequential {
    children: Vec<(String, Box<dyn Module>)>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a child named by its position.
    pub fn push(self, m: impl Module + 'static) -> Sequential {
        let name = self.children.len().to_string();
        self.push_named(name, m)
    }

    /// Appends a child with a chosen name (`conv1`, `features`, ...).
    pub fn push_named(mut self, name: impl Into<String>, m: impl Module + 'static) -> Sequential {
        self.children.push((name.into(), Box::new(m)));
        self
    }

    /// Appends an already boxed child named by its position.
    pub fn push_boxed(mut self, m: Box<dyn Module>) -> Sequential {
        let name = self.children.len().to_string();
        self.children.push((name, m));
        self
    }

    pub fn len(&self) -> usize {
        self.children.len()
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The children with their names.
    pub fn children(&self) -> impl Iterator<Item = (&str, &dyn Module)> {
        self.children.iter().map(|(n, m)| (n.as_str(), m.as_ref()))
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let mut h = x.clone();
        for (name, m) in &self.children {
            h = crate::tap::forward_child(name, m.as_ref(), &h, mode)?;
        }
        Ok(h)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        for (name, m) in &self.children {
            m.visit_params(&join_name(prefix, name), f);
        }
    }

    fn type_name(&self) -> &'static str {
        "Sequential"
    }
}
