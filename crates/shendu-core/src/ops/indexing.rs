//! Indexing along a dim: index_select, gather, scatter_add (each with its adjoint op so backward
//! rules stay differentiable), and the index-producing ops one_hot, argmax/argmin and topk.
//! Indices are i64 tensors; every index is checked before a kernel runs.

use crate::autograd::{apply, GradOps, Op};
use crate::cpu::elementwise;
use crate::cpu::index::{self as kernels, is_nan, Accumulate};
use crate::dtype::WithDType;
use crate::ops::pad::{Pad, PadMode};
use crate::pool::PooledVec;
use crate::{with_any, DType, Dim, Error, Layout, Result, Shape, Tensor};

fn check_index_dtype(op: &'static str, index: &Tensor) -> Result<()> {
    if index.dtype() != DType::I64 {
        return Err(Error::dtype(op, format!("index tensor {} has dtype {}; indices must be i64", index.shape(), index.dtype())));
    }
    Ok(())
}

fn check_dim(op: &'static str, dim: usize, x: &Tensor) -> Result<()> {
    if dim >= x.rank() {
        return Err(Error::index(op, format!("dimension {dim} is out of range for input {} of rank {}", x.shape(), x.rank())));
    }
    Ok(())
}

fn out_of_range(op: &'static str, v: i64, dim: usize, size: usize, input: &Shape, index: &Shape) -> Error {
    Error::index(op, format!("index {v} is out of range for dimension {dim} of size {size} (input {input}, index {index})"))
}

/// Checks every element of `index` lies in `0..size`; the error names the first bad one.
fn check_index_range(op: &'static str, index: &Tensor, dim: usize, size: usize, input: &Shape) -> Result<()> {
    let bad = index.with_slice(op, |s: &[i64], l| {
        let mut bad = None;
        l.for_each_row(|o, n, st| {
            if bad.is_none() {
                bad = (0..n).map(|k| s[o + k * st]).find(|&v| v < 0 || v as u64 >= size as u64);
            }
        });
        bad
    })?;
    match bad {
        Some(v) => Err(out_of_range(op, v, dim, size, input, index.shape())),
        None => Ok(()),
    }
}

/// Ranks equal and, for every `d` other than `dim` (or every `d` when `all`), `index` no larger
/// than `other` — PyTorch's rule for gather/scatter.
fn check_index_shape(op: &'static str, index: &Tensor, other: &Tensor, what: &str, dim: usize, all: bool) -> Result<()> {
    let (i, o) = (index.dims(), other.dims());
    if i.len() != o.len() {
        return Err(Error::shape(op, format!("index {} and {what} {} must have the same rank", index.shape(), other.shape())));
    }
    if let Some(d) = (0..i.len()).find(|&d| (all || d != dim) && i[d] > o[d]) {
        return Err(Error::shape(
            op,
            format!("index {} is larger than {what} {} at dimension {d} ({} > {})", index.shape(), other.shape(), i[d], o[d]),
        ));
    }
    Ok(())
}

/// `layout`'s strides over `shape`, with stride 0 at `dim` (the index supplies that coordinate).
fn view_without_dim(shape: &Shape, strides: &[usize], offset: usize, dim: usize) -> Layout {
    let mut st = strides.to_vec();
    st[dim] = 0;
    Layout::new(shape.clone(), st, offset)
}

// ---- index_select ------------------------------------------------------------------------

/// Picks entries along `dim` at the positions of a 1-D i64 index (input 1).
#[derive(Clone, Copy, Debug)]
pub struct IndexSelect {
    pub dim: usize,
}

/// Index values as `usize` after the range check.
fn select_indices(op: &'static str, index: &Tensor, dim: usize, x: &Tensor) -> Result<Vec<usize>> {
    check_index_dtype(op, index)?;
    if index.rank() > 1 {
        return Err(Error::shape(op, format!("index must be 1-D, got shape {} (input {})", index.shape(), x.shape())));
    }
    check_index_range(op, index, dim, x.dims()[dim], x.shape())?;
    Ok(index.to_vec::<i64>()?.into_iter().map(|v| v as usize).collect())
}

impl Op for IndexSelect {
    fn name(&self) -> &'static str {
        "index_select"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (x, index, dim) = (inputs[0], inputs[1], self.dim);
        check_dim("index_select", dim, x)?;
        let idx = select_indices("index_select", index, dim, x)?;
        let mut dims = x.dims().to_vec();
        let n = dims[dim];
        dims[dim] = idx.len();
        let inner: usize = dims[dim + 1..].iter().product();
        let shape = Shape::new(dims);
        with_any!(x.dtype(), |T| {
            let mut out = PooledVec::<T>::uninit(shape.elem_count());
            x.with_contiguous("index_select", |s: &[T]| kernels::index_select(s, n, inner, &idx, out.as_mut_slice()))?;
            Ok(Tensor::from_pooled(out, shape))
        })
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        let gx = T::apply(IndexAddLike { dim: self.dim }, &[grad, inputs[1], inputs[0]])?;
        Ok(vec![Some(gx), None])
    }
}

/// index_select's adjoint: zeros shaped like input 2, with the rows of input 0 added at the
/// positions of index input 1 along `dim` (repeated indices sum).
#[derive(Clone, Copy, Debug)]
pub struct IndexAddLike {
    pub dim: usize,
}

impl Op for IndexAddLike {
    fn name(&self) -> &'static str {
        "index_add"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (src, index, like, dim) = (inputs[0], inputs[1], inputs[2], self.dim);
        check_dim("index_add", dim, like)?;
        let idx = select_indices("index_add", index, dim, like)?;
        let mut expect = like.dims().to_vec();
        expect[dim] = idx.len();
        if src.dims() != expect.as_slice() {
            return Err(Error::shape(
                "index_add",
                format!("source {} does not fit target {} with {} indices along dimension {dim}", src.shape(), like.shape(), idx.len()),
            ));
        }
        let n = like.dims()[dim];
        let inner: usize = like.dims()[dim + 1..].iter().product();
        with_any!(src.dtype(), |T| {
            let mut out = PooledVec::<T>::filled(like.elem_count(), <T as Accumulate>::zero());
            src.with_contiguous("index_add", |s: &[T]| kernels::index_add(s, n, inner, &idx, out.as_mut_slice()))?;
            Ok(Tensor::from_pooled(out, like.shape().clone()))
        })
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(T::apply(IndexSelect { dim: self.dim }, &[grad, inputs[1]])?), None, None])
    }
}

// ---- gather / scatter_add -------------------------------------------------------------------

/// `out[i][j] = x[index[i][j]][j]` (for dim 0): output shaped like the index (input 1).
#[derive(Clone, Copy, Debug)]
pub struct Gather {
    pub dim: usize,
}

impl Op for Gather {
    fn name(&self) -> &'static str {
        "gather"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (x, index, dim) = (inputs[0], inputs[1], self.dim);
        check_dim("gather", dim, x)?;
        check_index_dtype("gather", index)?;
        check_index_shape("gather", index, x, "input", dim, false)?;
        check_index_range("gather", index, dim, x.dims()[dim], x.shape())?;
        let l = x.layout();
        let x_view = view_without_dim(index.shape(), l.strides(), l.offset(), dim);
        let dim_stride = l.strides()[dim];
        with_any!(x.dtype(), |T| {
            let mut out = PooledVec::<T>::uninit(index.elem_count());
            let g = x.storage();
            let xs = g.as_slice::<T>().ok_or_else(|| Error::dtype("gather", "input storage changed dtype"))?;
            index.with_slice("gather", |is: &[i64], il| kernels::gather(xs, &x_view, dim_stride, is, il, out.as_mut_slice()))?;
            Ok(Tensor::from_pooled(out, index.shape().clone()))
        })
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        let gx = T::apply(ScatterAddLike { dim: self.dim }, &[grad, inputs[1], inputs[0]])?;
        Ok(vec![Some(gx), None])
    }
}

/// Adds `src` into `out` (row-major, shape `out_shape`) at the index positions along `dim`.
fn scatter_into<T: WithDType + Accumulate>(
    out: &mut [T],
    out_shape: &Shape,
    index: &Tensor,
    src: &Tensor,
    dim: usize,
    op: &'static str,
) -> Result<()> {
    let out_view = view_without_dim(index.shape(), &out_shape.contiguous_strides(), 0, dim);
    let dim_stride = out_shape.contiguous_strides()[dim];
    let src_view = Layout::new(index.shape().clone(), src.layout().strides().to_vec(), src.layout().offset());
    let g = src.storage();
    let ss = g.as_slice::<T>().ok_or_else(|| Error::dtype_mismatch(op, T::DTYPE, src.dtype()))?;
    index.with_slice(op, |is: &[i64], il| kernels::scatter_add(out, &out_view, dim_stride, is, il, ss, &src_view))
}

fn check_scatter(op: &'static str, x: &Tensor, index: &Tensor, src: &Tensor, dim: usize) -> Result<()> {
    check_dim(op, dim, x)?;
    check_index_dtype(op, index)?;
    check_index_shape(op, index, src, "source", dim, true)?;
    check_index_shape(op, index, x, "input", dim, false)?;
    check_index_range(op, index, dim, x.dims()[dim], x.shape())
}

/// `x` with `src` added at the index positions (PyTorch's out-of-place `scatter_add`).
/// Inputs: x, index, src.
#[derive(Clone, Copy, Debug)]
pub struct ScatterAdd {
    pub dim: usize,
}

impl Op for ScatterAdd {
    fn name(&self) -> &'static str {
        "scatter_add"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (x, index, src) = (inputs[0], inputs[1], inputs[2]);
        x.check_same(src, "scatter_add")?;
        check_scatter("scatter_add", x, index, src, self.dim)?;
        with_any!(x.dtype(), |T| {
            let mut out = x.with_slice("scatter_add", |s: &[T], l| elementwise::map(s, l, |v| v))?;
            scatter_into(out.as_mut_slice(), x.shape(), index, src, self.dim, "scatter_add")?;
            Ok(Tensor::from_pooled(out, x.shape().clone()))
        })
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        let gs = gather_to_shape_of(grad, inputs[1], inputs[2], self.dim)?;
        Ok(vec![Some(grad.clone()), None, Some(gs)])
    }
}

/// Scatter-add into zeros shaped like input 2: gather's adjoint. Inputs: src, index, like.
#[derive(Clone, Copy, Debug)]
pub struct ScatterAddLike {
    pub dim: usize,
}

impl Op for ScatterAddLike {
    fn name(&self) -> &'static str {
        "scatter_add"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (src, index, like) = (inputs[0], inputs[1], inputs[2]);
        check_scatter("scatter_add", like, index, src, self.dim)?;
        with_any!(src.dtype(), |T| {
            let mut out = PooledVec::<T>::filled(like.elem_count(), <T as Accumulate>::zero());
            scatter_into(out.as_mut_slice(), like.shape(), index, src, self.dim, "scatter_add")?;
            Ok(Tensor::from_pooled(out, like.shape().clone()))
        })
    }
    fn backward<T: GradOps>(&self, inputs: &[&T], _o: &T, grad: &T) -> Result<Vec<Option<T>>> {
        Ok(vec![Some(gather_to_shape_of(grad, inputs[1], inputs[0], self.dim)?), None, None])
    }
}

/// `grad.gather(dim, index)`, zero-padded up to `src`'s shape where the index covers only part
/// of `src` (PyTorch allows an index smaller than the source).
fn gather_to_shape_of<T: GradOps>(grad: &T, index: &T, src: &T, dim: usize) -> Result<T> {
    let g = T::apply(Gather { dim }, &[grad, index])?;
    let (gs, ss) = (g.shape(), src.shape());
    if gs == ss {
        return Ok(g);
    }
    let pads = gs.dims().iter().zip(ss.dims()).rev().map(|(&a, &b)| (0, b.saturating_sub(a))).collect();
    T::apply(Pad { pads, mode: PadMode::Constant(0.0) }, &[&g])
}

// ---- index-producing ops ------------------------------------------------------------------

/// Position of the first maximum (or minimum) of `row`; a NaN wins over any number.
fn arg_best<T: PartialOrd>(row: &[T], max: bool) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate().skip(1) {
        let b = &row[best];
        if is_nan(b) {
            break;
        }
        if is_nan(v) || (max && v > b) || (!max && v < b) {
            best = i;
        }
    }
    best
}

/// `x` with `dim` moved last (a view), and the permutation used.
fn dim_last(x: &Tensor, dim: usize) -> Result<(Tensor, Vec<usize>)> {
    let mut perm: Vec<usize> = (0..x.rank()).filter(|&d| d != dim).collect();
    perm.push(dim);
    Ok((x.with_layout(x.layout().permute(&perm, "dim_last")?), perm))
}

impl Tensor {
    /// The entries at positions `indices` (a 1-D i64 tensor) along `dim`; repeated indices
    /// repeat entries. Differentiable with respect to `self`.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 6.], &[3, 2]).unwrap();
    /// let i = Tensor::from_vec(vec![2i64, 0], &[2]).unwrap();
    /// assert_eq!(x.index_select(0, &i).unwrap().to_vec::<f32>().unwrap(), vec![5., 6., 1., 2.]);
    /// ```
    pub fn index_select<D: Dim>(&self, dim: D, indices: &Tensor) -> Result<Tensor> {
        let dim = self.shape().dim_index(dim, "index_select")?;
        apply(IndexSelect { dim }, &[self, indices])
    }

    /// PyTorch's `gather`: `out[i][j] = self[index[i][j]][j]` for `dim` 0 (and likewise for other
    /// dims). `index` is i64, of the same rank, and no larger than `self` outside `dim`; the
    /// output has its shape. Differentiable with respect to `self`.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::from_vec(vec![1f32, 2., 3., 4.], &[2, 2]).unwrap();
    /// let i = Tensor::from_vec(vec![1i64, 0], &[2, 1]).unwrap();
    /// assert_eq!(x.gather(1, &i).unwrap().to_vec::<f32>().unwrap(), vec![2., 3.]);
    /// ```
    pub fn gather<D: Dim>(&self, dim: D, index: &Tensor) -> Result<Tensor> {
        let dim = self.shape().dim_index(dim, "gather")?;
        apply(Gather { dim }, &[self, index])
    }

    /// PyTorch's out-of-place `scatter_add`: a copy of `self` with `src[i][j]` added at
    /// `[index[i][j]][j]` (for `dim` 0). `index` is i64 with the rank of `self`, no larger than
    /// `src` anywhere and than `self` outside `dim`. Differentiable in `self` and `src`.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::zeros(&[3], shendu_core::DType::F32).unwrap();
    /// let i = Tensor::from_vec(vec![0i64, 2, 0], &[3]).unwrap();
    /// let s = Tensor::from_vec(vec![1f32, 2., 3.], &[3]).unwrap();
    /// assert_eq!(x.scatter_add(0, &i, &s).unwrap().to_vec::<f32>().unwrap(), vec![4., 0., 2.]);
    /// ```
    pub fn scatter_add<D: Dim>(&self, dim: D, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        let dim = self.shape().dim_index(dim, "scatter_add")?;
        apply(ScatterAdd { dim }, &[self, index, src])
    }

    /// One-hot encoding of i64 labels in `0..num_classes`: shape `self.shape + [num_classes]`,
    /// 1 at each label, of `dtype`. No gradient.
    ///
    /// ```
    /// use shendu_core::{DType, Tensor};
    /// let y = Tensor::from_vec(vec![2i64, 0], &[2]).unwrap();
    /// let h = y.one_hot(3, DType::F32).unwrap();
    /// assert_eq!(h.to_vec::<f32>().unwrap(), vec![0., 0., 1., 1., 0., 0.]);
    /// ```
    pub fn one_hot(&self, num_classes: usize, dtype: DType) -> Result<Tensor> {
        if self.dtype() != DType::I64 {
            return Err(Error::dtype("one_hot", format!("labels {} have dtype {}; one_hot needs i64", self.shape(), self.dtype())));
        }
        let labels = self.to_vec::<i64>()?;
        if let Some(&v) = labels.iter().find(|&&v| v < 0 || v as u64 >= num_classes as u64) {
            return Err(Error::index("one_hot", format!("label {v} is out of range for {num_classes} classes (labels {})", self.shape())));
        }
        let bytes = labels.len().checked_mul(num_classes).and_then(|t| t.checked_mul(dtype.size_in_bytes()));
        let Some(total) = labels.len().checked_mul(num_classes).filter(|_| bytes.is_some_and(|b| b <= isize::MAX as usize)) else {
            return Err(Error::invalid("one_hot", format!("{num_classes} classes for labels {} give too many elements", self.shape())));
        };
        let mut dims = self.dims().to_vec();
        dims.push(num_classes);
        with_any!(dtype, |T| {
            let mut out = PooledVec::<T>::filled(total, T::from_f64(0.0));
            let o = out.as_mut_slice();
            for (i, &v) in labels.iter().enumerate() {
                o[i * num_classes + v as usize] = T::from_f64(1.0);
            }
            Ok(Tensor::from_pooled(out, Shape::new(dims)))
        })
    }

    fn arg_extreme<D: Dim>(&self, dim: D, keepdim: bool, max: bool, op: &'static str) -> Result<Tensor> {
        if self.rank() == 0 {
            dim.resolve(1, op)?;
            return Ok(Tensor::scalar(0i64));
        }
        let dim = self.shape().dim_index(dim, op)?;
        let n = self.dims()[dim];
        if n == 0 {
            return Err(Error::shape(op, format!("cannot take {op} over dimension {dim} of size 0 (input {})", self.shape())));
        }
        let (xt, _) = dim_last(self, dim)?;
        let out: Vec<i64> = with_any!(self.dtype(), |T| {
            xt.with_contiguous(op, |s: &[T]| s.chunks_exact(n).map(|row| arg_best(row, max) as i64).collect())
        })?;
        let mut dims = self.dims().to_vec();
        if keepdim {
            dims[dim] = 1;
        } else {
            dims.remove(dim);
        }
        Tensor::from_vec(out, dims)
    }

    /// Index (i64) of the largest entry along `dim`; the first one on ties, and the first NaN
    /// if any (as PyTorch). No gradient.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::from_vec(vec![1f32, 5., 5., 7., 0., 2.], &[2, 3]).unwrap();
    /// assert_eq!(x.argmax(1, false).unwrap().to_vec::<i64>().unwrap(), vec![1, 0]);
    /// ```
    pub fn argmax<D: Dim>(&self, dim: D, keepdim: bool) -> Result<Tensor> {
        self.arg_extreme(dim, keepdim, true, "argmax")
    }

    /// Index (i64) of the smallest entry along `dim`; the first one on ties, and the first NaN
    /// if any. No gradient.
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::from_vec(vec![3i64, 1, 1], &[3]).unwrap();
    /// assert_eq!(x.argmin(0, false).unwrap().to_scalar::<i64>().unwrap(), 1);
    /// ```
    pub fn argmin<D: Dim>(&self, dim: D, keepdim: bool) -> Result<Tensor> {
        self.arg_extreme(dim, keepdim, false, "argmin")
    }

    /// The `k` largest (or smallest) entries along `dim` and their i64 indices, both with `dim`
    /// of size `k`. With `sorted` they come best first, else in their original order. Ties go to
    /// the lower index; NaN counts as larger than any number. The values are differentiable
    /// (a gather of `self`).
    ///
    /// ```
    /// use shendu_core::Tensor;
    /// let x = Tensor::from_vec(vec![1f32, 9., 3., 7.], &[4]).unwrap();
    /// let (v, i) = x.topk(2, 0, true, true).unwrap();
    /// assert_eq!(v.to_vec::<f32>().unwrap(), vec![9., 7.]);
    /// assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 3]);
    /// ```
    pub fn topk<D: Dim>(&self, k: usize, dim: D, largest: bool, sorted: bool) -> Result<(Tensor, Tensor)> {
        if self.rank() == 0 {
            dim.resolve(1, "topk")?;
            let (v, i) = self.reshape(1)?.topk(k, 0, largest, sorted)?;
            return Ok((v.reshape(())?, i.reshape(())?));
        }
        let dim = self.shape().dim_index(dim, "topk")?;
        let n = self.dims()[dim];
        if k > n {
            return Err(Error::invalid("topk", format!("k = {k} exceeds the size {n} of dimension {dim} (input {})", self.shape())));
        }
        let (xt, perm) = dim_last(self, dim)?;
        let picked: Vec<i64> = with_any!(self.dtype(), |T| {
            xt.with_contiguous("topk", |s: &[T]| {
                let rows = s.len().checked_div(n).unwrap_or(0);
                let mut out = vec![0i64; rows * k];
                kernels::top_k_rows(s, n, k, largest, sorted, &mut out);
                out
            })
        })?;
        // The rows were walked with `dim` last; permute the index tensor back.
        let mut tdims: Vec<usize> = perm.iter().map(|&p| self.dims()[p]).collect();
        if let Some(last) = tdims.last_mut() {
            *last = k;
        }
        let t = Tensor::from_vec(picked, tdims)?;
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        let indices = t.with_layout(t.layout().permute(&inverse, "topk")?).contiguous()?;
        let values = apply(Gather { dim }, &[self, &indices])?;
        Ok((values, indices))
    }
}
