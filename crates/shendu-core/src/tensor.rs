//! `Tensor`: a cheap handle (an `Arc`) to storage, a layout, a dtype, a device, and, for eager
//! autograd, the op that made it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::autograd::GradFn;
use crate::dtype::{DType, WithDType};
use crate::pool::PooledVec;
use crate::storage::{IntoStorage, Storage};
use crate::{with_any, Device, Error, Layout, Result, Shape};

/// Identity of a tensor node, used to key gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

pub(crate) struct TensorImpl {
    pub(crate) id: TensorId,
    pub(crate) storage: Arc<RwLock<Storage>>,
    pub(crate) layout: Layout,
    pub(crate) dtype: DType,
    pub(crate) device: Device,
    /// The op and inputs that produced this tensor, when it needs a gradient and is not a leaf.
    pub(crate) grad_fn: Option<GradFn>,
    pub(crate) requires_grad: bool,
    /// The accumulated gradient of a leaf `Var` (PyTorch's `.grad`).
    pub(crate) leaf_grad: Option<Mutex<Option<Tensor>>>,
}

/// An n-dimensional array with eager autograd.
///
/// ```
/// use shendu_core::{Tensor, DType};
/// let x = Tensor::from_vec(vec![1f32, 2., 3., 4.], &[2, 2]).unwrap();
/// let y = x.matmul(&x.t().unwrap()).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![5., 11., 11., 25.]);
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<TensorImpl>);

impl Tensor {
    // ---- construction -------------------------------------------------------------------

    /// Wraps a storage and layout into a fresh tensor without gradient history.
    pub(crate) fn from_storage(storage: Storage, layout: Layout) -> Tensor {
        Tensor::view_of_storage(Arc::new(RwLock::new(storage)), layout)
    }

    pub(crate) fn view_of_storage(storage: Arc<RwLock<Storage>>, layout: Layout) -> Tensor {
        let dtype = storage.read().map(|s| s.dtype()).unwrap_or(DType::F32);
        Tensor(Arc::new(TensorImpl {
            id: TensorId::next(),
            storage,
            layout,
            dtype,
            device: Device::Cpu,
            grad_fn: None,
            requires_grad: false,
            leaf_grad: None,
        }))
    }

    /// The same tensor (same id and storage) marked as needing a gradient: made by `grad_fn`, or
    /// a leaf with a gradient slot (a `Var`).
    pub(crate) fn into_tracked(self, grad_fn: Option<GradFn>, leaf: bool) -> Tensor {
        let inner = &self.0;
        Tensor(Arc::new(TensorImpl {
            id: inner.id,
            storage: inner.storage.clone(),
            layout: inner.layout.clone(),
            dtype: inner.dtype,
            device: inner.device,
            grad_fn,
            requires_grad: true,
            leaf_grad: leaf.then(|| Mutex::new(None)),
        }))
    }

    /// A new tensor viewing this one's storage with another layout (no history).
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::view_of_storage(self.0.storage.clone(), layout)
    }

    /// A contiguous tensor from a pooled buffer.
    pub(crate) fn from_pooled<T: WithDType>(buf: PooledVec<T>, shape: Shape) -> Tensor {
        Tensor::from_storage(T::pooled_into_storage(buf), Layout::contiguous(shape))
    }

    /// A tensor from a vector, checking that the length matches the shape.
    pub fn from_vec<T: WithDType>(data: Vec<T>, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.elem_count() {
            return Err(Error::shape(
                "from_vec",
                format!("{} elements cannot fill shape {shape} ({} elements)", data.len(), shape.elem_count()),
            ));
        }
        Ok(Tensor::from_storage(T::into_storage(data), Layout::contiguous(shape)))
    }

    pub fn from_slice<T: WithDType>(data: &[T], shape: impl Into<Shape>) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A 0-d tensor.
    pub fn scalar<T: WithDType>(v: T) -> Tensor {
        Tensor::from_storage(T::into_storage(vec![v]), Layout::contiguous(Shape::scalar()))
    }

    /// A tensor of `shape` filled with `value` (converted to `dtype`).
    pub fn full(shape: impl Into<Shape>, value: f64, dtype: DType) -> Result<Tensor> {
        let shape = shape.into();
        let n = shape.elem_count();
        let storage = with_any!(dtype, |T| PooledVec::<T>::filled(n, T::from_f64(value)).into_storage());
        Ok(Tensor::from_storage(storage, Layout::contiguous(shape)))
    }

    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        Tensor::full(shape, 0.0, dtype)
    }

    pub fn ones(shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        Tensor::full(shape, 1.0, dtype)
    }

    pub fn zeros_like(&self) -> Result<Tensor> {
        Tensor::zeros(self.shape().clone(), self.dtype())
    }

    pub fn ones_like(&self) -> Result<Tensor> {
        Tensor::ones(self.shape().clone(), self.dtype())
    }

    pub fn full_like(&self, value: f64) -> Result<Tensor> {
        Tensor::full(self.shape().clone(), value, self.dtype())
    }

    /// `start, start+step, ...` up to but excluding `end`.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::invalid("arange", format!("start {start}, end {end}, step {step}: step must be finite and non-zero")));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let storage = with_any!(dtype, |T| T::into_storage((0..n).map(|i| T::from_f64(start + i as f64 * step)).collect()));
        Ok(Tensor::from_storage(storage, Layout::contiguous(Shape::from(n))))
    }

    /// `n` evenly spaced values from `start` to `end` inclusive.
    pub fn linspace(start: f64, end: f64, n: usize, dtype: DType) -> Result<Tensor> {
        let step = if n > 1 { (end - start) / (n - 1) as f64 } else { 0.0 };
        let storage = with_any!(dtype, |T| {
            T::into_storage((0..n).map(|i| T::from_f64(if i + 1 == n { end } else { start + i as f64 * step })).collect())
        });
        Ok(Tensor::from_storage(storage, Layout::contiguous(Shape::from(n))))
    }

    /// Uniform in [0, 1) from this thread's default generator (see [`crate::manual_seed`]).
    pub fn rand(shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        crate::rng::with_default_rng(|r| Tensor::rand_with(shape, dtype, r))
    }

    /// Standard normal from this thread's default generator.
    pub fn randn(shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        crate::rng::with_default_rng(|r| Tensor::randn_with(shape, dtype, r))
    }

    pub fn rand_with(shape: impl Into<Shape>, dtype: DType, rng: &mut crate::Rng) -> Result<Tensor> {
        let shape = shape.into();
        let v: Vec<f64> = (0..shape.elem_count()).map(|_| rng.uniform()).collect();
        Tensor::from_vec(v, shape)?.to_dtype(dtype)
    }

    pub fn randn_with(shape: impl Into<Shape>, dtype: DType, rng: &mut crate::Rng) -> Result<Tensor> {
        let shape = shape.into();
        let v: Vec<f64> = (0..shape.elem_count()).map(|_| rng.normal()).collect();
        Tensor::from_vec(v, shape)?.to_dtype(dtype)
    }

    // ---- accessors ----------------------------------------------------------------------

    pub fn id(&self) -> TensorId {
        self.0.id
    }
    pub fn shape(&self) -> &Shape {
        self.0.layout.shape()
    }
    pub fn dims(&self) -> &[usize] {
        self.0.layout.dims()
    }
    pub fn rank(&self) -> usize {
        self.dims().len()
    }
    pub fn elem_count(&self) -> usize {
        self.0.layout.elem_count()
    }
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    pub fn device(&self) -> Device {
        self.0.device
    }
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    /// Size of dimension `d` (negative counts from the back).
    pub fn dim<D: crate::Dim>(&self, d: D) -> Result<usize> {
        Ok(self.dims()[self.shape().dim_index(d, "dim")?])
    }
    /// True when gradients flow to this tensor (a `Var`, or computed from one).
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }
    /// True when both tensors view the same storage.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// Read access to the storage. Kernels hold it only while they read.
    pub fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        match self.0.storage.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn storage_mut(&self) -> RwLockWriteGuard<'_, Storage> {
        match self.0.storage.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Runs `f` on the typed storage slice and this tensor's layout.
    pub fn with_slice<T: WithDType, R>(&self, op: &'static str, f: impl FnOnce(&[T], &Layout) -> R) -> Result<R> {
        let guard = self.storage();
        let s = T::slice(&guard).ok_or_else(|| {
            Error::dtype(op, format!("expected dtype {} but the tensor {} has dtype {}", T::DTYPE, self.shape(), self.dtype()))
        })?;
        Ok(f(s, self.layout()))
    }

    /// Runs `f` on the typed storage slice (writable) and this tensor's layout: an in-place
    /// update that every tensor viewing this storage sees (autograd does not record it). The
    /// storage is locked for writing while `f` runs, so `f` must not read or write any tensor
    /// that shares it (that would deadlock); check with [`Tensor::same_storage`] first.
    pub fn with_slice_mut<T: WithDType, R>(&self, op: &'static str, f: impl FnOnce(&mut [T], &Layout) -> R) -> Result<R> {
        let mut guard = self.storage_mut();
        let s = T::slice_mut(&mut guard).ok_or_else(|| {
            Error::dtype(op, format!("expected dtype {} but the tensor {} has dtype {}", T::DTYPE, self.shape(), self.dtype()))
        })?;
        Ok(f(s, self.layout()))
    }

    /// Runs `f` on the elements in row-major order as one slice, copying only if the layout is
    /// not contiguous.
    pub fn with_contiguous<T: WithDType, R>(&self, op: &'static str, f: impl FnOnce(&[T]) -> R) -> Result<R> {
        self.with_slice(op, |s, l| match l.contiguous_range() {
            Some(r) => f(&s[r]),
            None => {
                let mut buf = Vec::with_capacity(l.elem_count());
                l.for_each_row(|o, n, st| buf.extend((0..n).map(|i| s[o + i * st])));
                f(&buf)
            }
        })
    }

    /// The elements in row-major order. `T` must be the tensor's dtype.
    pub fn to_vec<T: WithDType>(&self) -> Result<Vec<T>> {
        self.with_contiguous("to_vec", |s: &[T]| s.to_vec())
    }

    /// The elements converted to f64, whatever the dtype.
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        with_any!(self.dtype(), |T| Ok(self.to_vec::<T>()?.into_iter().map(|v| v.to_f64()).collect()))
    }

    /// The single element of a tensor with one element.
    pub fn to_scalar<T: WithDType>(&self) -> Result<T> {
        if self.elem_count() != 1 {
            return Err(Error::shape(
                "to_scalar",
                format!("tensor of shape {} has {} elements, expected 1", self.shape(), self.elem_count()),
            ));
        }
        self.with_slice("to_scalar", |s: &[T], l| s[l.offset()])
    }

    /// The single element as f64.
    pub fn to_f64(&self) -> Result<f64> {
        with_any!(self.dtype(), |T| self.to_scalar::<T>().map(|v| v.to_f64()))
    }

    /// A tensor sharing storage but cut from the autograd graph (PyTorch's `detach`).
    pub fn detach(&self) -> Tensor {
        if !self.requires_grad() {
            return self.clone();
        }
        self.with_layout(self.layout().clone())
    }

    /// Moves the tensor to `device`. Only the CPU exists in this build.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        device.check_available("to_device").map_err(|e| match e {
            Error::Device { op, msg } => Error::Device { op, msg: format!("tensor {} ({}): {msg}", self.shape(), self.dtype()) },
            e => e,
        })?;
        Ok(self.clone())
    }

    /// Checks that two inputs of a binary op share dtype and device.
    pub(crate) fn check_same(&self, rhs: &Tensor, op: &'static str) -> Result<()> {
        if self.device() != rhs.device() {
            return Err(Error::device(
                op,
                format!("lhs {} is on {} and rhs {} on {}", self.shape(), self.device(), rhs.shape(), rhs.device()),
            ));
        }
        if self.dtype() != rhs.dtype() {
            return Err(Error::dtype(
                op,
                format!(
                    "lhs {} has dtype {} and rhs {} has dtype {}; cast one with to_dtype",
                    self.shape(),
                    self.dtype(),
                    rhs.shape(),
                    rhs.dtype()
                ),
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor[{}, {}{}]", self.shape(), self.dtype(), if self.requires_grad() { ", grad" } else { "" })
    }
}
