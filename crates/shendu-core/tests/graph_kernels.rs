//! The executor's kernels against eager mode, bit for bit: fused operand maps (a unary folded
//! into the binary that reads it), strided and broadcast operands, buffers written in place,
//! sums over leading, trailing and middle dims, at sizes that split over threads, on 1 and 2
//! threads, f32 and f64.

use shendu_core::graph::{Graph, Node, Session};
use shendu_core::{DType, Result, Tensor};

type Build<T> = fn(&[T]) -> Result<T>;
/// A name, input shapes, and one expression written for tensors and for nodes.
type Case = (&'static str, Vec<Vec<usize>>, Build<Tensor>, Build<Node>);

fn cases() -> Vec<Case> {
    macro_rules! case {
        ($name:literal, [$($s:expr),*], |$x:ident| $body:expr) => {
            ($name, vec![$($s.to_vec()),*], (|$x: &[Tensor]| $body) as Build<Tensor>, (|$x: &[Node]| $body) as Build<Node>)
        };
    }
    vec![
        case!("exp(a) * b", [[300, 257], [300, 257]], |x| x[0].exp()?.mul(&x[1])),
        case!("b * relu(a)", [[300, 257], [300, 257]], |x| x[1].mul(&x[0].relu()?)),
        case!("sqr(a) - row", [[300, 257], [257]], |x| x[0].sqr()?.sub(&x[1])),
        case!("col / neg(a)", [[300, 1], [300, 257]], |x| x[0].div(&x[1].neg()?)),
        case!("exp(a^T) * b", [[257, 300], [300, 257]], |x| x[0].t()?.exp()?.mul(&x[1])),
        case!("a^T * b + a^T", [[257, 300], [300, 257]], |x| x[0].t()?.mul(&x[1])?.add(&x[0].t()?)),
        case!("(a * b) * (a * b)", [[300, 257], [300, 257]], |x| {
            let p = x[0].mul(&x[1])?;
            p.mul(&p)
        }),
        case!("relu(exp(a) * b) * 3 + 1", [[300, 257], [300, 257]], |x| x[0].exp()?.mul(&x[1])?.relu()?.affine(3.0, 1.0)),
        // exp(a) is read through a view too, so it must be written: no fusion into the mul.
        case!("exp(a) * exp(a)^T", [[300, 300]], |x| {
            let e = x[0].exp()?;
            e.mul(&e.t()?)
        }),
        case!("sum dim 0", [[300, 257]], |x| x[0].sum(&[0], false)),
        case!("sum dim 1", [[300, 257]], |x| x[0].sum(&[1], true)),
        case!("sum middle", [[7, 300, 9]], |x| x[0].sum(&[1], false)),
        case!("sum leading two", [[7, 30, 90]], |x| x[0].sum(&[0, 1], false)),
        case!("sum all * 0.5", [[300, 257]], |x| x[0].sum_all()?.mul_scalar(0.5)),
        // Strided steps walk merged rows, split over threads: a per-channel bias over NCHW
        // (rows of H*W), a transposed and a narrowed operand, strided copies.
        case!("relu(a + bias)", [[16, 24, 30, 30], [24]], |x| x[0].add(&x[1].reshape(vec![1, 24, 1, 1])?)?.relu()),
        case!("bias * relu(a)", [[24, 1, 1], [16, 24, 30, 30]], |x| x[0].mul(&x[1].relu()?)),
        case!("exp(a^T)", [[257, 300]], |x| x[0].t()?.exp()),
        case!("sqr(narrow a)", [[300, 400]], |x| x[0].narrow(1, 3, 257)?.sqr()),
        case!("copy a^T", [[257, 300]], |x| x[0].t()?.contiguous()),
        case!("copy narrow a", [[300, 400]], |x| x[0].narrow(1, 3, 257)?.contiguous()),
        // A conv bias gradient: kept dims between reduced ones, summed as eager does.
        case!("sum N, H, W", [[16, 24, 30, 30]], |x| x[0].sum(&[0, 2, 3], true)),
        case!("sum N, H, W of [N, C, H, 1]", [[16, 24, 30, 1]], |x| x[0].sum(&[0, 2], false)),
    ]
}

fn check(dtype: DType, threads: usize) {
    shendu_core::set_num_threads(threads);
    shendu_core::manual_seed(5);
    for (name, shapes, eager, graph) in cases() {
        let xs: Vec<Tensor> = shapes.iter().map(|s| Tensor::randn(s.as_slice(), dtype).unwrap()).collect();
        let want = eager(&xs).unwrap();
        let g = Graph::new();
        let ps: Vec<Node> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| g.placeholder(&format!("p{i}"), dtype, &s.iter().map(|&d| Some(d)).collect::<Vec<_>>()))
            .collect();
        let out = graph(&ps).unwrap();
        let mut sess = Session::new(&g);
        let feeds: Vec<(&Node, &Tensor)> = ps.iter().zip(&xs).collect();
        // The first run is traced, the later ones planned.
        for run in 0..3 {
            let got = sess.run(&[&out], &feeds).unwrap().remove(0);
            assert_eq!(got.shape(), want.shape(), "{name}");
            let (a, b) =
                (got.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap(), want.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap());
            let same = a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
            assert!(same, "{name} {dtype} {threads} thread(s), run {run}: graph differs from eager\n{}", sess.explain());
        }
    }
}

#[test]
fn kernels_match_eager_bitwise() {
    for threads in [1, 2] {
        for dtype in [DType::F32, DType::F64] {
            check(dtype, threads);
        }
    }
    // A sum over a strided view: eager adds the storage-contiguous run with 8 lanes
    // (`ops::reduce`), the graph's general path in index order, so only close.
    let a = Tensor::randn(&[257, 300], DType::F32).unwrap();
    let want = a.t().unwrap().sum(&[0], false).unwrap().to_vec::<f32>().unwrap();
    let g = Graph::new();
    let p = g.placeholder("a", DType::F32, &[Some(257), Some(300)]);
    let s = p.t().unwrap().sum(&[0], false).unwrap();
    let mut sess = Session::new(&g);
    for _ in 0..2 {
        let got = sess.run(&[&s], &[(&p, &a)]).unwrap()[0].to_vec::<f32>().unwrap();
        assert!(got.iter().zip(&want).all(|(x, y)| (x - y).abs() <= 1e-5 * (1.0 + y.abs())));
    }
    // The relu gradient is one step (pass_within) reading the relu's output, so the relu runs
    // as the matmul's epilogue and the pre-activation is never kept.
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[Some(4), Some(5)]);
    let w = g.variable("w", Tensor::ones(&[5, 3], DType::F32).unwrap());
    let loss = x.matmul(&w).unwrap().relu().unwrap().sum_all().unwrap();
    let gw = g.gradients(&[&loss], &[&w]).unwrap()[0].clone().unwrap();
    let mut sess = Session::new(&g);
    sess.run(&[&loss, &gw], &[(&x, &Tensor::randn(&[4, 5], DType::F32).unwrap())]).unwrap();
    let plan = sess.explain();
    assert!(plan.contains("PassWithin") && plan.contains("matmul +Relu") && !plan.contains("Step"), "{plan}");
}
