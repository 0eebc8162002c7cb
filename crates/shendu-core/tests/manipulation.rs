//! Tensor manipulation ops: indexing, cat/stack/split, pad, comparisons and masks, dropout
//! (Display is tested in display.rs). Values are hand-checked or taken from PyTorch 2.x,
//! gradients are checked against central finite differences in f64, and error messages are
//! checked word for word.

use shendu_core::{DType, PadMode, Result, Rng, Tensor, Var};

// ---- helpers ----------------------------------------------------------------------------------

fn t64(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).unwrap()
}

fn t32(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).unwrap()
}

fn idx(v: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).unwrap()
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn_with(shape, DType::F64, &mut Rng::new(seed)).unwrap()
}

fn err(r: Result<Tensor>) -> String {
    match r {
        Ok(t) => panic!("expected an error, got a tensor {t:?}"),
        Err(e) => e.to_string(),
    }
}

/// Checks the gradients of `sum(f(xs) * w)` (w a fixed random weight, so every output entry
/// matters) with respect to every input against central differences.
fn grad_check(xs: &[Tensor], f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    let vars: Vec<Var> = xs.iter().map(|x| Var::new(x.clone())).collect();
    let vt: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&vt).unwrap();
    let w = randn(y.dims(), 99);
    let loss = |inputs: &[Tensor]| -> f64 { f(inputs).unwrap().mul(&w).unwrap().sum_all().unwrap().to_f64().unwrap() };
    let grads = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    let eps = 1e-6;
    for (k, v) in vars.iter().enumerate() {
        let analytic = grads.get(v).map(|g| g.to_vec_f64().unwrap()).unwrap_or_else(|| vec![0.0; v.elem_count()]);
        let base = xs[k].to_vec::<f64>().unwrap();
        for i in 0..base.len() {
            let shifted = |d: f64| {
                let mut b = base.clone();
                b[i] += d;
                let mut inputs: Vec<Tensor> = xs.to_vec();
                inputs[k] = t64(&b, xs[k].dims());
                loss(&inputs)
            };
            let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
            assert!(
                (numeric - analytic[i]).abs() < 1e-6 * (1.0 + numeric.abs()),
                "input {k} entry {i}: analytic {} vs numeric {numeric}",
                analytic[i]
            );
        }
    }
}

/// Checks a second-order gradient: with `L = sum(f(x)^2 * w)`, the gradient of
/// `h(x) = sum(dL/dx * v)` against central differences of `h`.
fn grad_grad_check(x: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor>) {
    let w = randn(f(x).unwrap().dims(), 5);
    let v = randn(x.dims(), 6);
    let h = |x: &Tensor, create_graph: bool| -> (Var, Tensor) {
        let xv = Var::new(x.clone());
        let l = f(&xv).unwrap().sqr().unwrap().mul(&w).unwrap().sum_all().unwrap();
        let g = l.backward_with_grad(&l.ones_like().unwrap(), create_graph).unwrap();
        let hx = g.get(&xv).unwrap().mul(&v).unwrap().sum_all().unwrap();
        (xv, hx)
    };
    let (xv, hx) = h(x, true);
    let analytic = hx.backward().unwrap().get(&xv).unwrap().to_vec::<f64>().unwrap();
    let base = x.to_vec::<f64>().unwrap();
    let eps = 1e-6;
    for i in 0..base.len() {
        let at = |d: f64| {
            let mut b = base.clone();
            b[i] += d;
            h(&t64(&b, x.dims()), false).1.to_f64().unwrap()
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        assert!((numeric - analytic[i]).abs() < 1e-5 * (1.0 + numeric.abs()), "entry {i}: {} vs {numeric}", analytic[i]);
    }
}

// ---- index_select -------------------------------------------------------------------------

#[test]
fn index_select_values() {
    let x = t32(&[1., 2., 3., 4., 5., 6.], &[3, 2]);
    let i = idx(&[2, 0, 2], &[3]);
    assert_eq!(x.index_select(0, &i).unwrap().to_vec::<f32>().unwrap(), vec![5., 6., 1., 2., 5., 6.]);
    let c = x.index_select(-1, &idx(&[1], &[1])).unwrap();
    assert_eq!((c.dims(), c.to_vec::<f32>().unwrap()), (&[3usize, 1][..], vec![2., 4., 6.]));
    // A non-contiguous input and other dtypes.
    let xt = x.t().unwrap();
    assert_eq!(xt.index_select(1, &idx(&[1, 1], &[2])).unwrap().to_vec::<f32>().unwrap(), vec![3., 3., 4., 4.]);
    let xi = idx(&[10, 20, 30], &[3]);
    assert_eq!(xi.index_select(0, &idx(&[2, 1], &[2])).unwrap().to_vec::<i64>().unwrap(), vec![30, 20]);
    let xh = x.to_dtype(DType::F16).unwrap().index_select(0, &idx(&[1], &[1])).unwrap();
    assert_eq!(xh.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap(), vec![3., 4.]);
    assert_eq!(x.index_select(0, &idx(&[], &[0])).unwrap().dims(), &[0, 2]);
}

#[test]
fn index_select_gradients() {
    let x = randn(&[3, 4, 2], 1);
    let i = idx(&[3, 0, 3, 1, 3], &[5]);
    grad_check(std::slice::from_ref(&x), |v| v[0].index_select(1, &i));
    grad_check(std::slice::from_ref(&x), |v| v[0].index_select(0, &idx(&[2, 2], &[2])));
    grad_grad_check(&x, |v| v.index_select(1, &i));
}

#[test]
fn index_select_errors() {
    let x = Tensor::zeros([3, 2], DType::F32).unwrap();
    assert_eq!(
        err(x.index_select(0, &idx(&[0, 5], &[2]))),
        "index_select: index 5 is out of range for dimension 0 of size 3 (input [3, 2], index [2])"
    );
    assert_eq!(
        err(x.index_select(1, &idx(&[-1], &[1]))),
        "index_select: index -1 is out of range for dimension 1 of size 2 (input [3, 2], index [1])"
    );
    assert_eq!(err(x.index_select(0, &t32(&[0.], &[1]))), "index_select: index tensor [1] has dtype f32; indices must be i64");
    assert_eq!(err(x.index_select(0, &idx(&[0, 1], &[1, 2]))), "index_select: index must be 1-D, got shape [1, 2] (input [3, 2])");
    assert_eq!(err(x.index_select(2, &idx(&[0], &[1]))), "index_select: dimension 2 is out of range for a tensor of rank 2 (shape [3, 2])");
}

// ---- gather / scatter_add -------------------------------------------------------------------

#[test]
fn gather_values() {
    let x = t32(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
    let i = idx(&[2, 0, 1, 1], &[2, 2]);
    assert_eq!(x.gather(1, &i).unwrap().to_vec::<f32>().unwrap(), vec![3., 1., 5., 5.]);
    assert_eq!(x.gather(0, &idx(&[1, 0, 1], &[1, 3])).unwrap().to_vec::<f32>().unwrap(), vec![4., 2., 6.]);
    // The index may be smaller than the input outside `dim`, and the input may be a view.
    let xt = x.t().unwrap(); // [[1, 4], [2, 5], [3, 6]]
    assert_eq!(xt.gather(-1, &idx(&[1, 0], &[2, 1])).unwrap().to_vec::<f32>().unwrap(), vec![4., 2.]);
    let xi = idx(&[7, 8, 9], &[3]);
    assert_eq!(xi.gather(0, &idx(&[2, 2, 0], &[3])).unwrap().to_vec::<i64>().unwrap(), vec![9, 9, 7]);
}

#[test]
fn gather_gradients() {
    let x = randn(&[3, 4], 2);
    let i = idx(&[0, 0, 3, 2, 1, 1, 1, 0], &[2, 4]);
    grad_check(std::slice::from_ref(&x), |v| v[0].gather(1, &i));
    grad_check(std::slice::from_ref(&x), |v| v[0].gather(0, &idx(&[2, 2, 0, 1], &[1, 4])));
    grad_grad_check(&x, |v| v.gather(1, &i));
}

#[test]
fn gather_errors() {
    let x = Tensor::zeros([2, 3], DType::F32).unwrap();
    assert_eq!(
        err(x.gather(1, &idx(&[0, 3], &[2, 1]))),
        "gather: index 3 is out of range for dimension 1 of size 3 (input [2, 3], index [2, 1])"
    );
    assert_eq!(err(x.gather(1, &idx(&[0, 1], &[2]))), "gather: index [2] and input [2, 3] must have the same rank");
    assert_eq!(err(x.gather(1, &idx(&[0, 1, 2], &[3, 1]))), "gather: index [3, 1] is larger than input [2, 3] at dimension 0 (3 > 2)");
}

#[test]
fn scatter_add_values() {
    // PyTorch's documentation example.
    let x = Tensor::zeros([3, 5], DType::F32).unwrap();
    let i = idx(&[0, 1, 2, 0, 0, 2, 0, 0, 1, 2], &[2, 5]);
    let src = Tensor::arange(1.0, 11.0, 1.0, DType::F32).unwrap().reshape([2, 5]).unwrap();
    let y = x.scatter_add(0, &i, &src).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![1., 7., 8., 4., 5., 0., 2., 0., 9., 0., 6., 0., 3., 0., 10.]);
    // The index may cover only part of src; ints accumulate too.
    let xi = idx(&[1, 1, 1], &[3]);
    let y = xi.scatter_add(0, &idx(&[2, 2], &[2]), &idx(&[5, 6, 7], &[3])).unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![1, 1, 12]);
}

#[test]
fn scatter_add_gradients() {
    let x = randn(&[3, 4], 3);
    let src = randn(&[2, 5], 4);
    let i = idx(&[0, 2, 2, 1, 1, 1, 0, 0], &[2, 4]);
    grad_check(&[x.clone(), src.clone()], |v| v[0].scatter_add(0, &i, &v[1]));
    grad_check(&[x.clone(), randn(&[3, 2], 5)], |v| v[0].scatter_add(1, &idx(&[3, 3, 0, 1, 2, 3], &[3, 2]), &v[1]));
}

#[test]
fn scatter_add_errors() {
    let x = Tensor::zeros([3], DType::F32).unwrap();
    let s = t32(&[1., 2.], &[2]);
    assert_eq!(
        err(x.scatter_add(0, &idx(&[0, 3], &[2]), &s)),
        "scatter_add: index 3 is out of range for dimension 0 of size 3 (input [3], index [2])"
    );
    assert_eq!(
        err(x.scatter_add(0, &idx(&[0, 1, 2], &[3]), &s)),
        "scatter_add: index [3] is larger than source [2] at dimension 0 (3 > 2)"
    );
    assert_eq!(
        err(x.scatter_add(0, &idx(&[0], &[1]), &s.to_dtype(DType::F64).unwrap())),
        "scatter_add: lhs [3] has dtype f32 and rhs [2] has dtype f64; cast one with to_dtype"
    );
}

// ---- one_hot / argmax / topk ----------------------------------------------------------------

#[test]
fn one_hot_values_and_errors() {
    let y = idx(&[1, 0, 3, 1], &[2, 2]);
    let h = y.one_hot(4, DType::F64).unwrap();
    assert_eq!(h.dims(), &[2, 2, 4]);
    assert_eq!(h.to_vec::<f64>().unwrap(), vec![0., 1., 0., 0., 1., 0., 0., 0., 0., 0., 0., 1., 0., 1., 0., 0.]);
    assert_eq!(y.one_hot(4, DType::U8).unwrap().dtype(), DType::U8);
    assert_eq!(err(y.one_hot(3, DType::F32)), "one_hot: label 3 is out of range for 3 classes (labels [2, 2])");
    assert_eq!(err(idx(&[-1], &[1]).one_hot(3, DType::F32)), "one_hot: label -1 is out of range for 3 classes (labels [1])");
    assert_eq!(err(t32(&[1.], &[1]).one_hot(3, DType::F32)), "one_hot: labels [1] have dtype f32; one_hot needs i64");
}

#[test]
fn argmax_argmin() {
    let nan = f32::NAN;
    let x = t32(&[3., 1., 4., 1., 5., 9., 2., 6., nan, 1., 1., 0.], &[3, 4]);
    // Values from PyTorch: first index on ties, NaN wins.
    assert_eq!(x.argmax(1, false).unwrap().to_vec::<i64>().unwrap(), vec![2, 1, 0]);
    assert_eq!(x.argmin(1, false).unwrap().to_vec::<i64>().unwrap(), vec![1, 2, 0]);
    assert_eq!(x.argmax(0, false).unwrap().to_vec::<i64>().unwrap(), vec![2, 1, 0, 1]);
    assert_eq!(x.argmin(-2, false).unwrap().to_vec::<i64>().unwrap(), vec![2, 0, 2, 2]);
    let k = x.argmax(-1, true).unwrap();
    assert_eq!((k.dims(), k.dtype()), (&[3usize, 1][..], DType::I64));
    assert_eq!(idx(&[5, 7, 7, 2], &[4]).argmax(0, false).unwrap().to_scalar::<i64>().unwrap(), 1);
    assert_eq!(Tensor::scalar(2.5f64).argmax(0, false).unwrap().to_scalar::<i64>().unwrap(), 0);
    assert_eq!(
        err(Tensor::zeros([2, 0], DType::F32).unwrap().argmax(1, false)),
        "argmax: cannot take argmax over dimension 1 of size 0 (input [2, 0])"
    );
}

#[test]
fn topk_values_indices_and_gradient() {
    let nan = f32::NAN;
    let x = t32(&[3., 1., 4., 1., 5., 9., 2., 6., nan, 1., 1., 0.], &[3, 4]);
    let (v, i) = x.topk(2, 1, true, true).unwrap();
    let v = v.to_vec::<f32>().unwrap();
    assert_eq!((&v[..4], v[4].is_nan(), v[5]), (&[4., 3., 9., 6.][..], true, 1.));
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![2, 0, 1, 3, 0, 1]);
    let (v, i) = x.topk(2, 1, false, true).unwrap();
    assert_eq!(v.to_vec::<f32>().unwrap(), vec![1., 1., 2., 5., 0., 1.]);
    // Ties go to the lower index (PyTorch leaves their order unspecified).
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 3, 2, 0, 3, 1]);
    // Unsorted: the chosen entries in their original order; along dim 0.
    let (v, i) = x.topk(2, 0, true, false).unwrap();
    assert_eq!(i.dims(), &[2, 4]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 0, 0, 0, 2, 1, 1, 1]);
    let v = v.to_vec::<f32>().unwrap();
    assert_eq!((&v[..4], v[4].is_nan(), &v[5..]), (&[5., 1., 4., 1.][..], true, &[9., 2., 6.][..]));
    let y = randn(&[3, 5], 7);
    grad_check(&[y], |t| Ok(t[0].topk(3, -1, true, true)?.0));
    assert_eq!(err(x.topk(5, 1, true, true).map(|p| p.0)), "topk: k = 5 exceeds the size 4 of dimension 1 (input [3, 4])");
}

#[test]
fn topk_small_and_large_k_match_a_sort() {
    let x = randn(&[3, 200], 8);
    let rows = x.to_vec::<f64>().unwrap();
    for (k, largest) in [(0, true), (10, true), (100, false), (200, true)] {
        let (v, i) = x.topk(k, 1, largest, true).unwrap();
        assert_eq!(v.dims(), &[3, k]);
        let (v, i) = (v.to_vec::<f64>().unwrap(), i.to_vec::<i64>().unwrap());
        for r in 0..3 {
            let row = &rows[r * 200..(r + 1) * 200];
            let mut order: Vec<usize> = (0..200).collect();
            order.sort_by(|&a, &b| {
                let o = row[a].partial_cmp(&row[b]).unwrap();
                if largest {
                    o.reverse()
                } else {
                    o
                }
            });
            let want: Vec<i64> = order[..k].iter().map(|&j| j as i64).collect();
            assert_eq!(&i[r * k..(r + 1) * k], want.as_slice(), "k {k}");
            let vals: Vec<f64> = order[..k].iter().map(|&j| row[j]).collect();
            assert_eq!(&v[r * k..(r + 1) * k], vals.as_slice());
        }
    }
}

// ---- cat / stack / split ------------------------------------------------------------------

#[test]
fn cat_values() {
    let a = t32(&[1., 2., 3., 4.], &[2, 2]);
    let b = t32(&[5., 6.], &[1, 2]);
    assert_eq!(Tensor::cat(&[&a, &b], 0).unwrap().to_vec::<f32>().unwrap(), vec![1., 2., 3., 4., 5., 6.]);
    let c = Tensor::cat(&[&a, &b.t().unwrap(), &a], -1).unwrap();
    assert_eq!(c.dims(), &[2, 5]);
    assert_eq!(c.to_vec::<f32>().unwrap(), vec![1., 2., 5., 1., 2., 3., 4., 6., 3., 4.]);
    // A non-contiguous input, an empty input, an integer dtype.
    let at = a.t().unwrap();
    assert_eq!(Tensor::cat(&[&at, &b], 0).unwrap().to_vec::<f32>().unwrap(), vec![1., 3., 2., 4., 5., 6.]);
    let e = Tensor::zeros([0, 2], DType::F32).unwrap();
    assert_eq!(Tensor::cat(&[&e, &b], 0).unwrap().to_vec::<f32>().unwrap(), vec![5., 6.]);
    let i = Tensor::cat(&[&idx(&[1], &[1]), &idx(&[2, 3], &[2])], 0).unwrap();
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 2, 3]);
}

#[test]
fn cat_stack_gradients() {
    let (a, b) = (randn(&[2, 3, 2], 10), randn(&[2, 1, 2], 11));
    grad_check(&[a.clone(), b.clone()], |v| Tensor::cat(&[&v[0], &v[1], &v[0]], 1));
    grad_check(&[a.clone(), randn(&[2, 3, 2], 12)], |v| Tensor::stack(&[&v[0], &v[1]], -1));
}

#[test]
fn cat_stack_errors() {
    let a = Tensor::zeros([2, 3], DType::F32).unwrap();
    let b = Tensor::zeros([2, 4], DType::F32).unwrap();
    assert_eq!(err(Tensor::cat(&[], 0)), "cat: needs at least one tensor, got an empty list");
    assert_eq!(
        err(Tensor::cat(&[&a, &b], 0)),
        "cat: input 1 has shape [2, 4] but input 0 has shape [2, 3]: sizes must match except in dimension 0"
    );
    assert_eq!(
        err(Tensor::cat(&[&a, &Tensor::zeros([6], DType::F32).unwrap()], 0)),
        "cat: input 1 has shape [6] but input 0 has shape [2, 3]: sizes must match except in dimension 0"
    );
    assert_eq!(
        err(Tensor::cat(&[&a, &a.to_dtype(DType::F64).unwrap()], 1)),
        "cat: input 1 [2, 3] has dtype f64 but input 0 [2, 3] has dtype f32"
    );
    assert_eq!(err(Tensor::cat(&[&a], 2)), "cat: dimension 2 is out of range for a tensor of rank 2 (shape [2, 3])");
    assert_eq!(err(Tensor::stack(&[&a, &b], 0)), "stack: input 1 has shape [2, 4] but input 0 has shape [2, 3]; all must match");
    assert_eq!(
        err(Tensor::stack(&[&a], 3)),
        "stack: dimension 3 is out of range for a tensor of rank 3 (the result of stacking inputs of shape [2, 3])"
    );
    assert_eq!(err(Tensor::stack(&[], 0)), "stack: needs at least one tensor, got an empty list");
}

#[test]
fn stack_split_chunk() {
    let a = t32(&[1., 2., 3.], &[3]);
    let b = t32(&[4., 5., 6.], &[3]);
    let s = Tensor::stack(&[&a, &b], 0).unwrap();
    assert_eq!((s.dims(), s.to_vec::<f32>().unwrap()), (&[2usize, 3][..], vec![1., 2., 3., 4., 5., 6.]));
    let s = Tensor::stack(&[&a, &b], -1).unwrap();
    assert_eq!((s.dims(), s.to_vec::<f32>().unwrap()), (&[3usize, 2][..], vec![1., 4., 2., 5., 3., 6.]));

    let x = Tensor::arange(0.0, 10.0, 1.0, DType::F32).unwrap().reshape([2, 5]).unwrap();
    let parts = x.split(2, 1).unwrap();
    assert_eq!(parts.iter().map(|p| p.dims()[1]).collect::<Vec<_>>(), vec![2, 2, 1]);
    assert_eq!(parts[2].to_vec::<f32>().unwrap(), vec![4., 9.]);
    assert!(parts.iter().all(|p| p.same_storage(&x)));
    let parts = x.split_with_sizes(&[1, 4], -1).unwrap();
    assert_eq!(parts[1].to_vec::<f32>().unwrap(), vec![1., 2., 3., 4., 6., 7., 8., 9.]);
    assert_eq!(
        err(x.split_with_sizes(&[1, 3], 1).map(|mut v| v.remove(0))),
        "split_with_sizes: sizes [1, 3] do not sum to the size 5 of dimension 1 (input [2, 5])"
    );
    assert_eq!(x.chunk(2, 1).unwrap().iter().map(|p| p.dims()[1]).collect::<Vec<_>>(), vec![3, 2]);
    assert_eq!(x.chunk(4, 1).unwrap().iter().map(|p| p.dims()[1]).collect::<Vec<_>>(), vec![2, 2, 1]);
    assert_eq!(err(x.chunk(0, 1).map(|mut v| v.remove(0))), "chunk: chunks must be positive (input [2, 5])");
    // Gradients flow through the parts.
    grad_check(&[randn(&[2, 5], 13)], |v| {
        let p = v[0].chunk(3, 1)?;
        p[0].mul(&p[1])?.add(&p[0])
    });
}

// ---- pad ------------------------------------------------------------------------------------

#[test]
fn pad_values_match_pytorch() {
    let x = Tensor::arange(1.0, 13.0, 1.0, DType::F32).unwrap().reshape([1, 3, 4]).unwrap();
    let pads = [(2, 1), (1, 2)];
    let r = x.pad(&pads, PadMode::Reflect).unwrap();
    assert_eq!(r.dims(), &[1, 6, 7]);
    #[rustfmt::skip]
    let reflect = vec![7., 6., 5., 6., 7., 8., 7., 3., 2., 1., 2., 3., 4., 3., 7., 6., 5., 6., 7., 8., 7.,
        11., 10., 9., 10., 11., 12., 11., 7., 6., 5., 6., 7., 8., 7., 3., 2., 1., 2., 3., 4., 3.];
    assert_eq!(r.to_vec::<f32>().unwrap(), reflect);
    #[rustfmt::skip]
    let replicate = vec![1., 1., 1., 2., 3., 4., 4., 1., 1., 1., 2., 3., 4., 4., 5., 5., 5., 6., 7., 8., 8.,
        9., 9., 9., 10., 11., 12., 12., 9., 9., 9., 10., 11., 12., 12., 9., 9., 9., 10., 11., 12., 12.];
    assert_eq!(x.pad(&pads, PadMode::Replicate).unwrap().to_vec::<f32>().unwrap(), replicate);
    #[rustfmt::skip]
    let constant = vec![-1., -1., -1., -1., -1., -1., -1., -1., -1., 1., 2., 3., 4., -1., -1., -1., 5., 6.,
        7., 8., -1., -1., -1., 9., 10., 11., 12., -1.];
    assert_eq!(x.pad(&[(2, 1), (1, 0)], PadMode::Constant(-1.0)).unwrap().to_vec::<f32>().unwrap(), constant);
    // Non-contiguous input and integer dtype.
    let xt = t32(&[1., 2., 3., 4.], &[2, 2]).t().unwrap(); // [[1, 3], [2, 4]]
    assert_eq!(xt.pad(&[(0, 1)], PadMode::Replicate).unwrap().to_vec::<f32>().unwrap(), vec![1., 3., 3., 2., 4., 4.]);
    let xi = idx(&[1, 2, 3], &[3]);
    assert_eq!(xi.pad(&[(1, 1)], PadMode::Constant(7.0)).unwrap().to_vec::<i64>().unwrap(), vec![7, 1, 2, 3, 7]);
    assert!(xi.pad(&[(0, 0)], PadMode::Reflect).unwrap().same_storage(&xi));
}

#[test]
fn pad_gradients() {
    let x = randn(&[2, 3, 4], 20);
    let pads = [(3, 2), (2, 1)];
    grad_check(std::slice::from_ref(&x), |v| v[0].pad(&pads, PadMode::Constant(0.5)));
    grad_check(std::slice::from_ref(&x), |v| v[0].pad(&pads, PadMode::Reflect));
    grad_check(std::slice::from_ref(&x), |v| v[0].pad(&[(5, 3)], PadMode::Replicate));
    grad_grad_check(&x, |v| v.pad(&pads, PadMode::Reflect));
    grad_grad_check(&x, |v| v.pad(&[(1, 2), (0, 1)], PadMode::Replicate));
}

#[test]
fn pad_errors() {
    let x = Tensor::zeros([2, 3], DType::F32).unwrap();
    assert_eq!(
        err(x.pad(&[(3, 0)], PadMode::Reflect)),
        "pad: reflect padding (3, 0) of dimension 1 must be smaller than its size 3 (input [2, 3])"
    );
    assert_eq!(
        err(x.pad(&[(0, 0), (0, 2)], PadMode::Reflect)),
        "pad: reflect padding (0, 2) of dimension 0 must be smaller than its size 2 (input [2, 3])"
    );
    assert_eq!(err(x.pad(&[(1, 1); 3], PadMode::Constant(0.0))), "pad: 3 (before, after) pairs given for input [2, 3] of rank 2");
    assert_eq!(
        err(Tensor::zeros([2, 0], DType::F32).unwrap().pad(&[(1, 0)], PadMode::Replicate)),
        "pad: replicate padding of dimension 1 needs a non-empty dimension (input [2, 0])"
    );
    let huge = usize::MAX / 4;
    let e = err(x.pad(&[(huge, huge)], PadMode::Constant(0.0)));
    assert!(e.starts_with("pad: padding [(") && e.ends_with(")] of input [2, 3] gives too many elements"), "{e}");
    let empty = Tensor::zeros([0, 3], DType::F32).unwrap();
    assert_eq!(empty.pad(&[(1 << 40, 0)], PadMode::Constant(0.0)).unwrap().dims(), &[0, (1 << 40) + 3]);
}

// ---- comparisons and masks --------------------------------------------------------------------

#[test]
fn comparisons() {
    let nan = f32::NAN;
    let a = t32(&[1., 2., 3., nan], &[4]);
    let b = t32(&[2., 2., 2., 2.], &[4]);
    let m = |t: Result<Tensor>| t.unwrap().to_vec::<u8>().unwrap();
    assert_eq!(m(a.eq(&b)), vec![0, 1, 0, 0]);
    assert_eq!(m(a.ne(&b)), vec![1, 0, 1, 1]);
    assert_eq!(m(a.lt(&b)), vec![1, 0, 0, 0]);
    assert_eq!(m(a.le(&b)), vec![1, 1, 0, 0]);
    assert_eq!(m(a.gt(&b)), vec![0, 0, 1, 0]);
    assert_eq!(m(a.ge(&b)), vec![0, 1, 1, 0]);
    assert_eq!(m(a.ge_scalar(2.0)), vec![0, 1, 1, 0]);
    assert_eq!(m(a.ne_scalar(2.0)), vec![1, 0, 1, 1]);
    // Broadcasting [2, 1] against [3].
    let col = idx(&[1, 3], &[2, 1]);
    let row = idx(&[1, 2, 3], &[3]);
    let g = col.gt(&row).unwrap();
    assert_eq!((g.dims(), g.dtype()), (&[2usize, 3][..], DType::U8));
    assert_eq!(g.to_vec::<u8>().unwrap(), vec![0, 0, 0, 1, 1, 0]);
    // Scalar comparisons are exact in f64: 2 == 2.5 is false for integers too.
    assert_eq!(m(row.eq_scalar(2.5)), vec![0, 0, 0]);
    assert_eq!(m(row.lt_scalar(2.5)), vec![1, 1, 0]);
    assert_eq!(err(a.eq(&idx(&[1], &[1]))), "eq: lhs [4] has dtype f32 and rhs [1] has dtype i64; cast one with to_dtype");
    assert_eq!(err(a.lt(&t32(&[1., 2.], &[2]))), "lt: lhs [4] and rhs [2] cannot be broadcast: dimension 0 has sizes 4 and 2");
    // Masks never join the tape.
    let v = Var::new(a.clone());
    assert!(!v.gt(&b).unwrap().requires_grad());
    assert_eq!(m(a.is_nan()), vec![0, 0, 0, 1]);
    assert_eq!(m(t64(&[1., f64::INFINITY, f64::NAN, -0.0], &[4]).is_finite()), vec![1, 0, 0, 1]);
    assert_eq!(m(row.is_nan()), vec![0, 0, 0]);
    assert_eq!(m(t32(&[0., 2., nan], &[3]).logical_not()), vec![1, 0, 0]);
    assert_eq!(m(a.gt(&b).unwrap().logical_not()), vec![1, 1, 0, 1]);
}

#[test]
fn where_cond_and_masked_fill() {
    let mask = Tensor::from_vec(vec![1u8, 0, 0, 1], [2, 2]).unwrap();
    let on_true = t32(&[1., 2., 3., 4.], &[2, 2]);
    let on_false = t32(&[-1., -2.], &[2]);
    let w = mask.where_cond(&on_true, &on_true.neg().unwrap()).unwrap();
    assert_eq!(w.to_vec::<f32>().unwrap(), vec![1., -2., -3., 4.]);
    let w = mask.where_cond(&on_true, &on_false).unwrap();
    assert_eq!(w.to_vec::<f32>().unwrap(), vec![1., -2., -1., 4.]);
    let col = Tensor::from_vec(vec![0u8, 1], [2, 1]).unwrap();
    let w = col.where_cond(&idx(&[1, 2, 3], &[3]), &idx(&[0], &[1])).unwrap();
    assert_eq!((w.dims(), w.to_vec::<i64>().unwrap()), (&[2usize, 3][..], vec![0, 0, 0, 1, 2, 3]));
    let f = on_true.masked_fill(&Tensor::from_vec(vec![0u8, 1], [2]).unwrap(), -9.0).unwrap();
    assert_eq!(f.to_vec::<f32>().unwrap(), vec![1., -9., 3., -9.]);

    // Gradients, including through broadcasting of both branches.
    let m3 = Tensor::from_vec(vec![1u8, 0, 1, 1, 0, 0], [2, 3]).unwrap();
    grad_check(&[randn(&[2, 3], 30), randn(&[3], 31)], |v| m3.where_cond(&v[0], &v[1]));
    grad_check(&[randn(&[2, 1], 32), randn(&[1, 3], 33)], |v| m3.where_cond(&v[0], &v[1]));
    grad_check(&[randn(&[2, 3], 34)], |v| v[0].masked_fill(&m3, 3.0));
    grad_grad_check(&randn(&[2, 3], 35), |v| m3.where_cond(v, &v.sqr()?));

    assert_eq!(
        err(on_true.where_cond(&on_true, &on_false)),
        "where_cond: condition [2, 2] has dtype f32; it must be a u8 mask (as comparisons return)"
    );
    assert_eq!(
        err(mask.where_cond(&on_true, &t32(&[1., 2., 3.], &[3]))),
        "where_cond: condition [2, 2], on_true [2, 2] and on_false [3] cannot be broadcast together"
    );
    assert_eq!(err(on_false.masked_fill(&mask, 0.0)), "masked_fill: mask [2, 2] cannot be broadcast to the input's shape [2]");
}

// ---- dropout --------------------------------------------------------------------------------

#[test]
fn dropout_mask_statistics_and_gradient() {
    let m = Tensor::dropout_mask([100_000], 0.3, DType::F64, &mut Rng::new(1)).unwrap().to_vec::<f64>().unwrap();
    let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / m.len() as f64;
    assert!((kept - 0.7).abs() < 0.01, "kept fraction {kept}");
    assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-12));
    // Same seed, same mask.
    let a = Tensor::dropout_mask([64], 0.5, DType::F32, &mut Rng::new(9)).unwrap().to_vec::<f32>().unwrap();
    let b = Tensor::dropout_mask([64], 0.5, DType::F32, &mut Rng::new(9)).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(a, b);
    let mut rng = Rng::new(9);
    let c = Tensor::dropout_mask([64], 0.5, DType::F32, &mut rng).unwrap();
    let d = Tensor::dropout_mask([64], 0.5, DType::F32, &mut rng).unwrap();
    assert_ne!(c.to_vec::<f32>().unwrap(), d.to_vec::<f32>().unwrap());

    let x = Var::new(randn(&[8, 8], 40).affine(1.0, 5.0).unwrap());
    let y = x.dropout(0.5, true, &mut Rng::new(3)).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    let (xv, yv, gv) = (x.to_vec::<f64>().unwrap(), y.to_vec::<f64>().unwrap(), g.get(&x).unwrap().to_vec::<f64>().unwrap());
    for ((x, y), g) in xv.iter().zip(&yv).zip(&gv) {
        assert!((y - x * g).abs() < 1e-12 && (*g == 0.0 || *g == 2.0));
    }
    let e = x.dropout(0.5, false, &mut Rng::new(3)).unwrap();
    assert_eq!(e.to_vec::<f64>().unwrap(), xv);
    let h = t32(&[1.; 8], &[8]).to_dtype(DType::F16).unwrap().dropout(0.5, true, &mut Rng::new(2)).unwrap();
    assert_eq!(h.dtype(), DType::F16);

    assert_eq!(err(x.dropout(1.0, true, &mut Rng::new(0))), "dropout: drop probability p = 1 must be in [0, 1)");
    assert_eq!(err(x.dropout(-0.1, false, &mut Rng::new(0))), "dropout: drop probability p = -0.1 must be in [0, 1)");
    assert_eq!(err(x.dropout(f64::NAN, true, &mut Rng::new(0))), "dropout: drop probability p = NaN must be in [0, 1)");
    assert_eq!(
        err(Tensor::dropout_mask([2], 0.5, DType::I64, &mut Rng::new(0))),
        "dropout_mask: dtype i64 is not supported (expects a float dtype)"
    );
}

/// Large strided copies split their rows between threads: a permuted view made contiguous, a
/// unary op on it, and a concatenation of strided parts, each against the element-by-element
/// gather, on 1 and 2 threads.
#[test]
fn large_strided_copies_match_the_gather_on_any_thread_count() {
    let dims = [40usize, 6, 29, 13];
    let x = Tensor::from_vec((0..dims.iter().product::<usize>()).map(|i| i as f32).collect(), &dims[..]).unwrap();
    let v = x.to_vec::<f32>().unwrap();
    let at = |n: usize, c: usize, h: usize, w: usize| v[((n * dims[1] + c) * dims[2] + h) * dims[3] + w];
    // Permuted to [n, w, c, h]: element (n, w, c, h) is x[n, c, h, w].
    let mut want = Vec::new();
    for n in 0..dims[0] {
        for w in 0..dims[3] {
            for c in 0..dims[1] {
                for h in 0..dims[2] {
                    want.push(at(n, c, h, w));
                }
            }
        }
    }
    // The concatenation along dim 1 of two narrowed, permuted views.
    let p = x.permute(&[0, 3, 1, 2]).unwrap();
    let (a, b) = (p.narrow(1, 8, 5).unwrap(), p.narrow(1, 0, 8).unwrap());
    let cat_want: Vec<f32> = (0..dims[0])
        .flat_map(|n| {
            let row = |w: usize| (0..dims[1]).flat_map(move |c| (0..dims[2]).map(move |h| (n, w, c, h)));
            (8..13).chain(0..8).flat_map(row).collect::<Vec<_>>()
        })
        .map(|(n, w, c, h)| at(n, c, h, w))
        .collect();
    for threads in [1, 2] {
        shendu_core::set_num_threads(threads);
        assert_eq!(p.contiguous().unwrap().to_vec::<f32>().unwrap(), want, "{threads} threads: contiguous");
        let doubled: Vec<f32> = want.iter().map(|v| v * 2.0).collect();
        assert_eq!(p.mul_scalar(2.0).unwrap().to_vec::<f32>().unwrap(), doubled, "{threads} threads: a unary op on the view");
        assert_eq!(Tensor::cat(&[&a, &b], 1).unwrap().to_vec::<f32>().unwrap(), cat_want, "{threads} threads: cat of views");
    }
    shendu_core::set_num_threads(1);
}

/// Narrow's adjoint writes zeros around the embedded block, also into a recycled buffer that
/// held other values, on 1 and 2 threads, contiguous and strided sources, large and small.
#[test]
fn embed_writes_zeros_around_the_block() {
    use shendu_core::GradExt;
    let cases: [(&[usize], usize, usize, usize); 3] = [(&[2, 5, 4], 1, 2, 2), (&[16, 116, 7, 7], 1, 58, 58), (&[4, 6, 33, 40], 3, 0, 25)];
    for (shape, dim, start, len) in cases {
        for threads in [1, 2] {
            shendu_core::set_num_threads(threads);
            let mut part = shape.to_vec();
            part[dim] = len;
            let r = part.len();
            let n: usize = part.iter().product();
            let x = Tensor::from_vec((1..=n).map(|i| i as f32).collect(), &part[..]).unwrap();
            let strided = x.transpose(r - 1, r - 2).unwrap().contiguous().unwrap().transpose(r - 1, r - 2).unwrap();
            for src in [x.clone(), strided] {
                // Leave a buffer of the output's size full of 7s in the pool.
                drop(Tensor::full(shape, 7.0, DType::F32).unwrap().mul_scalar(1.0).unwrap());
                let like = Tensor::zeros(shape, DType::F32).unwrap();
                let got = src.g_embed(&like, dim, start).unwrap().to_vec::<f32>().unwrap();
                let inner: usize = shape[dim + 1..].iter().product();
                let xv = x.to_vec::<f32>().unwrap();
                let mut k = 0;
                for (i, &v) in got.iter().enumerate() {
                    let at = i / inner % shape[dim];
                    let expect = if at >= start && at < start + len {
                        k += 1;
                        xv[k - 1]
                    } else {
                        0.0
                    };
                    assert_eq!(v, expect, "{shape:?} dim {dim} at {i}, {threads} threads");
                }
            }
        }
    }
    shendu_core::set_num_threads(1);
}
