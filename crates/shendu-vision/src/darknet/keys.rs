//! Darknet's vocabulary: the sections shendu reads, their aliases, and the keys AlexeyAB's
//! `src/parser.c` reads in each section that shendu keeps without modelling (no `Unused field`
//! note for those), some of which change what Darknet computes.

/// Keys Darknet reads (quietly) in every layer section; kept in `extra`.
pub(super) const GENERIC_KEYS: &[&str] = &[
    "clip",
    "onlyforward",
    "dont_update",
    "burnin_update",
    "stopbackward",
    "train_only_bn",
    "dontload",
    "dontloadscales",
    "learning_rate",
    "stream",
    "wait_stream",
];

/// The canonical section name of a header (aliases resolved), or an error for a section
/// shendu does not have.
pub(super) fn canonical(name: &str) -> std::result::Result<&'static str, String> {
    Ok(match name {
        "[convolutional]" | "[conv]" => "convolutional",
        "[connected]" | "[conn]" => "connected",
        "[maxpool]" | "[max]" => "maxpool",
        "[local_avgpool]" | "[local_avg]" => "local_avgpool",
        "[avgpool]" | "[avg]" => "avgpool",
        "[route]" => "route",
        "[shortcut]" => "shortcut",
        "[upsample]" => "upsample",
        "[dropout]" => "dropout",
        "[softmax]" | "[soft]" => "softmax",
        "[cost]" => "cost",
        "[crop]" => "crop",
        "[scale_channels]" => "scale_channels",
        "[reorg]" | "[reorg3d]" => "reorg",
        "[yolo]" => "yolo",
        "[region]" => "region",
        "[channel_shuffle]" => "channel_shuffle",
        "[batchnorm]" => "batchnorm",
        "[activation]" => "activation",
        "[net]" | "[network]" => return Err("[net] may only be the first section".to_string()),
        "[local]" | "[rnn]" | "[gru]" | "[lstm]" | "[crnn]" | "[conv_lstm]" | "[history]" | "[detection]" | "[normalization]" | "[lrn]"
        | "[sam]" | "[Gaussian_yolo]" | "[contrastive]" | "[implicit]" | "[empty]" | "[silence]" => {
            return Err(format!("{name} is a Darknet layer shendu does not support"));
        }
        _ => {
            return Err(format!(
                "unknown section {name}; known sections: [convolutional], [connected], [maxpool], [local_avgpool], [avgpool], \
                 [route], [shortcut], [upsample], [dropout], [softmax], [cost], [crop], [scale_channels], [reorg], [yolo], \
                 [region], [channel_shuffle], [batchnorm], [activation]"
            ))
        }
    })
}

pub(super) const CONV_KNOWN: &[&str] = &[
    "antialiasing",
    "assisted_excitation",
    "share_index",
    "cbn",
    "binary",
    "xnor",
    "bin_output",
    "sway",
    "rotate",
    "stretch",
    "stretch_sway",
    "flipped",
    "dot",
    "angle",
    "grad_centr",
    "reverse",
    "coordconv",
];
pub(super) const CONV_UNSUPPORTED: &[&str] =
    &["antialiasing", "share_index", "cbn", "binary", "xnor", "sway", "rotate", "stretch", "stretch_sway", "coordconv", "reverse"];
pub(super) const MAXPOOL_KNOWN: &[&str] = &["maxpool_depth", "out_channels", "antialiasing", "maxpool_zero_nonmax"];
pub(super) const DROPOUT_KNOWN: &[&str] = &["dropblock", "dropblock_size_rel", "dropblock_size_abs"];
pub(super) const SOFTMAX_KNOWN: &[&str] = &["tree", "spatial", "noloss"];
pub(super) const CROP_KNOWN: &[&str] = &["angle", "saturation", "exposure", "shift", "noadjust"];
pub(super) const YOLO_KNOWN: &[&str] = &[
    "max",
    "show_details",
    "max_delta",
    "counters_per_class",
    "label_smooth_eps",
    "objectness_smooth",
    "new_coords",
    "iou_normalizer",
    "obj_normalizer",
    "cls_normalizer",
    "delta_normalizer",
    "iou_loss",
    "iou_thresh_kind",
    "beta_nms",
    "nms_kind",
    "jitter",
    "resize",
    "focal_loss",
    "ignore_thresh",
    "truth_thresh",
    "iou_thresh",
    "random",
    "track_history_size",
    "sim_thresh",
    "dets_for_track",
    "dets_for_show",
    "track_ciou_norm",
    "embedding_layer",
    "map",
];
pub(super) const REGION_KNOWN: &[&str] = &[
    "max",
    "log",
    "sqrt",
    "focal_loss",
    "jitter",
    "resize",
    "rescore",
    "thresh",
    "classfix",
    "absolute",
    "random",
    "coord_scale",
    "object_scale",
    "noobject_scale",
    "mask_scale",
    "class_scale",
    "bias_match",
    "tree",
    "map",
];
