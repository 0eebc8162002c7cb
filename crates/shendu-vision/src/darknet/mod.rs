//! Darknet's file formats.

pub mod weights;
