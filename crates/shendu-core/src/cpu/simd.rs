//! Run-time choice between an AVX2+FMA build of a kernel and the portable one.
//!
//! The binary targets baseline x86-64, so loops written plainly compile to 4-wide SSE without
//! FMA. A [`SimdKernel`] is compiled twice: once inside a `#[target_feature(enable =
//! "avx2,fma")]` function (its loops vectorise 8-wide with fused multiply-adds), and once
//! portable. Kernels write `A::madd(a, b, c)` for `a*b + c`; `A` is [`Fused`] (one `vfmadd`) or
//! [`Unfused`] (`mul` + `add`, because `mul_add` without the FMA feature is a slow library call).

use std::sync::atomic::{AtomicU8, Ordering};

use crate::dtype::Float;

/// `a*b + c`, fused or not.
pub trait Madd: Copy + Send + Sync + 'static {
    fn madd<T: Float>(a: T, b: T, c: T) -> T;
}

/// `a.mul_add(b, c)`: only used inside AVX2+FMA functions.
#[derive(Clone, Copy, Debug)]
pub struct Fused;
impl Madd for Fused {
    #[inline(always)]
    fn madd<T: Float>(a: T, b: T, c: T) -> T {
        a.mul_add(b, c)
    }
}

/// `a*b + c` with two roundings: the portable fallback.
#[derive(Clone, Copy, Debug)]
pub struct Unfused;
impl Madd for Unfused {
    #[inline(always)]
    fn madd<T: Float>(a: T, b: T, c: T) -> T {
        a * b + c
    }
}

/// 0: not probed yet, 1: use FMA, 2: portable.
static MODE: AtomicU8 = AtomicU8::new(0);

/// True when the AVX2+FMA kernels run (the CPU has them and they were not switched off by
/// `SHENDU_NO_SIMD=1` or [`set_simd_enabled`]).
pub fn fma_enabled() -> bool {
    match MODE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = detect() && std::env::var("SHENDU_NO_SIMD").map(|v| v.is_empty() || v == "0").unwrap_or(true);
            MODE.store(if on { 1 } else { 2 }, Ordering::Relaxed);
            on
        }
    }
}

/// Switches the AVX2+FMA kernels on (if the CPU has them) or off, e.g. to test the fallback.
pub fn set_simd_enabled(on: bool) {
    MODE.store(if on && detect() { 1 } else { 2 }, Ordering::Relaxed);
}

fn detect() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A kernel compiled twice: [`dispatch`] runs it as `run::<Fused>` inside an AVX2+FMA
/// function when the CPU has them, else as `run::<Unfused>`. Implementations mark `run`
/// `#[inline(always)]`, so that its body is compiled inside the feature-enabled function (a
/// closure would not do: LLVM may keep a large closure out of line, compiled for baseline x86-64).
pub trait SimdKernel {
    type Out;
    fn run<A: Madd>(self) -> Self::Out;
}

/// Runs `k` with the best `Madd` this CPU allows.
pub fn dispatch<K: SimdKernel>(k: K) -> K::Out {
    #[cfg(target_arch = "x86_64")]
    if fma_enabled() {
        // SAFETY: fma_enabled() checked the CPU features.
        return unsafe { run_fma(k) };
    }
    k.run::<Unfused>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_fma<K: SimdKernel>(k: K) -> K::Out {
    k.run::<Fused>()
}

/// `Some(f32 slice)` when `T` is f32 and the AVX2+FMA kernels run.
pub(crate) fn as_f32<T: 'static>(s: &[T]) -> Option<&[f32]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && fma_enabled() {
        // SAFETY: T is f32.
        Some(unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) })
    } else {
        None
    }
}

/// The mutable form of [`as_f32`].
pub(crate) fn as_f32_mut<T: 'static>(s: &mut [T]) -> Option<&mut [f32]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && fma_enabled() {
        // SAFETY: T is f32.
        Some(unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) })
    } else {
        None
    }
}

/// Transposes an 8x8 block of f32 held as eight rows: element `j` of row `i` becomes element
/// `i` of row `j` (24 shuffles; the same function undoes itself).
///
/// # Safety
/// The CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
pub(crate) unsafe fn transpose8(x: [std::arch::x86_64::__m256; 8]) -> [std::arch::x86_64::__m256; 8] {
    use std::arch::x86_64::*;
    let (t0, t1) = (_mm256_unpacklo_ps(x[0], x[1]), _mm256_unpackhi_ps(x[0], x[1]));
    let (t2, t3) = (_mm256_unpacklo_ps(x[2], x[3]), _mm256_unpackhi_ps(x[2], x[3]));
    let (t4, t5) = (_mm256_unpacklo_ps(x[4], x[5]), _mm256_unpackhi_ps(x[4], x[5]));
    let (t6, t7) = (_mm256_unpacklo_ps(x[6], x[7]), _mm256_unpackhi_ps(x[6], x[7]));
    let (s0, s1) = (_mm256_shuffle_ps::<0x44>(t0, t2), _mm256_shuffle_ps::<0xEE>(t0, t2));
    let (s2, s3) = (_mm256_shuffle_ps::<0x44>(t1, t3), _mm256_shuffle_ps::<0xEE>(t1, t3));
    let (s4, s5) = (_mm256_shuffle_ps::<0x44>(t4, t6), _mm256_shuffle_ps::<0xEE>(t4, t6));
    let (s6, s7) = (_mm256_shuffle_ps::<0x44>(t5, t7), _mm256_shuffle_ps::<0xEE>(t5, t7));
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ]
}
