//! The packed f32 kernels (`cpu::sgemm`) against a naive f64 triple loop: edge tiles around the
//! MR / NR / KC / MC block edges, k = 0, empty outputs, strided and transposed operands,
//! accumulation, 1 and 2 threads, both kernels (AVX2 forced on AVX-512 machines) and the
//! `gemm`-crate fallback.
#![cfg(target_arch = "x86_64")]

use proptest::prelude::*;
use shendu_core::cpu::gemm::{gemm, gemm_crate, gemm_scaled, MatMut, MatRef};
use shendu_core::cpu::sgemm::{sgemm, sgemm_scaled, Blocking, Isa};

/// A strided matrix view into a buffer: element (i, j) at `off + i*rs + j*cs`.
#[derive(Clone, Copy, Debug)]
struct View {
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
    off: usize,
}

impl View {
    /// Row-major (`trans = false`) or column-major, with `pad` extra elements per leading row/column.
    fn new(rows: usize, cols: usize, trans: bool, pad: usize, off: usize) -> View {
        if trans {
            View { rows, cols, rs: 1, cs: rows + pad, off }
        } else {
            View { rows, cols, rs: cols + pad, cs: 1, off }
        }
    }
    fn len(&self) -> usize {
        self.off + if self.rows == 0 || self.cols == 0 { 0 } else { (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1 }
    }
    fn at(&self, i: usize, j: usize) -> usize {
        self.off + i * self.rs + j * self.cs
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    Packed(Isa, usize),
    Crate,
    Entry,
}

fn vals(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn check(m: usize, n: usize, k: usize, av: View, bv: View, cv: View, accumulate: bool, path: Path, blk: Option<Blocking>) {
    check_scaled(m, n, k, av, bv, cv, accumulate, 1.0, path, blk)
}

/// `C (+)= alpha · A · B` through `path` against the f64 loop (alpha 1 runs the unscaled entries).
#[allow(clippy::too_many_arguments)]
fn check_scaled(
    m: usize,
    n: usize,
    k: usize,
    av: View,
    bv: View,
    cv: View,
    accumulate: bool,
    alpha: f32,
    path: Path,
    blk: Option<Blocking>,
) {
    let a = vals(av.len(), 1 + m as u64);
    let b = vals(bv.len(), 2 + n as u64);
    let mut c = vals(cv.len(), 3 + k as u64);
    let c0 = c.clone();
    let lhs = MatRef { ptr: a[av.off..].as_ptr(), rs: av.rs as isize, cs: av.cs as isize };
    let rhs = MatRef { ptr: b[bv.off..].as_ptr(), rs: bv.rs as isize, cs: bv.cs as isize };
    let dst = MatMut { ptr: c[cv.off..].as_mut_ptr(), rs: cv.rs as isize, cs: cv.cs as isize };
    // SAFETY: the views lie inside their buffers and dst's elements are distinct.
    unsafe {
        match path {
            Path::Packed(isa, t) => {
                if !isa.supported() {
                    return;
                }
                shendu_core::cpu::threads::set_num_threads(t);
                let blk = blk.unwrap_or(isa.default_blocking());
                if alpha == 1.0 {
                    sgemm(m, n, k, dst, accumulate, lhs, rhs, t, isa, blk)
                } else {
                    sgemm_scaled(m, n, k, dst, accumulate, alpha, lhs, rhs, t, isa, blk)
                }
            }
            Path::Crate => gemm_crate(m, n, k, dst, accumulate, lhs, rhs, true),
            Path::Entry if alpha == 1.0 => gemm(m, n, k, dst, accumulate, lhs, rhs, true),
            Path::Entry => gemm_scaled(m, n, k, dst, accumulate, alpha, lhs, rhs, true),
        }
    }
    let mut want: Vec<Option<(f64, f64)>> = vec![None; c.len()];
    for i in 0..m {
        for j in 0..n {
            let mut w = if accumulate { c0[cv.at(i, j)] as f64 } else { 0.0 };
            let mut mag = w.abs();
            for p in 0..k {
                let x = alpha as f64 * a[av.at(i, p)] as f64 * b[bv.at(p, j)] as f64;
                w += x;
                mag += x.abs();
            }
            want[cv.at(i, j)] = Some((w, mag));
        }
    }
    for (idx, ((&got, &old), w)) in c.iter().zip(&c0).zip(&want).enumerate() {
        match *w {
            None => assert_eq!(got, old, "{path:?} {m}x{n}x{k}: element {idx} outside C was written"),
            Some((w, mag)) => {
                let tol = 1e-5 * (mag + 1.0);
                assert!((got as f64 - w).abs() <= tol, "{path:?} {m}x{n}x{k} acc={accumulate} at {idx}: got {got}, want {w}");
            }
        }
    }
}

fn paths() -> Vec<Path> {
    vec![Path::Packed(Isa::Avx512, 1), Path::Packed(Isa::Avx512, 2), Path::Packed(Isa::Avx2, 1), Path::Packed(Isa::Avx2, 2), Path::Entry]
}

fn check_all_layouts(m: usize, n: usize, k: usize, path: Path, blk: Option<Blocking>) {
    for (ta, tb, tc, acc) in
        [(false, false, false, false), (true, false, false, true), (false, true, true, false), (true, true, true, true)]
    {
        let av = View::new(m, k, ta, 3, 1);
        let bv = View::new(k, n, tb, 0, 0);
        let cv = View::new(m, n, tc, 2, 5);
        check(m, n, k, av, bv, cv, acc, path, blk);
    }
}

#[test]
fn edge_sizes_every_kernel() {
    let sizes = [1, 2, 5, 6, 7, 11, 12, 13, 15, 16, 17, 31, 32, 33, 47];
    for path in paths() {
        for &m in &sizes {
            for &n in &[1, 5, 6, 7, 12, 13, 25, 33] {
                check_all_layouts(m, n, 9, path, None);
            }
        }
    }
}

/// The scaled product (the graph's fused `var -= lr · xᵀ·dy`): every kernel, edge tiles, all
/// layouts, with and without accumulation, across KC block edges (each block's sums scaled).
#[test]
fn scaled_products_every_path() {
    let blk = Blocking { kc: 7, mc: 40, nc: 30 };
    for path in paths() {
        for (m, n, k) in [(1, 1, 1), (17, 13, 9), (33, 25, 22), (70, 7, 15)] {
            for alpha in [-0.03f32, 2.5] {
                for (ta, tb, tc, acc) in [(false, false, false, true), (true, false, false, false), (false, true, true, true)] {
                    let (av, bv, cv) = (View::new(m, k, ta, 3, 1), View::new(k, n, tb, 0, 0), View::new(m, n, tc, 2, 5));
                    let b = if matches!(path, Path::Packed(..)) { Some(blk) } else { None };
                    check_scaled(m, n, k, av, bv, cv, acc, alpha, path, b);
                }
            }
        }
    }
}

#[test]
fn block_edges_with_small_blocking() {
    // Tiny blocks put many KC / MC / NC edges inside modest shapes.
    let blk = Blocking { kc: 7, mc: 40, nc: 30 };
    for path in [Path::Packed(Isa::Avx512, 1), Path::Packed(Isa::Avx512, 2), Path::Packed(Isa::Avx2, 1), Path::Packed(Isa::Avx2, 2)] {
        for (m, n, k) in [(1, 1, 1), (33, 31, 15), (70, 65, 22), (129, 37, 8), (5, 200, 30), (200, 5, 13)] {
            check_all_layouts(m, n, k, path, Some(blk));
        }
    }
}

#[test]
fn large_default_blocking() {
    for path in paths() {
        for (m, n, k) in [(300, 270, 520), (64, 520, 300), (1030, 40, 70), (3, 4200, 5)] {
            check_all_layouts(m, n, k, path, None);
        }
    }
}

#[test]
fn empty_and_zero_depth() {
    for path in paths().into_iter().chain([Path::Crate]) {
        for (m, n) in [(0, 5), (5, 0), (0, 0), (3, 4), (40, 17)] {
            check_all_layouts(m, n, 0, path, None);
        }
    }
}

#[test]
fn gemm_crate_fallback() {
    for (m, n, k) in [(1, 1, 1), (17, 13, 33), (70, 65, 300)] {
        check_all_layouts(m, n, k, Path::Crate, None);
    }
}

#[test]
fn general_strides_neither_unit() {
    // C and the operands with no unit stride (e.g. every other column of a wider matrix).
    for path in paths() {
        for (m, n, k) in [(7, 9, 5), (40, 30, 20)] {
            let av = View { rows: m, cols: k, rs: 2 * k + 1, cs: 2, off: 0 };
            let bv = View { rows: k, cols: n, rs: 3, cs: 3 * k + 2, off: 4 };
            let cv = View { rows: m, cols: n, rs: 2 * n + 3, cs: 2, off: 1 };
            check(m, n, k, av, bv, cv, true, path, None);
            check(m, n, k, av, bv, cv, false, path, None);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_shapes_and_strides(m in 1usize..80, n in 1usize..80, k in 0usize..80, ta: bool, tb: bool, tc: bool,
                                 pa in 0usize..3, pc in 0usize..3, acc: bool, which in 0usize..5, kc in 1usize..40) {
        let path = paths()[which];
        let av = View::new(m, k, ta, pa, 2);
        let bv = View::new(k, n, tb, 1, 0);
        let cv = View::new(m, n, tc, pc, 3);
        check(m, n, k, av, bv, cv, acc, path, Some(Blocking { kc, mc: 64, nc: 48 }));
    }
}
