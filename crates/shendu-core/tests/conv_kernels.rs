//! The AVX2 f32 Winograd kernels (cpu/winograd_avx2.rs: padded copy, transforms, packed
//! product) against the portable ones (`set_simd_enabled(false)`), on shapes that reach their
//! edge cases: odd output widths and heights (clipped tiles), tile rows of 8 to 19 tiles and
//! narrower ones (1 to 5 tiles: one chunk per row with scratch lanes; the portable transforms
//! gather lane by lane), bands whose tile count is not a multiple
//! of the 16-tile panel, output channel counts that leave a partial 6-channel panel, even and odd
//! left pads, groups, and inputs with strided rows; and the 1x1 convolutions that run their
//! product kernel one image at a time. Also the thread split of every convolution
//! path (cpu/conv_threads.rs) against one thread. The SIMD switch and the thread count are
//! global: the tests take a lock.

use std::sync::Mutex;

use shendu_core::cpu::simd::set_simd_enabled;
use shendu_core::{set_num_threads, Conv2dParams, DType, Padding, Rng, Tensor, Var};

static GLOBAL: Mutex<()> = Mutex::new(());

fn randn(shape: &[usize], seed: u64) -> Tensor {
    randn_dt(shape, seed, DType::F32)
}

fn randn_dt(shape: &[usize], seed: u64, dt: DType) -> Tensor {
    Tensor::randn_with(shape, DType::F64, &mut Rng::new(seed)).unwrap().to_dtype(dt).unwrap()
}

/// y, gx and gw of one conv2d with the given output gradient.
fn run(x: &Tensor, w: &Tensor, p: &Conv2dParams, gy_seed: u64) -> [Vec<f64>; 3] {
    let (xv, wv) = (Var::new(x.clone()), Var::new(w.clone()));
    let y = xv.conv2d(&wv, p).unwrap();
    let gy = randn_dt(y.dims(), gy_seed, x.dtype());
    let g = y.backward_with_grad(&gy, false).unwrap();
    [y.to_vec_f64().unwrap(), g.get(&xv).unwrap().to_vec_f64().unwrap(), g.get(&wv).unwrap().to_vec_f64().unwrap()]
}

fn assert_close(a: &[Vec<f64>; 3], b: &[Vec<f64>; 3], what: &str) {
    for (name, (a, b)) in ["y", "gx", "gw"].iter().zip(a.iter().zip(b)) {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let worst = a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst <= 2e-5 * scale, "{what} {name}: worst difference {worst} at scale {scale}");
    }
}

#[test]
fn avx2_kernels_match_the_portable_ones() {
    let _g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    // (input, weight, pads [top, bottom, left, right], groups, strided input)
    type Case = ([usize; 4], [usize; 4], [usize; 4], usize, bool);
    let cases: [Case; 15] = [
        // tw 14, two bands (112 and 84 tiles), 20 output channels (panels 6, 6, 6, 2)
        ([2, 16, 28, 28], [20, 16, 3, 3], [1, 1, 1, 1], 1, false),
        // odd output height, tw 16, left pad 1, groups
        ([1, 32, 19, 33], [34, 16, 3, 3], [0, 2, 1, 0], 2, false),
        // odd output width (19: the last tile clipped), tw 10, left pad 2
        ([3, 16, 21, 17], [16, 16, 3, 3], [2, 1, 2, 2], 1, false),
        // no padding, tw 19, 17 channels in and out
        ([1, 17, 9, 40], [17, 17, 3, 3], [0, 0, 0, 0], 1, false),
        // tw 5: portable transforms, packed product
        ([2, 16, 10, 10], [24, 16, 3, 3], [1, 1, 1, 1], 1, false),
        // tw 8 exactly, odd output height
        ([2, 16, 15, 16], [16, 16, 3, 3], [1, 1, 1, 1], 1, false),
        // strided input rows: the portable padded copy, AVX2 transforms
        ([2, 16, 18, 22], [18, 16, 3, 3], [1, 1, 1, 1], 1, true),
        // rows narrower than a vector (one chunk per tile row, scratch lanes): tw 4 (ResNet's 8x8)
        ([2, 16, 8, 8], [20, 16, 3, 3], [1, 1, 1, 1], 1, false),
        // tw 4 with the last tile clipped both ways (7x7), strided input
        ([2, 16, 7, 7], [16, 16, 3, 3], [1, 1, 1, 1], 1, true),
        // tw 1: a 2x2 output, the smallest Winograd takes
        ([3, 16, 4, 4], [16, 16, 3, 3], [0, 0, 0, 0], 1, false),
        // tw 3 on a tall map: four bands of narrow rows (37, 37, 37, 9)
        ([1, 16, 240, 6], [18, 16, 3, 3], [1, 1, 1, 1], 1, false),
        // one-band maps whose weight-gradient products take several images at once: 8x8 (16
        // tiles: blocks of 4 images, then 1) and 6x6 (9 tiles in narrow rows: 7, then 1)
        ([9, 16, 8, 8], [20, 16, 3, 3], [1, 1, 1, 1], 1, false),
        ([8, 16, 6, 6], [16, 16, 3, 3], [1, 1, 1, 1], 1, false),
        // 1x1 one image per product (cpu/conv_pointwise.rs): 90 columns (the last 16-column
        // panel moved back over the one before), 13 output channels (panels 6, 6, 1)
        ([3, 20, 9, 10], [13, 20, 1, 1], [0, 0, 0, 0], 1, false),
        // 1x1 per image with groups, 16 columns exactly and a partial panel of 5
        ([2, 12, 4, 16], [22, 6, 1, 1], [0, 0, 0, 0], 2, false),
    ];
    for threads in [1, 2] {
        set_num_threads(threads);
        for (k, (xd, wd, pads, groups, strided)) in cases.into_iter().enumerate() {
            let x = if strided {
                randn(&[xd[0], xd[1], xd[3], xd[2]], 10 + k as u64).transpose(2, 3).unwrap()
            } else {
                randn(&xd, 10 + k as u64)
            };
            let w = randn(&wd, 20 + k as u64).affine(0.2, 0.0).unwrap();
            let p = Conv2dParams::default().with_padding(Padding::explicit(pads[0], pads[1], pads[2], pads[3])).with_groups(groups);
            set_simd_enabled(true);
            let fast = run(&x, &w, &p, 30 + k as u64);
            set_simd_enabled(false);
            let slow = run(&x, &w, &p, 30 + k as u64);
            set_simd_enabled(true);
            assert_close(&fast, &slow, &format!("case {k}, {threads} threads"));
        }
    }
}

/// Two threads against one, per path and at batch sizes below, at and above the thread count
/// and the weight gradient's chunk count (four per thread): the work items are handed out in
/// chunks and the weight-gradient partial sums are added per chunk. Two runs on two threads
/// must agree bit for bit (the chunks, not the scheduling, fix the order of the sums).
#[test]
fn two_threads_match_one() {
    let _g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    // (channels in, channels out, size, kernel, stride, pad, groups)
    let paths: [(usize, usize, usize, usize, usize, usize, usize); 7] = [
        (16, 16, 32, 3, 1, 1, 1), // Winograd, 3 bands of tile rows
        (16, 24, 14, 3, 1, 1, 1), // Winograd, one band
        (3, 8, 17, 3, 2, 1, 1),   // im2col + gemm (strided)
        (6, 16, 14, 5, 1, 0, 1),  // flat columns (LeNet's 5x5 "valid")
        (8, 8, 12, 3, 1, 1, 8),   // depthwise
        (12, 10, 9, 1, 1, 0, 1),  // pointwise
        (12, 10, 4, 1, 1, 0, 2),  // pointwise on a small map: images side by side
    ];
    for (k, &(cin, cout, hw, ks, stride, pad, groups)) in paths.iter().enumerate() {
        for n in [1, 2, 3, 9] {
            for dt in [DType::F64, DType::F32] {
                let seed = 100 * k as u64 + n as u64;
                let x = randn_dt(&[n, cin, hw, hw], seed, dt);
                let w = randn_dt(&[cout, cin / groups, ks, ks], seed + 1, dt);
                let p = Conv2dParams::default().with_stride(stride).with_pad(pad).with_groups(groups);
                set_num_threads(1);
                let one = run(&x, &w, &p, seed + 2);
                set_num_threads(2);
                let two = run(&x, &w, &p, seed + 2);
                let again = run(&x, &w, &p, seed + 2);
                set_num_threads(1);
                let what = format!("path {k}, batch {n}, {dt}");
                assert_eq!(two, again, "{what}: two runs on two threads differ");
                let tol = if dt == DType::F64 { 1e-12 } else { 2e-5 };
                for (name, (a, b)) in ["y", "gx", "gw"].iter().zip(two.iter().zip(&one)) {
                    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    let worst = a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
                    assert!(worst <= tol * scale, "{what} {name}: worst difference {worst} at scale {scale}");
                }
            }
        }
    }
}

/// 1x1 convolutions on maps of 8x8 and smaller batch several images into one product
/// (cpu/conv_pointwise.rs): output, input gradient and weight gradient against direct f64 sums,
/// with groups, a batch that splits into several products, and a strided (transposed) input.
#[test]
fn small_map_pointwise_matches_direct_sums() {
    let _g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let (n, cin, cout, groups) = (70, 64, 300, 2);
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    for (hw, dt, threads, strided) in [(4, DType::F32, 1, false), (7, DType::F64, 2, false), (4, DType::F64, 1, true)] {
        set_num_threads(threads);
        let x = if strided { randn_dt(&[n, cin, hw, hw], 1, dt).transpose(2, 3).unwrap() } else { randn_dt(&[n, cin, hw, hw], 1, dt) };
        let w = randn_dt(&[cout, cin_g, 1, 1], 2, dt);
        let [y, gx, gw] = run(&x, &w, &Conv2dParams::default().with_groups(groups), 3);
        let gy = randn_dt(&[n, cout, hw, hw], 3, dt).to_vec_f64().unwrap();
        let (xs, ws) = (x.contiguous().unwrap().to_vec_f64().unwrap(), w.to_vec_f64().unwrap());
        let p = hw * hw;
        let (mut y0, mut gx0, mut gw0) = (vec![0.0; n * cout * p], vec![0.0; n * cin * p], vec![0.0; cout * cin_g]);
        for b in 0..n {
            for co in 0..cout {
                let grp = co / cout_g;
                for ci in 0..cin_g {
                    let c = grp * cin_g + ci;
                    let wv = ws[co * cin_g + ci];
                    for q in 0..p {
                        let (xo, yo) = ((b * cin + c) * p + q, (b * cout + co) * p + q);
                        y0[yo] += wv * xs[xo];
                        gx0[xo] += wv * gy[yo];
                        gw0[co * cin_g + ci] += gy[yo] * xs[xo];
                    }
                }
            }
        }
        let tol = if dt == DType::F64 { 1e-12 } else { 2e-5 };
        for (name, (a, b)) in ["y", "gx", "gw"].iter().zip([(&y, &y0), (&gx, &gx0), (&gw, &gw0)]) {
            let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(b.iter()).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
            assert!(worst <= tol * scale, "{hw}x{hw} {dt} {threads} threads {name}: worst difference {worst} at scale {scale}");
        }
    }
    set_num_threads(1);
}

/// A 1x1 convolution of a channel slice (ShuffleNet's split) one image per product: the planes
/// are read in place, a whole image of channels apart, and must give what the portable path
/// gives on a contiguous copy.
#[test]
fn per_image_pointwise_reads_channel_slices() {
    let _g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let x = randn(&[3, 40, 9, 12], 41).narrow(1, 8, 20).unwrap();
    let w = randn(&[13, 20, 1, 1], 42);
    let p = Conv2dParams::default();
    for threads in [1, 2] {
        set_num_threads(threads);
        set_simd_enabled(true);
        let fast = run(&x, &w, &p, 43);
        set_simd_enabled(false);
        let slow = run(&x.contiguous().unwrap(), &w, &p, 43);
        set_simd_enabled(true);
        assert_close(&fast, &slow, &format!("channel slice, {threads} threads"));
    }
    set_num_threads(1);
}

/// Stride-1 depthwise convolutions on planes of 64 pixels or fewer run eight channels at a time
/// (cpu/depthwise_lanes.rs): y, gx and gw against direct f64 sums, in f32 (the AVX transposes of
/// whole blocks) and f64 (the portable loads), with the SIMD build and the portable one, on one
/// and two threads. The cases reach a partial last block of channels, planes whose pixel count
/// is not a multiple of 8 (7x7), a dilated kernel, asymmetric pads, pads wider than the kernel
/// (the input gradient's tile crops the output gradient), a strided input and an 8x8 output
/// grown from a 4x4 input.
#[test]
fn small_plane_depthwise_matches_direct_sums() {
    let _g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    // (input [n, c, h, w], kernel, pads [top, bottom, left, right], dilation, transposed input)
    type Case = ([usize; 4], (usize, usize), [usize; 4], usize, bool);
    let cases: [Case; 6] = [
        ([3, 20, 4, 4], (3, 3), [1, 1, 1, 1], 1, false),
        ([2, 16, 7, 7], (3, 3), [1, 1, 1, 1], 1, false),
        ([2, 8, 6, 6], (3, 3), [2, 2, 2, 2], 2, false),
        ([2, 9, 5, 6], (3, 2), [0, 2, 1, 0], 1, false),
        ([1, 8, 4, 4], (3, 3), [3, 1, 2, 3], 1, false),
        ([2, 24, 5, 5], (3, 3), [1, 1, 1, 1], 1, true),
    ];
    for (shape, (kh, kw), [pt, pb, pl, pr], d, transposed) in cases {
        let [n, c, h, w] = shape;
        let (oh, ow) = (h + pt + pb - d * (kh - 1), w + pl + pr - d * (kw - 1));
        assert!(oh * ow <= 64, "the case must take the small-plane path");
        let p = Conv2dParams::default().with_groups(c).with_dilation(d).with_padding(Padding::Explicit {
            top: pt,
            bottom: pb,
            left: pl,
            right: pr,
        });
        for (dt, simd, threads) in [(DType::F32, true, 1), (DType::F32, true, 2), (DType::F64, true, 2), (DType::F64, false, 1)] {
            set_simd_enabled(simd);
            set_num_threads(threads);
            let x = if transposed { randn_dt(&[n, c, w, h], 1, dt).transpose(2, 3).unwrap() } else { randn_dt(&shape, 1, dt) };
            let wt = randn_dt(&[c, 1, kh, kw], 2, dt);
            let got = run(&x, &wt, &p, 3);
            let gy = randn_dt(&[n, c, oh, ow], 3, dt).to_vec_f64().unwrap();
            let (xs, ws) = (x.contiguous().unwrap().to_vec_f64().unwrap(), wt.to_vec_f64().unwrap());
            let (mut y, mut gx, mut gw) = (vec![0.0; n * c * oh * ow], vec![0.0; n * c * h * w], vec![0.0; c * kh * kw]);
            for (b, ch, oy, ox, i, j) in every_tap(n, c, oh, ow, kh, kw) {
                let (iy, ix) = ((oy + i * d) as isize - pt as isize, (ox + j * d) as isize - pl as isize);
                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                    continue;
                }
                let xi = ((b * c + ch) * h + iy as usize) * w + ix as usize;
                let (yi, wi) = (((b * c + ch) * oh + oy) * ow + ox, (ch * kh + i) * kw + j);
                y[yi] += ws[wi] * xs[xi];
                gx[xi] += ws[wi] * gy[yi];
                gw[wi] += gy[yi] * xs[xi];
            }
            let tol = if dt == DType::F64 { 1e-12 } else { 2e-5 };
            for (name, (a, b)) in ["y", "gx", "gw"].iter().zip(got.iter().zip([&y, &gx, &gw])) {
                let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let worst = a.iter().zip(b.iter()).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
                assert!(
                    worst <= tol * scale,
                    "{shape:?} k{kh}x{kw} d{d} {dt} simd {simd} {threads} threads {name}: worst {worst} at scale {scale}"
                );
            }
        }
    }
    set_simd_enabled(true);
    set_num_threads(1);
}

/// Every `(b, c, oy, ox, i, j)` below the given bounds, last fastest.
fn every_tap(
    n: usize,
    c: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize, usize, usize)> {
    (0..n).flat_map(move |b| {
        (0..c).flat_map(move |ch| {
            (0..oh).flat_map(move |oy| (0..ow).flat_map(move |ox| (0..kh).flat_map(move |i| (0..kw).map(move |j| (b, ch, oy, ox, i, j)))))
        })
    })
}
