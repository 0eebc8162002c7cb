//! Property-based gradient checks of the convolution, pooling, upsampling and manipulation ops:
//! random shapes and parameters (groups, stride, dilation, asymmetric and `Same` padding,
//! non-contiguous inputs, random indices and masks), each checked against central finite
//! differences in f64 with `common::gradcheck`. `PROPTEST_CASES` raises the case counts.

mod common;

use common::*;
use proptest::prelude::*;
use shendu_core::{Conv2dParams, ConvTranspose2dParams, PadMode, Padding, Result, Rng, Tensor};

/// `n` cases, or `PROPTEST_CASES` when set (for longer hunts).
fn cases(n: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(n)
}

fn check(what: String, inputs: Vec<In>, f: impl Fn(&[Tensor]) -> Result<Tensor>) -> std::result::Result<(), TestCaseError> {
    let r = gradcheck(&what, &inputs, &f, Tol::default(), 11);
    prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    Ok(())
}

/// The op sees `i` plain (0), transposed in H and W (1) or narrowed in W (2).
fn view(i: In, v: u8) -> In {
    match v % 3 {
        1 => i.t(),
        2 => i.narrowed(),
        _ => i,
    }
}

/// TensorFlow `Same`, `Valid`, or explicit pads (asymmetric) up to `max`.
fn padding(max: usize) -> impl Strategy<Value = Padding> {
    prop_oneof![
        1 => Just(Padding::Same),
        1 => Just(Padding::Valid),
        3 => (0..=max, 0..=max, 0..=max, 0..=max).prop_map(|(t, b, l, r)| Padding::explicit(t, b, l, r)),
    ]
}

/// `size` grown (if needed) so that a kernel of `k` with dilation `d` fits it with the pads of
/// `p` (Same always fits); growing rather than rejecting keeps every case.
fn grow(size: usize, k: usize, d: usize, p: Padding, height: bool) -> usize {
    let ek = d * (k - 1) + 1;
    match p {
        Padding::Same => size,
        Padding::Valid => size.max(ek),
        Padding::Explicit { top, bottom, left, right } => size.max(ek.saturating_sub(if height { top + bottom } else { left + right })),
    }
}

/// Random valid indices `0..n` (repeats allowed), as an i64 tensor of `shape`.
fn indices(n: usize, shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut rng = Rng::new(seed);
    let v: Vec<i64> = (0..shape.iter().product::<usize>()).map(|_| rng.below(n as u64) as i64).collect();
    Tensor::from_vec(v, shape.to_vec())
}

fn shape(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=4, 1..=max_rank)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(500), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn prop_conv2d(n in 1usize..=2, groups in 1usize..=3, cin_g in 1usize..=2, cout_g in 1usize..=2, h in 1usize..=7,
                   w in 1usize..=7, k in (1usize..=3, 1usize..=3), stride in (1usize..=2, 1usize..=2),
                   dil in (1usize..=2, 1usize..=2), pad in padding(2), v in 0u8..3) {
        let (h, w) = (grow(h, k.0, dil.0, pad, true), grow(w, k.1, dil.1, pad, false));
        let p = Conv2dParams { stride, padding: pad, dilation: dil, groups };
        let inputs = vec![view(n_(&[n, groups * cin_g, h, w]), v), n_(&[groups * cout_g, cin_g, k.0, k.1])];
        let what = format!("conv2d {} * {:?} {p:?}", inputs[0].describe(), inputs[1].shape);
        check(what, inputs, move |x| x[0].conv2d(&x[1], &p))?;
    }

    #[test]
    fn prop_conv_transpose2d(n in 1usize..=2, groups in 1usize..=2, cin_g in 1usize..=2, cout_g in 1usize..=2,
                             h in 1usize..=4, w in 1usize..=4, k in (1usize..=3, 1usize..=3), stride in (1usize..=2, 1usize..=2),
                             dil in (1usize..=2, 1usize..=2), pads in (0usize..=1, 0usize..=1, 0usize..=1, 0usize..=1),
                             op in (0usize..2, 0usize..2), v in 0u8..3) {
        // PyTorch's rule: the output padding is below the stride or the dilation.
        let output_padding = (op.0 % stride.0.max(dil.0), op.1 % stride.1.max(dil.1));
        let full = |i: usize, s: usize, d: usize, k: usize, o: usize| (i - 1) * s + d * (k - 1) + 1 + o;
        prop_assume!(full(h, stride.0, dil.0, k.0, output_padding.0) > pads.0 + pads.1);
        prop_assume!(full(w, stride.1, dil.1, k.1, output_padding.1) > pads.2 + pads.3);
        let p = ConvTranspose2dParams { stride, padding: pads, output_padding, dilation: dil, groups };
        let inputs = vec![view(n_(&[n, groups * cin_g, h, w]), v), n_(&[groups * cin_g, cout_g, k.0, k.1])];
        let what = format!("conv_transpose2d {} * {:?} {p:?}", inputs[0].describe(), inputs[1].shape);
        check(what, inputs, move |x| x[0].conv_transpose2d(&x[1], &p))?;
    }

    #[test]
    fn prop_conv1d(n in 1usize..=2, groups in 1usize..=2, cin_g in 1usize..=2, cout_g in 1usize..=2, l in 1usize..=7,
                   k in 1usize..=3, stride in 1usize..=2, dil in 1usize..=2,
                   pad in prop_oneof![Just(Padding::Same), Just(Padding::Valid), (0usize..=2, 0usize..=2).prop_map(|(a, b)| Padding::horizontal(a, b))],
                   narrowed: bool) {
        let l = grow(l, k, dil, pad, false);
        let x = n_(&[n, groups * cin_g, l]);
        let inputs = vec![if narrowed { x.narrowed() } else { x }, n_(&[groups * cout_g, cin_g, k])];
        let what = format!("conv1d {} * {:?} stride {stride} {pad:?} dilation {dil} groups {groups}", inputs[0].describe(), inputs[1].shape);
        check(what, inputs, move |x| x[0].conv1d(&x[1], stride, pad, dil, groups))?;
    }

    #[test]
    fn prop_max_pool2d(n in 1usize..=2, c in 1usize..=2, h in 1usize..=7, w in 1usize..=7, k in (1usize..=3, 1usize..=3),
                       stride in (1usize..=2, 1usize..=2), dil in (1usize..=2, 1usize..=2), pads in (0usize..=1, 0usize..=1, 0usize..=1, 0usize..=1),
                       same: bool, ceil: bool, v in 0u8..3) {
        // PyTorch's bound (pad at most half the kernel), and no pads with dilation, keep every
        // window on the input (a window wholly in the -inf padding has no gradient to check).
        let (mh, mw) = (if dil.0 == 1 { k.0 / 2 } else { 0 }, if dil.1 == 1 { k.1 / 2 } else { 0 });
        let (pt, pb, pl, pr) = (pads.0.min(mh), pads.1.min(mh), pads.2.min(mw), pads.3.min(mw));
        // Same pads of a dilated kernel can leave a window wholly in the (-inf) padding.
        let pad = if same && dil == (1, 1) { Padding::Same } else { Padding::explicit(pt, pb, pl, pr) };
        let (h, w) = (grow(h, k.0, dil.0, pad, true), grow(w, k.1, dil.1, pad, false));
        let inputs = vec![view(distinct(&[n, c, h, w]), v)];
        let what = format!("max_pool2d {} k {k:?} s {stride:?} d {dil:?} {pad:?} ceil {ceil}", inputs[0].describe());
        check(what, inputs, move |x| x[0].max_pool2d(k, stride, pad, dil, ceil))?;
    }

    #[test]
    fn prop_avg_pool2d(n in 1usize..=2, c in 1usize..=2, h in 1usize..=7, w in 1usize..=7, k in (1usize..=3, 1usize..=3),
                       stride in (1usize..=2, 1usize..=2), pads in (0usize..=1, 0usize..=1, 0usize..=1, 0usize..=1),
                       same: bool, ceil: bool, include: bool, v in 0u8..3) {
        let (pt, pb, pl, pr) = (pads.0.min(k.0 / 2), pads.1.min(k.0 / 2), pads.2.min(k.1 / 2), pads.3.min(k.1 / 2));
        let pad = if same { Padding::Same } else { Padding::explicit(pt, pb, pl, pr) };
        let (h, w) = (grow(h, k.0, 1, pad, true), grow(w, k.1, 1, pad, false));
        let inputs = vec![view(n_(&[n, c, h, w]), v)];
        let what = format!("avg_pool2d {} k {k:?} s {stride:?} {pad:?} ceil {ceil} count_include_pad {include}", inputs[0].describe());
        check(what, inputs, move |x| x[0].avg_pool2d(k, stride, pad, ceil, include))?;
    }

    #[test]
    fn prop_adaptive_avg_pool2d(n in 1usize..=2, c in 1usize..=2, h in 1usize..=7, w in 1usize..=7, out in (1usize..=5, 1usize..=5),
                                v in 0u8..3) {
        let inputs = vec![view(n_(&[n, c, h, w]), v)];
        check(format!("adaptive_avg_pool2d {} to {out:?}", inputs[0].describe()), inputs, move |x| x[0].adaptive_avg_pool2d(out))?;
    }

    #[test]
    fn prop_upsample(n in 1usize..=2, c in 1usize..=2, h in 1usize..=5, w in 1usize..=5, size in (1usize..=7, 1usize..=7),
                     mode in 0u8..3, v in 0u8..3) {
        let inputs = vec![view(n_(&[n, c, h, w]), v)];
        let what = format!("upsample mode {mode} {} to {size:?}", inputs[0].describe());
        check(what, inputs, move |x| match mode {
            0 => x[0].upsample_nearest2d(size),
            1 => x[0].upsample_bilinear2d(size, false),
            _ => x[0].upsample_bilinear2d(size, true),
        })?;
    }

    #[test]
    fn prop_index_select(s in shape(3), dim in 0usize..3, len in 1usize..=5, seed: u64, t: bool) {
        let dim = dim % s.len();
        let x = n_(&s);
        let x = if t && s.len() >= 2 { x.t() } else { x };
        let size = s[dim];
        check(format!("index_select {} dim {dim} len {len}", x.describe()), vec![x], move |x| {
            x[0].index_select(dim, &indices(size, &[len], seed)?)
        })?;
    }

    #[test]
    fn prop_gather_scatter_add(s in shape(3), dim in 0usize..3, shrink in prop::collection::vec(0usize..=2, 3), seed: u64,
                               scatter: bool, narrowed: bool) {
        let dim = dim % s.len();
        // The index may be longer than `self` along `dim` (repeats) and no larger elsewhere.
        let ishape: Vec<usize> =
            s.iter().enumerate().map(|(d, &n)| if d == dim { n + shrink[d] } else { (n - shrink[d].min(n - 1)).max(1) }).collect();
        let size = s[dim];
        let x = n_(&s);
        let x = if narrowed { x.narrowed() } else { x };
        let is = ishape.clone();
        if scatter {
            let inputs = vec![x, n_(&ishape)];
            check(format!("scatter_add {} dim {dim} index {ishape:?}", inputs[0].describe()), inputs, move |x| {
                x[0].scatter_add(dim, &indices(size, &is, seed)?, &x[1])
            })?;
        } else {
            check(format!("gather {} dim {dim} index {ishape:?}", x.describe()), vec![x], move |x| {
                x[0].gather(dim, &indices(size, &is, seed)?)
            })?;
        }
    }

    #[test]
    fn prop_cat_stack(s in shape(3), dim in 0usize..4, extra in prop::collection::vec(1usize..=3, 1..=3), stack: bool,
                      views in prop::collection::vec(0u8..3, 4)) {
        let count = extra.len() + 1;
        let dim_cat = dim % s.len();
        let inputs: Vec<In> = (0..count)
            .map(|i| {
                let mut si = s.clone();
                if !stack && i > 0 {
                    si[dim_cat] = extra[i - 1];
                }
                let x = n_(&si);
                match views[i] {
                    1 if si.len() >= 2 => x.t(),
                    2 => x.narrowed(),
                    _ => x,
                }
            })
            .collect();
        let what = format!("{} dim {dim} of {}", if stack { "stack" } else { "cat" }, inputs.iter().map(In::describe).collect::<Vec<_>>().join(", "));
        let dim_stack = dim % (s.len() + 1);
        check(what, inputs, move |x| {
            let refs: Vec<&Tensor> = x.iter().collect();
            if stack { Tensor::stack(&refs, dim_stack) } else { Tensor::cat(&refs, dim_cat) }
        })?;
    }

    #[test]
    fn prop_pad(s in prop::collection::vec(1usize..=4, 1..=3), pads in prop::collection::vec((0usize..=3, 0usize..=3), 1..=3),
                mode in 0u8..3, value in -2.0f64..2.0, t: bool) {
        let pads: Vec<(usize, usize)> = pads.into_iter().take(s.len()).collect();
        let mode = match mode {
            0 => PadMode::Constant(value),
            1 => PadMode::Reflect,
            _ => PadMode::Replicate,
        };
        // Reflect pads stay below the size of the dim they pad (dims counted from the back).
        let pads: Vec<(usize, usize)> = if mode == PadMode::Reflect {
            pads.iter().enumerate().map(|(i, &(a, b))| {
                let n = s[s.len() - 1 - i];
                (a.min(n - 1), b.min(n - 1))
            }).collect()
        } else {
            pads
        };
        let x = n_(&s);
        let x = if t && s.len() >= 2 && s[s.len() - 1] == s[s.len() - 2] { x.t() } else { x };
        check(format!("pad {} {pads:?} {mode:?}", x.describe()), vec![x], move |x| x[0].pad(&pads, mode))?;
    }

    #[test]
    fn prop_where_cond(s in shape(3), ones in prop::collection::vec(any::<bool>(), 3), seed: u64, t: bool) {
        // The branches broadcast against the mask: one of them has size-1 dims.
        let b: Vec<usize> = s.iter().zip(&ones).map(|(&d, &o)| if o { 1 } else { d }).collect();
        let mut rng = Rng::new(seed);
        let m: Vec<u8> = (0..s.iter().product::<usize>()).map(|_| u8::from(rng.bernoulli(0.5))).collect();
        let sm = s.clone();
        let a = n_(&s);
        let a = if t && s.len() >= 2 { a.t() } else { a };
        let inputs = vec![a, n_(&b)];
        let what = format!("where_cond {} {:?}", inputs[0].describe(), b);
        check(what, inputs, move |x| Tensor::from_vec(m.clone(), sm.clone())?.where_cond(&x[0], &x[1]))?;
    }
}

/// Standard normal input (`n` is taken by the batch size in the proptests).
fn n_(shape: &[usize]) -> In {
    n(shape)
}
