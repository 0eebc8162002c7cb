//! Packed f32 matrix product (GotoBLAS/BLIS structure) with AVX-512 and AVX2+FMA microkernels,
//! picked at run time. `cpu::gemm::gemm` sends f32 products here when the CPU has either.
//!
//! Loops, outer to inner: `jc` over NC columns of B (the packed `kc x nc` B block lives in L3),
//! `pc` over KC steps of k, `ic` over MC rows of A (the packed `mc x kc` A block, sized for L2),
//! `jr` over NR-column B panels (one panel, `kc x NR`, stays in L1 while) `ir` runs over the
//! MR-row A panels of the block. Threads split C by whole tiles before all of this (see `drive`).
//!
//! The kernels vectorize along M and write C column by column, so a product whose C has unit
//! row stride runs as is, and one whose C has unit column stride (row-major, the usual case) runs
//! transposed: `C^T = B^T A^T`, which only swaps strides.

mod avx2;
mod avx512;
pub mod pack;

use std::cell::Cell;

use crate::cpu::fork_join;
use crate::cpu::gemm::{MatMut, MatRef};
use pack::AlignedBuf;

/// Instruction sets with a microkernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// 32 x 12 tiles in zmm registers.
    Avx512,
    /// 16 x 6 tiles in ymm registers.
    Avx2,
}

impl Isa {
    /// The best kernel this CPU runs, if any (`None` off x86-64 or without AVX2+FMA).
    pub fn detect() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                return Some(Isa::Avx512);
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Some(Isa::Avx2);
            }
        }
        None
    }

    /// Whether this CPU can run the kernel.
    pub fn supported(self) -> bool {
        match self {
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        }
    }

    /// Tile rows and columns of the kernel.
    pub fn tile(self) -> (usize, usize) {
        match self {
            Isa::Avx512 => (avx512::MR, avx512::NR),
            Isa::Avx2 => (avx2::MR, avx2::NR),
        }
    }

    /// Cache blocking for a 32 KiB L1d / 1 MiB L2 core (AMD Zen 4 here): KC keeps one B panel
    /// (`KC * NR * 4` bytes: 18 KiB for AVX-512, 6 KiB for AVX2) in L1 while A panels stream by,
    /// and is long enough that C's read-modify-write per tile is amortised; MC keeps the packed
    /// A block (`MC * KC * 4` = 576 KiB) in L2 next to the B panels passing through; NC bounds
    /// the shared B block (`KC * NC * 4` = 6 MiB) well inside L3. KC 384 / MC 384 measured best
    /// among KC 128..768 x MC 128..512 on n = 1024 and 2048 (crates/shendu-core/examples/sgemm_bench.rs).
    pub fn default_blocking(self) -> Blocking {
        match self {
            Isa::Avx512 => Blocking { kc: 384, mc: 384, nc: 4080 },
            Isa::Avx2 => Blocking { kc: 256, mc: 256, nc: 4080 },
        }
    }
}

/// Cache block sizes (rounded up to whole tiles when used).
#[derive(Clone, Copy, Debug)]
pub struct Blocking {
    /// Depth of one packed block.
    pub kc: usize,
    /// Rows of A packed per thread block.
    pub mc: usize,
    /// Columns of B packed per shared block.
    pub nc: usize,
}

type KernelFn = unsafe fn(usize, *const f32, *const f32, *mut f32, isize, isize, usize, usize, bool, f32);

/// `dst = (accumulate ? dst : 0) + lhs (m x k) · rhs (k x n)` with the given kernel, blocking
/// and thread count (1 = on the calling thread, no pool).
///
/// # Safety
/// `isa.supported()` must hold; the pointers and strides must describe valid memory of the given
/// sizes, `dst` not overlapping the operands nor itself.
#[allow(clippy::too_many_arguments)] // the gemm entry's operands plus kernel choices
pub unsafe fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: MatMut<f32>,
    accumulate: bool,
    lhs: MatRef<f32>,
    rhs: MatRef<f32>,
    nthreads: usize,
    isa: Isa,
    blocking: Blocking,
) {
    // SAFETY: forwarded contract.
    unsafe { sgemm_scaled(m, n, k, dst, accumulate, 1.0, lhs, rhs, nthreads, isa, blocking) }
}

/// [`sgemm`] with the product scaled: `dst = (accumulate ? dst : 0) + alpha · lhs · rhs`, the
/// scale applied to each tile's sums as they are written (a fused `var -= lr · xᵀ·dy` update).
///
/// # Safety
/// As for [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm_scaled(
    m: usize,
    n: usize,
    k: usize,
    dst: MatMut<f32>,
    accumulate: bool,
    alpha: f32,
    lhs: MatRef<f32>,
    rhs: MatRef<f32>,
    nthreads: usize,
    isa: Isa,
    blocking: Blocking,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    // SAFETY: (i, j) is inside dst.
                    unsafe { *dst.ptr.offset(i as isize * dst.rs + j as isize * dst.cs) = 0.0 };
                }
            }
        }
        return;
    }
    // Kernels store columns of C; make C's unit stride the row stride when it has one.
    let transpose = dst.rs != 1 && (dst.cs == 1 || m == 1);
    let (m, n, dst, lhs, rhs) = if transpose {
        let t = |x: MatRef<f32>| MatRef { ptr: x.ptr, rs: x.cs, cs: x.rs };
        (n, m, MatMut { ptr: dst.ptr, rs: dst.cs, cs: dst.rs }, t(rhs), t(lhs))
    } else {
        (m, n, dst, lhs, rhs)
    };
    let p = Problem { m, n, k, c: dst, accumulate, alpha, a: lhs, b: rhs, nthreads: nthreads.max(1), blocking };
    // SAFETY: forwarded contract; the isa's kernel matches the tile constants used.
    unsafe {
        match isa {
            Isa::Avx512 => drive::<{ avx512::MR }, { avx512::NR }>(&p, avx512::kernel),
            Isa::Avx2 => drive::<{ avx2::MR }, { avx2::NR }>(&p, avx2::kernel),
        }
    }
}

#[derive(Clone, Copy)]
struct Problem {
    m: usize,
    n: usize,
    k: usize,
    c: MatMut<f32>,
    accumulate: bool,
    alpha: f32,
    a: MatRef<f32>,
    b: MatRef<f32>,
    nthreads: usize,
    blocking: Blocking,
}

// SAFETY: the pointers are only dereferenced during `sgemm`, whose caller guarantees validity;
// threads write disjoint tiles of C and disjoint panels of the packed B block.
unsafe impl Sync for Problem {}

thread_local! {
    static A_BUF: Cell<AlignedBuf> = Cell::new(AlignedBuf::default());
    static B_BUF: Cell<AlignedBuf> = Cell::new(AlignedBuf::default());
}

/// Splits `len` into `ceil(len / max)` near-equal blocks, each a multiple of `unit` except the last.
fn block_size(len: usize, max: usize, unit: usize) -> usize {
    let blocks = len.div_ceil(max.max(1));
    len.div_ceil(blocks).div_ceil(unit) * unit
}

/// Runs `f` over `0..n` split into `chunks` near-equal ranges, on the pool when `chunks > 1`.
fn for_ranges(n: usize, chunks: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    let chunks = chunks.min(n);
    if chunks <= 1 {
        f(0..n);
        return;
    }
    fork_join::run_chunks(chunks, &|c| f(c * n / chunks..(c + 1) * n / chunks));
}

/// Splits C between threads by whole tiles, each thread running the single-threaded loops on its
/// part with its own packed blocks: one fork-join per product and no barriers. The split runs
/// along the longer side (in tiles), so the operand every thread packs in full (A when splitting
/// columns, B when splitting rows) is the smaller one; packing it twice costs `T / n` of the work.
unsafe fn drive<const MR: usize, const NR: usize>(p: &Problem, kernel: KernelFn) {
    let (m_tiles, n_tiles) = (p.m.div_ceil(MR), p.n.div_ceil(NR));
    let threads = p.nthreads.min(m_tiles.max(n_tiles));
    if threads <= 1 {
        // SAFETY: forwarded contract.
        unsafe { drive_single::<MR, NR>(p, kernel) };
        return;
    }
    // Each thread packs in full the operand along the side it does not split: A (m x k) when
    // splitting columns, B (k x n) when splitting rows. Pack the smaller one twice (a Linear
    // layer's transposed product has m = 512 weights rows against n = 128 batch columns).
    let split_cols = (p.n >= p.m && n_tiles >= threads) || m_tiles < threads;
    let tiles = if split_cols { n_tiles } else { m_tiles };
    for_ranges(tiles, threads, |r| {
        let mut sub = Problem { nthreads: 1, ..*p };
        // SAFETY: the offsets stay inside the operands; each task writes its own C rows/columns.
        unsafe {
            if split_cols {
                let (j0, j1) = (r.start * NR, (r.end * NR).min(p.n));
                sub.n = j1 - j0;
                sub.b.ptr = p.b.ptr.offset(j0 as isize * p.b.cs);
                sub.c.ptr = p.c.ptr.offset(j0 as isize * p.c.cs);
            } else {
                let (i0, i1) = (r.start * MR, (r.end * MR).min(p.m));
                sub.m = i1 - i0;
                sub.a.ptr = p.a.ptr.offset(i0 as isize * p.a.rs);
                sub.c.ptr = p.c.ptr.offset(i0 as isize * p.c.rs);
            }
            drive_single::<MR, NR>(&sub, kernel)
        }
    });
}

unsafe fn drive_single<const MR: usize, const NR: usize>(p: &Problem, kernel: KernelFn) {
    let (m, n, k) = (p.m, p.n, p.k);
    let kc_max = block_size(k, p.blocking.kc, 1);
    let nc_max = block_size(n, p.blocking.nc, NR);
    let mc_max = block_size(m, p.blocking.mc, MR);
    let mut b_buf = B_BUF.with(|b| b.take());
    let b_pack = b_buf.reserve(nc_max.div_ceil(NR) * NR * kc_max);
    for jc in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - jc);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            let add = p.accumulate || pc > 0;
            // SAFETY: rows pc..pc+kc and columns jc..jc+nc are inside B; b_pack holds the block;
            // C column jc is inside C.
            unsafe {
                pack::pack_b::<NR>(kc, 0, nc, p.b.ptr.offset(pc as isize * p.b.rs + jc as isize * p.b.cs), p.b.rs, p.b.cs, b_pack);
                let c0 = p.c.ptr.offset(jc as isize * p.c.cs);
                block_rows::<MR, NR>(p, kernel, 0..m, mc_max, pc, kc, b_pack, 0..nc.div_ceil(NR), nc, c0, add);
            }
        }
    }
    B_BUF.with(|b| b.set(b_buf));
}

/// Packs rows `rows` of A (in blocks of `mc_max`) and multiplies them by B panels `panels`.
#[allow(clippy::too_many_arguments)]
unsafe fn block_rows<const MR: usize, const NR: usize>(
    p: &Problem,
    kernel: KernelFn,
    rows: std::ops::Range<usize>,
    mc_max: usize,
    pc: usize,
    kc: usize,
    b_pack: *const f32,
    panels: std::ops::Range<usize>,
    nc: usize,
    c0: *mut f32,
    add: bool,
) {
    let mut a_buf = A_BUF.with(|b| b.take());
    let a_pack = a_buf.reserve(mc_max.div_ceil(MR) * MR * kc);
    let mut ic = rows.start;
    while ic < rows.end {
        let mc = mc_max.min(rows.end - ic);
        // SAFETY: rows ic..ic+mc and columns pc..pc+kc are inside A; a_pack holds the block.
        unsafe { pack::pack_a::<MR>(mc, kc, p.a.ptr.offset(ic as isize * p.a.rs + pc as isize * p.a.cs), p.a.rs, p.a.cs, a_pack) };
        for jp in panels.clone() {
            let j = jp * NR;
            let nr = NR.min(nc - j);
            for i in (0..mc).step_by(MR) {
                let mr = MR.min(mc - i);
                // SAFETY: panel pointers stay in the packed blocks; the tile (ic+i, j) of size
                // mr x nr is inside C and owned by this task.
                unsafe {
                    let c = c0.offset((ic + i) as isize * p.c.rs + j as isize * p.c.cs);
                    kernel(kc, a_pack.add(i * kc), b_pack.add(j * kc), c, p.c.rs, p.c.cs, mr, nr, add, p.alpha);
                }
            }
        }
        ic += mc;
    }
    A_BUF.with(|b| b.set(a_buf));
}
