//! Darknet cfg reading and writing and the summary table, on real cfgs from AlexeyAB's
//! repository (tests/data/darknet; its README gives sources and checksums).

use std::path::PathBuf;

use proptest::prelude::*;
use shendu_vision::darknet::{self, parse_cfg, parse_cfg_unchecked, read_cfg, to_cfg};
use shendu_vision::netspec::{NetSpec, ParamKind, Summary};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/darknet").join(name)
}

fn text(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap()
}

const REAL: &[&str] = &["yolov3-tiny.cfg", "yolov4-tiny.cfg", "yolov3.cfg", "yolov4.cfg", "darknet19.cfg", "efficientnet_b0.cfg"];

fn summary(name: &str, input: Option<(usize, usize, usize)>) -> Summary {
    let mut spec = darknet::read_cfg_unchecked(data(name)).unwrap().spec;
    if let Some((c, h, w)) = input {
        (spec.net.channels, spec.net.height, spec.net.width) = (c, h, w);
    }
    spec.summary().unwrap()
}

/// Checks `table` against the committed expected output (`SHENDU_BLESS=1` rewrites it).
fn expect_file(name: &str, table: &str) {
    if std::env::var_os("SHENDU_BLESS").is_some() {
        std::fs::write(data(name), table).unwrap();
    }
    assert_eq!(table, text(name), "{name} differs (SHENDU_BLESS=1 rewrites it)");
}

#[test]
fn yolov3_tiny_totals_and_table() {
    let s = summary("yolov3-tiny.cfg", None);
    assert_eq!(format!("{:5.3}", s.total_bflops), "5.571");
    assert_eq!(s.avg_outputs, 341534);
    let table = s.darknet_table();
    assert!(table.contains("\nTotal BFLOPS 5.571 \navg_outputs = 341534 \n"), "{table}");
    expect_file("yolov3-tiny.summary.txt", &table);
}

#[test]
fn yolov4_tiny_totals_and_table() {
    let s = summary("yolov4-tiny.cfg", None);
    assert_eq!(format!("{:5.3}", s.total_bflops), "6.910");
    assert_eq!(s.avg_outputs, 310203);
    let table = s.darknet_table();
    assert!(table.contains("\nTotal BFLOPS 6.910 \navg_outputs = 310203 \n"), "{table}");
    expect_file("yolov4-tiny.summary.txt", &table);
}

#[test]
fn yolov3_and_yolov4_totals() {
    // Published AlexeyAB totals: yolov3 at 416 prints 65.879 and avg_outputs 532444, yolov4 at
    // 608 prints 128.459.
    let s = summary("yolov3.cfg", None);
    assert_eq!((format!("{:5.3}", s.total_bflops), s.avg_outputs), ("65.879".to_string(), 532444));
    let s = summary("yolov4.cfg", Some((3, 608, 608)));
    assert_eq!(format!("{:5.3}", s.total_bflops), "128.459");
}

/// Darknet's .weights hold, per conv layer, biases (and BN scales, means, variances) and
/// weights: the float counts of the published weights files (file size = 20 + 4 x count).
#[test]
fn parameter_counts_match_published_weights_files() {
    for (name, bytes) in
        [("yolov3-tiny.cfg", 35_434_956u64), ("yolov4-tiny.cfg", 24_251_276), ("yolov3.cfg", 248_007_048), ("yolov4.cfg", 257_717_640)]
    {
        let spec = read_cfg(data(name)).unwrap().spec;
        let params = spec.params().unwrap();
        let values: usize = params.iter().filter(|p| p.kind != ParamKind::Counter).map(|p| p.shape.iter().product::<usize>()).sum();
        assert_eq!(20 + 4 * values as u64, bytes, "{name}");
        let s = spec.summary().unwrap();
        assert_eq!(s.params + s.buffers, values, "{name}");
    }
}

fn expand_tabs(line: &str) -> String {
    let mut out = String::new();
    for ch in line.chars() {
        if ch == '\t' {
            out.push(' ');
            while !out.len().is_multiple_of(8) {
                out.push(' ');
            }
        } else {
            out.push(ch);
        }
    }
    out.trim_end().to_string()
}

/// Startup output of real AlexeyAB builds pasted in GitHub issues (see the data README): our
/// table's lines, tabs expanded and trailing spaces trimmed as a terminal shows them, match.
#[test]
fn matches_alexeyab_printed_tables() {
    for (cfg, input, printed) in [
        ("yolov3-tiny.cfg", (3, 608, 608), "alexeyab-yolov3-tiny-608.txt"),
        ("yolov4-tiny.cfg", (3, 736, 1280), "alexeyab-yolov4-tiny-1280x736.txt"),
    ] {
        let table = summary(cfg, Some(input)).darknet_table();
        let ours: Vec<String> = table.lines().skip(1).map(expand_tabs).collect();
        let theirs: Vec<String> = text(printed).lines().map(|l| l.trim_end().to_string()).collect();
        assert!(theirs.len() > 10);
        assert_eq!(ours[..theirs.len()], theirs[..], "{cfg}");
    }
}

fn normalized(mut spec: NetSpec) -> NetSpec {
    spec.origin = None;
    spec.net.line = None;
    for l in &mut spec.layers {
        l.line = None;
    }
    spec
}

#[test]
fn real_cfgs_round_trip() {
    for name in REAL {
        let first = read_cfg(data(name)).unwrap();
        let written = to_cfg(&first.spec);
        let again = parse_cfg(&written, Some("written.cfg")).unwrap_or_else(|e| panic!("{name}: {e}\n{written}"));
        assert!(again.notes.iter().all(|n| n.contains("repeats")), "{name}: {:?}", again.notes);
        assert_eq!(normalized(again.spec.clone()), normalized(first.spec), "{name}");
        assert_eq!(to_cfg(&again.spec), written, "{name}");
    }
}

#[test]
fn real_cfgs_parse_as_darknet_does() {
    let p = read_cfg(data("yolov4-tiny.cfg")).unwrap();
    assert!(p.notes.is_empty(), "{:?}", p.notes);
    let spec = &p.spec;
    assert_eq!(spec.layers.len(), 38);
    assert_eq!(spec.net.learning_rate, 0.00261);
    assert_eq!(spec.layers[3].line, Some(58));
    // `layers = -1, 23` is relative then absolute; [yolo]'s unmodelled keys are kept in order.
    let shendu_vision::netspec::Layer::Route(r) = &spec.layers[34].layer else { panic!() };
    assert_eq!(r.layers, [33, 23]);
    let keys: Vec<&str> = spec.layers[30].extra.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys[..3], ["jitter", "cls_normalizer", "iou_normalizer"]);
    // efficientnet_b0 sets momentum and decay twice in [net]: the first wins, as in Darknet.
    let p = read_cfg(data("efficientnet_b0.cfg")).unwrap();
    assert_eq!((p.spec.net.momentum, p.spec.net.decay), (0.9, 0.0005));
    assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
    assert!(p.notes[0].contains("efficientnet_b0.cfg:25: Unused field: 'momentum = 0.9'"), "{:?}", p.notes);
}

const BASE: &str = "[net]
width=16
height=16
channels=3

[convolutional]
filters=8
size=3
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=8
size=3
pad=1
activation=leaky
";

/// The error of `BASE` plus `tail` (the tail's first line is line 22).
fn bad(tail: &str) -> String {
    parse_cfg(&format!("{BASE}\n{tail}"), Some("bad.cfg")).unwrap_err().to_string()
}

#[test]
fn bad_cfgs_name_file_line_layer_and_problem() {
    assert!(parse_cfg(BASE, None).is_ok());
    let cases: &[(&str, &str, &str)] = &[
        ("[foo]\nx=1\n", "bad.cfg:22: layer 3: unknown section [foo]", "known sections: [convolutional]"),
        ("[route]\ngroups=2\n", "bad.cfg:22: layer 3 [route]: missing required key 'layers'", ""),
        ("[route]\nlayers=-7\n", "bad.cfg:23: layer 3 [route]: layers=-7 refers to layer -4, which does not exist", "layers 0 to 2"),
        ("[route]\nlayers=-1,9\n", "bad.cfg:23: layer 3 [route]: layers=9 refers to layer 9, which is not an earlier layer", ""),
        ("[shortcut]\nfrom=0\n", "bad.cfg:22: layer 3 [shortcut]: adds layer 0's output 8 x 16 x 16", "shapes differ"),
        ("[route]\nlayers=0,-1\n", "bad.cfg:22: layer 3 [route]: layer 2's output 8 x 8 x 8", "cannot concatenate"),
        (
            "[convolutional]\nfilters=6\nsize=1\ngroups=3\n",
            "bad.cfg:22: layer 3 [convolutional]: input channels 8",
            "divisible by groups 3",
        ),
        ("[convolutional]\nfilters=4\nsize=9\n", "bad.cfg:22: layer 3 [convolutional]: kernel 9x9", "zero-size output"),
        ("[maxpool]\nsize=9\nstride=1\npadding=0\n", "bad.cfg:22: layer 3 [maxpool]: window 9x9", "zero-size output"),
        (
            "[convolutional]\nfilters=4\nactivation=lekay\n",
            "bad.cfg:24: layer 3 [convolutional]: unknown activation 'lekay'",
            "mish, hard_mish",
        ),
        ("[convolutional]\nfilters=eight\n", "bad.cfg:23: layer 3 [convolutional]: filters=eight: expected an integer", ""),
        ("[convolutional]\nfilters=-8\n", "bad.cfg:23: layer 3 [convolutional]: filters=-8: must not be negative", ""),
        ("[convolutional]\nfilters=4294967296\n", "bad.cfg:23: layer 3 [convolutional]: filters=4294967296: out of range", ""),
        ("[convolutional]\n=4\n", "bad.cfg:23: layer 3 [convolutional]: '=' without a key: '=4'", ""),
        ("[convolutional]\nfilters\n", "bad.cfg:23: layer 3 [convolutional]: expected key=value, found 'filters'", ""),
        ("[convolutional]\nfilters=\n", "bad.cfg:23: layer 3 [convolutional]: key 'filters' has no value", ""),
        ("[net]\nwidth=3\n", "bad.cfg:22: layer 3: [net] may only be the first section", ""),
        ("[yolo]\nanchors=1,2\n", "bad.cfg:22: layer 3 [yolo]: missing required key 'mask'", ""),
        ("[yolo]\nmask=0\nnum=2\nanchors=1,2\n", "bad.cfg:25: layer 3 [yolo]: num=2 needs 4 anchor values; anchors= has 2", ""),
        ("[upsample]\nstride=0\n", "bad.cfg:22: layer 3 [upsample]: stride must not be 0", ""),
        ("[lstm]\noutput=4\n", "bad.cfg:22: layer 3: [lstm] is a Darknet layer shendu does not support", ""),
    ];
    for (tail, start, contains) in cases {
        let e = bad(tail);
        assert!(e.starts_with(start) && e.contains(contains), "{tail:?}\n  got:  {e}\n  want: {start} ... {contains}");
    }
    let e = parse_cfg("[convolutional]\nfilters=2\n[net]\n", Some("bad.cfg")).unwrap_err().to_string();
    assert!(e.starts_with("bad.cfg:1: the first section is [convolutional]; a cfg starts with [net]"), "{e}");
    let e = parse_cfg("width=3\n[net]\n", Some("bad.cfg")).unwrap_err().to_string();
    assert!(e.starts_with("bad.cfg:1: 'width=3' comes before the first section"), "{e}");
    let e = parse_cfg(&BASE.replace("channels=3", "channels=3\npolicy=sgdr"), Some("bad.cfg")).unwrap_err().to_string();
    assert!(e.starts_with("bad.cfg:5: [net]: learning-rate policy 'sgdr' is not supported"), "{e}");
    let e = parse_cfg(&BASE.replace("width=16", "width=0"), Some("bad.cfg")).unwrap_err().to_string();
    assert!(e.starts_with("bad.cfg:1: [net]: the input 3 x 16 x 0"), "{e}");
    let e = read_cfg(data("no-such.cfg")).unwrap_err().to_string();
    assert!(e.contains("no-such.cfg"), "{e}");
}

#[test]
fn darknet_leniencies_become_notes() {
    let p =
        parse_cfg(&BASE.replacen("filters=8\nsize=3\npad=1", "filters = 8#16\nsize=3\npad=1\nfoo=1\nsize=5", 1), Some("n.cfg")).unwrap();
    let shendu_vision::netspec::Layer::Conv(c) = &p.spec.layers[0].layer else { panic!() };
    assert_eq!((c.filters, c.size), (8, 3));
    assert_eq!(p.notes.len(), 3, "{:?}", p.notes);
    assert!(p.notes[0].starts_with("n.cfg:7: 'filters = 8#16' reads as '8'"), "{:?}", p.notes);
    assert_eq!(p.notes[1], "n.cfg:10: Unused field: 'foo = 1'");
    assert!(p.notes[2].starts_with("n.cfg:11: Unused field: 'size = 5' (repeats 'size'"), "{:?}", p.notes);
    assert_eq!(p.spec.layers[0].extra, [("foo".to_string(), "1".to_string()), ("size".to_string(), "5".to_string())]);
}

#[test]
fn extensions_round_trip() {
    let cfg = "[net]\nwidth=8\nheight=8\nchannels=4\npolicy=sigmoid\ngamma=0.5\nstep=100\n\
               [convolutional]\nfilters=8\nsize=3\npad=1\nbias=0\ndirac=1\nname=features.0\nactivation=relu\n\
               [channel_shuffle]\ngroups=4\n\
               [route]\nlayers=-1\nslice=2,6\n\
               [convolutional]\nfilters=4\nsize=1\nstride_x=2\nstride_y=1\nbatch_normalize=1\nbn_name=bn1\n\
               [shortcut]\nfrom=-1\nweights_type=per_channel\nweights_normalization=softmax\n";
    let p = parse_cfg(cfg, None).unwrap();
    assert!(p.notes.is_empty(), "{:?}", p.notes);
    let again = parse_cfg(&to_cfg(&p.spec), None).unwrap();
    assert_eq!(normalized(again.spec), normalized(p.spec.clone()));
    let names: Vec<String> = p.spec.params().unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names[..4], ["features.0.weight", "features.0.alpha", "features.0.beta", "3.weight"]);
    assert_eq!(names[4], "bn1.weight");
    assert_eq!(p.spec.output_shape().unwrap(), shendu_vision::netspec::Chw::new(4, 8, 4));
}

const CORPUS: &[&str] = &["yolov3-tiny.cfg", "yolov4-tiny.cfg", "darknet19.cfg", "efficientnet_b0.cfg"];

fn corpus() -> &'static [String] {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TEXTS.get_or_init(|| CORPUS.iter().map(|n| text(n)).collect())
}

/// Replaces the `k`-th number in `line` (cyclically) with `with`.
fn replace_number(line: &str, k: usize, with: &str) -> String {
    let spans: Vec<(usize, usize)> = {
        let b = line.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() {
                let s = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                out.push((s, i));
            } else {
                i += 1;
            }
        }
        out
    };
    if spans.is_empty() {
        return line.to_string();
    }
    let (s, e) = spans[k % spans.len()];
    format!("{}{with}{}", &line[..s], &line[e..])
}

fn mutate(text: &str, ops: &[(u8, usize, usize, String)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (op, a, b, junk) in ops {
        if lines.is_empty() {
            lines.push(junk.clone());
            continue;
        }
        let (i, j) = (a % lines.len(), b % lines.len());
        match op {
            0 => {
                lines.remove(i);
            }
            1 => lines.insert(i, lines[i].clone()),
            2 => lines.swap(i, j),
            3 => lines[i] = replace_number(&lines[i], *b, "0"),
            4 => lines[i] = replace_number(&lines[i], *b, "-1"),
            5 => lines[i] = replace_number(&lines[i], *b, "2147483647"),
            6 => lines[i] = replace_number(&lines[i], *b, &(b % 4097).to_string()),
            7 => lines.insert(i, junk.clone()),
            8 => lines[i].push_str(junk),
            _ => lines.truncate(i),
        }
    }
    lines.join("\n")
}

/// Parses, checks, summarises and writes back `text`; must never panic, and whatever is valid
/// must round-trip.
fn exercise(text: &str) {
    let Ok(parsed) = parse_cfg_unchecked(text, Some("fuzz.cfg")) else { return };
    let Ok(summary) = parsed.spec.summary() else { return };
    let _ = (summary.darknet_table(), summary.table());
    let written = to_cfg(&parsed.spec);
    let again = parse_cfg(&written, None).unwrap_or_else(|e| panic!("written cfg does not parse: {e}\n{written}"));
    assert_eq!(normalized(again.spec), normalized(parsed.spec), "{written}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_real_cfgs_never_panic(
        file in 0..CORPUS.len(),
        ops in prop::collection::vec((0u8..10, any::<usize>(), any::<usize>(), "[ -~\t]{0,16}"), 1..6),
    ) {
        exercise(&mutate(&corpus()[file], &ops));
    }
}
