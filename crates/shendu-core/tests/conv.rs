//! conv2d / conv1d / conv_transpose2d: hand-checked values, every kernel path against a naive
//! definition, gradients against central finite differences (f64), and errors.

use shendu_core::cpu::simd::set_simd_enabled;
use shendu_core::{Conv2dParams, ConvTranspose2dParams, DType, Padding, Rng, Tensor, Var};

// ---- helpers -------------------------------------------------------------------------------

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn_with(shape, DType::F64, &mut Rng::new(seed)).unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}: element {i}: {x} vs {y}");
    }
}

#[derive(Clone, Copy, Debug)]
struct Cfg {
    x: [usize; 4],
    w: [usize; 4],
    stride: (usize, usize),
    pads: [usize; 4],
    dil: (usize, usize),
    groups: usize,
}

impl Cfg {
    fn params(&self) -> Conv2dParams {
        let p = self.pads;
        Conv2dParams { stride: self.stride, padding: Padding::explicit(p[0], p[1], p[2], p[3]), dilation: self.dil, groups: self.groups }
    }
}

/// The definition of a convolution, one multiply-add at a time.
fn naive_conv(x: &[f64], c: &Cfg, w: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let [n, cin, h, wd] = c.x;
    let [cout, cin_g, kh, kw] = c.w;
    let (s, p, d) = (c.stride, c.pads, c.dil);
    let oh = (h + p[0] + p[1] - d.0 * (kh - 1) - 1) / s.0 + 1;
    let ow = (wd + p[2] + p[3] - d.1 * (kw - 1) - 1) / s.1 + 1;
    let cout_g = cout / c.groups;
    let mut y = vec![0.0; n * cout * oh * ow];
    for b in 0..n {
        for co in 0..cout {
            let grp = co / cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0;
                    for ci in 0..cin_g {
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (oy * s.0 + i * d.0) as isize - p[0] as isize;
                                let ix = (ox * s.1 + j * d.1) as isize - p[2] as isize;
                                if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= wd {
                                    continue;
                                }
                                let xc = grp * cin_g + ci;
                                acc += x[((b * cin + xc) * h + iy as usize) * wd + ix as usize] * w[((co * cin_g + ci) * kh + i) * kw + j];
                            }
                        }
                    }
                    y[((b * cout + co) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    (y, vec![n, cout, oh, ow])
}

/// Checks the gradients of `sum(f(inputs) * r)` against central differences.
fn gradcheck(inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor, tol: f64) {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::new(t.clone())).collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&ts);
    let r = randn(y.dims(), 99);
    let loss = y.mul(&r).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let eval = |xs: &[Tensor]| {
        let _g = shendu_core::no_grad();
        f(xs).mul(&r).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
    };
    let eps = 1e-6;
    for (k, input) in inputs.iter().enumerate() {
        let analytic = grads.get(&vars[k]).expect("a gradient").to_vec::<f64>().unwrap();
        let base = input.to_vec::<f64>().unwrap();
        let mut numeric = vec![0.0; base.len()];
        for i in 0..base.len() {
            let at = |delta: f64| {
                let mut v = base.clone();
                v[i] += delta;
                let mut xs: Vec<Tensor> = inputs.to_vec();
                xs[k] = Tensor::from_vec(v, input.dims()).unwrap();
                eval(&xs)
            };
            numeric[i] = (at(eps) - at(-eps)) / (2.0 * eps);
        }
        close(&analytic, &numeric, tol, &format!("gradient of input {k}"));
    }
}

fn configs() -> Vec<Cfg> {
    let c = |x, w, stride, pads, dil, groups| Cfg { x, w, stride, pads, dil, groups };
    vec![
        // general im2col path: 3x3 pad 1 (the flat fast copy), stride 2, dilation, groups
        c([2, 3, 6, 7], [4, 3, 3, 3], (1, 1), [1, 1, 1, 1], (1, 1), 1),
        c([2, 4, 7, 6], [6, 2, 3, 3], (2, 2), [1, 1, 1, 1], (1, 1), 2),
        c([1, 2, 9, 9], [3, 2, 3, 3], (1, 1), [2, 2, 2, 2], (2, 2), 1),
        c([2, 3, 8, 7], [2, 3, 3, 2], (2, 1), [0, 2, 1, 0], (1, 2), 1),
        c([1, 2, 5, 6], [2, 2, 4, 2], (1, 3), [2, 1, 0, 1], (1, 1), 1),
        // pointwise gemm path, with groups
        c([2, 6, 4, 5], [4, 6, 1, 1], (1, 1), [0, 0, 0, 0], (1, 1), 1),
        c([2, 6, 4, 5], [4, 3, 1, 1], (1, 1), [0, 0, 0, 0], (1, 1), 2),
        // 1x1 with stride or pads goes the general way
        c([1, 3, 5, 5], [2, 3, 1, 1], (2, 2), [1, 0, 0, 1], (1, 1), 1),
        // depthwise: multiplier 1 and 2, stride 1 and 2, dilation, asymmetric pads
        c([2, 4, 7, 8], [4, 1, 3, 3], (1, 1), [1, 1, 1, 1], (1, 1), 4),
        c([2, 3, 7, 8], [6, 1, 3, 3], (1, 1), [1, 1, 1, 1], (1, 1), 3),
        c([1, 3, 9, 8], [3, 1, 3, 3], (2, 2), [1, 1, 1, 1], (1, 1), 3),
        c([1, 2, 9, 9], [4, 1, 3, 2], (1, 1), [2, 0, 3, 1], (2, 1), 2),
        c([1, 2, 8, 9], [2, 1, 5, 5], (2, 1), [2, 2, 2, 2], (1, 1), 2),
        c([1, 2, 6, 6], [2, 1, 2, 2], (1, 1), [3, 3, 3, 3], (1, 1), 2),
        // strided depthwise runs on phase planes: stride 3x2 with a dilated kernel whose taps
        // fall in different phases, odd sizes and uneven pads
        c([2, 2, 11, 10], [4, 1, 3, 3], (3, 2), [1, 2, 0, 1], (2, 1), 2),
        c([1, 3, 13, 9], [3, 1, 3, 3], (2, 2), [0, 1, 1, 0], (1, 1), 3),
        // a stride wider than the input (more phases than columns)
        c([1, 2, 3, 5], [2, 1, 1, 3], (1, 7), [0, 0, 1, 1], (1, 1), 2),
        // one input channel, many outputs (LeNet's first layer) takes the depthwise kernels
        c([2, 1, 8, 8], [5, 1, 5, 5], (1, 1), [2, 2, 2, 2], (1, 1), 1),
        // Winograd F(2x2, 3x3): odd and even output sizes, asymmetric pads, groups
        c([2, 16, 5, 7], [16, 16, 3, 3], (1, 1), [1, 1, 1, 1], (1, 1), 1),
        c([1, 32, 4, 5], [18, 16, 3, 3], (1, 1), [2, 0, 0, 2], (1, 1), 2),
        c([1, 16, 5, 6], [17, 16, 3, 3], (1, 1), [0, 0, 0, 0], (1, 1), 1),
        // stride 1 with pads past the kernel: the input gradient scatters (col2im)
        c([1, 3, 5, 5], [2, 3, 2, 2], (1, 1), [2, 2, 1, 2], (1, 1), 1),
        // stride 1, output rows shorter than the input's: flat column matrices, read in place
        // (LeNet's 5x5 valid conv, with groups) or from padded copies (pads, dilation), and
        // in two bands of output rows
        c([2, 6, 14, 14], [16, 6, 5, 5], (1, 1), [0, 0, 0, 0], (1, 1), 1),
        c([2, 4, 8, 8], [6, 2, 3, 3], (1, 1), [0, 0, 0, 0], (1, 1), 2),
        c([1, 2, 9, 10], [3, 2, 3, 3], (1, 1), [1, 0, 1, 0], (2, 1), 1),
        c([1, 8, 24, 24], [2, 8, 5, 5], (1, 1), [0, 1, 0, 0], (1, 1), 1),
    ]
}

// ---- forward -------------------------------------------------------------------------------

#[test]
fn hand_checked_values() {
    let x = Tensor::from_vec((1..=9).map(f64::from).collect::<Vec<_>>(), [1, 1, 3, 3]).unwrap();
    let w = Tensor::ones([1, 1, 2, 2], DType::F64).unwrap();
    let y = x.conv2d(&w, &Conv2dParams::default()).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![12.0, 16.0, 24.0, 28.0]);
    let y = x.conv2d(&w, &Conv2dParams::default().with_pad(1).with_stride(2)).unwrap();
    // windows at (-1,-1), (-1,1), (1,-1), (1,1)
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![1.0, 5.0, 11.0, 28.0]);
    let w3 = Tensor::from_vec(vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0f64], [1, 1, 3, 3]).unwrap();
    let y = x.conv2d(&w3, &Conv2dParams::default().with_pad(1)).unwrap();
    // x[i][j] - x[i+1][j+1]
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![-4.0, -4.0, 3.0, -4.0, -4.0, 6.0, 7.0, 8.0, 9.0]);
}

#[test]
fn every_path_matches_the_definition() {
    for (k, c) in configs().into_iter().enumerate() {
        let x = randn(&c.x, k as u64);
        let w = randn(&c.w, 100 + k as u64);
        let (expect, shape) = naive_conv(&x.to_vec::<f64>().unwrap(), &c, &w.to_vec::<f64>().unwrap());
        for simd in [true, false] {
            set_simd_enabled(simd);
            let y = x.conv2d(&w, &c.params()).unwrap();
            assert_eq!(y.dims(), &shape[..], "{c:?}");
            close(&y.to_vec::<f64>().unwrap(), &expect, 1e-12, &format!("{c:?} simd {simd}"));
            let y32 = x.to_dtype(DType::F32).unwrap().conv2d(&w.to_dtype(DType::F32).unwrap(), &c.params()).unwrap();
            close(&y32.to_vec_f64().unwrap(), &expect, 1e-4, &format!("{c:?} f32 simd {simd}"));
        }
        set_simd_enabled(true);
    }
}

#[test]
fn fast_paths_match_the_general_path() {
    // Depthwise as a dense convolution with a block-diagonal kernel (the im2col path).
    let (c, m) = (4, 2);
    let x = randn(&[2, c, 9, 10], 1);
    let w = randn(&[c * m, 1, 3, 3], 2);
    let p = Conv2dParams::default().with_pad(1).with_groups(c);
    let fast = x.conv2d(&w, &p).unwrap();
    let wv = w.to_vec::<f64>().unwrap();
    let mut dense = vec![0.0; c * m * c * 9];
    for oc in 0..c * m {
        let ic = oc / m;
        dense[(oc * c + ic) * 9..(oc * c + ic + 1) * 9].copy_from_slice(&wv[oc * 9..(oc + 1) * 9]);
    }
    let dense = Tensor::from_vec(dense, [c * m, c, 3, 3]).unwrap();
    let general = x.conv2d(&dense, &p.with_groups(1)).unwrap();
    close(&fast.to_vec::<f64>().unwrap(), &general.to_vec::<f64>().unwrap(), 1e-12, "depthwise vs im2col");
    // 1x1 as a gemm vs the same weight padded to 3x3 with zeros (the im2col path).
    let w1 = randn(&[5, c, 1, 1], 3);
    let fast = x.conv2d(&w1, &Conv2dParams::default()).unwrap();
    let w1v = w1.to_vec::<f64>().unwrap();
    let mut w3 = vec![0.0; 5 * c * 9];
    for (i, v) in w1v.iter().enumerate() {
        w3[i * 9 + 4] = *v;
    }
    let w3 = Tensor::from_vec(w3, [5, c, 3, 3]).unwrap();
    let general = x.conv2d(&w3, &Conv2dParams::default().with_pad(1)).unwrap();
    close(&fast.to_vec::<f64>().unwrap(), &general.to_vec::<f64>().unwrap(), 1e-12, "1x1 vs im2col");
    // and vs a matmul
    let xm = x.permute(&[0, 2, 3, 1]).unwrap().reshape([2 * 90, c]).unwrap();
    let mm = xm.matmul(&w1.reshape([5, c]).unwrap().t().unwrap()).unwrap().reshape([2, 9, 10, 5]).unwrap().permute(&[0, 3, 1, 2]).unwrap();
    close(&fast.to_vec::<f64>().unwrap(), &mm.to_vec::<f64>().unwrap(), 1e-12, "1x1 vs matmul");
}

#[test]
fn non_contiguous_inputs() {
    let base = randn(&[2, 3, 8, 9], 5);
    let views = [
        base.transpose(2, 3).unwrap(),                          // W and H swapped
        base.narrow(3, 1, 6).unwrap(),                          // rows with a gap
        base.permute(&[1, 0, 2, 3]).unwrap(),                   // N and C swapped
        base.narrow(2, 2, 5).unwrap().transpose(2, 3).unwrap(), // both
    ];
    for (k, x) in views.iter().enumerate() {
        let xc = x.contiguous().unwrap();
        let cin = x.dims()[1];
        for (w, p) in [
            (randn(&[4, cin, 3, 3], 6), Conv2dParams::default().with_pad(1)),
            (randn(&[4, cin, 3, 3], 6), Conv2dParams::default().with_stride(2)),
            (randn(&[4, cin, 1, 1], 7), Conv2dParams::default()),
            (randn(&[cin, 1, 3, 3], 8), Conv2dParams::default().with_pad(1).with_groups(cin)),
            (randn(&[cin, 1, 3, 3], 8), Conv2dParams::default().with_pad(1).with_groups(cin).with_stride(2)),
        ] {
            let a = x.conv2d(&w, &p).unwrap().to_vec::<f64>().unwrap();
            let b = xc.conv2d(&w, &p).unwrap().to_vec::<f64>().unwrap();
            close(&a, &b, 1e-12, &format!("view {k} {p:?}"));
        }
        // non-contiguous weight too
        let wt = randn(&[4, cin, 3, 3], 9).transpose(2, 3).unwrap();
        let a = x.conv2d(&wt, &Conv2dParams::default()).unwrap().to_vec::<f64>().unwrap();
        let b = xc.conv2d(&wt.contiguous().unwrap(), &Conv2dParams::default()).unwrap().to_vec::<f64>().unwrap();
        close(&a, &b, 1e-12, "strided weight");
    }
}

#[test]
fn same_padding_with_even_kernels_matches_tensorflow() {
    // TF pads the odd extra row/column at the bottom/right.
    let x = randn(&[1, 2, 7, 6], 11);
    for (k, s) in [(2, 1), (4, 1), (4, 2), (3, 2), (2, 3)] {
        let w = randn(&[3, 2, k, k], 12);
        let y = x.conv2d(&w, &Conv2dParams::default().with_stride(s).with_padding(Padding::Same)).unwrap();
        assert_eq!(y.dims(), &[1, 3, 7usize.div_ceil(s), 6usize.div_ceil(s)]);
        let (t, b) = shendu_core::padding::same_pads(7, k, s, 1);
        let (l, r) = shendu_core::padding::same_pads(6, k, s, 1);
        let e = x.conv2d(&w, &Conv2dParams::default().with_stride(s).with_padding(Padding::explicit(t, b, l, r))).unwrap();
        assert_eq!(y.to_vec::<f64>().unwrap(), e.to_vec::<f64>().unwrap());
        assert!(b >= t && r >= l);
    }
}

#[test]
fn half_precision_runs_through_f32() {
    let x = randn(&[1, 3, 6, 6], 13);
    let w = randn(&[2, 3, 3, 3], 14);
    let p = Conv2dParams::default().with_pad(1);
    let full = x.conv2d(&w, &p).unwrap().to_vec::<f64>().unwrap();
    for dt in [DType::F16, DType::BF16] {
        let y = x.to_dtype(dt).unwrap().conv2d(&w.to_dtype(dt).unwrap(), &p).unwrap();
        assert_eq!(y.dtype(), dt);
        close(&y.to_vec_f64().unwrap(), &full, 0.05, "half");
    }
}

#[test]
fn conv1d_matches_conv2d_of_height_one() {
    let x = randn(&[2, 4, 11], 15);
    let w = randn(&[6, 2, 3], 16);
    let y = x.conv1d(&w, 2, Padding::horizontal(2, 1), 2, 2).unwrap();
    let c = Cfg { x: [2, 4, 1, 11], w: [6, 2, 1, 3], stride: (1, 2), pads: [0, 0, 2, 1], dil: (1, 2), groups: 2 };
    let (expect, shape) = naive_conv(&x.to_vec::<f64>().unwrap(), &c, &w.to_vec::<f64>().unwrap());
    assert_eq!(y.dims(), &[shape[0], shape[1], shape[3]]);
    close(&y.to_vec::<f64>().unwrap(), &expect, 1e-12, "conv1d");
    let same = x.conv1d(&w, 1, Padding::Same, 1, 2).unwrap();
    assert_eq!(same.dims(), &[2, 6, 11]);
    gradcheck(&[x, w], |t| t[0].conv1d(&t[1], 2, Padding::horizontal(1, 0), 1, 2).unwrap(), 1e-6);
}

// ---- transposed convolution ------------------------------------------------------------------

fn naive_conv_transpose(x: &[f64], xd: [usize; 4], w: &[f64], wd: [usize; 4], p: &ConvTranspose2dParams) -> (Vec<f64>, Vec<usize>) {
    let [n, cin, h, wi] = xd;
    let [_, cout_g, kh, kw] = wd;
    let (s, d, op, pd) = (p.stride, p.dilation, p.output_padding, p.padding);
    let oh = (h - 1) * s.0 + d.0 * (kh - 1) + op.0 + 1 - pd.0 - pd.1;
    let ow = (wi - 1) * s.1 + d.1 * (kw - 1) + op.1 + 1 - pd.2 - pd.3;
    let cin_g = cin / p.groups;
    let cout = cout_g * p.groups;
    let mut y = vec![0.0; n * cout * oh * ow];
    for b in 0..n {
        for ci in 0..cin {
            let grp = ci / cin_g;
            for iy in 0..h {
                for ix in 0..wi {
                    for co in 0..cout_g {
                        for i in 0..kh {
                            for j in 0..kw {
                                let oy = (iy * s.0 + i * d.0) as isize - pd.0 as isize;
                                let ox = (ix * s.1 + j * d.1) as isize - pd.2 as isize;
                                if oy < 0 || ox < 0 || oy as usize >= oh || ox as usize >= ow {
                                    continue;
                                }
                                let oc = grp * cout_g + co;
                                y[((b * cout + oc) * oh + oy as usize) * ow + ox as usize] +=
                                    x[((b * cin + ci) * h + iy) * wi + ix] * w[((ci * cout_g + co) * kh + i) * kw + j];
                            }
                        }
                    }
                }
            }
        }
    }
    (y, vec![n, cout, oh, ow])
}

#[test]
fn conv_transpose_matches_the_definition() {
    let d = ConvTranspose2dParams::default();
    let cases = [
        ([2, 3, 4, 5], [3, 2, 3, 3], d),
        ([1, 4, 3, 4], [4, 3, 3, 3], d.with_stride(2).with_pad(1).with_output_padding(1, 0)),
        ([1, 4, 5, 4], [4, 1, 2, 2], d.with_stride(2).with_groups(2)),
        (
            [2, 2, 4, 4],
            [2, 2, 3, 2],
            ConvTranspose2dParams { stride: (2, 3), padding: (0, 2, 1, 0), output_padding: (1, 2), dilation: (1, 2), groups: 1 },
        ),
        ([1, 2, 4, 4], [2, 1, 3, 3], d.with_dilation(3).with_output_padding(2, 1).with_groups(2)),
        ([1, 3, 4, 4], [3, 2, 1, 1], d),
        ([1, 3, 5, 5], [3, 1, 3, 3], d.with_groups(3).with_pad(1)),
    ];
    for (k, (xd, wd, p)) in cases.into_iter().enumerate() {
        let x = randn(&xd, 20 + k as u64);
        let w = randn(&wd, 40 + k as u64);
        let (expect, shape) = naive_conv_transpose(&x.to_vec::<f64>().unwrap(), xd, &w.to_vec::<f64>().unwrap(), wd, &p);
        let y = x.conv_transpose2d(&w, &p).unwrap();
        assert_eq!(y.dims(), &shape[..], "case {k}");
        close(&y.to_vec::<f64>().unwrap(), &expect, 1e-12, &format!("case {k}"));
        gradcheck(&[x, w], |t| t[0].conv_transpose2d(&t[1], &p).unwrap(), 1e-6);
    }
}

// ---- gradients -----------------------------------------------------------------------------

#[test]
fn conv_gradients_match_finite_differences() {
    for (k, c) in configs().into_iter().enumerate() {
        let x = randn(&c.x, 60 + k as u64);
        let w = randn(&c.w, 80 + k as u64);
        let p = c.params();
        gradcheck(&[x.clone(), w.clone()], |t| t[0].conv2d(&t[1], &p).unwrap(), 1e-6);
        if c.w[1] == 1 {
            // the depthwise kernels' portable (non-FMA) build too
            set_simd_enabled(false);
            gradcheck(&[x, w], |t| t[0].conv2d(&t[1], &p).unwrap(), 1e-6);
            set_simd_enabled(true);
        }
    }
    // Same padding with an even kernel, and a non-contiguous input
    let x = randn(&[1, 2, 6, 5], 7);
    let w = randn(&[3, 2, 2, 4], 8);
    gradcheck(
        &[x.clone(), w.clone()],
        |t| t[0].conv2d(&t[1], &Conv2dParams::default().with_padding(Padding::Same).with_stride(2)).unwrap(),
        1e-6,
    );
    gradcheck(&[x, w], |t| t[0].transpose(2, 3).unwrap().conv2d(&t[1], &Conv2dParams::default().with_pad(1)).unwrap(), 1e-6);
}

#[test]
fn second_order_gradients() {
    // d/dw of sum(gx * r2), where gx = d sum(conv(x, w) * r1) / dx: checked by differences of
    // the first-order gradient.
    let x = randn(&[1, 2, 5, 5], 1);
    let w = randn(&[3, 2, 3, 3], 2);
    let r1 = randn(&[1, 3, 3, 3], 3);
    let r2 = randn(&[1, 2, 5, 5], 4);
    let p = Conv2dParams::default().with_stride(2).with_pad(1);
    let first = |x: &Tensor, w: &Tensor, create: bool| -> (Var, Var, Tensor, Tensor) {
        let (xv, wv) = (Var::new(x.clone()), Var::new(w.clone()));
        let y = xv.conv2d(&wv, &p).unwrap();
        let g = y.backward_with_grad(&r1, create).unwrap();
        let (gx, gw) = (g.get(&xv).unwrap().clone(), g.get(&wv).unwrap().clone());
        (xv, wv, gx, gw)
    };
    let (xv, wv, gx, gw) = first(&x, &w, true);
    let obj = gx.mul(&r2).unwrap().sum_all().unwrap().add(&gw.sqr().unwrap().sum_all().unwrap()).unwrap();
    let g2 = obj.backward().unwrap();
    let eps = 1e-6;
    for (k, (input, var)) in [(&x, &xv), (&w, &wv)].into_iter().enumerate() {
        let analytic = g2.get(var).unwrap().to_vec::<f64>().unwrap();
        let base = input.to_vec::<f64>().unwrap();
        for i in 0..base.len() {
            let at = |delta: f64| {
                let mut v = base.clone();
                v[i] += delta;
                let t = Tensor::from_vec(v, input.dims()).unwrap();
                let (gx, gw) = if k == 0 {
                    let r = first(&t, &w, false);
                    (r.2, r.3)
                } else {
                    let r = first(&x, &t, false);
                    (r.2, r.3)
                };
                gx.mul(&r2).unwrap().sum_all().unwrap().to_f64().unwrap() + gw.sqr().unwrap().sum_all().unwrap().to_f64().unwrap()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            assert!((analytic[i] - numeric).abs() < 1e-5 * (1.0 + numeric.abs()), "input {k} element {i}: {} vs {numeric}", analytic[i]);
        }
    }
}

#[test]
fn gradients_in_f32_with_threads() {
    // Batch larger than the thread count takes the per-image parallel path with per-thread
    // weight-gradient partials; compare with f64.
    let x = randn(&[5, 3, 9, 9], 30);
    let w = randn(&[4, 3, 3, 3], 31);
    let gy = randn(&[5, 4, 9, 9], 32);
    let p = Conv2dParams::default().with_pad(1);
    let run = |dt: DType| {
        let (xv, wv) = (Var::new(x.to_dtype(dt).unwrap()), Var::new(w.to_dtype(dt).unwrap()));
        let g = xv.conv2d(&wv, &p).unwrap().backward_with_grad(&gy.to_dtype(dt).unwrap(), false).unwrap();
        (g.get(&xv).unwrap().to_vec_f64().unwrap(), g.get(&wv).unwrap().to_vec_f64().unwrap())
    };
    let (a, b) = (run(DType::F64), run(DType::F32));
    close(&b.0, &a.0, 1e-4, "gx f32");
    close(&b.1, &a.1, 1e-4, "gw f32");
}

// ---- errors --------------------------------------------------------------------------------

#[test]
fn errors_name_op_and_shapes() {
    let x = Tensor::zeros([8, 32, 56, 56], DType::F32).unwrap();
    let w = Tensor::zeros([64, 16, 3, 3], DType::F32).unwrap();
    let e = x.conv2d(&w, &Conv2dParams::default()).unwrap_err().to_string();
    assert_eq!(e, "conv2d: input [8, 32, 56, 56] has 32 channels but weight [64, 16, 3, 3] with groups 1 expects 16");
    let e = x.conv2d(&w, &Conv2dParams::default().with_groups(3)).unwrap_err().to_string();
    assert!(e.starts_with("conv2d: input [8, 32, 56, 56] has 32 channels, which groups 3"), "{e}");
    let small = Tensor::zeros([1, 16, 2, 2], DType::F32).unwrap();
    let e = small.conv2d(&Tensor::zeros([4, 16, 3, 3], DType::F32).unwrap(), &Conv2dParams::default()).unwrap_err().to_string();
    assert!(e.starts_with("conv2d: kernel 3x3") && e.contains("[1, 16, 2, 2]"), "{e}");
    let e = x.conv2d(&Tensor::zeros([64, 32, 3, 3], DType::F32).unwrap(), &Conv2dParams::default().with_stride(0)).unwrap_err().to_string();
    assert!(e.starts_with("conv2d: stride (0, 0)"), "{e}");
    let e = Tensor::zeros([3, 4, 5], DType::F32).unwrap().conv2d(&w, &Conv2dParams::default()).unwrap_err().to_string();
    assert!(e.contains("input [3, 4, 5] must be 4-d"), "{e}");
    let e = x.conv2d(&Tensor::zeros([4, 32, 3, 3], DType::F64).unwrap(), &Conv2dParams::default()).unwrap_err().to_string();
    assert!(e.starts_with("conv2d:") && e.contains("dtype"), "{e}");
    let e = Tensor::zeros([1, 2, 3], DType::F32).unwrap().conv1d(&Tensor::zeros([1, 2, 5], DType::F32).unwrap(), 1, Padding::Valid, 1, 1);
    assert!(e.unwrap_err().to_string().starts_with("conv1d:"));
    let t = Tensor::zeros([1, 4, 3, 3], DType::F32).unwrap();
    let e =
        t.conv_transpose2d(&Tensor::zeros([4, 2, 3, 3], DType::F32).unwrap(), &ConvTranspose2dParams::default().with_output_padding(1, 0));
    assert!(e.unwrap_err().to_string().starts_with("conv_transpose2d: output padding (1, 0)"));
    let e = t.conv_transpose2d(&Tensor::zeros([3, 2, 3, 3], DType::F32).unwrap(), &ConvTranspose2dParams::default());
    assert!(e.unwrap_err().to_string().contains("has 4 channels but weight [3, 2, 3, 3] expects 3"));
    let e = t.conv_transpose2d(&Tensor::zeros([4, 2, 1, 1], DType::F32).unwrap(), &ConvTranspose2dParams::default().with_pad(2));
    assert!(e.unwrap_err().to_string().contains("empty output"));
    // integer dtypes are rejected, not mis-computed
    let xi = Tensor::zeros([1, 1, 3, 3], DType::I64).unwrap();
    assert!(xi.conv2d(&Tensor::zeros([1, 1, 1, 1], DType::I64).unwrap(), &Conv2dParams::default()).is_err());
}

#[test]
fn winograd_matches_im2col_forward_and_backward() {
    use shendu_core::cpu::winograd::set_enabled;
    let cases = [
        ([2, 16, 28, 28], [32, 16, 3, 3], [1, 1, 1, 1], 1),
        ([1, 32, 17, 19], [18, 16, 3, 3], [0, 2, 1, 0], 2),
        ([3, 16, 9, 16], [16, 16, 3, 3], [0, 0, 0, 0], 1),
        ([2, 20, 11, 36], [24, 20, 3, 3], [2, 1, 1, 2], 1),
        // maps narrower than a vector of tiles: 8x8 (4 tiles a row) and 2x3 (2)
        ([2, 16, 8, 8], [24, 16, 3, 3], [1, 1, 1, 1], 1),
        ([3, 16, 4, 5], [16, 16, 3, 3], [0, 0, 0, 0], 1),
        // one-band maps: the weight gradient sums several images per product (8x8: blocks of
        // up to 4 images; 6x6: up to 7, in narrow rows), batches large enough for blocks of 3
        // or more on two threads (four chunks of images each)
        ([33, 16, 8, 8], [20, 16, 3, 3], [1, 1, 1, 1], 1),
        ([40, 16, 6, 6], [16, 16, 3, 3], [1, 1, 1, 1], 1),
    ];
    for (k, (xd, wd, pads, groups)) in cases.into_iter().enumerate() {
        let c = Cfg { x: xd, w: wd, stride: (1, 1), pads, dil: (1, 1), groups };
        for dt in [DType::F64, DType::F32] {
            // the last case reads a transposed (non-contiguous) input
            let x = if k == 3 {
                randn(&[xd[0], xd[1], xd[3], xd[2]], 200).transpose(2, 3).unwrap().to_dtype(dt).unwrap()
            } else {
                randn(&xd, 200 + k as u64).to_dtype(dt).unwrap()
            };
            let w = randn(&wd, 300 + k as u64).to_dtype(dt).unwrap();
            let run = |winograd: bool| {
                set_enabled(winograd);
                let (xv, wv) = (Var::new(x.clone()), Var::new(w.clone()));
                let y = xv.conv2d(&wv, &c.params()).unwrap();
                let gy = randn(y.dims(), 400 + k as u64).to_dtype(dt).unwrap();
                let g = y.backward_with_grad(&gy, false).unwrap();
                set_enabled(true);
                [y.to_vec_f64().unwrap(), g.get(&xv).unwrap().to_vec_f64().unwrap(), g.get(&wv).unwrap().to_vec_f64().unwrap()]
            };
            let (fast, slow) = (run(true), run(false));
            let tol = if dt == DType::F64 { 1e-10 } else { 2e-4 };
            for (what, (a, b)) in ["y", "gx", "gw"].iter().zip(fast.iter().zip(&slow)) {
                // relative to the tensor's scale: gw sums many products
                let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let worst = a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
                assert!(worst <= tol * scale, "case {k} {dt} {what}: worst error {worst} at scale {scale}");
            }
        }
    }
}

#[test]
fn winograd_reads_strided_inputs() {
    use shendu_core::ops::conv::{Conv2dWeightGrad, ConvSpec};
    use shendu_core::Op;
    let x = randn(&[2, 16, 13, 10], 500).transpose(2, 3).unwrap();
    let xc = x.contiguous().unwrap();
    let w = randn(&[16, 16, 3, 3], 501);
    let p = Conv2dParams::default().with_padding(Padding::explicit(1, 0, 2, 1));
    let (a, b) = (x.conv2d(&w, &p).unwrap(), xc.conv2d(&w, &p).unwrap());
    close(&a.to_vec::<f64>().unwrap(), &b.to_vec::<f64>().unwrap(), 1e-12, "forward");
    let gy = randn(a.dims(), 502);
    let spec = ConvSpec { stride: (1, 1), pads: [1, 0, 2, 1], dilation: (1, 1), groups: 1 };
    let op = Conv2dWeightGrad { spec, kernel: (3, 3) };
    let (ga, gb) = (op.forward(&[&x, &gy]).unwrap(), op.forward(&[&xc, &gy]).unwrap());
    close(&ga.to_vec::<f64>().unwrap(), &gb.to_vec::<f64>().unwrap(), 1e-12, "weight grad");
}

/// Regression (found by the gradcheck proptest): a transposed conv whose dilated taps shift
/// whole columns into the cut padding took col2im's flat path past the plane's start and
/// panicked. Every output here comes from the one tap kx = 1: out[oy] = sum_c x[c] w[c, 0, oy, 1].
#[test]
fn conv_transpose_with_taps_wholly_in_the_padding() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[1, 2, 1, 1]).unwrap();
    let w = Tensor::from_vec((0..12).map(|v| v as f64).collect::<Vec<_>>(), &[2, 1, 3, 2]).unwrap();
    let p = ConvTranspose2dParams { padding: (0, 0, 2, 0), dilation: (1, 2), ..Default::default() };
    let y = x.conv_transpose2d(&w, &p).unwrap();
    assert_eq!(y.dims(), &[1, 1, 3, 1]);
    let want: Vec<f64> = (0..3).map(|oy| 1.0 * (oy * 2 + 1) as f64 + 2.0 * (6 + oy * 2 + 1) as f64).collect();
    assert_eq!(y.flatten_all().unwrap().to_vec::<f64>().unwrap(), want);
}
