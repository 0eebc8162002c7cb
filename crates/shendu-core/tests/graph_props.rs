//! Graph-mode gradients equal eager gradients, op by op (f64, relative 1e-10), on random
//! inputs: each table row is one expression written once and compiled twice, on tensors and on
//! graph nodes (the same method names). The graph side is checked on its first (traced) run
//! and on its second (planned: fused kernels, reused buffers) run.

use proptest::prelude::*;
use shendu_core::graph::{Graph, Node, Session};
use shendu_core::{BatchNormActivation, Conv2dParams, DType, PadMode, Padding, Result, Rng, Tensor, Var};

type EagerFn = Box<dyn Fn(&[Tensor]) -> Result<Tensor>>;
type GraphFn = Box<dyn Fn(&[Node]) -> Result<Node>>;

/// How the inputs of a row are drawn.
#[derive(Clone, Copy)]
enum Draw {
    Normal,
    Positive,
}

struct Row {
    op: &'static str,
    shapes: Vec<Vec<usize>>,
    draw: Draw,
    eager: EagerFn,
    graph: GraphFn,
}

macro_rules! row {
    ($t:expr, $op:literal, $draw:expr, [$($s:expr),*], |$x:ident| $body:expr) => {
        $t.push(Row {
            op: $op,
            shapes: vec![$($s.to_vec()),*],
            draw: $draw,
            eager: Box::new(|$x: &[Tensor]| -> Result<Tensor> { $body }),
            graph: Box::new(|$x: &[Node]| -> Result<Node> { $body }),
        })
    };
}

fn table() -> Vec<Row> {
    use Draw::*;
    let mut t = Vec::new();
    let s: &[usize] = &[3, 4];
    row!(t, "neg", Normal, [s], |x| x[0].neg());
    row!(t, "abs", Normal, [s], |x| x[0].abs());
    row!(t, "exp", Normal, [s], |x| x[0].exp());
    row!(t, "log", Positive, [s], |x| x[0].log());
    row!(t, "sqrt", Positive, [s], |x| x[0].sqrt());
    row!(t, "rsqrt", Positive, [s], |x| x[0].rsqrt());
    row!(t, "sqr", Normal, [s], |x| x[0].sqr());
    row!(t, "recip", Positive, [s], |x| x[0].recip());
    row!(t, "sin", Normal, [s], |x| x[0].sin());
    row!(t, "cos", Normal, [s], |x| x[0].cos());
    row!(t, "tanh", Normal, [s], |x| x[0].tanh());
    row!(t, "sigmoid", Normal, [s], |x| x[0].sigmoid());
    row!(t, "erf", Normal, [s], |x| x[0].erf());
    row!(t, "relu", Normal, [s], |x| x[0].relu());
    row!(t, "leaky_relu", Normal, [s], |x| x[0].leaky_relu(0.1));
    row!(t, "relu6", Normal, [s], |x| x[0].affine(4.0, 0.0)?.relu6());
    row!(t, "elu", Normal, [s], |x| x[0].elu(0.7));
    row!(t, "selu", Normal, [s], |x| x[0].selu());
    row!(t, "gelu", Normal, [s], |x| x[0].gelu());
    row!(t, "silu", Normal, [s], |x| x[0].silu());
    row!(t, "mish", Normal, [s], |x| x[0].mish());
    row!(t, "softplus", Normal, [s], |x| x[0].softplus());
    row!(t, "clamp", Normal, [s], |x| x[0].clamp(-0.5, 0.5));
    row!(t, "affine", Normal, [s], |x| x[0].affine(1.5, -2.0));
    row!(t, "powf", Positive, [s], |x| x[0].powf(2.5));
    row!(t, "add", Normal, [s, s], |x| x[0].add(&x[1]));
    row!(t, "add", Normal, [s, &[4]], |x| x[0].add(&x[1]));
    row!(t, "sub", Normal, [&[3, 1], &[1, 4]], |x| x[0].sub(&x[1]));
    row!(t, "mul", Normal, [s, &[3, 1]], |x| x[0].mul(&x[1]));
    row!(t, "div", Positive, [s, &[4]], |x| x[0].div(&x[1]));
    row!(t, "pow", Positive, [s, s], |x| x[0].pow(&x[1]));
    row!(t, "maximum", Normal, [s, s], |x| x[0].maximum(&x[1]));
    row!(t, "pass_within", Normal, [s, s], |x| x[0].pass_within(&x[1], -0.5, 0.5));
    row!(t, "minimum", Normal, [s, &[4]], |x| x[0].minimum(&x[1]));
    row!(t, "matmul", Normal, [&[3, 5], &[5, 2]], |x| x[0].matmul(&x[1]));
    row!(t, "matmul", Normal, [&[2, 3, 5], &[5, 2]], |x| x[0].matmul(&x[1]));
    row!(t, "matmul", Normal, [&[5, 3], &[5, 2]], |x| x[0].t()?.matmul(&x[1]));
    row!(t, "sum", Normal, [&[2, 3, 4]], |x| x[0].sum(&[1isize], false));
    row!(t, "sum", Normal, [&[2, 3, 4]], |x| x[0].sum(&[0isize, -1], true));
    row!(t, "sum", Normal, [s], |x| x[0].sum_all());
    row!(t, "mean", Normal, [&[2, 3, 4]], |x| x[0].mean(&[-1isize], false));
    row!(t, "mean", Normal, [s], |x| x[0].mean_all());
    row!(t, "max", Normal, [&[2, 3, 4]], |x| x[0].max(&[1isize], true));
    row!(t, "min", Normal, [&[2, 3, 4]], |x| x[0].min(&[2isize], false));
    row!(t, "max", Normal, [s], |x| x[0].max_all());
    row!(t, "softmax", Normal, [&[2, 3, 4]], |x| x[0].softmax(-1));
    row!(t, "softmax", Normal, [&[2, 3, 4]], |x| x[0].softmax(1));
    row!(t, "log_softmax", Normal, [&[3, 5]], |x| x[0].log_softmax(1));
    row!(t, "log_softmax", Normal, [&[3, 5]], |x| x[0].log_softmax(0));
    row!(t, "reshape", Normal, [&[2, 6]], |x| x[0].reshape(vec![3, 4])?.sqr());
    row!(t, "reshape", Normal, [&[4, 3]], |x| x[0].t()?.reshape(vec![12])?.sin());
    row!(t, "permute", Normal, [&[2, 3, 4]], |x| x[0].permute(&[2, 0, 1])?.exp());
    row!(t, "transpose", Normal, [&[2, 3, 4]], |x| x[0].transpose(0, 2)?.mul(&x[0].transpose(0, 2)?));
    row!(t, "narrow", Normal, [&[3, 5]], |x| x[0].narrow(1, 1, 3)?.sqr());
    row!(t, "broadcast_as", Normal, [&[1, 4]], |x| x[0].broadcast_as(vec![3, 4])?.sqr());
    row!(t, "unsqueeze", Normal, [s], |x| x[0].unsqueeze(1)?.sqr());
    row!(t, "squeeze", Normal, [&[3, 1, 4]], |x| x[0].squeeze(1)?.sqr());
    row!(t, "flatten", Normal, [&[2, 3, 4]], |x| x[0].flatten(1, 2)?.sqr());
    row!(t, "flatten", Normal, [&[2, 3, 4]], |x| x[0].flatten_all()?.sin());
    row!(t, "contiguous", Normal, [&[3, 4]], |x| x[0].t()?.contiguous()?.sqr());
    let p1 = Conv2dParams::default().with_pad(1);
    let p2 = p1;
    t.push(Row {
        op: "conv2d",
        shapes: vec![vec![2, 3, 5, 5], vec![4, 3, 3, 3]],
        draw: Draw::Normal,
        eager: Box::new(move |x: &[Tensor]| x[0].conv2d(&x[1], &p1)),
        graph: Box::new(move |x: &[Node]| x[0].conv2d(&x[1], &p2)),
    });
    let pool: &[usize] = &[2, 3, 6, 5];
    row!(t, "max_pool2d", Normal, [pool], |x| x[0].max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false));
    row!(t, "max_pool2d", Normal, [pool], |x| x[0].max_pool2d((3, 2), (2, 1), Padding::symmetric(1), (1, 2), true));
    row!(t, "avg_pool2d", Normal, [pool], |x| x[0].avg_pool2d((2, 2), (2, 2), Padding::Valid, false, true));
    row!(t, "avg_pool2d", Normal, [pool], |x| x[0].avg_pool2d((3, 3), (2, 2), Padding::symmetric(1), true, false));
    row!(t, "adaptive_avg_pool2d", Normal, [pool], |x| x[0].adaptive_avg_pool2d((4, 3)));
    row!(t, "global_avg_pool2d", Normal, [pool], |x| x[0].global_avg_pool2d());
    row!(t, "pad", Normal, [&[2, 3, 4]], |x| x[0].pad(&[(1, 2), (0, 1)], PadMode::Constant(0.5)));
    row!(t, "pad", Normal, [&[2, 3, 4]], |x| x[0].pad(&[(2, 1)], PadMode::Reflect));
    row!(t, "pad", Normal, [&[2, 3, 4]], |x| x[0].pad(&[(1, 3), (2, 0)], PadMode::Replicate)?.sqr());
    t.push(Row {
        op: "cat",
        shapes: vec![vec![2, 3, 4], vec![2, 1, 4], vec![2, 2, 4]],
        draw: Draw::Normal,
        eager: Box::new(|x: &[Tensor]| Tensor::cat(&[&x[0], &x[1].sqr()?, &x[2]], 1)),
        graph: Box::new(|x: &[Node]| Node::cat(&[&x[0], &x[1].sqr()?, &x[2]], 1)),
    });
    t.push(Row {
        op: "cat",
        shapes: vec![vec![3, 2], vec![3, 5]],
        draw: Draw::Normal,
        eager: Box::new(|x: &[Tensor]| Tensor::cat(&[&x[0], &x[1], &x[0]], -1isize)),
        graph: Box::new(|x: &[Node]| Node::cat(&[&x[0], &x[1], &x[0]], -1isize)),
    });
    // LeNet's block: conv, per-channel bias through a reshape, relu, max pool.
    let pc = Conv2dParams::default().with_pad(1);
    t.push(Row {
        op: "conv_block",
        shapes: vec![vec![2, 3, 6, 6], vec![4, 3, 3, 3], vec![4]],
        draw: Draw::Normal,
        eager: Box::new(move |x: &[Tensor]| {
            let y = x[0].conv2d(&x[1], &pc)?.add(&x[2].reshape(vec![1, 4, 1, 1])?)?.relu()?;
            y.max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false)?.flatten(1usize, 3)
        }),
        graph: Box::new(move |x: &[Node]| {
            let y = x[0].conv2d(&x[1], &pc)?.add(&x[2].reshape(vec![1, 4, 1, 1])?)?.relu()?;
            y.max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false)?.flatten(1usize, 3)
        }),
    });
    // Batch norm, plain and with each fused activation (scaled so that every channel has values
    // on both sides of each kink), on [N, C, H, W] and [N, C].
    row!(t, "batch_norm", Normal, [&[3, 4, 2, 3], &[4], &[4]], |x| x[0].batch_norm_train(&x[1], &x[2], 1e-5)?.sqr());
    row!(t, "batch_norm", Normal, [&[5, 3], &[3], &[3]], |x| x[0].batch_norm_train(&x[1], &x[2], 1e-3)?.sin());
    let acts = [
        ("batch_norm_relu", BatchNormActivation::Relu),
        ("batch_norm_relu6", BatchNormActivation::Relu6),
        ("batch_norm_leaky_relu", BatchNormActivation::Leaky(0.1)),
    ];
    for (op, act) in acts {
        let shapes: [&[usize]; 3] = [&[3, 4, 2, 3], &[4], &[4]];
        t.push(Row {
            op,
            shapes: shapes.iter().map(|s| s.to_vec()).collect(),
            draw: Draw::Normal,
            eager: Box::new(move |x: &[Tensor]| x[0].batch_norm_act(&x[1].affine(3.0, 0.5)?, &x[2].affine(2.0, 1.0)?, 1e-5, act)?.sqr()),
            graph: Box::new(move |x: &[Node]| x[0].batch_norm_act(&x[1].affine(3.0, 0.5)?, &x[2].affine(2.0, 1.0)?, 1e-5, act)?.sqr()),
        });
    }
    // A chain that the planner fuses (bias + activation into the matmul, elementwise tails).
    row!(t, "fused", Normal, [&[4, 5], &[5, 3], &[3]], |x| x[0].matmul(&x[1])?.add(&x[2])?.tanh()?.sqr()?.mul_scalar(0.5));
    row!(t, "fused", Normal, [&[4, 5], &[5, 3], &[3]], |x| x[0].matmul(&x[1])?.add(&x[2])?.relu()?.log_softmax(1));
    t
}

fn draw(shape: &[usize], how: Draw, rng: &mut Rng) -> Tensor {
    let v: Vec<f64> = (0..shape.iter().product::<usize>())
        .map(|_| match how {
            Draw::Normal => rng.normal(),
            Draw::Positive => 0.3 + 2.0 * rng.uniform(),
        })
        .collect();
    Tensor::from_vec(v, shape.to_vec()).unwrap()
}

fn close(a: &Tensor, b: &Tensor, what: &str) -> std::result::Result<(), String> {
    let (a, b) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    if a.len() != b.len() {
        return Err(format!("{what}: {} vs {} elements", a.len(), b.len()));
    }
    for (i, (p, q)) in a.iter().zip(&b).enumerate() {
        if (p - q).abs() > 1e-10 * p.abs().max(q.abs()).max(1e-3) {
            return Err(format!("{what}: element {i}: graph {p} vs eager {q}"));
        }
    }
    Ok(())
}

/// Eager and graph gradients of `sum(f(x) * seed)` for row `r` with inputs drawn from `seed`.
fn compare(r: &Row, seed: u64) -> std::result::Result<(), String> {
    let mut rng = Rng::new(seed);
    let xs: Vec<Tensor> = r.shapes.iter().map(|s| draw(s, r.draw, &mut rng)).collect();
    let vars: Vec<Var> = xs.iter().map(|x| Var::new(x.clone())).collect();
    let vt: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = (r.eager)(&vt).map_err(|e| e.to_string())?;
    let w = draw(out.dims(), Draw::Normal, &mut rng);
    let grads = out.mul(&w).unwrap().sum_all().unwrap().backward().map_err(|e| e.to_string())?;

    let g = Graph::new();
    let ps: Vec<Node> =
        r.shapes.iter().enumerate().map(|(i, s)| g.placeholder(&format!("x{i}"), DType::F64, &vec![None; s.len()])).collect();
    let gout = (r.graph)(&ps).map_err(|e| e.to_string())?;
    let loss = gout.mul(&g.constant(w)).unwrap().sum_all().unwrap();
    let refs: Vec<&Node> = ps.iter().collect();
    let gg = g.gradients(&[&loss], &refs).map_err(|e| e.to_string())?;
    let fetch: Vec<Node> = std::iter::once(gout).chain(gg.into_iter().map(|n| n.expect("connected"))).collect();
    let fetch: Vec<&Node> = fetch.iter().collect();
    let feeds: Vec<(&Node, &Tensor)> = ps.iter().zip(&xs).collect();
    let mut sess = Session::new(&g);
    for run in ["traced", "planned"] {
        let got = sess.run(&fetch, &feeds).map_err(|e| e.to_string())?;
        close(&got[0], &out, &format!("{} forward ({run})", r.op))?;
        for (i, v) in vars.iter().enumerate() {
            let e = grads.get(v).cloned().unwrap_or_else(|| v.zeros_like().unwrap());
            close(&got[i + 1], &e, &format!("{} d/dx{i} ({run})", r.op))?;
        }
    }
    Ok(())
}

#[test]
fn every_row_agrees() {
    let rows = table();
    let mut fails = Vec::new();
    for r in &rows {
        if let Err(e) = compare(r, 7) {
            fails.push(e);
        }
    }
    assert!(fails.is_empty(), "{} rows disagree:\n{}", fails.len(), fails.join("\n"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_inputs_agree(row in 0usize..1024, seed in any::<u64>()) {
        let rows = table();
        let r = &rows[row % rows.len()];
        let res = compare(r, seed);
        prop_assert!(res.is_ok(), "{}", res.unwrap_err());
    }
}
