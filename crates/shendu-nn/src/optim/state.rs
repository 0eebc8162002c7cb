//! The machinery shared by the optimizers: per-parameter step counts and state buffers, the
//! update loop, and saving/loading the state by name.

use std::collections::HashMap;

use shendu_core::{DType, Float, Tensor};

use crate::{Error, Param, Result};

/// One state buffer (momentum, first or second moment), in the parameter's dtype. Plain vectors
/// rather than tensors so that the update writes them in place.
pub(crate) enum Buf {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// The float types an optimizer updates.
pub(crate) trait Elem: Float {
    fn buf_mut(b: &mut Buf) -> Option<&mut [Self]>;
}

impl Elem for f32 {
    fn buf_mut(b: &mut Buf) -> Option<&mut [f32]> {
        match b {
            Buf::F32(v) => Some(v),
            Buf::F64(_) => None,
        }
    }
}

impl Elem for f64 {
    fn buf_mut(b: &mut Buf) -> Option<&mut [f64]> {
        match b {
            Buf::F64(v) => Some(v),
            Buf::F32(_) => None,
        }
    }
}

impl Buf {
    fn zeros(dtype: DType, n: usize) -> Option<Buf> {
        match dtype {
            DType::F32 => Some(Buf::F32(vec![0.0; n])),
            DType::F64 => Some(Buf::F64(vec![0.0; n])),
            _ => None,
        }
    }

    fn to_tensor(&self, dims: &[usize]) -> Result<Tensor> {
        Ok(match self {
            Buf::F32(v) => Tensor::from_slice(v, dims)?,
            Buf::F64(v) => Tensor::from_slice(v, dims)?,
        })
    }

    fn from_tensor(t: &Tensor, dtype: DType) -> Result<Buf> {
        let t = t.detach().to_dtype(dtype)?;
        Ok(match dtype {
            DType::F32 => Buf::F32(t.to_vec()?),
            _ => Buf::F64(t.to_vec()?),
        })
    }
}

/// An elementwise update rule: updates the parameter `p` and the state buffers in place from the
/// gradient `g`. All slices have one length. Elementwise, so that [`apply_chunked`] may split
/// the slices between threads without changing a bit of the result.
pub(crate) trait Rule: Sync {
    fn apply<T: Elem>(&self, step: u64, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]);
}

/// Parameters at least this large are updated by several threads (below it, waking the pool
/// costs more than the pass, which is memory bound).
const PARALLEL_MIN: usize = 1 << 16;

/// Runs `rule` over the slices, split into per-thread chunks when they are large.
fn apply_chunked<T: Elem, R: Rule>(rule: &R, step: u64, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
    let n = p.len();
    if n < PARALLEL_MIN || shendu_core::cpu::threads::num_threads() <= 1 {
        return rule.apply(step, p, g, bufs);
    }
    let p_ptr = SendMut(p.as_mut_ptr());
    let b_ptrs: Vec<SendMut<T>> = bufs.iter_mut().map(|b| SendMut(b.as_mut_ptr())).collect();
    shendu_core::cpu::threads::parallel_ranges(n, PARALLEL_MIN / 2, |r| {
        // SAFETY: every slice has n elements (checked by the caller) and the ranges are disjoint,
        // so each chunk owns its part of the parameter and of every buffer.
        let (p, mut bufs) = unsafe {
            let p = std::slice::from_raw_parts_mut(p_ptr.get().add(r.start), r.len());
            let bufs: Vec<&mut [T]> = b_ptrs.iter().map(|b| std::slice::from_raw_parts_mut(b.get().add(r.start), r.len())).collect();
            (p, bufs)
        };
        rule.apply(step, p, &g[r.clone()], &mut bufs);
    });
}

/// A raw pointer that may cross to the pool's threads (each uses a disjoint range).
#[derive(Clone, Copy)]
struct SendMut<T>(*mut T);
// SAFETY: only used by `apply_chunked`, whose ranges never overlap.
unsafe impl<T> Send for SendMut<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendMut<T> {}
impl<T> SendMut<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

pub(crate) struct Slot {
    name: String,
    param: Param,
    /// Updates so far; 0 means the buffers are untouched (SGD then starts its momentum at the
    /// gradient, as PyTorch's lazily created buffer).
    step: u64,
    bufs: Vec<Buf>,
}

/// The parameters of one optimizer with their state; `kinds` names the buffers of each.
pub(crate) struct Slots {
    opt: &'static str,
    slots: Vec<Slot>,
    kinds: Vec<&'static str>,
}

impl Slots {
    /// Takes the parameters in order; a parameter listed twice (tied weights) is kept once,
    /// under its first name.
    pub(crate) fn new(opt: &'static str, params: Vec<(String, Param)>, kinds: Vec<&'static str>) -> Result<Slots> {
        let mut slots: Vec<Slot> = Vec::with_capacity(params.len());
        for (name, param) in params {
            if slots.iter().any(|s| s.param.same(&param)) {
                continue;
            }
            if slots.iter().any(|s| s.name == name) {
                return Err(Error::config("params", format!("{opt}: two different parameters are named {name}")));
            }
            let n = param.shape().elem_count();
            let bufs: Option<Vec<Buf>> = kinds.iter().map(|_| Buf::zeros(param.dtype(), n)).collect();
            let Some(bufs) = bufs else {
                return Err(Error::config("params", format!("{opt}: {name} has dtype {}; optimizers update f32 and f64", param.dtype())));
            };
            slots.push(Slot { name, param, step: 0, bufs });
        }
        Ok(Slots { opt, slots, kinds })
    }

    pub(crate) fn zero_grad(&self) {
        for s in &self.slots {
            s.param.zero_grad();
        }
    }

    /// Applies `rule` to every trainable parameter that has a gradient, outside autograd.
    pub(crate) fn update<R: Rule>(&mut self, rule: &R) -> Result<()> {
        let _no_grad = shendu_core::no_grad();
        let opt = self.opt;
        for slot in &mut self.slots {
            if !slot.param.is_trainable() {
                continue;
            }
            let Some(g) = slot.param.grad() else { continue };
            if g.shape() != slot.param.shape() || g.dtype() != slot.param.dtype() {
                return Err(Error::layer(
                    &slot.name,
                    format!(
                        "{opt}: gradient {} {} does not match the parameter {} {}",
                        g.shape(),
                        g.dtype(),
                        slot.param.shape(),
                        slot.param.dtype()
                    ),
                ));
            }
            let step = slot.step + 1;
            match slot.param.dtype() {
                DType::F32 => slot.update::<f32, R>(opt, rule, step)?,
                _ => slot.update::<f64, R>(opt, rule, step)?,
            }
            slot.step = step;
        }
        Ok(())
    }

    pub(crate) fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(self.slots.len() * (1 + self.kinds.len()));
        for s in &self.slots {
            out.push((format!("step.{}", s.name), Tensor::scalar(s.step as i64)));
            for (kind, buf) in self.kinds.iter().zip(&s.bufs) {
                // The buffers hold exactly the parameter's element count, so this cannot fail.
                if let Ok(t) = buf.to_tensor(s.param.dims()) {
                    out.push((format!("{kind}.{}", s.name), t));
                }
            }
        }
        out
    }

    /// Checks every entry first and changes nothing on error.
    pub(crate) fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let opt = self.opt;
        let mut given: HashMap<&str, &Tensor> = HashMap::with_capacity(state.len());
        for (name, t) in state {
            if given.insert(name.as_str(), t).is_some() {
                return Err(Error::config(name.clone(), format!("{opt} state: entry appears twice")));
            }
        }
        fn take<'a>(opt: &str, given: &mut HashMap<&str, &'a Tensor>, key: &str) -> Result<&'a Tensor> {
            given.remove(key).ok_or_else(|| Error::config(key.to_string(), format!("{opt} state: entry is missing")))
        }
        let mut loaded = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            let key = format!("step.{}", s.name);
            let t = take(opt, &mut given, &key)?;
            let step = match t.to_vec_f64() {
                Ok(v) if v.len() == 1 && v[0] >= 0.0 && v[0].fract() == 0.0 => v[0] as u64,
                _ => {
                    return Err(Error::config(
                        key,
                        format!("{opt} state: expected one non-negative integer, got {} {}", t.shape(), t.dtype()),
                    ))
                }
            };
            let mut bufs = Vec::with_capacity(self.kinds.len());
            for kind in &self.kinds {
                let key = format!("{kind}.{}", s.name);
                let t = take(opt, &mut given, &key)?;
                if t.shape() != s.param.shape() {
                    return Err(Error::config(
                        key,
                        format!("{opt} state: expected shape {} (the parameter's) but got {}", s.param.shape(), t.shape()),
                    ));
                }
                bufs.push(Buf::from_tensor(t, s.param.dtype())?);
            }
            loaded.push((step, bufs));
        }
        if let Some(extra) = state.iter().map(|(n, _)| n).find(|n| given.contains_key(n.as_str())) {
            return Err(Error::config(
                extra.clone(),
                format!("{opt} state: unexpected entry (not a state of this optimizer's parameters)"),
            ));
        }
        for (s, (step, bufs)) in self.slots.iter_mut().zip(loaded) {
            s.step = step;
            s.bufs = bufs;
        }
        Ok(())
    }
}

impl Slot {
    /// One step of `rule` on this parameter, in place in its storage (no copies).
    fn update<T: Elem, R: Rule>(&mut self, opt: &'static str, rule: &R, step: u64) -> Result<()> {
        let expected = self.bufs.len();
        let mut bufs: Vec<&mut [T]> = self.bufs.iter_mut().filter_map(<T as Elem>::buf_mut).collect();
        let n = self.param.shape().elem_count();
        if bufs.len() != expected || bufs.iter().any(|b| b.len() != n) {
            return Err(Error::layer(
                &self.name,
                format!("{opt}: state buffers do not match the parameter {} {}", self.param.shape(), self.param.dtype()),
            ));
        }
        self.param.var().update_in_place(|p: &mut [T], g: &[T]| apply_chunked(rule, step, p, g, &mut bufs))?;
        Ok(())
    }
}
