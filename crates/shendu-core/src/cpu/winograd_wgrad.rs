//! The weight gradient of a 3x3 stride-1 convolution through Winograd F(2x2, 3x3).
//!
//! The forward is `Y = A^T [(G g G^T) ⊙ (B^T d B)] A` per tile, so for a loss `L`,
//! `dL/dU = Σ_tiles (A dY A^T) ⊙ (B^T d B)` and `dL/dg = G^T (dL/dU) G`. Per band of tiles:
//! the input transform of the forward (`V[ξ] [cin, tiles]`), the output-gradient transform
//! `Z[ξ] [cout, tiles]`, and 16 gemms `dU[ξ] += Z[ξ] · V[ξ]^T` (2.25x fewer multiply-adds than
//! the im2col gemm); the 16 x cout x cin sums are turned into 3x3 kernels at the end.

use std::ops::Range;

use crate::cpu::conv::{ConvElem, ConvGeom, View4};
use crate::cpu::conv_threads::sum_over_items;
use crate::cpu::gemm_nt::add_a_bt;
use crate::cpu::simd::{dispatch, Madd, SimdKernel};
use crate::cpu::winograd::{chunk_starts, input_transform, lanes, load_padded, narrow_tiles, Band, BAND_TILES, L};
#[cfg(target_arch = "x86_64")]
use crate::cpu::winograd_avx2;
use crate::dtype::Float;
use crate::pool::PooledVec;

/// Tiles summed per product when a block of images shares one (see [`WgradPlan`]): 4 images
/// of an 8x8 map, whose V and Z (16 x 64 channels x 64 tiles each) stay in L2.
const BLOCK_TILES: usize = 64;

/// How a Winograd weight gradient (F(2x2) here, F(4x4) in `winograd4_wgrad`) cuts its work:
/// items (image, group, band of tile rows), and on one-band maps without groups, blocks of
/// consecutive images whose tiles sit side by side in V and Z and share one product per ξ.
pub(crate) struct WgradPlan {
    /// Tile rows and columns per image.
    pub th: usize,
    pub tw: usize,
    band_rows: usize,
    bands: usize,
    groups: usize,
    /// Images per block (1: no blocks).
    pub block: usize,
}

/// One block of items: images `n..n + images` of group `grp`, tile rows `rows` of each
/// (`ntiles` tiles per image).
pub(crate) struct WgradBlock {
    pub n: usize,
    pub grp: usize,
    pub rows: Range<usize>,
    pub ntiles: usize,
    pub images: usize,
}

impl WgradPlan {
    /// The plan for `tile x tile` output tiles and bands of about `band_tiles` tiles.
    pub(crate) fn new(g: &ConvGeom, tile: usize, band_tiles: usize) -> WgradPlan {
        let (th, tw) = (g.oh.div_ceil(tile), g.ow.div_ceil(tile));
        let band_rows = (band_tiles / tw).clamp(1, th);
        let bands = th.div_ceil(band_rows);
        // A map that is one band of few tiles (ResNet's 8x8 stage: 16) has its products summed
        // over several images at once.
        let block = if bands == 1 && g.groups == 1 { (BLOCK_TILES / (th * tw)).max(1) } else { 1 };
        WgradPlan { th, tw, band_rows, bands, groups: g.groups, block }
    }

    /// Work items of a batch of `n` images.
    pub(crate) fn items(&self, n: usize) -> usize {
        n * self.groups * self.bands
    }

    /// Items per image and group (the unit `sum_over_items` keeps together).
    pub(crate) fn bands(&self) -> usize {
        self.bands
    }

    /// Tiles per channel row of V and Z: a band, or a block with room for the scratch lanes a
    /// narrow row's transform writes past its last image.
    pub(crate) fn row_tiles(&self) -> usize {
        if self.block > 1 {
            self.block * self.th * self.tw + L
        } else {
            self.band_rows * self.tw
        }
    }

    /// The blocks of the items `r`, in order (with blocks, items are images: one group, one
    /// band).
    pub(crate) fn blocks(&self, r: Range<usize>) -> impl Iterator<Item = WgradBlock> + '_ {
        let mut item = r.start;
        std::iter::from_fn(move || {
            if item >= r.end {
                return None;
            }
            let (n, grp, band) = (item / (self.groups * self.bands), (item / self.bands) % self.groups, item % self.bands);
            let rows = band * self.band_rows..((band + 1) * self.band_rows).min(self.th);
            let images = self.block.min(r.end - item);
            item += images;
            Some(WgradBlock { n, grp, ntiles: rows.len() * self.tw, rows, images })
        })
    }
}

/// `gw [cout, cin/groups, 3, 3]` (overwritten) from `x` (strided) and `gy` (contiguous), for a
/// geometry where [`super::winograd::applies`] holds.
pub fn backward_weight<T: ConvElem>(x: &[T], xv: View4, gy: &[T], g: &ConvGeom, gw: &mut [T]) {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let du_len = g.groups * 16 * cout_g * cin_g;
    let plan = WgradPlan::new(g, 2, BAND_TILES);
    let (th, tw) = (plan.th, plan.tw);
    let (vl, zl) = (Band::new(cin_g, plan.row_tiles()), Band::new(cout_g, plan.row_tiles()));
    // Each range of (image, group, band) items sums into its own dU; the sums are added in
    // range order.
    let run = |r: Range<usize>, threads: bool, du: &mut [T]| {
        let (hp, wp) = (2 * th + 2, 2 * tw + 2);
        // L floats more, as in the forward.
        let mut p = PooledVec::<T>::filled(cin_g * hp * wp + L, <T as Float>::ZERO);
        // Image j of a block is transformed into the slice starting j * tiles on.
        let mut v = PooledVec::<T>::uninit(vl.len() + plan.block * th * tw);
        let mut z = PooledVec::<T>::uninit(zl.len() + plan.block * th * tw);
        let mut loaded = None;
        for b in plan.blocks(r) {
            let grp = b.grp;
            for j in 0..b.images {
                if loaded != Some((b.n + j, grp)) {
                    load_padded(x, &xv, g, b.n + j, grp, hp, wp, p.as_mut_slice());
                    loaded = Some((b.n + j, grp));
                }
                let gyg = &gy[((b.n + j) * g.cout + grp * cout_g) * g.oh * g.ow..][..cout_g * g.oh * g.ow];
                input_transform(p.as_slice(), hp, wp, cin_g, b.rows.clone(), tw, &mut v.as_mut_slice()[j * b.ntiles..], vl);
                grad_transform(gyg, cout_g, g.oh, g.ow, b.rows.clone(), tw, &mut z.as_mut_slice()[j * b.ntiles..], zl);
            }
            let k = b.images * b.ntiles;
            for xi in 0..16 {
                let dst = &mut du[(grp * 16 + xi) * cout_g * cin_g..][..cout_g * cin_g];
                // dU[ξ] += Z[ξ] [cout_g, k] · V[ξ]ᵀ, both along the tiles.
                let (zx, vx) = (&z.as_slice()[xi * zl.xs..], &v.as_slice()[xi * vl.xs..]);
                add_a_bt(cout_g, cin_g, k, zx, zl.rs, vx, vl.rs, dst, cin_g, threads);
            }
        }
    };
    let mut du = PooledVec::<T>::filled(du_len, <T as Float>::ZERO);
    sum_over_items(plan.items(g.n), plan.bands(), du.as_mut_slice(), run);
    untransform(du.as_slice(), g, gw);
}

/// `gw[co][ci] = G^T dU[.][co][ci] G` (3x3 from 4x4).
fn untransform<T: ConvElem>(du: &[T], g: &ConvGeom, gw: &mut [T]) {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let half = T::from_f64(0.5);
    // G^T rows applied to 4 values: [u0 + (u1 + u2)/2, (u1 - u2)/2, (u1 + u2)/2 + u3]
    let gt = |u: [T; 4]| [u[0] + (u[1] + u[2]) * half, (u[1] - u[2]) * half, (u[1] + u[2]) * half + u[3]];
    for grp in 0..g.groups {
        for co in 0..cout_g {
            for ci in 0..cin_g {
                let at = |xi: usize| du[((grp * 16 + xi) * cout_g + co) * cin_g + ci];
                // R = G^T dU (3 x 4), column by column
                let cols: [[T; 3]; 4] = std::array::from_fn(|c| gt([at(c), at(4 + c), at(8 + c), at(12 + c)]));
                let k = &mut gw[((grp * cout_g + co) * cin_g + ci) * 9..][..9];
                for r in 0..3 {
                    let row = gt([cols[0][r], cols[1][r], cols[2][r], cols[3][r]]);
                    k[r * 3..r * 3 + 3].copy_from_slice(&row);
                }
            }
        }
    }
}

/// [`GradTransform`], through the AVX2 kernel where it applies.
#[allow(clippy::too_many_arguments)]
fn grad_transform<T: ConvElem>(gy: &[T], c: usize, oh: usize, ow: usize, ty: Range<usize>, tw: usize, z: &mut [T], zl: Band) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(gy), Some(z)) = (crate::cpu::simd::as_f32(gy), crate::cpu::simd::as_f32_mut(z)) {
        // SAFETY: as_f32 checked that the CPU has AVX2 and FMA.
        return unsafe { winograd_avx2::grad_transform(gy, c, oh, ow, ty, tw, z, zl) };
    }
    dispatch(GradTransform { gy, c, oh, ow, ty, tw, z, zl });
}

/// `Z[ξ][c][tile] = (A dY A^T)[ξ]` for the tiles of tile rows `ty`; output positions past
/// `oh x ow` count as zero.
struct GradTransform<'a, T> {
    gy: &'a [T],
    c: usize,
    oh: usize,
    ow: usize,
    ty: Range<usize>,
    tw: usize,
    z: &'a mut [T],
    zl: Band,
}

/// The 16 values `Z = A dY A^T` of L tiles from their 2x2 output gradients: `a0, b0` the left
/// and right columns of the top row, `a1, b1` of the bottom row.
#[inline(always)]
fn grad_tiles<T: ConvElem>(a0: [T; L], b0: [T; L], a1: [T; L], b1: [T; L]) -> [[T; L]; 16] {
    // Q = A dY: rows [dy0, dy0 + dy1, dy0 - dy1, -dy1]; then Z = Q A^T per row: [a, a + b, a - b, -b]
    let q: [([T; L], [T; L]); 4] = [
        (a0, b0),
        (lanes(|l| a0[l] + a1[l]), lanes(|l| b0[l] + b1[l])),
        (lanes(|l| a0[l] - a1[l]), lanes(|l| b0[l] - b1[l])),
        (lanes(|l| -a1[l]), lanes(|l| -b1[l])),
    ];
    std::array::from_fn(|xi| {
        let (a, b) = q[xi / 4];
        match xi % 4 {
            0 => a,
            1 => lanes(|l| a[l] + b[l]),
            2 => lanes(|l| a[l] - b[l]),
            _ => lanes(|l| -b[l]),
        }
    })
}

impl<T: ConvElem> SimdKernel for GradTransform<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run<A: Madd>(self) {
        let GradTransform { gy, c, oh, ow, ty, tw, z, zl } = self;
        let stride = zl.xs;
        if tw < L {
            // Chunks over the band's tile rows, each lane gathering its own tile (as the input
            // transform's narrow path); whole chunks are stored (k0 + L <= zl.rs).
            for k0 in chunk_starts(ty.len() * tw) {
                let at = narrow_tiles(&ty, tw, k0).map(|(y, x)| (2 * y, 2 * x));
                for ci in 0..c {
                    let plane = &gy[ci * oh * ow..(ci + 1) * oh * ow];
                    let dy = |r: usize, s: usize| {
                        lanes(|l| {
                            let (y, x) = (at[l].0 + r, at[l].1 + s);
                            if y < oh && x < ow {
                                plane[y * ow + x]
                            } else {
                                <T as Float>::ZERO
                            }
                        })
                    };
                    let t = grad_tiles(dy(0, 0), dy(0, 1), dy(1, 0), dy(1, 1));
                    for (xi, tv) in t.iter().enumerate() {
                        let o = xi * stride + ci * zl.rs + k0;
                        z[o..o + L].copy_from_slice(tv);
                    }
                }
            }
            return;
        }
        // Two output-gradient rows, de-interleaved and zero-padded to whole chunks.
        let mut rows = vec![<T as Float>::ZERO; 4 * tw];
        for ci in 0..c {
            let plane = &gy[ci * oh * ow..(ci + 1) * oh * ow];
            for (bi, y) in ty.clone().enumerate() {
                for r in 0..2 {
                    let (even, odd) = rows[2 * r * tw..2 * (r + 1) * tw].split_at_mut(tw);
                    even.fill(<T as Float>::ZERO);
                    odd.fill(<T as Float>::ZERO);
                    if 2 * y + r < oh {
                        let src = &plane[(2 * y + r) * ow..(2 * y + r + 1) * ow];
                        for (k, &v) in src.iter().enumerate() {
                            if k % 2 == 0 {
                                even[k / 2] = v;
                            } else {
                                odd[k / 2] = v;
                            }
                        }
                    }
                }
                let o = ci * zl.rs + bi * tw;
                for k0 in chunk_starts(tw) {
                    let ld = |r: usize, odd: usize| -> [T; L] {
                        let s = &rows[(2 * r + odd) * tw + k0..][..L];
                        lanes(|l| s[l])
                    };
                    let t = grad_tiles(ld(0, 0), ld(0, 1), ld(1, 0), ld(1, 1));
                    for (xi, tv) in t.iter().enumerate() {
                        let at = xi * stride + o + k0;
                        z[at..at + L].copy_from_slice(tv);
                    }
                }
            }
        }
    }
}
