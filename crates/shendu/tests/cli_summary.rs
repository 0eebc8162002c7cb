//! `shendu summary` through the binary: Darknet's table and totals for AlexeyAB's own cfgs,
//! shendu's table, JSON, `--input`, and bad cfgs exiting with code 2 and a located message.

mod cli_support;

use std::path::PathBuf;

use cli_support::{shendu, TempDir};

fn cfg(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shendu-vision/tests/data/darknet").join(name);
    p.to_str().unwrap().to_string()
}

#[test]
fn darknet_tables_and_totals_of_real_cfgs() {
    for (name, expected, totals) in [
        ("yolov3-tiny.cfg", "yolov3-tiny.summary.txt", "Total BFLOPS 5.571 \navg_outputs = 341534 \n"),
        ("yolov4-tiny.cfg", "yolov4-tiny.summary.txt", "Total BFLOPS 6.910 \navg_outputs = 310203 \n"),
    ] {
        let run = shendu(&["summary", "--cfg", &cfg(name)]);
        let out = &run.ok().stdout;
        assert!(run.stderr.is_empty(), "{}", run.stderr);
        let table = std::fs::read_to_string(cfg(expected)).unwrap();
        assert!(out.starts_with(&table) && table.ends_with(totals), "{out}");
        assert!(out.contains("input 3 x 416 x 416 (C x H x W)"), "{out}");
    }
    let out = shendu(&["summary", "--cfg", &cfg("yolov3-tiny.cfg")]).ok().stdout.clone();
    assert!(out.contains("8,852,366 trained parameters + 6,368 running statistics = 8,858,734 values"), "{out}");
}

#[test]
fn json_and_input_override() {
    let j = shendu(&["summary", "--cfg", &cfg("yolov3-tiny.cfg"), "--input", "3x608x608", "--json"]).ok().json();
    assert_eq!(j["input"], serde_json::json!([3, 608, 608]));
    assert_eq!(j["layers"].as_array().unwrap().len(), 24);
    assert_eq!(j["layers"][0]["output"], serde_json::json!([16, 608, 608]));
    assert_eq!(j["layers"][0]["darknet"][0], "   0 conv     16       3 x 3/ 1    608 x 608 x   3 ->  608 x 608 x  16 0.319 BF");
    let params: u64 = j["layers"].as_array().unwrap().iter().map(|l| l["params"].as_u64().unwrap()).sum();
    assert_eq!(j["params"].as_u64(), Some(params));
    assert!(j["darknet_table"].as_str().unwrap().contains("Total BFLOPS 11.899 "), "{}", j["darknet_table"]);
}

#[test]
fn bad_cfgs_and_flags_exit_2_with_a_located_message() {
    let dir = TempDir::new("summary-bad");
    let bad = dir.join("bad.cfg");
    std::fs::write(&bad, "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\ngroups=2\nsize=1\n").unwrap();
    let b = bad.to_str().unwrap();
    shendu(&["summary", "--cfg", b]).bad_input(&["bad.cfg:5: layer 0 [convolutional]", "divisible by groups 2"]);
    std::fs::write(&bad, "[net]\nwidth=8\nheight=8\nchannels=3\n[route]\nlayers=-1\n").unwrap();
    shendu(&["summary", "--cfg", b]).bad_input(&["bad.cfg:6: layer 0 [route]: layers=-1 refers to layer -1"]);
    shendu(&["summary", "--cfg", &cfg("no-such.cfg")]).bad_input(&["no-such.cfg"]);
    shendu(&["summary", "--cfg", &cfg("yolov3-tiny.cfg"), "--input", "3x0x4"]).bad_input(&["--input 3x0x4"]);
    shendu(&["summary", "--cfg", &cfg("yolov3-tiny.cfg"), "--input", "3x8x8"]).bad_input(&["yolov3-tiny.cfg:", "layer"]);
    shendu(&["summary", "--model", "no-such-model"]).bad_input(&["no-such-model"]);
    // Darknet's notes go to stderr; the table still prints.
    std::fs::write(&bad, "[net]\nwidth=8\nheight=8\nchannels=3\n[avgpool]\nfoo=1\n").unwrap();
    let run = shendu(&["summary", "--cfg", b]);
    assert!(run.ok().stderr.contains("bad.cfg:6: Unused field: 'foo = 1'"), "{}", run.stderr);
}
