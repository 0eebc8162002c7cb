//! Strided matrix products. f32 on x86-64 with AVX2+FMA or AVX-512 runs shendu's packed kernels
//! (`cpu::sgemm`); f64 and other CPUs run the `gemm` crate. Both take arbitrary row and column
//! strides, so transposed views need no copy.

#[cfg(target_arch = "x86_64")]
use std::any::TypeId;

use gemm::Parallelism;

use crate::cpu::elementwise::SendPtr;
use crate::cpu::threads;

/// Element types with a gemm kernel.
pub trait GemmElem: Copy + Send + Sync + 'static {
    const ZERO: Self;
    const ONE: Self;
}
impl GemmElem for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}
impl GemmElem for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// A strided matrix operand: pointer to element (0, 0), row stride, column stride (in elements).
#[derive(Clone, Copy)]
pub struct MatRef<T> {
    pub ptr: *const T,
    pub rs: isize,
    pub cs: isize,
}

#[derive(Clone, Copy)]
pub struct MatMut<T> {
    pub ptr: *mut T,
    pub rs: isize,
    pub cs: isize,
}

/// Below this many multiply-adds a single thread is faster than waking the pool.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// f32 products with an output side below this (matrix-vector-like) or fewer multiply-adds run the
/// `gemm` crate: packing costs more than it saves there (1 x 512 x 784: 9 vs 23 GFLOP/s; 64^3:
/// 74 vs 89), while from 16 x 512 x 784 and 64 x 1024 x 64 up the packed kernels are as fast or faster.
const PACKED_MIN_SIDE: usize = 16;
const PACKED_MIN_MACS: usize = 1 << 19;

/// `dst = (accumulate ? dst : 0) + lhs (m x k) · rhs (k x n)`.
///
/// # Safety
/// The pointers and strides must describe valid, non-overlapping (for `dst`) memory of the
/// given sizes for the duration of the call.
#[allow(clippy::too_many_arguments)] // the gemm crate's own signature, split into operands
pub unsafe fn gemm<T: GemmElem>(
    m: usize,
    n: usize,
    k: usize,
    dst: MatMut<T>,
    accumulate: bool,
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    allow_threads: bool,
) {
    // SAFETY: forwarded contract.
    unsafe { gemm_scaled(m, n, k, dst, accumulate, T::ONE, lhs, rhs, allow_threads) }
}

/// [`gemm`] with the product scaled: `dst = (accumulate ? dst : 0) + alpha · lhs · rhs` (the
/// graph executor's `var -= lr · xᵀ·dy` in one pass, without the gradient's buffer).
///
/// # Safety
/// As for [`gemm`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_scaled<T: GemmElem>(
    m: usize,
    n: usize,
    k: usize,
    dst: MatMut<T>,
    accumulate: bool,
    alpha: T,
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    allow_threads: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>() && m.min(n) >= PACKED_MIN_SIDE && m * n * k >= PACKED_MIN_MACS {
        if let Some(isa) = crate::cpu::sgemm::Isa::detect() {
            let nthreads = if allow_threads && m * n * k >= PARALLEL_MIN_MACS { threads::num_threads() } else { 1 };
            let f = |x: MatRef<T>| MatRef { ptr: x.ptr as *const f32, rs: x.rs, cs: x.cs };
            let dst = MatMut { ptr: dst.ptr as *mut f32, rs: dst.rs, cs: dst.cs };
            // SAFETY: T is f32 (checked above), so the casts are identities; the kernel is
            // supported (detected); the caller's contract covers the memory.
            unsafe {
                let alpha = *(&alpha as *const T as *const f32);
                crate::cpu::sgemm::sgemm_scaled(m, n, k, dst, accumulate, alpha, f(lhs), f(rhs), nthreads, isa, isa.default_blocking())
            };
            return;
        }
    }
    // SAFETY: forwarded contract.
    unsafe { gemm_crate_scaled(m, n, k, dst, accumulate, alpha, lhs, rhs, allow_threads) }
}

/// [`gemm`] through the `gemm` crate for every element type (the fallback for f64 and for CPUs
/// without shendu's f32 kernels; public so tests and benchmarks can compare against it).
///
/// # Safety
/// As for [`gemm`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_crate<T: GemmElem>(
    m: usize,
    n: usize,
    k: usize,
    dst: MatMut<T>,
    accumulate: bool,
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    allow_threads: bool,
) {
    // SAFETY: forwarded contract.
    unsafe { gemm_crate_scaled(m, n, k, dst, accumulate, T::ONE, lhs, rhs, allow_threads) }
}

#[allow(clippy::too_many_arguments)]
unsafe fn gemm_crate_scaled<T: GemmElem>(
    m: usize,
    n: usize,
    k: usize,
    dst: MatMut<T>,
    accumulate: bool,
    alpha: T,
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    allow_threads: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let nthreads = if allow_threads && m * n * k >= PARALLEL_MIN_MACS { threads::num_threads() } else { 1 };
    // SAFETY (for every call below): a band is a block of rows or columns of the caller's
    // operands, which the contract covers; the bands of `dst` are disjoint.
    let run = |m: usize, n: usize, dst: MatMut<T>, lhs: MatRef<T>, rhs: MatRef<T>| unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.cs,
            dst.rs,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            T::ONE,
            alpha,
            false,
            false,
            false,
            Parallelism::None,
        )
    };
    // Threads split the longer side of `dst` into bands, each one product of the crate on one
    // thread, through the kernels' fork-join (the crate's own threads are rayon's, which sleep
    // between products and cost a wake-up per product).
    let bands = nthreads.min(m.max(n) / 8).max(1);
    let (d0, l0, r0) = (SendPtr(dst.ptr), SendPtr(lhs.ptr as *mut T), SendPtr(rhs.ptr as *mut T));
    let ((drs, dcs), (lrs, lcs), (rrs, rcs)) = ((dst.rs, dst.cs), (lhs.rs, lhs.cs), (rhs.rs, rhs.cs));
    crate::cpu::fork_join::run_chunks(bands, &|b| {
        let (d0, l0, r0) = (d0, l0, r0); // the Send wrappers, not their raw fields
        let (rows, cols) = if m >= n { (b * m / bands..(b + 1) * m / bands, 0..n) } else { (0..m, b * n / bands..(b + 1) * n / bands) };
        let (i, j) = (rows.start as isize, cols.start as isize);
        // SAFETY: rows `rows` and columns `cols` of the caller's operands.
        let (d, l, r) = unsafe { (d0.0.offset(i * drs + j * dcs), l0.0.offset(i * lrs), r0.0.offset(j * rcs)) };
        run(
            rows.len(),
            cols.len(),
            MatMut { ptr: d, rs: drs, cs: dcs },
            MatRef { ptr: l, rs: lrs, cs: lcs },
            MatRef { ptr: r, rs: rrs, cs: rcs },
        );
    });
}
