//! Darknet compatibility: `.cfg` network descriptions read by AlexeyAB's rules into a
//! [`NetSpec`](crate::netspec::NetSpec) and written back from one, and `.weights` files.
//!
//! ```
//! use shendu_vision::darknet;
//! let text = "[net]\nwidth=28\nheight=28\nchannels=1\n[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=relu\n[avgpool]\n";
//! let parsed = darknet::parse_cfg(text, None).unwrap();
//! let again = darknet::parse_cfg(&darknet::to_cfg(&parsed.spec), None).unwrap();
//! assert_eq!(again.spec.layers[0].layer, parsed.spec.layers[0].layer);
//! ```

mod cfg;
mod keys;
pub mod weights;
mod write;

pub use cfg::{parse_cfg, parse_cfg_unchecked, read_cfg, read_cfg_unchecked, ParsedCfg};
pub use write::to_cfg;
