//! Safetensors files: round trips of every dtype, atomic saves, and corrupt files that must be
//! refused with an error (never a panic).

use std::collections::BTreeMap;
use std::path::PathBuf;

use shendu_core::{DType, Tensor};
use shendu_nn::state::{from_safetensors_bytes, load_safetensors, save_safetensors, to_safetensors_bytes};

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shendu-state-io-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One tensor of each dtype, with values that survive the dtype exactly, and a transposed view.
fn every_dtype() -> Vec<(String, Tensor)> {
    let base = Tensor::arange(-3.0, 3.0, 1.0, DType::F64).unwrap().reshape(&[2, 3]).unwrap();
    let mut out: Vec<(String, Tensor)> =
        DType::ALL.iter().filter(|d| d.is_float()).map(|&d| (format!("float.{d}"), base.to_dtype(d).unwrap())).collect();
    out.push(("bytes".into(), Tensor::from_vec(vec![0u8, 1, 128, 255], &[4]).unwrap()));
    out.push(("ints".into(), Tensor::from_vec(vec![i64::MIN, -1, 0, i64::MAX], &[2, 2]).unwrap()));
    out.push(("scalar".into(), Tensor::scalar(7i64)));
    out.push(("empty".into(), Tensor::zeros(&[0, 3], DType::F32).unwrap()));
    out.push(("transposed".into(), Tensor::arange(0.0, 6.0, 1.0, DType::F32).unwrap().reshape(&[2, 3]).unwrap().t().unwrap()));
    out
}

fn assert_same(a: &[(String, Tensor)], b: &[(String, Tensor)]) {
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        assert_eq!(ta.dtype(), tb.dtype(), "{na}");
        assert_eq!(ta.dims(), tb.dims(), "{na}");
        assert_eq!(ta.to_vec_f64().unwrap(), tb.to_vec_f64().unwrap(), "{na}");
    }
}

#[test]
fn round_trip_every_dtype_keeps_order_and_metadata() {
    let dir = temp_dir("roundtrip");
    let path = dir.join("all.safetensors");
    let tensors = every_dtype();
    let meta = BTreeMap::from([("epoch".to_string(), "3".to_string()), ("note".to_string(), "quote \" and é".to_string())]);
    save_safetensors(&path, &tensors, &meta).unwrap();
    let (back, meta_back) = load_safetensors(&path).unwrap();
    assert_same(&tensors, &back);
    assert_eq!(meta, meta_back);
    // The transposed view was written in row-major order of its own shape.
    assert_eq!(back.last().unwrap().1.to_vec::<f32>().unwrap(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(std::fs::read(&path).unwrap(), to_safetensors_bytes(&tensors, &meta).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_reference_reader_agrees() {
    let tensors = every_dtype();
    let bytes = to_safetensors_bytes(&tensors, &BTreeMap::from([("k".to_string(), "v".to_string())])).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.len(), tensors.len());
    let f32s = st.tensor("transposed").unwrap();
    assert_eq!(f32s.dtype(), safetensors::Dtype::F32);
    assert_eq!(f32s.shape(), &[3, 2]);
    let vals: Vec<f32> = f32s.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(vals, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let ints = st.tensor("ints").unwrap();
    assert_eq!(ints.dtype(), safetensors::Dtype::I64);
    assert_eq!(&ints.data()[..8], &i64::MIN.to_le_bytes());
    for (name, view) in st.tensors() {
        // Aligned for readers that view the bytes in place.
        let offset = view.data().as_ptr() as usize - bytes.as_ptr() as usize;
        assert_eq!(offset % (view.dtype().bitsize() / 8), 0, "{name}");
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap()["k"], "v");
}

#[test]
fn save_is_atomic_and_leaves_no_temporary_file() {
    let dir = temp_dir("atomic");
    let path = dir.join("m.safetensors");
    let one = vec![("w".to_string(), Tensor::ones(&[3], DType::F32).unwrap())];
    save_safetensors(&path, &one, &BTreeMap::new()).unwrap();
    let two = vec![("w".to_string(), Tensor::full(&[3], 2.0, DType::F32).unwrap())];
    save_safetensors(&path, &two, &BTreeMap::new()).unwrap();
    assert_eq!(load_safetensors(&path).unwrap().0[0].1.to_vec::<f32>().unwrap(), vec![2.0; 3]);

    // Refused before writing: the old file stays.
    let dup = vec![one[0].clone(), one[0].clone()];
    let e = save_safetensors(&path, &dup, &BTreeMap::new()).unwrap_err().to_string();
    assert!(e.contains("m.safetensors") && e.contains("\"w\" appears more than once"), "{e}");
    // Failing at the rename (a directory is in the way): the temporary file is removed.
    let blocked = dir.join("blocked");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("x"), b"keep").unwrap();
    assert!(save_safetensors(&blocked, &one, &BTreeMap::new()).is_err());
    // A missing directory names the path it tried.
    let e = save_safetensors(dir.join("no/such/dir/m.safetensors"), &one, &BTreeMap::new()).unwrap_err().to_string();
    assert!(e.contains("no/such/dir"), "{e}");

    let mut names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["blocked", "m.safetensors"]);
    assert_eq!(load_safetensors(&path).unwrap().0[0].1.to_vec::<f32>().unwrap(), vec![2.0; 3]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_name_the_file() {
    let dir = temp_dir("names");
    let path = dir.join("broken.safetensors");
    std::fs::write(&path, b"\x10\x00").unwrap();
    let e = load_safetensors(&path).unwrap_err().to_string();
    assert!(e.starts_with(&path.display().to_string()) && e.contains("too short"), "{e}");
    let e = load_safetensors(dir.join("absent.safetensors")).unwrap_err().to_string();
    assert!(e.contains("absent.safetensors"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn reference_files() -> Vec<Vec<u8>> {
    let torch = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/torch_state.safetensors")).unwrap();
    vec![torch, to_safetensors_bytes(&every_dtype(), &BTreeMap::from([("a".to_string(), "b".to_string())])).unwrap()]
}

#[test]
fn every_truncation_is_refused() {
    for bytes in reference_files() {
        assert!(from_safetensors_bytes(&bytes).is_ok());
        for cut in 0..bytes.len() {
            let r = from_safetensors_bytes(&bytes[..cut]);
            assert!(r.is_err(), "a file cut to {cut} of {} bytes was accepted", bytes.len());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(from_safetensors_bytes(&longer).unwrap_err().to_string().contains("1 trailing bytes"));
    }
}

#[test]
fn corrupt_bytes_never_panic() {
    for bytes in reference_files() {
        let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut refused = 0;
        for at in 0..bytes.len() {
            for v in [0u8, 0xff, b'9', b'"', b'{', b',', bytes[at] ^ 1] {
                let mut bad = bytes.clone();
                bad[at] = v;
                // Data bytes may be anything; header damage must be an Err, never a panic.
                if from_safetensors_bytes(&bad).is_err() {
                    refused += 1;
                }
            }
        }
        assert!(refused > header_end, "only {refused} of the corruptions were refused");
        // Header lengths that are huge, or point inside the header.
        for n in [u64::MAX, 1 << 40, 100_000_001, 1, 2] {
            let mut bad = bytes.clone();
            bad[..8].copy_from_slice(&n.to_le_bytes());
            assert!(from_safetensors_bytes(&bad).is_err(), "header length {n}");
        }
    }
}
