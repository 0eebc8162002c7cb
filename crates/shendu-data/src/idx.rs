//! The IDX format of MNIST (and Fashion-MNIST, KMNIST, EMNIST): a big-endian header of a magic
//! number and dimensions followed by raw u8 values, usually gzip-compressed.
//!
//! The parsers check everything a damaged download can get wrong: gzip corruption, the magic
//! number, header dimensions, and the payload length in both directions (truncated and trailing).

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;

use crate::{Error, Result};

/// Magic number of an IDX file of u8 values in 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 values in 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;

/// Images of an IDX3 file: `count` images of `rows x cols` u8 pixels, row-major, image after image.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Whether `bytes` starts with the gzip magic (1f 8b): files are recognised by content, not name.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// `bytes` decompressed if it is gzip, borrowed as-is otherwise. `name` is used in errors.
pub fn maybe_gunzip<'a>(bytes: &'a [u8], name: &str) -> Result<Cow<'a, [u8]>> {
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| Error::format(name, format!("corrupt gzip stream ({} compressed bytes): {e}", bytes.len())))?;
    Ok(Cow::Owned(out))
}

/// Reads a file whole, mapping the I/O error to one naming the path.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn check_magic(bytes: &[u8], name: &str, want: u32) -> Result<()> {
    let got = be_u32(bytes, 0);
    if got == want {
        return Ok(());
    }
    let what = |m: u32| match m {
        IMAGES_MAGIC => "IDX images",
        LABELS_MAGIC => "IDX labels",
        _ => "not an IDX u8 file",
    };
    let hint = if got == IMAGES_MAGIC || got == LABELS_MAGIC { format!("; this is an {} file", what(got)) } else { String::new() };
    Err(Error::format(name, format!("bad magic number 0x{got:08x}, expected 0x{want:08x} ({}){hint}", what(want))))
}

fn decompressed_note(was_gzip: bool) -> &'static str {
    if was_gzip {
        " after decompression"
    } else {
        ""
    }
}

fn check_payload(name: &str, was_gzip: bool, header: usize, described: String, want: u64, got: usize) -> Result<()> {
    let got = got as u64;
    let note = decompressed_note(was_gzip);
    if got < want {
        return Err(Error::format(
            name,
            format!(
                "truncated: header says {described} ({want} bytes) but the file holds {got} bytes after the {header}-byte header{note}"
            ),
        ));
    }
    if got > want {
        return Err(Error::format(
            name,
            format!(
                "trailing garbage: header says {described} ({want} bytes) but the file holds {got} bytes after the {header}-byte header{note} ({} extra)",
                got - want
            ),
        ));
    }
    Ok(())
}

/// Parses an IDX3 images file (plain or gzip).
pub fn parse_images(raw: &[u8], name: &str) -> Result<IdxImages> {
    let bytes = maybe_gunzip(raw, name)?;
    let gz = is_gzip(raw);
    // The magic first: a wrong kind of file is a clearer message than a short header.
    if bytes.len() >= 4 {
        check_magic(&bytes, name, IMAGES_MAGIC)?;
    }
    if bytes.len() < IMAGES_HEADER {
        return Err(Error::format(
            name,
            format!("truncated: {} bytes{} cannot hold the {IMAGES_HEADER}-byte IDX images header", bytes.len(), decompressed_note(gz)),
        ));
    }
    let (count, rows, cols) = (be_u32(&bytes, 4) as usize, be_u32(&bytes, 8) as usize, be_u32(&bytes, 12) as usize);
    if rows == 0 || cols == 0 {
        return Err(Error::format(name, format!("header says images of {rows}x{cols}; both sides must be positive")));
    }
    let want = count as u64 * rows as u64 * cols as u64;
    let payload = &bytes[IMAGES_HEADER..];
    check_payload(name, gz, IMAGES_HEADER, format!("{count} images of {rows}x{cols}"), want, payload.len())?;
    Ok(IdxImages { count, rows, cols, pixels: payload.to_vec() })
}

/// Parses an IDX1 labels file (plain or gzip); every label must be below `num_classes`.
pub fn parse_labels(raw: &[u8], name: &str, num_classes: usize) -> Result<Vec<u8>> {
    let bytes = maybe_gunzip(raw, name)?;
    let gz = is_gzip(raw);
    // The magic first: a wrong kind of file is a clearer message than a short header.
    if bytes.len() >= 4 {
        check_magic(&bytes, name, LABELS_MAGIC)?;
    }
    if bytes.len() < LABELS_HEADER {
        return Err(Error::format(
            name,
            format!("truncated: {} bytes{} cannot hold the {LABELS_HEADER}-byte IDX labels header", bytes.len(), decompressed_note(gz)),
        ));
    }
    let count = be_u32(&bytes, 4) as usize;
    let payload = &bytes[LABELS_HEADER..];
    check_payload(name, gz, LABELS_HEADER, format!("{count} labels"), count as u64, payload.len())?;
    if let Some((i, &l)) = payload.iter().enumerate().find(|(_, &l)| l as usize >= num_classes) {
        return Err(Error::format(
            name,
            format!("label {l} at index {i} is out of range 0..={} ({num_classes} classes)", num_classes.saturating_sub(1)),
        ));
    }
    Ok(payload.to_vec())
}

fn header(magic: u32, dims: &[usize]) -> Result<Vec<u8>> {
    let mut out = magic.to_be_bytes().to_vec();
    for &d in dims {
        let d =
            u32::try_from(d).map_err(|_| Error::invalid("idx::encode", format!("dimension {d} does not fit the u32 of an IDX header")))?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    Ok(out)
}

/// Encodes images as an uncompressed IDX3 file.
pub fn encode_images(images: &IdxImages) -> Result<Vec<u8>> {
    let want = images.count * images.rows * images.cols;
    if images.pixels.len() != want {
        return Err(Error::invalid(
            "idx::encode_images",
            format!("{} pixels do not make {} images of {}x{}", images.pixels.len(), images.count, images.rows, images.cols),
        ));
    }
    let mut out = header(IMAGES_MAGIC, &[images.count, images.rows, images.cols])?;
    out.extend_from_slice(&images.pixels);
    Ok(out)
}

/// Encodes labels as an uncompressed IDX1 file.
pub fn encode_labels(labels: &[u8]) -> Result<Vec<u8>> {
    let mut out = header(LABELS_MAGIC, &[labels.len()])?;
    out.extend_from_slice(labels);
    Ok(out)
}

/// Gzip at the best compression level, with a zero timestamp so equal input gives equal bytes.
pub fn gzip_best(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}
