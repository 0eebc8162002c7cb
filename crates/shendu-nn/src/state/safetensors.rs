//! Reading and writing the safetensors format: an 8-byte little-endian header length, a JSON
//! header (`{"__metadata__": {..}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}}`)
//! and the raw little-endian tensor bytes, packed without gaps.
//!
//! The parser is our own rather than the `safetensors` crate's so that every error names the file,
//! the tensor and the numbers involved, and so that all problems of a header are listed at once.
//! Files are read whole into memory (no memory map: a file changed under a map is undefined
//! behaviour, and checkpoints are small next to RAM).
//!
//! Dtypes: F32, F64, F16, BF16, U8 and I64 load as themselves. Lossless widenings are accepted
//! too: BOOL loads as u8, and I8, I16, I32, U16, U32 load as i64 (the dtype shendu uses for
//! integers). U64, complex and the 8-bit/sub-byte float formats are refused with their name.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use half::{bf16, f16};
use shendu_core::{DType, Tensor, WithDType};

use crate::{Error, Result};

/// Tensors with their names, in file or module order (a state dict).
pub type NamedTensors = Vec<(String, Tensor)>;
/// The string-to-string metadata of a safetensors file.
pub type Metadata = BTreeMap<String, String>;

/// Headers above this are refused (the reference implementation's limit too): a corrupt length
/// must not make us allocate gigabytes.
const MAX_HEADER: u64 = 100_000_000;
const METADATA_KEY: &str = "__metadata__";
const OP: &str = "save_safetensors";

/// Writes `tensors` (in this order in the header) and the string `metadata` to `path`
/// atomically: the bytes go to `.<name>.tmp-<pid>-<n>` in the same directory, are synced, and the
/// temporary file is renamed over `path` (then the directory is synced on unix), so a crash
/// leaves either the old file or the new one, never half of one. Non-contiguous tensors are
/// written in row-major order. Names must be unique and not `__metadata__`.
///
/// ```
/// use std::collections::BTreeMap;
/// use shendu_core::{DType, Tensor};
/// use shendu_nn::state::{load_safetensors, save_safetensors};
/// let dir = std::env::temp_dir().join(format!("shendu-doc-st-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("w.safetensors");
/// let w = Tensor::arange(0.0, 6.0, 1.0, DType::F32).unwrap().reshape(&[2, 3]).unwrap();
/// let meta = BTreeMap::from([("epoch".to_string(), "3".to_string())]);
/// save_safetensors(&path, &[("w".to_string(), w.t().unwrap())], &meta).unwrap();
/// let (tensors, meta2) = load_safetensors(&path).unwrap();
/// assert_eq!(tensors[0].1.dims(), &[3, 2]);
/// assert_eq!(tensors[0].1.to_vec::<f32>().unwrap(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
/// assert_eq!(meta2, meta);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn save_safetensors(path: impl AsRef<Path>, tensors: &[(String, Tensor)], metadata: &BTreeMap<String, String>) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let path = path.as_ref();
    let plan = FilePlan::new(tensors, metadata, path)?;
    let Some(file_name) = path.file_name() else {
        return Err(Error::format(path, "cannot save safetensors: the path does not end in a file name"));
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // The counter keeps two threads of one process that save the same path apart.
    let tmp = dir.join(format!(".{}.tmp-{}-{}", file_name.to_string_lossy(), std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let written = (|| -> Result<()> {
        let create = || OpenOptions::new().write(true).create_new(true).open(&tmp);
        // The name is unique within this process, so an existing file was left by a crashed
        // process that had our pid: replace it.
        let file = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => fs::remove_file(&tmp).and_then(|_| create()),
            other => other,
        }
        .map_err(|e| Error::io(&tmp, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        plan.write(&mut w).map_err(|e| e.at(&tmp))?;
        let file = w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(&dir)
}

/// The bytes of a safetensors file holding `tensors` and `metadata` (what
/// [`save_safetensors`] writes), for sending or embedding without a file.
pub fn to_safetensors_bytes(tensors: &[(String, Tensor)], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let origin = Path::new("<memory>");
    let plan = FilePlan::new(tensors, metadata, origin)?;
    let mut out = Vec::with_capacity(plan.total_len());
    plan.write(&mut out).map_err(|e| e.at(origin))?;
    Ok(out)
}

/// Reads a safetensors file: its tensors in header order (for files written by shendu, the order
/// they were saved in) and its metadata. The whole file is validated before any tensor is built;
/// the error names the file and lists every problem found (truncation, bad offsets, overlaps,
/// gaps, trailing bytes, sizes not matching shape x dtype, unsupported dtypes, ...).
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<(NamedTensors, Metadata)> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, path)
}

/// [`load_safetensors`] on bytes already in memory; errors name the file `<memory>`.
pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<(NamedTensors, Metadata)> {
    parse(bytes, Path::new("<memory>"))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    // Makes the rename itself durable: without it a crash can bring back the old directory entry.
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

/// A write failure before we know which file it concerns.
enum WriteError {
    Io(std::io::Error),
    Core(shendu_core::Error),
}

impl WriteError {
    fn at(self, path: &Path) -> Error {
        match self {
            WriteError::Io(e) => Error::io(path, e),
            WriteError::Core(e) => Error::Core(e),
        }
    }
}

/// The header and data order of a file about to be written.
struct FilePlan<'a> {
    header: Vec<u8>,
    /// Tensors in data order: widest elements first, so that every tensor starts at a multiple
    /// of its element size (the header is padded to 8 bytes) and readers may view it in place.
    data: Vec<&'a Tensor>,
    data_len: usize,
}

impl<'a> FilePlan<'a> {
    fn new(tensors: &'a [(String, Tensor)], metadata: &BTreeMap<String, String>, path: &Path) -> Result<FilePlan<'a>> {
        let mut seen = HashSet::new();
        let mut problems = Vec::new();
        for (name, _) in tensors {
            if name == METADATA_KEY {
                problems.push(format!("a tensor may not be named {METADATA_KEY:?} (the key of the metadata)"));
            } else if !seen.insert(name.as_str()) {
                problems.push(format!("tensor name {name:?} appears more than once"));
            }
        }
        if !problems.is_empty() {
            return Err(Error::format(path, format!("cannot save safetensors: {}", problems.join("; "))));
        }
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tensors[i].1.dtype().size_in_bytes()));
        let mut offsets = vec![(0usize, 0usize); tensors.len()];
        let mut at = 0usize;
        for &i in &order {
            let t = &tensors[i].1;
            let end = at + t.elem_count() * t.dtype().size_in_bytes();
            offsets[i] = (at, end);
            at = end;
        }
        let mut header = String::from("{");
        if !metadata.is_empty() {
            header.push_str(&format!("{}:{}", json(METADATA_KEY), json(metadata)));
        }
        for (i, (name, t)) in tensors.iter().enumerate() {
            if header.len() > 1 {
                header.push(',');
            }
            let (b, e) = offsets[i];
            header.push_str(&format!(
                "{}:{{\"dtype\":\"{}\",\"shape\":{},\"data_offsets\":[{b},{e}]}}",
                json(name),
                file_dtype_name(t.dtype()),
                json(t.dims())
            ));
        }
        header.push('}');
        while (8 + header.len()) % 8 != 0 {
            header.push(' ');
        }
        Ok(FilePlan { header: header.into_bytes(), data: order.iter().map(|&i| &tensors[i].1).collect(), data_len: at })
    }

    fn total_len(&self) -> usize {
        8 + self.header.len() + self.data_len
    }

    fn write(&self, w: &mut dyn Write) -> std::result::Result<(), WriteError> {
        w.write_all(&(self.header.len() as u64).to_le_bytes()).map_err(WriteError::Io)?;
        w.write_all(&self.header).map_err(WriteError::Io)?;
        for t in &self.data {
            let r = match t.dtype() {
                DType::F32 => t.with_contiguous(OP, |s: &[f32]| write_le(w, s)),
                DType::F64 => t.with_contiguous(OP, |s: &[f64]| write_le(w, s)),
                DType::F16 => t.with_contiguous(OP, |s: &[f16]| write_le(w, s)),
                DType::BF16 => t.with_contiguous(OP, |s: &[bf16]| write_le(w, s)),
                DType::U8 => t.with_contiguous(OP, |s: &[u8]| w.write_all(s)),
                DType::I64 => t.with_contiguous(OP, |s: &[i64]| write_le(w, s)),
            };
            r.map_err(WriteError::Core)?.map_err(WriteError::Io)?;
        }
        w.flush().map_err(WriteError::Io)
    }
}

/// Header values go through serde_json so that names with quotes or control characters are
/// escaped correctly.
fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    // Strings, string maps and integer lists always serialise.
    serde_json::to_string(v).unwrap_or_default()
}

fn file_dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "F32",
        DType::F64 => "F64",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::U8 => "U8",
        DType::I64 => "I64",
    }
}

/// Little-endian element encoding.
trait Le: Copy {
    const N: usize;
    fn put(self, out: &mut [u8]);
    fn get(b: &[u8]) -> Self;
}

macro_rules! le {
    ($t:ty, $n:expr, |$v:ident| $to:expr, |$b:ident| $from:expr) => {
        impl Le for $t {
            const N: usize = $n;
            #[inline(always)]
            fn put(self, out: &mut [u8]) {
                let $v = self;
                out.copy_from_slice(&$to);
            }
            #[inline(always)]
            fn get(b: &[u8]) -> Self {
                let mut a = [0u8; $n];
                a.copy_from_slice(b);
                let $b = a;
                $from
            }
        }
    };
}

le!(f32, 4, |v| v.to_le_bytes(), |b| f32::from_le_bytes(b));
le!(f64, 8, |v| v.to_le_bytes(), |b| f64::from_le_bytes(b));
le!(f16, 2, |v| v.to_bits().to_le_bytes(), |b| f16::from_bits(u16::from_le_bytes(b)));
le!(bf16, 2, |v| v.to_bits().to_le_bytes(), |b| bf16::from_bits(u16::from_le_bytes(b)));
le!(i64, 8, |v| v.to_le_bytes(), |b| i64::from_le_bytes(b));
le!(i8, 1, |v| v.to_le_bytes(), |b| i8::from_le_bytes(b));
le!(i16, 2, |v| v.to_le_bytes(), |b| i16::from_le_bytes(b));
le!(i32, 4, |v| v.to_le_bytes(), |b| i32::from_le_bytes(b));
le!(u16, 2, |v| v.to_le_bytes(), |b| u16::from_le_bytes(b));
le!(u32, 4, |v| v.to_le_bytes(), |b| u32::from_le_bytes(b));

fn write_le<T: Le>(w: &mut dyn Write, s: &[T]) -> std::io::Result<()> {
    const CHUNK: usize = 16 * 1024;
    let mut buf = vec![0u8; CHUNK.min(s.len()) * T::N];
    for chunk in s.chunks(CHUNK) {
        let bytes = &mut buf[..chunk.len() * T::N];
        for (v, out) in chunk.iter().zip(bytes.chunks_exact_mut(T::N)) {
            v.put(out);
        }
        w.write_all(bytes)?;
    }
    Ok(())
}

fn read_le<T: Le + WithDType>(b: &[u8], shape: Vec<usize>) -> Result<Tensor> {
    Ok(Tensor::from_vec(b.chunks_exact(T::N).map(T::get).collect::<Vec<T>>(), shape)?)
}

fn read_widened<T: Le + Into<i64>>(b: &[u8], shape: Vec<usize>) -> Result<Tensor> {
    Ok(Tensor::from_vec(b.chunks_exact(T::N).map(|c| T::get(c).into()).collect::<Vec<i64>>(), shape)?)
}

/// How a dtype named in a file is read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum FileDType {
    F32,
    F64,
    F16,
    BF16,
    U8,
    Bool,
    I8,
    I16,
    I32,
    I64,
    U16,
    U32,
}

impl FileDType {
    fn parse(name: &str) -> std::result::Result<FileDType, String> {
        Ok(match name {
            "F32" => FileDType::F32,
            "F64" => FileDType::F64,
            "F16" => FileDType::F16,
            "BF16" => FileDType::BF16,
            "U8" => FileDType::U8,
            "BOOL" => FileDType::Bool,
            "I8" => FileDType::I8,
            "I16" => FileDType::I16,
            "I32" => FileDType::I32,
            "I64" => FileDType::I64,
            "U16" => FileDType::U16,
            "U32" => FileDType::U32,
            "U64" | "C64" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" | "F4" | "F6_E2M3" | "F6_E3M2" => {
                return Err(format!(
                    "dtype {name} is not supported (shendu holds F32, F64, F16, BF16, U8, I64; BOOL loads as u8 \
                     and I8, I16, I32, U16, U32 as i64)"
                ))
            }
            other => return Err(format!("unknown dtype {other:?}")),
        })
    }

    fn size(self) -> usize {
        match self {
            FileDType::U8 | FileDType::Bool | FileDType::I8 => 1,
            FileDType::F16 | FileDType::BF16 | FileDType::I16 | FileDType::U16 => 2,
            FileDType::F32 | FileDType::I32 | FileDType::U32 => 4,
            FileDType::F64 | FileDType::I64 => 8,
        }
    }

    fn read(self, b: &[u8], shape: Vec<usize>) -> Result<Tensor> {
        match self {
            FileDType::F32 => read_le::<f32>(b, shape),
            FileDType::F64 => read_le::<f64>(b, shape),
            FileDType::F16 => read_le::<f16>(b, shape),
            FileDType::BF16 => read_le::<bf16>(b, shape),
            FileDType::U8 => Ok(Tensor::from_vec(b.to_vec(), shape)?),
            // Any nonzero byte is true, as numpy and torch read them.
            FileDType::Bool => Ok(Tensor::from_vec(b.iter().map(|&v| u8::from(v != 0)).collect::<Vec<u8>>(), shape)?),
            FileDType::I64 => read_le::<i64>(b, shape),
            FileDType::I8 => read_widened::<i8>(b, shape),
            FileDType::I16 => read_widened::<i16>(b, shape),
            FileDType::I32 => read_widened::<i32>(b, shape),
            FileDType::U16 => read_widened::<u16>(b, shape),
            FileDType::U32 => read_widened::<u32>(b, shape),
        }
    }
}

/// A JSON object read with its keys in file order and duplicates kept (serde_json's own map would
/// sort them and silently keep the last of two equal keys).
struct OrderedObject(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for OrderedObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<OrderedObject, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    out.push(entry);
                }
                Ok(OrderedObject(out))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// One header entry whose fields parsed.
struct Entry {
    name: String,
    dtype: Option<FileDType>,
    shape: Option<Vec<usize>>,
    offsets: Option<(usize, usize)>,
    /// The end offset the header gives, even when past the data.
    claimed_end: Option<usize>,
}

fn parse(bytes: &[u8], path: &Path) -> Result<(NamedTensors, Metadata)> {
    let fail = |msg: String| Error::format(path, msg);
    let len = bytes.len();
    let Some(len_bytes) = bytes.first_chunk::<8>() else {
        return Err(fail(format!("not a safetensors file: {len} bytes is too short to hold the 8-byte header length")));
    };
    let n = u64::from_le_bytes(*len_bytes);
    let rest = (len - 8) as u64;
    if n > rest {
        return Err(fail(format!(
            "header length {n} runs past the end of the file ({len} bytes, {rest} after the length): truncated, or not a safetensors file"
        )));
    }
    if n > MAX_HEADER {
        return Err(fail(format!("header length {n} is over the {MAX_HEADER}-byte limit")));
    }
    let header_end = 8 + n as usize;
    let header = std::str::from_utf8(&bytes[8..header_end]).map_err(|e| fail(format!("header is not UTF-8: {e}")))?;
    let data = &bytes[header_end..];
    let object: OrderedObject = serde_json::from_str(header).map_err(|e| fail(format!("header is not valid JSON: {e}")))?;

    let mut problems = Vec::new();
    let mut metadata = BTreeMap::new();
    let mut entries = Vec::new();
    let mut seen = HashSet::new();
    for (name, value) in object.0 {
        if !seen.insert(name.clone()) {
            problems.push(format!("{name:?} appears twice in the header"));
            continue;
        }
        if name == METADATA_KEY {
            parse_metadata(&value, &mut metadata, &mut problems);
        } else {
            entries.push(parse_entry(name, &value, data.len(), &mut problems));
        }
    }
    if let Some(end) = entries.iter().filter_map(|e| e.claimed_end).max().filter(|&e| e > data.len()) {
        problems.insert(0, format!("the header describes {end} bytes of data but {} follow it: truncated file", data.len()));
    }
    check_layout(&entries, data.len(), &mut problems);
    if !problems.is_empty() {
        let count = if problems.len() == 1 { "1 problem".to_string() } else { format!("{} problems", problems.len()) };
        return Err(fail(format!("invalid safetensors file, {count}:\n  - {}", problems.join("\n  - "))));
    }
    let mut tensors = Vec::with_capacity(entries.len());
    for e in entries {
        // All three are Some and in range once no problem was found.
        if let (Some(dtype), Some(shape), Some((b, end))) = (e.dtype, e.shape, e.offsets) {
            let t = dtype.read(&data[b..end], shape).map_err(|err| fail(format!("tensor {:?}: {err}", e.name)))?;
            tensors.push((e.name, t));
        }
    }
    Ok((tensors, metadata))
}

fn parse_metadata(value: &serde_json::Value, out: &mut BTreeMap<String, String>, problems: &mut Vec<String>) {
    let Some(map) = value.as_object() else {
        problems.push(format!("{METADATA_KEY} must be an object of strings, found {}", json_kind(value)));
        return;
    };
    for (k, v) in map {
        match v.as_str() {
            Some(s) => {
                out.insert(k.clone(), s.to_string());
            }
            None => problems.push(format!("{METADATA_KEY} value of {k:?} must be a string, found {}", json_kind(v))),
        }
    }
}

fn parse_entry(name: String, value: &serde_json::Value, data_len: usize, problems: &mut Vec<String>) -> Entry {
    let mut entry = Entry { name, dtype: None, shape: None, offsets: None, claimed_end: None };
    let mut bad = |msg: String| problems.push(format!("tensor {:?}: {msg}", entry.name));
    let Some(obj) = value.as_object() else {
        bad(format!("expected an object with dtype, shape and data_offsets, found {}", json_kind(value)));
        return entry;
    };
    match obj.get("dtype").map(|v| v.as_str()) {
        Some(Some(s)) => match FileDType::parse(s) {
            Ok(d) => entry.dtype = Some(d),
            Err(msg) => bad(msg),
        },
        Some(None) => bad("dtype is not a string".into()),
        None => bad("no dtype".into()),
    }
    match obj.get("shape") {
        Some(v) => match usize_list(v) {
            Some(s) => entry.shape = Some(s),
            None => bad(format!("shape must be a list of non-negative integers, found {v}")),
        },
        None => bad("no shape".into()),
    }
    match obj.get("data_offsets") {
        Some(v) => match usize_list(v).as_deref().inspect(|o| entry.claimed_end = o.get(1).copied()) {
            Some(&[b, e]) if b <= e && e <= data_len => entry.offsets = Some((b, e)),
            Some(&[b, e]) if b > e => bad(format!("data_offsets [{b}, {e}] end before they begin")),
            Some(&[b, e]) => bad(format!("data_offsets [{b}, {e}] run past the end of the data ({data_len} bytes)")),
            _ => bad(format!("data_offsets must be two non-negative integers [begin, end], found {v}")),
        },
        None => bad("no data_offsets".into()),
    }
    let (Some(dtype), Some(shape)) = (entry.dtype, &entry.shape) else { return entry };
    // Zero-sized dims make the count 0 whatever the rest; the other dims must still not overflow
    // (Shape multiplies them all).
    let nonzero = shape.iter().filter(|&&d| d != 0).try_fold(1usize, |a, &d| a.checked_mul(d));
    let bytes = nonzero.and_then(|n| n.checked_mul(dtype.size())).map(|b| if shape.contains(&0) { 0 } else { b });
    match (bytes, entry.offsets) {
        (None, _) => {
            bad(format!("shape {shape:?} has too many elements"));
            entry.shape = None;
        }
        (Some(want), Some((b, e))) if e - b != want => {
            bad(format!("data_offsets [{b}, {e}] hold {} bytes but shape {shape:?} of {} needs {want}", e - b, dtype_label(dtype)))
        }
        _ => {}
    }
    entry
}

/// Offsets must tile the data section exactly: no overlap, no gap, nothing after the last.
fn check_layout(entries: &[Entry], data_len: usize, problems: &mut Vec<String>) {
    let mut spans: Vec<(usize, usize, &str)> = entries.iter().filter_map(|e| e.offsets.map(|(b, end)| (b, end, e.name.as_str()))).collect();
    spans.sort();
    let mut covered = 0usize;
    let mut last = "";
    for &(b, e, name) in &spans {
        if b < covered {
            problems.push(format!("tensor {name:?} (bytes {b}..{e}) overlaps tensor {last:?} (which ends at byte {covered})"));
        } else if b > covered {
            problems.push(format!("bytes {covered}..{b} of the data are not part of any tensor (before {name:?})"));
        }
        if e >= covered {
            covered = e;
            last = name;
        }
    }
    // A tensor without usable offsets makes coverage unknowable; it is reported already.
    if spans.len() == entries.len() && covered < data_len {
        problems.push(format!("{} trailing bytes after the last tensor (data ends at byte {covered} of {data_len})", data_len - covered));
    }
}

fn usize_list(v: &serde_json::Value) -> Option<Vec<usize>> {
    v.as_array()?.iter().map(|x| x.as_u64().and_then(|u| usize::try_from(u).ok())).collect()
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

fn dtype_label(d: FileDType) -> String {
    format!("{d:?}").to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn err(bytes: &[u8]) -> String {
        from_safetensors_bytes(bytes).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn lists_every_header_problem_at_once() {
        let h = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]},"b":{"dtype":"Q4","shape":[1],"data_offsets":[12,13]},"c":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[13,14]}}"#;
        let e = err(&header_file(h, &[0; 14]));
        assert!(e.starts_with("<memory>: invalid safetensors file, 3 problems"), "{e}");
        assert!(e.contains("\"a\": data_offsets [0, 12] hold 12 bytes but shape [2] of F32 needs 8"), "{e}");
        assert!(e.contains("unknown dtype \"Q4\""), "{e}");
        assert!(e.contains("dtype F8_E4M3 is not supported"), "{e}");
    }

    #[test]
    fn overlap_gap_and_trailing_bytes() {
        let h = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#;
        assert!(err(&header_file(h, &[0; 4])).contains("\"b\" (bytes 2..4) overlaps tensor \"a\""));
        let h = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}"#;
        assert!(err(&header_file(h, &[0; 5])).contains("bytes 2..3 of the data are not part of any tensor"));
        let h = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#;
        assert!(err(&header_file(h, &[0; 5])).contains("3 trailing bytes after the last tensor"));
        let e = err(&header_file(h, &[0; 1]));
        assert!(
            e.contains("describes 2 bytes of data but 1 follow it: truncated") && e.contains("run past the end of the data (1 bytes)"),
            "{e}"
        );
    }

    #[test]
    fn structural_errors() {
        assert!(err(&[1, 2, 3]).contains("3 bytes is too short"));
        assert!(err(&header_file("{}", b"")[..9]).contains("header length 2 runs past the end"));
        assert!(err(&header_file("{oops", b"")).contains("header is not valid JSON"));
        assert!(err(&header_file("[1]", b"")).contains("expected a JSON object"));
        let dup = r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#;
        assert!(err(&header_file(dup, b"")).contains("\"a\" appears twice"));
        let meta = r#"{"__metadata__":{"k":1}}"#;
        assert!(err(&header_file(meta, b"")).contains("value of \"k\" must be a string"));
        let huge = r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#;
        assert!(err(&header_file(huge, b"")).contains("too many elements"));
    }

    #[test]
    fn widened_integer_dtypes() {
        let h = r#"{"i":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BOOL","shape":[2],"data_offsets":[8,10]}}"#;
        let mut data = (-3i32).to_le_bytes().to_vec();
        data.extend_from_slice(&7i32.to_le_bytes());
        data.extend_from_slice(&[0, 5]);
        let (t, _) = from_safetensors_bytes(&header_file(h, &data)).unwrap();
        assert_eq!(t[0].1.dtype(), DType::I64);
        assert_eq!(t[0].1.to_vec::<i64>().unwrap(), vec![-3, 7]);
        assert_eq!(t[1].1.to_vec::<u8>().unwrap(), vec![0, 1]);
    }

    #[test]
    fn header_is_padded_and_data_aligned() {
        let ts = vec![
            ("h".to_string(), Tensor::ones(&[3], DType::F16).unwrap()),
            ("d".to_string(), Tensor::ones(&[1], DType::F64).unwrap()),
            ("u".to_string(), Tensor::ones(&[1], DType::U8).unwrap()),
        ];
        let bytes = to_safetensors_bytes(&ts, &BTreeMap::new()).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + n) % 8, 0);
        // f64 first in the data, header order kept.
        let (back, _) = from_safetensors_bytes(&bytes).unwrap();
        assert_eq!(back.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["h", "d", "u"]);
        let st = ::safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("d").unwrap().data(), &1.0f64.to_le_bytes());
    }
}
