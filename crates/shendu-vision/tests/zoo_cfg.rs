//! One model description (DESIGN.md): every zoo model written as a Darknet cfg reads back to the
//! same `NetSpec`, and the cfgs shipped in the repository's `cfg/` are the zoo's models.

use std::path::Path;

use shendu_vision::darknet::{parse_cfg, read_cfg, to_cfg};
use shendu_vision::netspec::NetSpec;
use shendu_vision::zoo::{self, ModelOptions, MODELS};

/// The spec without what only a file has (its origin and line numbers).
fn located_free(mut s: NetSpec) -> NetSpec {
    s.origin = None;
    s.net.line = None;
    for l in &mut s.layers {
        l.line = None;
    }
    s
}

#[test]
fn every_zoo_model_round_trips_through_cfg() {
    for (name, _) in MODELS {
        let opts = ModelOptions::for_model(name).unwrap();
        let spec = zoo::spec(name, &opts).unwrap();
        let text = to_cfg(&spec);
        let back = parse_cfg(&text, Some(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(located_free(back.spec.clone()), located_free(spec.clone()), "{name}: cfg round trip changed the spec");
        assert_eq!(to_cfg(&back.spec), text, "{name}: writing twice differs");
        assert_eq!(back.spec.params().unwrap(), spec.params().unwrap(), "{name}");
    }
}

#[test]
fn shipped_cfgs_are_the_zoo_models() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cfg");
    for name in ["resnet20", "mobilenet_v2_mnist", "shufflenet_v2_mnist", "lenet"] {
        let file = read_cfg(root.join(format!("{name}.cfg"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let zoo = zoo::spec(name, &ModelOptions::for_model(name).unwrap()).unwrap();
        let layers = |s: &NetSpec| s.layers.iter().map(|l| l.layer.clone()).collect::<Vec<_>>();
        assert_eq!(layers(&file.spec), layers(&zoo), "{name}: cfg/{name}.cfg differs from the zoo's layers");
        assert_eq!(file.spec.net.input_shape(), zoo.net.input_shape(), "{name}");
        assert_eq!(file.spec.params().unwrap(), zoo.params().unwrap(), "{name}: parameter names differ");
    }
}
