//! Numerics checking (acceptance 4): a log of a negative number and an overflowing exp deep in
//! a network are reported with the right op and scope path in eager forward, eager backward and
//! graph mode. One test: the switch is global.

use shendu_core::graph::{Graph, Session};
use shendu_core::{numerics, DType, Tensor, Var};

fn f32s(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

#[test]
fn non_finite_values_are_reported_with_op_and_scope() {
    // Off by default: NaN flows silently.
    let x = f32s(&[-1.0, 2.0], &[2]);
    assert!(x.log().unwrap().to_vec::<f32>().unwrap()[0].is_nan());
    numerics::enable();

    // Eager forward: a negative reaches log three blocks deep.
    let w = Var::new(f32s(&[1.0, -3.0], &[2]));
    let e = {
        let _net = numerics::scope("net");
        let h = {
            let _b = numerics::scope("block1");
            x.mul(&w).unwrap().add_scalar(1.0).unwrap()
        };
        let _b = numerics::scope("block3");
        h.log().unwrap_err()
    };
    let msg = e.to_string();
    assert_eq!(e.op(), "log", "{msg}");
    assert!(msg.contains("forward of log at net/block3 produced NaN") && msg.contains("input 0 [2] f32 (finite)"), "{msg}");

    // Eager backward: exp is finite forward but its gradient overflows f32.
    let v = Var::new(f32s(&[44.1, 1.0], &[2]));
    let loss = {
        let _net = numerics::scope("net");
        let _b = numerics::scope("block4");
        v.exp().unwrap().sqr().unwrap().sum_all().unwrap()
    };
    assert!(loss.to_f64().unwrap().is_finite());
    let Err(e) = loss.backward() else { panic!("the overflow must be reported") };
    let msg = e.to_string();
    assert_eq!(e.op(), "exp", "{msg}");
    assert!(msg.contains("backward (its mul) of exp at net/block4 produced Inf"), "{msg}");

    // Graph mode: the same three faults, named by node path.
    let g = Graph::new();
    let xp = g.placeholder("x", DType::F32, &[None]);
    let wv = g.variable("w", f32s(&[1.0, -3.0], &[2]));
    let (logged, exped) = {
        let _net = g.scope("net");
        let h = {
            let _b = g.scope("block1");
            xp.mul(&wv).unwrap().add_scalar(1.0).unwrap()
        };
        let _b = g.scope("block3");
        (h.log().unwrap(), xp.exp().unwrap())
    };
    let mut sess = Session::new(&g);
    let e = sess.run(&[&logged], &[(&xp, &x)]).unwrap_err();
    assert_eq!(e.op(), "log");
    assert!(e.to_string().contains("at net/block3/log produced NaN"), "{e}");
    let e = sess.run(&[&exped], &[(&xp, &f32s(&[100.0, 1.0], &[2]))]).unwrap_err();
    assert_eq!(e.op(), "exp");
    assert!(e.to_string().contains("at net/block3/exp produced Inf"), "{e}");
    let loss = exped.sqr().unwrap().sum_all().unwrap();
    let gx = g.gradients(&[&loss], &[&xp]).unwrap()[0].clone().unwrap();
    let e = sess.run(&[&gx], &[(&xp, &f32s(&[44.1, 1.0], &[2]))]).unwrap_err();
    assert_eq!(e.op(), "exp");
    assert!(e.to_string().contains("backward (its mul) of exp at net/block3/exp produced Inf"), "{e}");

    numerics::disable();
    let out = sess.run(&[&logged], &[(&xp, &x)]).unwrap();
    assert!(out[0].to_vec::<f32>().unwrap()[1].is_nan());
}
