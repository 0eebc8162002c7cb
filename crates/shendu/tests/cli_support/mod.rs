//! What the CLI tests share: running the binary, temporary directories, test checkpoints.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shendu_nn::{state, Module};
use shendu_vision::zoo::{self, ModelOptions};

/// The `shendu` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_shendu");

/// A directory removed when dropped; it derefs to its path, and passes as one (`.arg(&dir)`).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// An empty `shendu-cli-TAG-PID` in the system's temporary directory: tags differ between
    /// the tests of one file, which run at the same time.
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("shendu-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    /// Writes `contents` to the file `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
    /// The names of the files in the directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<OsStr> for TempDir {
    fn as_ref(&self) -> &OsStr {
        self.0.as_os_str()
    }
}

/// What a run of the binary left.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    /// Exit code 2, one stderr line `shendu: ...` containing every `want`, no panic.
    pub fn bad_input(&self, want: &[&str]) -> &Self {
        assert_eq!(self.code, 2, "expected exit code 2\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{}", self.stderr);
        assert!(lines[0].starts_with("shendu: "), "{}", self.stderr);
        for w in want {
            assert!(lines[0].contains(w), "stderr lacks {w:?}: {}", self.stderr);
        }
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{}", self.stdout))
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The binary, for what [`shendu`] does not set up: a working directory, pipes, environment,
/// the kernels' default thread count.
pub fn command() -> Command {
    Command::new(BIN)
}

/// Runs `shendu ARGS` to the end, its kernels on one thread.
pub fn shendu<S: AsRef<OsStr>>(args: &[S]) -> Run {
    command().args(args).env("SHENDU_NUM_THREADS", "1").output().unwrap().into()
}

/// The number after `key` in `text` (`"step 6"` -> 6).
pub fn number_after(text: &str, key: &str) -> usize {
    let rest = text.split(key).nth(1).unwrap_or_else(|| panic!("no '{key}' in: {text}"));
    rest.trim_start().chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap()
}

/// The metadata `shendu train` writes for an MNIST model.
pub fn mnist_meta(model: &str) -> BTreeMap<String, String> {
    [("model", model), ("input", "1x28x28"), ("classes", "10")].into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A freshly initialised zoo model saved with `mnist_meta(name)` plus `extra`.
pub fn save_zoo(path: &Path, name: &str, seed: u64, extra: &[(&str, &str)]) -> Box<dyn Module> {
    shendu_core::manual_seed(seed);
    let m = zoo::build(name, &ModelOptions::mnist()).unwrap();
    let mut meta = mnist_meta(name);
    meta.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    state::save_module(path, &m, &meta).unwrap();
    m
}

/// Writes a PNG of 8-bit grayscale pixels.
pub fn write_png(path: &Path, w: u32, h: u32, pixels: Vec<u8>) {
    image::GrayImage::from_raw(w, h, pixels).unwrap().save(path).unwrap();
}
