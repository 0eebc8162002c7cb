//! Winograd F(4x4, 3x3) (cpu/winograd4.rs, cpu/winograd4_wgrad.rs: f32 with AVX2+FMA, maps of at
//! least 16 tiles of 4x4) against f64: output, input gradient (the transposed convolution of a
//! stride-1 3x3 conv is the forward of the flipped kernel, so it takes the same path) and weight
//! gradient (blocks of images per product on one-band maps), on shapes that reach the
//! edge cases: tile rows of 8 or more tiles and narrower ones (one chunk per row with scratch
//! lanes), output sizes that clip the last tile row and column, asymmetric and zero pads,
//! groups, bands of several tile rows, a partial last 16-tile panel, 1 and 2 threads. The error
//! is also compared with F(2x2, 3x3)'s (the portable path, SIMD off) on the same data.

use std::sync::Mutex;

use shendu_core::cpu::simd::set_simd_enabled;
use shendu_core::{set_num_threads, Conv2dParams, DType, Padding, Rng, Tensor, Var};

static GLOBAL: Mutex<()> = Mutex::new(());

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn_with(shape, DType::F64, &mut Rng::new(seed)).unwrap()
}

/// y, gx and gw of one conv2d in `dt`, as f64.
fn run(x: &Tensor, w: &Tensor, gy: &Tensor, p: &Conv2dParams, dt: DType) -> [Vec<f64>; 3] {
    let (xv, wv) = (Var::new(x.to_dtype(dt).unwrap()), Var::new(w.to_dtype(dt).unwrap()));
    let y = xv.as_tensor().conv2d(wv.as_tensor(), p).unwrap();
    let g = y.backward_with_grad(&gy.to_dtype(dt).unwrap(), false).unwrap();
    let grad = |v: &Var| g.get(v).unwrap().to_vec_f64().unwrap();
    [y.to_vec_f64().unwrap(), grad(&xv), grad(&wv)]
}

/// (max |a - b| / max |b|, rms(a - b) / rms(b)).
fn errors(a: &[f64], b: &[f64]) -> (f64, f64) {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    let rms = |it: &mut dyn Iterator<Item = f64>| (it.map(|v| v * v).sum::<f64>() / b.len() as f64).sqrt();
    (worst / scale, rms(&mut a.iter().zip(b).map(|(x, y)| x - y)) / rms(&mut b.iter().copied()))
}

#[test]
fn f4x4_matches_f64() {
    let _g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    // (input, weight, pads [top, bottom, left, right], groups)
    type Case = ([usize; 4], [usize; 4], [usize; 4], usize);
    let cases: [Case; 9] = [
        // W2's shape at a smaller batch: tw 7 (one chunk per row, scratch lane), 49 tiles
        ([2, 64, 28, 28], [64, 64, 3, 3], [1, 1, 1, 1], 1),
        // tw 8 exactly, 64 tiles, two bands at 32x32 (ResNet's first stage)
        ([2, 16, 32, 32], [16, 16, 3, 3], [1, 1, 1, 1], 1),
        // tw 14 (two chunks, the second moved back), bands of 4 rows, 20 outputs (partial panel)
        ([1, 16, 56, 56], [20, 16, 3, 3], [1, 1, 1, 1], 1),
        // clipped last tile both ways (17 x 23), left pad 2, groups
        ([2, 32, 17, 23], [34, 16, 3, 3], [2, 0, 2, 0], 2),
        // no padding: 26 x 38 outputs (7 x 10 tiles, clipped)
        ([1, 17, 28, 40], [17, 17, 3, 3], [0, 0, 0, 0], 1),
        // 14x14 (tw 4, 16 tiles: the smallest map it takes), odd channel counts
        ([3, 19, 14, 14], [21, 19, 3, 3], [1, 1, 1, 1], 1),
        // a tall narrow map: tw 3, many bands
        ([1, 16, 300, 10], [16, 16, 3, 3], [1, 1, 1, 1], 1),
        // a wide short map: 2 tile rows of 25 tiles
        ([2, 16, 6, 100], [16, 16, 3, 3], [1, 1, 1, 1], 1),
        // 16x16 (16 tiles, one band): the weight gradient sums blocks of 4 images per product
        ([9, 16, 16, 16], [24, 16, 3, 3], [1, 1, 1, 1], 1),
    ];
    for threads in [1, 2] {
        set_num_threads(threads);
        for (k, (xd, wd, pads, groups)) in cases.into_iter().enumerate() {
            let seed = 10 * k as u64;
            let x = randn(&xd, seed);
            let w = randn(&wd, seed + 1).affine(1.0 / (3.0 * (wd[1] as f64).sqrt()), 0.0).unwrap();
            let p = Conv2dParams::default().with_padding(Padding::explicit(pads[0], pads[1], pads[2], pads[3])).with_groups(groups);
            let oh = xd[2] + pads[0] + pads[1] - 2;
            let ow = xd[3] + pads[2] + pads[3] - 2;
            let gy = randn(&[xd[0], wd[0], oh, ow], seed + 2);
            let exact = run(&x, &w, &gy, &p, DType::F64);
            set_simd_enabled(true);
            let f4 = run(&x, &w, &gy, &p, DType::F32);
            set_simd_enabled(false);
            let f2 = run(&x, &w, &gy, &p, DType::F32);
            set_simd_enabled(true);
            for (name, ((a, b), e)) in ["y", "gx", "gw"].iter().zip(f4.iter().zip(&f2).zip(&exact)) {
                let (e4, e2) = (errors(a, e), errors(b, e));
                eprintln!(
                    "case {k} {name} {threads} threads: F(4x4) max {:.2e} rms {:.2e}; F(2x2) max {:.2e} rms {:.2e}",
                    e4.0, e4.1, e2.0, e2.1
                );
                assert!(e4.0 <= 2e-5 && e4.1 <= 3e-6, "case {k} {name}, {threads} threads: max {:.2e}, rms {:.2e}", e4.0, e4.1);
                // The F(4x4) path ran: its rounding is not F(2x2)'s (measured 5-7x the rms).
                assert!(e4.1 > 2.0 * e2.1, "case {k} {name}: rms {:.2e} against F(2x2)'s {:.2e}", e4.1, e2.1);
            }
        }
    }
    set_num_threads(1);
}
