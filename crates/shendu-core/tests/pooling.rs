//! Pooling and upsampling: hand-checked values of PyTorch's rules, gradients against central
//! finite differences (f64), adjointness of the backward ops, and errors.

use shendu_core::{DType, Padding, Rng, Tensor, Var};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn_with(shape, DType::F64, &mut Rng::new(seed)).unwrap()
}

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}: element {i}: {x} vs {y}");
    }
}

/// Gradient of `sum(f(x) * r)` against central differences.
fn gradcheck(x: &Tensor, f: impl Fn(&Tensor) -> Tensor, what: &str) {
    let v = Var::new(x.clone());
    let y = f(&v);
    let r = randn(y.dims(), 77);
    let g = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    let analytic = g.get(&v).unwrap().to_vec::<f64>().unwrap();
    let base = x.to_vec::<f64>().unwrap();
    let eps = 1e-6;
    let numeric: Vec<f64> = (0..base.len())
        .map(|i| {
            let at = |d: f64| {
                let mut b = base.clone();
                b[i] += d;
                let _g = shendu_core::no_grad();
                f(&t(&b, x.dims())).mul(&r).unwrap().sum_all().unwrap().to_f64().unwrap()
            };
            (at(eps) - at(-eps)) / (2.0 * eps)
        })
        .collect();
    close(&analytic, &numeric, 1e-6, what);
}

fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    t(&(0..n).map(|v| v as f64).collect::<Vec<_>>(), shape)
}

// ---- max pool ------------------------------------------------------------------------------

#[test]
fn max_pool_values() {
    let x = iota(&[1, 1, 4, 5]);
    let y = x.max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false).unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 2]);
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![6.0, 8.0, 16.0, 18.0]);
    // ceil mode keeps the partial last column
    let y = x.max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), true).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![6.0, 8.0, 9.0, 16.0, 18.0, 19.0]);
    // 3x3 stride 2 pad 1 (ResNet's stem pool): padding never wins, even over negatives
    let neg = x.affine(-1.0, 0.0).unwrap();
    let y = neg.max_pool2d((3, 3), (2, 2), Padding::symmetric(1), (1, 1), false).unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 3]);
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![0.0, -1.0, -3.0, -5.0, -6.0, -8.0]);
    // dilation 2: taps (0,0) (0,2) (2,0) (2,2)
    let y = x.max_pool2d((2, 2), (1, 1), Padding::Valid, (2, 2), false).unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 3]);
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![12.0, 13.0, 14.0, 17.0, 18.0, 19.0]);
    // Same padding (TF): ceil(5/2) = 3 columns, pads (0, 1) at the end
    let y = x.max_pool2d((2, 2), (2, 2), Padding::Same, (1, 1), false).unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 3]);
}

#[test]
fn max_pool_gradient_goes_to_the_first_maximum() {
    let x = t(&[1.0, 3.0, 3.0, 0.0, 2.0, 3.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0, 0.0, 0.0, 5.0, 5.0], &[1, 1, 4, 4]);
    let v = Var::new(x);
    let y = v.max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![3.0, 3.0, 5.0, 5.0]);
    let g = y.sum_all().unwrap().backward().unwrap();
    let gx = g.get(&v).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(gx, vec![0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    // overlapping windows add up at a shared maximum
    let v = Var::new(t(&[0.0, 9.0, 0.0, 0.0, 0.0, 0.0], &[1, 1, 2, 3]));
    let y = v.max_pool2d((2, 2), (1, 1), Padding::Valid, (1, 1), false).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&v).unwrap().to_vec::<f64>().unwrap(), vec![0.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
    // NaN wins, as in PyTorch
    let x = t(&[1.0, f64::NAN, 2.0, 0.0], &[1, 1, 2, 2]);
    assert!(x.max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false).unwrap().to_vec::<f64>().unwrap()[0].is_nan());
}

#[test]
fn max_pool_gradients() {
    let x = randn(&[2, 3, 7, 6], 1);
    for (k, s, p, d, ceil) in [
        ((2, 2), (2, 2), Padding::Valid, (1, 1), false),
        ((3, 3), (2, 2), Padding::symmetric(1), (1, 1), true),
        ((2, 3), (1, 2), Padding::explicit(1, 0, 0, 1), (2, 1), false),
        ((3, 2), (2, 2), Padding::Same, (1, 1), false),
    ] {
        gradcheck(&x, |x| x.max_pool2d(k, s, p, d, ceil).unwrap(), &format!("max_pool {k:?} {s:?} {p:?}"));
    }
    // second order: the gradient of the gradient w.r.t. the output gradient is a gather
    let xv = Var::new(x.clone());
    let y = xv.max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false).unwrap();
    let gy = Var::new(randn(y.dims(), 3));
    let gx = y.backward_with_grad(&gy, true).unwrap().get(&xv).unwrap().clone();
    let r = randn(x.dims(), 4);
    let g2 = gx.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    let gather = {
        let _g = shendu_core::no_grad();
        let (rv, yv) = (r.to_vec::<f64>().unwrap(), y.to_vec::<f64>().unwrap());
        let xvv = x.to_vec::<f64>().unwrap();
        // r at the argmax of each window = r where x equals the window max
        let mut out = vec![0.0; yv.len()];
        for (o, v) in out.iter_mut().enumerate() {
            let (pl, oy, ox) = (o / 9, (o % 9) / 3, o % 3);
            for i in 0..2 {
                for j in 0..2 {
                    let idx = pl * 42 + (oy * 2 + i) * 6 + ox * 2 + j;
                    if xvv[idx] == yv[o] {
                        *v = rv[idx];
                    }
                }
            }
        }
        out
    };
    close(&g2.get(&gy).unwrap().to_vec::<f64>().unwrap(), &gather, 1e-12, "max pool double backward");
}

// ---- average pools -------------------------------------------------------------------------

#[test]
fn avg_pool_values_follow_pytorch() {
    let x = iota(&[1, 1, 3, 3]);
    // k=2, s=1, no pad
    let y = x.avg_pool2d((2, 2), (1, 1), Padding::Valid, false, true).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![2.0, 3.0, 5.0, 6.0]);
    // pad 1, count_include_pad: corner (-1..1, -1..1) holds x[0][0] = 0 only, divided by 4
    let y = x.avg_pool2d((2, 2), (2, 2), Padding::symmetric(1), false, true).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![0.0 / 4.0, (1.0 + 2.0) / 4.0, (3.0 + 6.0) / 4.0, (4.0 + 5.0 + 7.0 + 8.0) / 4.0]);
    // the same without counting pads
    let y = x.avg_pool2d((2, 2), (2, 2), Padding::symmetric(1), false, false).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![0.0, 1.5, 4.5, 6.0]);
    // ceil mode: torch.nn.functional.avg_pool2d(arange(9).view(1,1,3,3), 2, 2, ceil_mode=True)
    // = [[2, 3.5], [6.5, 8]]: the partial windows divide by their clipped size
    let y = x.avg_pool2d((2, 2), (2, 2), Padding::Valid, true, true).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![2.0, 3.5, 6.5, 8.0]);
}

#[test]
fn adaptive_and_global_avg_pool() {
    let x = iota(&[1, 1, 5, 5]);
    // rows 0..2, 1..4, 3..5 (overlapping), same for columns
    let y = x.adaptive_avg_pool2d((3, 3)).unwrap();
    let mean = |r0: usize, r1: usize, c0: usize, c1: usize| {
        let mut s = 0.0;
        for r in r0..r1 {
            for c in c0..c1 {
                s += (r * 5 + c) as f64;
            }
        }
        s / ((r1 - r0) * (c1 - c0)) as f64
    };
    let w = [(0, 2), (1, 4), (3, 5)];
    let expect: Vec<f64> = w.iter().flat_map(|&(r0, r1)| w.iter().map(move |&(c0, c1)| mean(r0, r1, c0, c1))).collect();
    close(&y.to_vec::<f64>().unwrap(), &expect, 1e-12, "adaptive");
    // upsampling adaptively repeats
    let y = iota(&[1, 1, 2, 2]).adaptive_avg_pool2d((4, 4)).unwrap();
    assert_eq!(&y.to_vec::<f64>().unwrap()[..4], &[0.0, 0.0, 1.0, 1.0]);
    let x = randn(&[2, 3, 4, 5], 5);
    let g = x.global_avg_pool2d().unwrap();
    assert_eq!(g.dims(), &[2, 3, 1, 1]);
    close(&g.to_vec::<f64>().unwrap(), &x.mean(&[2usize, 3], true).unwrap().to_vec::<f64>().unwrap(), 1e-12, "global");
}

#[test]
fn avg_pool_gradients() {
    let x = randn(&[2, 2, 7, 6], 6);
    for (k, s, p, ceil, inc) in [
        ((2, 2), (2, 2), Padding::Valid, false, true),
        ((3, 3), (2, 2), Padding::symmetric(1), true, true),
        ((3, 3), (2, 2), Padding::symmetric(1), true, false),
        ((2, 3), (1, 2), Padding::explicit(0, 1, 1, 0), false, false),
        ((3, 3), (2, 2), Padding::Same, false, false),
    ] {
        gradcheck(&x, |x| x.avg_pool2d(k, s, p, ceil, inc).unwrap(), &format!("avg_pool {k:?} {p:?} {ceil} {inc}"));
    }
    gradcheck(&x, |x| x.adaptive_avg_pool2d((3, 4)).unwrap(), "adaptive");
    gradcheck(&x, |x| x.adaptive_avg_pool2d((9, 5)).unwrap(), "adaptive up");
    gradcheck(&x, |x| x.global_avg_pool2d().unwrap(), "global");
    // non-contiguous input
    gradcheck(&x, |x| x.transpose(2, 3).unwrap().avg_pool2d((2, 2), (2, 2), Padding::Valid, false, true).unwrap(), "transposed");
    // second order through the adjoint pair
    let v = Var::new(x.clone());
    let y = v.avg_pool2d((2, 2), (2, 2), Padding::Valid, false, true).unwrap();
    let gy = Var::new(randn(y.dims(), 8));
    let gx = y.backward_with_grad(&gy, true).unwrap().get(&v).unwrap().clone();
    let r = randn(x.dims(), 9);
    let g2 = gx.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    let expect = r.avg_pool2d((2, 2), (2, 2), Padding::Valid, false, true).unwrap();
    close(&g2.get(&gy).unwrap().to_vec::<f64>().unwrap(), &expect.to_vec::<f64>().unwrap(), 1e-12, "avg double backward");
}

// ---- upsampling ----------------------------------------------------------------------------

#[test]
fn upsample_values_follow_pytorch() {
    let x = t(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let y = x.upsample_nearest2d((3, 3)).unwrap();
    // floor(o * 2/3): 0, 0, 1
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![1.0, 1.0, 2.0, 1.0, 1.0, 2.0, 3.0, 3.0, 4.0]);
    // torch.nn.functional.interpolate(x, size=(3, 3), mode="bilinear", align_corners=True)
    let y = x.upsample_bilinear2d((3, 3), true).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 3.0, 3.5, 4.0]);
    // align_corners=False, 2 -> 4 along a row: [1, 1.25, 1.75, 2]
    let r = t(&[1.0, 2.0], &[1, 1, 1, 2]).upsample_bilinear2d((1, 4), false).unwrap();
    assert_eq!(r.to_vec::<f64>().unwrap(), vec![1.0, 1.25, 1.75, 2.0]);
    // downsampling with align_corners=False: 4 -> 2 samples at 0.5 and 2.5
    let r = t(&[0.0, 1.0, 2.0, 3.0], &[1, 1, 1, 4]).upsample_bilinear2d((1, 2), false).unwrap();
    assert_eq!(r.to_vec::<f64>().unwrap(), vec![0.5, 2.5]);
    // infinities survive nearest
    let inf = t(&[f64::INFINITY, 0.0], &[1, 1, 1, 2]).upsample_nearest2d((1, 4)).unwrap();
    assert_eq!(inf.to_vec::<f64>().unwrap(), vec![f64::INFINITY, f64::INFINITY, 0.0, 0.0]);
    // f32 and half
    let y32 = x.to_dtype(DType::F32).unwrap().upsample_bilinear2d((3, 3), true).unwrap();
    assert_eq!(y32.to_vec::<f32>().unwrap()[4], 2.5);
    let y16 = x.to_dtype(DType::BF16).unwrap().upsample_nearest2d((4, 4)).unwrap();
    assert_eq!(y16.dtype(), DType::BF16);
}

#[test]
fn upsample_gradients() {
    let x = randn(&[2, 2, 3, 4], 10);
    for size in [(6, 8), (5, 7), (2, 3), (3, 4)] {
        gradcheck(&x, |x| x.upsample_nearest2d(size).unwrap(), &format!("nearest {size:?}"));
        gradcheck(&x, |x| x.upsample_bilinear2d(size, true).unwrap(), &format!("bilinear ac {size:?}"));
        gradcheck(&x, |x| x.upsample_bilinear2d(size, false).unwrap(), &format!("bilinear {size:?}"));
    }
    gradcheck(&x, |x| x.permute(&[0, 1, 3, 2]).unwrap().upsample_bilinear2d((5, 5), false).unwrap(), "bilinear strided");
}

#[test]
fn backward_ops_are_adjoints() {
    // <f(x), r> == <x, f^T(r)> for every linear op here, in f32 as well.
    let x = randn(&[2, 3, 7, 5], 11).to_dtype(DType::F32).unwrap();
    type F = Box<dyn Fn(&Tensor) -> Tensor>;
    let fs: Vec<(&str, F)> = vec![
        ("avg", Box::new(|x: &Tensor| x.avg_pool2d((3, 2), (2, 1), Padding::symmetric(1), true, false).unwrap())),
        ("adaptive", Box::new(|x: &Tensor| x.adaptive_avg_pool2d((4, 3)).unwrap())),
        ("nearest", Box::new(|x: &Tensor| x.upsample_nearest2d((11, 8)).unwrap())),
        ("bilinear", Box::new(|x: &Tensor| x.upsample_bilinear2d((11, 8), false).unwrap())),
    ];
    for (name, f) in fs {
        let v = Var::new(x.clone());
        let y = f(&v);
        let r = randn(y.dims(), 12).to_dtype(DType::F32).unwrap();
        let lhs = y.mul(&r).unwrap().sum_all().unwrap().to_f64().unwrap();
        let g = y.backward_with_grad(&r, false).unwrap();
        let rhs = g.get(&v).unwrap().mul(&x).unwrap().sum_all().unwrap().to_f64().unwrap();
        assert!((lhs - rhs).abs() < 1e-3 * (1.0 + lhs.abs()), "{name}: {lhs} vs {rhs}");
    }
}

#[test]
fn errors_name_op_and_shapes() {
    let x = Tensor::zeros([1, 2, 3, 3], DType::F32).unwrap();
    let e = x.max_pool2d((4, 4), (1, 1), Padding::Valid, (1, 1), false).unwrap_err().to_string();
    assert!(e.starts_with("max_pool2d: kernel 4x4") && e.contains("[1, 2, 3, 3]"), "{e}");
    let e = x.avg_pool2d((2, 2), (0, 1), Padding::Valid, false, true).unwrap_err().to_string();
    assert!(e.starts_with("avg_pool2d:") && e.contains("stride (0, 1)"), "{e}");
    let e = Tensor::zeros([2, 3, 3], DType::F32).unwrap().max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false).unwrap_err();
    assert_eq!(e.to_string(), "max_pool2d: input [2, 3, 3] must be 4-d [N, C, H, W]");
    assert!(x.adaptive_avg_pool2d((0, 2)).unwrap_err().to_string().starts_with("adaptive_avg_pool2d:"));
    assert!(x.upsample_bilinear2d((0, 2), false).unwrap_err().to_string().starts_with("upsample_bilinear2d:"));
    assert!(Tensor::zeros([1, 1, 2, 2], DType::I64).unwrap().max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false).is_err());
}
