//! The weight gradient of an f32 3x3 stride-1 convolution through Winograd F(4x4, 3x3), where
//! [`winograd4::applies`] holds, on CPUs with AVX2+FMA.
//!
//! As for F(2x2, 3x3) (`winograd_wgrad`): the forward is `Y = A^T [(G g G^T) ⊙ (B^T d B)] A`
//! per tile, so `dL/dU = Σ_tiles (A dY A^T) ⊙ (B^T d B)` and `dL/dg = G^T (dL/dU) G`. Per band of
//! tiles: the forward's input transform (`V[ξ] [cin, tiles]`), the output-gradient transform
//! `Z[ξ] [cout, tiles]` of 4x4 gradient tiles, and 36 products `dU[ξ] += Z[ξ] · V[ξ]^T` (4x fewer
//! multiply-adds than the im2col gemm, 1.78x fewer than F(2x2)); the 36 x cout x cin sums become
//! 3x3 kernels at the end, in f64.

use std::arch::x86_64::*;
use std::ops::Range;

use crate::cpu::conv::{ConvGeom, View4};
use crate::cpu::conv_threads::sum_over_items;
use crate::cpu::gemm_nt::add_a_bt;
use crate::cpu::winograd::{chunk_starts, Band, L};
use crate::cpu::winograd4::{self, deinterleave4_regs, input_transform, pad_planes, BAND_TILES, ROOM, XI};
use crate::cpu::winograd_avx2::first_lanes;
use crate::cpu::winograd_wgrad::WgradPlan;
use crate::pool::PooledVec;

/// `gw [cout, cin/groups, 3, 3]` (overwritten) from `x` (strided rows, unit column stride) and
/// `gy` (contiguous).
///
/// # Safety
/// The CPU has AVX2 and FMA (`simd::as_f32` found it); the slices are as for
/// `conv::backward_weight`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn backward_weight(x: &[f32], xv: View4, gy: &[f32], g: &ConvGeom, gw: &mut [f32]) {
    debug_assert!(winograd4::applies(g, &xv));
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let plan = WgradPlan::new(g, 4, BAND_TILES);
    let (th, tw) = (plan.th, plan.tw);
    let (hp, wp) = (4 * th + 2, 4 * tw + 2);
    let (vl, zl) = (Band::new(cin_g, plan.row_tiles()), Band::new(cout_g, plan.row_tiles()));
    let run = |r: Range<usize>, threads: bool, du: &mut [f32]| {
        let mut p = PooledVec::<f32>::filled(cin_g * hp * wp + ROOM, 0.0);
        // Image j of a block is transformed into the slice starting j * tiles on; the products
        // read only the block's tiles.
        let extra = L + plan.block * th * tw;
        let mut v = PooledVec::<f32>::uninit(vl.len_for(XI) + extra);
        let mut z = PooledVec::<f32>::uninit(zl.len_for(XI) + extra);
        let mut loaded = None;
        for b in plan.blocks(r) {
            let grp = b.grp;
            for j in 0..b.images {
                if loaded != Some((b.n + j, grp)) {
                    pad_planes(x, &xv, g, b.n + j, grp, hp, wp, p.as_mut_slice());
                    loaded = Some((b.n + j, grp));
                }
                let gyg = &gy[((b.n + j) * g.cout + grp * cout_g) * g.oh * g.ow..][..cout_g * g.oh * g.ow];
                // SAFETY: AVX2 and FMA (this function's contract).
                unsafe {
                    input_transform(p.as_slice(), hp, wp, cin_g, b.rows.clone(), tw, &mut v.as_mut_slice()[j * b.ntiles..], vl);
                    grad_transform(gyg, cout_g, g.oh, g.ow, b.rows.clone(), tw, &mut z.as_mut_slice()[j * b.ntiles..], zl);
                }
            }
            let k = b.images * b.ntiles;
            for xi in 0..XI {
                let dst = &mut du[(grp * XI + xi) * cout_g * cin_g..][..cout_g * cin_g];
                // dU[ξ] += Z[ξ] [cout_g, k] · V[ξ]ᵀ, both along the tiles.
                let (zx, vx) = (&z.as_slice()[xi * zl.xs..], &v.as_slice()[xi * vl.xs..]);
                add_a_bt(cout_g, cin_g, k, zx, zl.rs, vx, vl.rs, dst, cin_g, threads);
            }
        }
    };
    let mut du = PooledVec::<f32>::filled(g.groups * XI * cout_g * cin_g, 0.0);
    sum_over_items(plan.items(g.n), plan.bands(), du.as_mut_slice(), run);
    untransform(du.as_slice(), g, gw);
}

/// `gw[co][ci] = G^T dU[.][co][ci] G` (3x3 from 6x6), in f64.
fn untransform(du: &[f32], g: &ConvGeom, gw: &mut [f32]) {
    // G^T: the columns of the forward's G.
    const GT: [[f64; 6]; 3] = [
        [0.25, -1.0 / 6.0, -1.0 / 6.0, 1.0 / 24.0, 1.0 / 24.0, 0.0],
        [0.0, -1.0 / 6.0, 1.0 / 6.0, 1.0 / 12.0, -1.0 / 12.0, 0.0],
        [0.0, -1.0 / 6.0, -1.0 / 6.0, 1.0 / 6.0, 1.0 / 6.0, 1.0],
    ];
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    for grp in 0..g.groups {
        for co in 0..cout_g {
            for ci in 0..cin_g {
                let mut u = [[0f64; 6]; 6];
                for (xi, ux) in u.iter_mut().flatten().enumerate() {
                    *ux = du[((grp * XI + xi) * cout_g + co) * cin_g + ci] as f64;
                }
                // R = G^T dU (3 x 6), then K = R G (3 x 3).
                let mut rm = [[0f64; 6]; 3];
                for (rr, gr) in rm.iter_mut().zip(&GT) {
                    for (c, rc) in rr.iter_mut().enumerate() {
                        *rc = (0..6).map(|i| gr[i] * u[i][c]).sum();
                    }
                }
                let k = &mut gw[((grp * cout_g + co) * cin_g + ci) * 9..][..9];
                for (r, rr) in rm.iter().enumerate() {
                    for (c, gc) in GT.iter().enumerate() {
                        k[r * 3 + c] = (0..6).map(|i| rr[i] * gc[i]).sum::<f64>() as f32;
                    }
                }
            }
        }
    }
}

/// `A y` for one column `y[0..4]` of a gradient tile (or `q A^T` for one row): `y0`,
/// `y0 + y1 + y2 + y3`, `y0 - y1 + y2 - y3`, `y0 + 2y1 + 4y2 + 8y3`, `y0 - 2y1 + 4y2 - 8y3`, `y3`
/// (the forward's A^T read by columns).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn a6(y: [__m256; 4]) -> [__m256; 6] {
    let (e, o) = (_mm256_add_ps(y[0], y[2]), _mm256_add_ps(y[1], y[3]));
    let e2 = _mm256_fmadd_ps(_mm256_set1_ps(4.0), y[2], y[0]);
    let o2 = _mm256_fmadd_ps(_mm256_set1_ps(8.0), y[3], _mm256_add_ps(y[1], y[1]));
    [y[0], _mm256_add_ps(e, o), _mm256_sub_ps(e, o), _mm256_add_ps(e2, o2), _mm256_sub_ps(e2, o2), y[3]]
}

/// `Z[ξ][c][tile] = (A dY A^T)[ξ]` for the tile rows `ty` of the `c` output-gradient planes `gy`
/// (`oh x ow`, contiguous); positions past `oh x ow` count as zero. Rows of fewer than 8 tiles
/// are one chunk whose lanes past `tw` are zeros, stored over the next tiles (written after
/// them) as in the input transform; `Z` needs `L` floats of room after its last channel.
#[allow(clippy::too_many_arguments)]
#[allow(clippy::needless_range_loop)] // the loops read columns of blocks held as rows
#[target_feature(enable = "avx2,fma")]
unsafe fn grad_transform(gy: &[f32], c: usize, oh: usize, ow: usize, ty: Range<usize>, tw: usize, z: &mut [f32], zl: Band) {
    assert!(ow.div_ceil(4) == tw && oh.div_ceil(4) >= ty.end && zl.rs >= ty.len() * tw && zl.xs >= c * zl.rs);
    assert!(gy.len() >= c * oh * ow && z.len() >= XI * zl.xs + L);
    let zp = z.as_mut_ptr();
    let zero = _mm256_setzero_ps();
    for ci in 0..c {
        let plane = &gy[ci * oh * ow..(ci + 1) * oh * ow];
        for (bi, y) in ty.clone().enumerate() {
            let o = ci * zl.rs + bi * tw;
            for k0 in chunk_starts(tw) {
                // dy[r][q] of tiles k0..k0 + 8: row 4y + r, column 4(k0 + l) + q (zero outside).
                let mut dy = [[zero; 4]; 4];
                for (r, dr) in dy.iter_mut().enumerate() {
                    let row = 4 * y + r;
                    if row >= oh {
                        break;
                    }
                    let src = &plane[row * ow + 4 * k0..(row + 1) * ow];
                    let mut vs = [zero; 4];
                    for (i, vi) in vs.iter_mut().enumerate() {
                        let at = i * L;
                        if at < src.len() {
                            // SAFETY: whole vectors inside `src`, the last one masked to it.
                            *vi = unsafe {
                                if at + L <= src.len() {
                                    _mm256_loadu_ps(src.as_ptr().add(at))
                                } else {
                                    _mm256_maskload_ps(src.as_ptr().add(at), first_lanes(src.len() - at).0)
                                }
                            };
                        }
                    }
                    *dr = deinterleave4_regs(vs);
                }
                // Q = A dy, column by column; then Z = Q A^T, row by row.
                let mut q = [[zero; 6]; 4];
                for (j, qj) in q.iter_mut().enumerate() {
                    *qj = a6([dy[0][j], dy[1][j], dy[2][j], dy[3][j]]);
                }
                for i in 0..6 {
                    let row = a6([q[0][i], q[1][i], q[2][i], q[3][i]]);
                    for (j, &val) in row.iter().enumerate() {
                        // SAFETY: ξ = 6i + j < 36 blocks of xs, o + k0 + 8 <= c*rs + L
                        // (asserted above).
                        unsafe { _mm256_storeu_ps(zp.add((6 * i + j) * zl.xs + o + k0), val) };
                    }
                }
            }
        }
    }
}
