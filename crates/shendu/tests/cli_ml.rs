//! The classical-learning subcommands through the binary: results on small shipped data, and bad
//! input (ragged or non-numeric CSV, k too large, probabilities not summing to 1, empty data)
//! giving exit code 2 with one clear line and no panic.

mod cli_support;

use cli_support::{shendu, TempDir};

/// Stdout of a run that succeeded.
fn ok(args: &[&str]) -> String {
    shendu(args).ok().stdout.clone()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(ok(args).lines().last().unwrap()).unwrap()
}

#[test]
fn gd_prints_the_notebook_format() {
    let dir = TempDir::new("ml-gd");
    assert_eq!(ok(&["gd"]), "Done: theta0 : 94.922311, theta1 : -13.257404, theta2 : 2.229821, error : 59.999908 \niterations: 1553\n");
    let csv = dir.write("gd.csv", "b,x1,x2,y\n1,0,3,95.364\n1,1,3,97.217205\n1,2,3,75.195834\n1,3,2,60.105519\n1,4,4,49.342380\n");
    let batch = json(&["gd", "--method", "batch", "--data", csv.to_str().unwrap(), "--json"]);
    assert_eq!(batch["iterations"], 8195);
    assert_eq!(batch["converged"], true);
    let sgd = ok(&["gd", "--method", "sgd", "--data", csv.to_str().unwrap(), "--lr", "0.01", "--threshold", "60", "--seed", "0"]);
    assert!(sgd.ends_with("iterations: 8344\n"), "{sgd}");
}

#[test]
fn gd_bad_input() {
    let dir = TempDir::new("ml-gd-bad");
    let ragged = dir.write("ragged.csv", "1,0,3,95.3\n1,1,3\n");
    shendu(&["gd", "--data", ragged.to_str().unwrap()]).bad_input(&["ragged.csv:2:4:", "3 fields"]);
    let word = dir.write("word.csv", "x0,x1,y\n1,2,3\n1,two,3\n");
    shendu(&["gd", "--data", word.to_str().unwrap()]).bad_input(&["word.csv:3:2:", "'two'"]);
    let empty = dir.write("empty.csv", "");
    shendu(&["gd", "--data", empty.to_str().unwrap()]).bad_input(&["empty"]);
    shendu(&["gd", "--method", "newton"]).bad_input(&["--method", "newton"]);
    shendu(&["gd", "--lr", "-1"]).bad_input(&["--lr"]);
    shendu(&["gd", "--lr", "5", "--threshold", "0"]).bad_input(&["diverged"]);
}

#[test]
fn entropy_values_and_bad_probabilities() {
    let v = json(&["entropy", "--p", "0.5,0.5", "--q", "1,0", "--json"]);
    assert_eq!(v["entropy_p"], 1.0);
    assert_eq!(v["kl_pq"], "inf");
    assert_eq!(v["kl_qp"], 1.0);
    // M = (0.75, 0.25): JS = (0.5 log2(2/3) + 0.5 log2 2 + log2(4/3)) / 2.
    assert!((v["js"].as_f64().unwrap() - 0.31127812445913283).abs() < 1e-12);
    let text = ok(&["entropy", "--p", "0.5,0.5", "--q", "1,0"]);
    assert!(text.contains("KL(P||Q)  = inf bits"), "{text}");
    let mi = json(&["entropy", "--joint", "0.5,0;0,0.5", "--base", "e", "--json"]);
    assert!((mi["mutual_information"].as_f64().unwrap() - std::f64::consts::LN_2).abs() < 1e-12);
    let logits = json(&["entropy", "--p", "0,0", "--logits", "--json"]);
    assert_eq!(logits["entropy_p"], 1.0);
    shendu(&["entropy", "--p", "0.5,0.6"]).bad_input(&["--p", "sum to 1.1"]);
    shendu(&["entropy", "--p", "0.5,x"]).bad_input(&["--p", "item 2 'x'"]);
    shendu(&["entropy", "--p", "0.5,0.5", "--q", "0.2,0.3,0.5"]).bad_input(&["--q has 3 outcomes"]);
    shendu(&["entropy"]).bad_input(&["--p"]);
    let out = shendu(&["entropy", "--p", "1,3", "--normalize", "--json"]);
    assert!(out.ok().stderr.contains("normalised"), "{}", out.stderr);
}

#[test]
fn rademacher_classes() {
    let dir = TempDir::new("ml-rademacher");
    let all = json(&["rademacher", "--sign-patterns", "6", "--draws", "500", "--json"]);
    assert_eq!(all["estimate"], 1.0);
    let pts = dir.write("points.csv", "1,0\n0,1\n-1,0\n0,-1\n1,1\n");
    let lin = json(&["rademacher", "--linear", pts.to_str().unwrap(), "--bound", "2", "--json"]);
    let (est, bound) = (lin["estimate"].as_f64().unwrap(), lin["bound"].as_f64().unwrap());
    assert!(est > 0.0 && est <= bound, "{lin}");
    let constant = dir.write("const.csv", "1,1,1,1,1,1,1,1\n");
    let c = json(&["rademacher", "--hypotheses", constant.to_str().unwrap(), "--json"]);
    let ci = c["ci"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() <= 0.0 && 0.0 <= ci[1].as_f64().unwrap(), "{c}");
    shendu(&["rademacher"]).bad_input(&["exactly one"]);
    shendu(&["rademacher", "--linear", pts.to_str().unwrap(), "--confidence", "1.5"]).bad_input(&["confidence"]);
    let empty = dir.write("header-only.csv", "a,b\n");
    shendu(&["rademacher", "--linear", empty.to_str().unwrap()]).bad_input(&["no data rows"]);
}

#[test]
fn knn_on_the_embedded_subset_and_csv() {
    let dir = TempDir::new("ml-knn");
    let v = json(&["knn", "--train", "embedded", "--test", "embedded", "-k", "3", "--limit-test", "300", "--json"]);
    assert!(v["accuracy"].as_f64().unwrap() > 0.85, "{v}");
    assert_eq!(v["confusion"].as_array().unwrap().len(), 10);
    let train = dir.write("train.csv", "x,y,class\n0,0,a\n0,1,a\n5,5,b\n6,5,b\n");
    let test = dir.write("test.csv", "x,y,class\n0,0.5,a\n5.5,5,b\n");
    let text = ok(&["knn", "--train", train.to_str().unwrap(), "--test", test.to_str().unwrap(), "-k", "1"]);
    assert!(text.contains("accuracy 100.00%"), "{text}");
    let numbers = dir.write("reg.csv", "1,0,0\n2,0,1\n3,5,5\n");
    let n = numbers.to_str().unwrap();
    let reg = json(&["knn", "--train", n, "--test", n, "-k", "1", "--label", "first", "--regression", "--json"]);
    assert_eq!(reg["mse"], 0.0);
    // k = 2: rows 1 and 2 are each other's neighbours (1.5 for both); row 3's is row 2: (3 + 2) / 2.
    let reg2 = json(&["knn", "--train", n, "--test", n, "-k", "2", "--label", "1", "--regression", "--json"]);
    assert!((reg2["mse"].as_f64().unwrap() - 0.25).abs() < 1e-12, "{reg2}");
    shendu(&["knn", "--train", train.to_str().unwrap(), "--test", test.to_str().unwrap(), "-k", "5"])
        .bad_input(&["-k 5", "4 training samples"]);
    let ragged = dir.write("ragged-knn.csv", "1,2,a\n3,b\n");
    shendu(&["knn", "--train", ragged.to_str().unwrap(), "--test", test.to_str().unwrap()]).bad_input(&["ragged-knn.csv:2:3:"]);
    let word = dir.write("word-knn.csv", "1,2,a\nthree,4,b\n");
    shendu(&["knn", "--train", word.to_str().unwrap(), "--test", test.to_str().unwrap()]).bad_input(&["word-knn.csv:2:1:", "'three'"]);
    shendu(&["knn", "--train", train.to_str().unwrap(), "--test", test.to_str().unwrap(), "--metric", "l3"]).bad_input(&["--metric"]);
}

#[test]
fn kmeans_draws_voronoi_cells_and_rejects_bad_input() {
    let dir = TempDir::new("ml-kmeans");
    let mut text = String::from("x,y\n");
    for i in 0..60 {
        let (cx, cy) = [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0)][i % 3];
        text += &format!("{},{}\n", cx + (i as f64 * 0.37).sin() * 0.5, cy + (i as f64 * 0.91).cos() * 0.5);
    }
    let csv = dir.write("blobs.csv", &text);
    let png = csv.with_extension("png");
    let v = json(&["kmeans", csv.to_str().unwrap(), "-k", "3", "--n-init", "3", "--png", png.to_str().unwrap(), "--json"]);
    let mut sizes: Vec<u64> = v["sizes"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![20, 20, 20]);
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    let mb = json(&["kmeans", csv.to_str().unwrap(), "-k", "3", "--mini-batch", "16", "--png", png.to_str().unwrap(), "--json"]);
    assert!(mb["inertia"].as_f64().unwrap() < 2.0 * v["inertia"].as_f64().unwrap());
    shendu(&["kmeans", csv.to_str().unwrap(), "-k", "61"]).bad_input(&["-k 61", "60"]);
    let word = dir.write("word-km.csv", "1,2\n3,x\n");
    shendu(&["kmeans", word.to_str().unwrap(), "-k", "1"]).bad_input(&["word-km.csv:2:2:"]);
    let empty = dir.write("empty-km.csv", "\n\n");
    shendu(&["kmeans", empty.to_str().unwrap(), "-k", "1"]).bad_input(&["empty"]);
}
