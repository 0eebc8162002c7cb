//! The three gradient-descent variants against the independent Python implementation's output
//! (tests/reference/gd_reference.py, committed as gd_reference.json).

use shendu_ml::gd::{self, GdConfig, Method, NOTEBOOK_X, NOTEBOOK_Y};

#[test]
fn matches_python_reference() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/gd_reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let x = NOTEBOOK_X.concat();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-10 * (1.0 + b.abs());
    for method in [Method::Sweep, Method::Sgd, Method::Batch] {
        let r = &reference[method.name()];
        let got = gd::fit(&x, 3, &NOTEBOOK_Y, &GdConfig { method, lr: 0.01, threshold: 60.0, max_iter: 100_000, seed: 0 }).unwrap();
        assert!(got.converged);
        assert_eq!(got.iterations as u64, r["iterations"].as_u64().unwrap(), "{method:?}");
        assert!(close(got.loss, r["loss"].as_f64().unwrap()), "{method:?}: loss {} vs {}", got.loss, r["loss"]);
        for (k, t) in got.theta.iter().enumerate() {
            assert!(close(*t, r["theta"][k].as_f64().unwrap()), "{method:?} theta{k}: {t} vs {}", r["theta"][k]);
        }
        let losses = r["losses"].as_object().unwrap();
        for (it, l) in losses {
            let it: usize = it.parse().unwrap();
            assert!(close(got.losses[it - 1], l.as_f64().unwrap()), "{method:?} iteration {it}");
        }
        assert_eq!(got.losses.len(), got.iterations);
    }
}

#[test]
fn notebook_output_of_sweep() {
    let x = NOTEBOOK_X.concat();
    let got = gd::fit(&x, 3, &NOTEBOOK_Y, &GdConfig::default()).unwrap();
    assert_eq!(
        got.notebook_output(),
        "Done: theta0 : 94.922311, theta1 : -13.257404, theta2 : 2.229821, error : 59.999908 \niterations: 1553"
    );
}
