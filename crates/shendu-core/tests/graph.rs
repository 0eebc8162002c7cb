//! Graph mode: building, sessions, feeds, gradients, assigns, plans and reports.

use shendu_core::graph::{Graph, Session};
use shendu_core::{DType, Tensor, Var};

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

#[test]
fn constants_and_placeholders() {
    let g = Graph::new();
    let a = g.constant(Tensor::scalar(2i64));
    let b = g.constant(Tensor::scalar(3i64));
    let mut sess = Session::new(&g);
    let out = sess.run(&[&a.add(&b).unwrap(), &a.mul(&b).unwrap()], &[]);
    // Integer adds have no kernel in shendu-core; whatever happens must be an error, not a panic.
    let _ = out;
    let x = g.placeholder("x", DType::F32, &[None, Some(2)]);
    let y = x.mul_scalar(2.0).unwrap().sum_all().unwrap();
    let xs = Tensor::from_vec(vec![1f32, 2., 3., 4.], &[2, 2]).unwrap();
    for _ in 0..3 {
        let out = sess.run(&[&y], &[(&x, &xs)]).unwrap();
        assert_eq!(out[0].to_f64().unwrap(), 20.0);
    }
    let xs3 = Tensor::from_vec(vec![1f32; 6], &[3, 2]).unwrap();
    assert_eq!(sess.run(&[&y], &[(&x, &xs3)]).unwrap()[0].to_f64().unwrap(), 12.0);
}

#[test]
fn feeds_are_validated() {
    let g = Graph::new();
    let x = g.placeholder("inputs/x", DType::F32, &[None, Some(3)]);
    let y = x.relu().unwrap();
    let mut sess = Session::new(&g);
    let e = sess.run(&[&y], &[]).unwrap_err().to_string();
    assert!(e.contains("inputs/x") && e.contains("must be fed"), "{e}");
    let wrong_dtype = Tensor::zeros(&[2, 3], DType::F64).unwrap();
    let e = sess.run(&[&y], &[(&x, &wrong_dtype)]).unwrap_err().to_string();
    assert!(e.contains("inputs/x") && e.contains("f64"), "{e}");
    let wrong_shape = Tensor::zeros(&[2, 4], DType::F32).unwrap();
    let e = sess.run(&[&y], &[(&x, &wrong_shape)]).unwrap_err().to_string();
    assert!(e.contains("inputs/x") && e.contains("[2, 4]"), "{e}");
}

#[test]
fn shape_errors_name_the_node() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[None, Some(3)]);
    let w = g.variable("w", Tensor::zeros(&[4, 2], DType::F32).unwrap());
    let y = {
        let _s = g.scope("layer1");
        x.matmul(&w).unwrap()
    };
    let mut sess = Session::new(&g);
    let e = sess.run(&[&y], &[(&x, &Tensor::zeros(&[5, 3], DType::F32).unwrap())]).unwrap_err().to_string();
    assert!(e.contains("layer1/matmul") && e.contains("[5, 3]") && e.contains("[4, 2]"), "{e}");
}

#[test]
fn gradients_follow_tensorflow_semantics() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[Some(2)]);
    let w = g.variable("w", t(&[1.0, 2.0], &[2]));
    let unrelated = g.variable("u", t(&[5.0], &[1]));
    let y1 = x.mul(&w).unwrap().sum_all().unwrap();
    let y2 = w.sqr().unwrap().sum_all().unwrap();
    let grads = g.gradients(&[&y1, &y2], &[&w, &unrelated]).unwrap();
    assert!(grads[1].is_none());
    let gw = grads[0].clone().unwrap();
    let mut sess = Session::new(&g);
    let xs = t(&[3.0, 4.0], &[2]);
    for _ in 0..2 {
        let out = sess.run(&[&gw], &[(&x, &xs)]).unwrap();
        // d/dw (x.w + w.w) = x + 2w
        assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![5.0, 8.0]);
    }
}

#[test]
fn assign_sub_updates_in_place_after_reads() {
    let g = Graph::new();
    let w = g.variable("w", t(&[1.0, 2.0], &[2]));
    let loss = w.sqr().unwrap().sum_all().unwrap();
    let gw = g.gradients(&[&loss], &[&w]).unwrap()[0].clone().unwrap();
    let step = w.assign_sub(&gw.mul_scalar(0.25).unwrap()).unwrap();
    let train = g.group(&[&step]).unwrap();
    let mut sess = Session::new(&g);
    let mut expect = [1.0, 2.0];
    for _ in 0..4 {
        let out = sess.run(&[&loss, &train], &[]).unwrap();
        assert!((out[0].to_f64().unwrap() - (expect[0] * expect[0] + expect[1] * expect[1])).abs() < 1e-12);
        expect = [expect[0] * 0.5, expect[1] * 0.5];
        assert_eq!(g.value_of(&w).unwrap().to_vec::<f64>().unwrap(), expect.to_vec());
    }
    let after = sess.run(&[&step], &[]).unwrap();
    assert_eq!(after[0].to_vec::<f64>().unwrap(), vec![expect[0] * 0.5, expect[1] * 0.5]);
}

#[test]
fn mlp_graph_matches_eager() {
    shendu_core::manual_seed(3);
    let xs = Tensor::randn(&[8, 5], DType::F64).unwrap();
    let w1v = Tensor::randn(&[5, 7], DType::F64).unwrap();
    let b1v = Tensor::randn(&[7], DType::F64).unwrap();
    let w2v = Tensor::randn(&[7, 3], DType::F64).unwrap();
    let onehot = Tensor::randn(&[8, 3], DType::F64).unwrap();
    // eager
    let (w1, b1, w2) = (Var::new(w1v.clone()), Var::new(b1v.clone()), Var::new(w2v.clone()));
    let loss = xs.matmul(&w1).unwrap().add(&b1).unwrap().relu().unwrap().matmul(&w2).unwrap();
    let loss = loss.log_softmax(1).unwrap().mul(&onehot).unwrap().mean_all().unwrap().neg().unwrap();
    let grads = loss.backward().unwrap();
    // graph
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[None, Some(5)]);
    let y = g.placeholder("y", DType::F64, &[None, Some(3)]);
    let (gw1, gb1, gw2) = (g.variable("w1", w1v), g.variable("b1", b1v), g.variable("w2", w2v));
    let h = {
        let _s = g.scope("layer1");
        x.matmul(&gw1).unwrap().add(&gb1).unwrap().relu().unwrap()
    };
    let logits = h.matmul(&gw2).unwrap();
    let gl = logits.log_softmax(1).unwrap().mul(&y).unwrap().mean_all().unwrap().neg().unwrap();
    let gg = g.gradients(&[&gl], &[&gw1, &gb1, &gw2]).unwrap();
    let fetch: Vec<_> = std::iter::once(gl.clone()).chain(gg.into_iter().map(|n| n.unwrap())).collect();
    let fetch: Vec<_> = fetch.iter().collect();
    let mut sess = Session::new(&g);
    for run in 0..3 {
        let out = sess.run(&fetch, &[(&x, &xs), (&y, &onehot)]).unwrap();
        let close = |a: &Tensor, b: &Tensor| {
            let (a, b) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
            assert_eq!(a.len(), b.len());
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() <= 1e-12 * (1.0 + q.abs()), "run {run}: {p} vs {q}");
            }
        };
        close(&out[0], &loss);
        close(&out[1], grads.get(&w1).unwrap());
        close(&out[2], grads.get(&b1).unwrap());
        close(&out[3], grads.get(&w2).unwrap());
    }
    let explain = sess.explain();
    assert!(explain.contains("matmul+bias"), "{explain}");
    let dot = sess.to_dot();
    assert!(dot.starts_with("digraph") && dot.contains("layer1/matmul"));
}

#[test]
fn in_place_reuse_never_overwrites_a_transposed_read() {
    let g = Graph::new();
    let p = g.placeholder("p", DType::F64, &[Some(3), Some(3)]);
    let e = p.exp().unwrap();
    let y = e.add(&e.t().unwrap()).unwrap().sin().unwrap();
    let pv = t(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], &[3, 3]);
    let want = pv.exp().unwrap().add(&pv.exp().unwrap().t().unwrap()).unwrap().sin().unwrap().to_vec::<f64>().unwrap();
    let mut sess = Session::new(&g);
    for _ in 0..3 {
        assert_eq!(sess.run(&[&y], &[(&p, &pv)]).unwrap()[0].to_vec::<f64>().unwrap(), want);
    }
}

#[test]
fn dead_instructions_are_eliminated() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[Some(4)]);
    let w = g.variable("w", t(&[1.0, 2.0, 3.0, 4.0], &[4]));
    let _unused = x.exp().unwrap().log().unwrap();
    let loss = x.mul(&w).unwrap().sum_all().unwrap();
    let gw = g.gradients(&[&loss], &[&w]).unwrap()[0].clone().unwrap();
    let mut sess = Session::new(&g);
    let xs = t(&[1.0, 1.0, 2.0, 2.0], &[4]);
    for _ in 0..2 {
        assert_eq!(sess.run(&[&gw], &[(&x, &xs)]).unwrap()[0].to_vec::<f64>().unwrap(), vec![1.0, 1.0, 2.0, 2.0]);
    }
    // The forward sum and the rule's gradient for x (not asked for) are dead: the gradient for
    // w is the seed broadcast (a view) times x, one step.
    let plan = sess.explain();
    assert!(plan.starts_with("1 steps"), "{plan}");
    let report = sess.memory_report();
    assert!(report.planned_peak_bytes <= report.intermediates_bytes, "{report}");
}

/// The notebook's two-layer net, eager and graph, step by step: the losses must agree to the
/// bit (the graph's kernels sum in eager's order), so 500 steps of f32 training stay together.
#[test]
fn two_layer_net_losses_match_eager_bitwise() {
    let steps = 60;
    shendu_core::manual_seed(0);
    let xs = Tensor::randn(&[64, 1000], DType::F32).unwrap();
    let ys = Tensor::randn(&[64, 10], DType::F32).unwrap();
    let w1v = Tensor::randn(&[1000, 100], DType::F32).unwrap();
    let w2v = Tensor::randn(&[100, 10], DType::F32).unwrap();
    let (w1, w2) = (Var::new(w1v.clone()), Var::new(w2v.clone()));
    let mut eager = Vec::new();
    for _ in 0..steps {
        let loss = xs.matmul(&w1).unwrap().relu().unwrap().matmul(&w2).unwrap().sub(&ys).unwrap().sqr().unwrap().sum_all().unwrap();
        eager.push(loss.to_vec::<f32>().unwrap()[0]);
        let grads = loss.backward().unwrap();
        for w in [&w1, &w2] {
            w.sub_assign(&grads.get(w).unwrap().mul_scalar(1e-6).unwrap()).unwrap();
            w.zero_grad();
        }
    }
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[None, Some(1000)]);
    let y = g.placeholder("y", DType::F32, &[None, Some(10)]);
    let (gw1, gw2) = (g.variable("w1", w1v), g.variable("w2", w2v));
    let loss = x.matmul(&gw1).unwrap().relu().unwrap().matmul(&gw2).unwrap().sub(&y).unwrap().sqr().unwrap().sum_all().unwrap();
    let gr = g.gradients(&[&loss], &[&gw1, &gw2]).unwrap();
    let u1 = gw1.assign_sub(&gr[0].clone().unwrap().mul_scalar(1e-6).unwrap()).unwrap();
    let u2 = gw2.assign_sub(&gr[1].clone().unwrap().mul_scalar(1e-6).unwrap()).unwrap();
    let train = g.group(&[&u1, &u2]).unwrap();
    let mut sess = Session::new(&g);
    for (step, e) in eager.iter().enumerate() {
        let out = sess.run(&[&loss, &train], &[(&x, &xs), (&y, &ys)]).unwrap();
        let got = out[0].to_vec::<f32>().unwrap()[0];
        assert_eq!(got.to_bits(), e.to_bits(), "step {step}: graph {got:e} vs eager {e:e}\n{}", sess.explain());
    }
}

/// The values `examples/tf_basic_ops.rs` prints.
#[test]
fn tf_basic_ops_values() {
    let g = Graph::new();
    let mut sess = Session::new(&g);
    let (a, b) = (g.constant(Tensor::scalar(2f32)), g.constant(Tensor::scalar(3f32)));
    let out = sess.run(&[&a.add(&b).unwrap(), &a.mul(&b).unwrap()], &[]).unwrap();
    assert_eq!((out[0].to_f64().unwrap(), out[1].to_f64().unwrap()), (5.0, 6.0));
    let (pa, pb) = (g.placeholder("a", DType::F32, &[]), g.placeholder("b", DType::F32, &[]));
    let (fa, fb) = (Tensor::scalar(2f32), Tensor::scalar(3f32));
    let out = sess.run(&[&pa.add(&pb).unwrap(), &pa.mul(&pb).unwrap()], &[(&pa, &fa), (&pb, &fb)]).unwrap();
    assert_eq!((out[0].to_f64().unwrap(), out[1].to_f64().unwrap()), (5.0, 6.0));
    let m1 = g.constant(Tensor::from_vec(vec![3f32, 3.], &[1, 2]).unwrap());
    let m2 = g.constant(Tensor::from_vec(vec![2f32, 2.], &[2, 1]).unwrap());
    let p = sess.run(&[&m1.matmul(&m2).unwrap()], &[]).unwrap();
    assert_eq!((p[0].dims().to_vec(), p[0].to_vec::<f32>().unwrap()), (vec![1, 1], vec![12.0]));
}

/// Profiling times each planned step of the compiled runs (not the tracing run), lists them in
/// plan order with the updates last, and stops and clears when switched off.
#[test]
fn profile_times_every_planned_step() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[None, Some(3)]);
    let w = g.variable("w", t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]));
    let loss = x.matmul(&w).unwrap().relu().unwrap().sum_all().unwrap();
    let gw = g.gradients(&[&loss], &[&w]).unwrap()[0].clone().unwrap();
    let train = w.assign_sub(&gw.mul_scalar(0.01).unwrap()).unwrap();
    let xs = t(&[1.0, -2.0, 3.0, 0.5, 0.5, 0.5], &[2, 3]);
    let mut sess = Session::new(&g);
    assert_eq!(sess.profile().runs, 0, "no plan yet");
    sess.set_profiling(true);
    for _ in 0..4 {
        sess.run(&[&loss, &train], &[(&x, &xs)]).unwrap();
    }
    let p = sess.profile();
    assert_eq!(p.runs, 3, "the first run traces and is not timed");
    // `explain` opens with "N steps; ...".
    let plan_steps: usize = sess.explain().split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(p.steps.len(), plan_steps + 1, "one entry per step plus the updates:\n{p}\n{}", sess.explain());
    assert!(p.steps.last().unwrap().0.contains("1 variable updates"), "{p}");
    assert!(p.total() > std::time::Duration::ZERO);
    assert!(p.to_string().contains("3 runs"), "{p}");
    sess.set_profiling(false);
    sess.run(&[&loss, &train], &[(&x, &xs)]).unwrap();
    assert_eq!(sess.profile().runs, 0, "switched off and cleared");
}

/// `w -= lr * xᵀ·dy` runs as one product added into the variable (no gradient buffer, no
/// update pass), with the same bits as the unfused update: a twin session that also fetches
/// `w` (which keeps the update unfused) ends with identical weights.
#[test]
fn sgd_update_fuses_into_the_gradient_product() {
    shendu_core::manual_seed(3);
    let xs = Tensor::randn(&[64, 300], DType::F32).unwrap();
    let w0 = Tensor::randn(&[300, 40], DType::F32).unwrap().mul_scalar(0.1).unwrap();
    let build = || {
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[None, Some(300)]);
        let w = g.variable("w", w0.copy().unwrap());
        let loss = x.matmul(&w).unwrap().relu().unwrap().sqr().unwrap().sum_all().unwrap();
        let gw = g.gradients(&[&loss], &[&w]).unwrap()[0].clone().unwrap();
        let train = w.assign_sub(&gw.mul_scalar(1e-4).unwrap()).unwrap();
        (g, x, w, loss, train)
    };
    let (g1, x1, w1, loss1, train1) = build();
    let (g2, x2, w2, loss2, train2) = build();
    let (mut fused, mut plain) = (Session::new(&g1), Session::new(&g2));
    for step in 0..4 {
        let a = fused.run(&[&loss1, &train1], &[(&x1, &xs)]).unwrap();
        let b = plain.run(&[&loss2, &train2, &w2], &[(&x2, &xs)]).unwrap();
        assert_eq!(a[0].to_vec::<f32>().unwrap(), b[0].to_vec::<f32>().unwrap(), "step {step} loss");
    }
    let (e1, e2) = (fused.explain(), plain.explain());
    assert!(e1.contains("product added in place") && e1.contains("update of w"), "{e1}");
    assert!(!e2.contains("added in place"), "a fetched variable keeps its update a separate pass:\n{e2}");
    let bits = |t: Tensor| t.to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let (v1, v2) = (g1.value_of(&w1).unwrap(), g2.value_of(&w2).unwrap());
    assert_ne!(bits(v1.clone()), bits(w0.clone()), "the weights were trained");
    assert_eq!(bits(v1), bits(v2), "fused and unfused updates agree to the bit");
}
