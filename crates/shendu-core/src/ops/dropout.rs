//! Inverted dropout: in training, multiply by a mask of 0 and 1/(1-p), so evaluation needs no
//! rescaling; in evaluation, the identity. The product with the mask is an ordinary `mul`, so
//! the gradient is the same mask.

use crate::cpu::elementwise::SendPtr;
use crate::cpu::threads::parallel_ranges;
use crate::dtype::{Float, WithDType};
use crate::pool::PooledVec;
use crate::{with_float, DType, Error, Result, Rng, Shape, Tensor};

/// Entries per independently seeded block of a mask.
const BLOCK: usize = 1 << 16;

fn check_p(op: &'static str, p: f64) -> Result<()> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::invalid(op, format!("drop probability p = {p} must be in [0, 1)")));
    }
    Ok(())
}

fn mask(op: &'static str, shape: Shape, p: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    check_p(op, p)?;
    if !dtype.is_float() {
        return Err(Error::unsupported_dtype(op, dtype, "a float dtype"));
    }
    let scale = 1.0 / (1.0 - p);
    // An entry drops when 32 random bits fall below p * 2^32 (p honoured to 2^-32); each
    // 64-bit draw decides two entries.
    let threshold = (p * 4_294_967_296.0) as u64;
    let n = shape.elem_count();
    // One seed per block, drawn in order, so the mask depends on the generator alone and not
    // on how many threads fill the blocks.
    let seeds: Vec<u64> = (0..n.div_ceil(BLOCK)).map(|_| rng.next_u64()).collect();
    let fill = |dtype: DType| {
        with_float!(dtype, op, |T| {
            let keep = T::from_f64(scale);
            let mut out = PooledVec::<T>::uninit(n);
            let dst = SendPtr(out.as_mut_slice().as_mut_ptr());
            parallel_ranges(seeds.len(), 1, |blocks| {
                for b in blocks {
                    // SAFETY: each block index writes its own range of `out`.
                    let o = unsafe { dst.slice_mut(b * BLOCK..((b + 1) * BLOCK).min(n)) };
                    fill_block(o, seeds[b], threshold, keep);
                }
            });
            Ok(Tensor::from_pooled(out, shape.clone()))
        })
    };
    match dtype {
        DType::F16 | DType::BF16 => fill(DType::F32)?.to_dtype(dtype),
        _ => fill(dtype),
    }
}

/// SplitMix64 over a block's seed: a generator small enough to inline in the hot loop (a
/// call per draw costs more than the draw).
#[inline(always)]
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Float types whose value can be kept or zeroed by masking its bits.
trait MaskBits: Float {
    /// `self` when `keep`, else +0.0, by integer masking: a float select compiles to a branch,
    /// and a random mask mispredicts it half the time.
    fn keep_if(self, keep: bool) -> Self;
}

impl MaskBits for f32 {
    #[inline(always)]
    fn keep_if(self, keep: bool) -> Self {
        f32::from_bits(self.to_bits() & (keep as u32).wrapping_neg())
    }
}

impl MaskBits for f64 {
    #[inline(always)]
    fn keep_if(self, keep: bool) -> Self {
        f64::from_bits(self.to_bits() & (keep as u64).wrapping_neg())
    }
}

/// `keep` or 0 per entry.
fn fill_block<T: MaskBits>(out: &mut [T], seed: u64, threshold: u64, keep: T) {
    let mut state = seed;
    let mut pairs = out.chunks_exact_mut(2);
    for pair in &mut pairs {
        let bits = splitmix64(&mut state);
        pair[0] = keep.keep_if((bits & 0xffff_ffff) >= threshold);
        pair[1] = keep.keep_if((bits >> 32) >= threshold);
    }
    if let Some(last) = pairs.into_remainder().first_mut() {
        *last = keep.keep_if((splitmix64(&mut state) & 0xffff_ffff) >= threshold);
    }
}

impl Tensor {
    /// A dropout mask of `shape`: each entry independently 0 with probability `p`, else
    /// `1 / (1 - p)`. `p` must be in `[0, 1)` and `dtype` a float dtype.
    ///
    /// ```
    /// use shendu_core::{DType, Rng, Tensor};
    /// let m = Tensor::dropout_mask(&[1000], 0.5, DType::F32, &mut Rng::new(0)).unwrap();
    /// assert!(m.to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0 || v == 2.0));
    /// ```
    pub fn dropout_mask(shape: impl Into<Shape>, p: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
        mask("dropout_mask", shape.into(), p, dtype, rng)
    }

    /// Inverted dropout: with `train`, zeroes each entry with probability `p` and scales the
    /// rest by `1 / (1 - p)`; without, returns `self` unchanged. `p` must be in `[0, 1)`.
    /// The gradient is the same mask.
    ///
    /// ```
    /// use shendu_core::{DType, Rng, Tensor};
    /// let x = Tensor::ones(&[4, 4], DType::F32).unwrap();
    /// let mut rng = Rng::new(7);
    /// let y = x.dropout(0.25, true, &mut rng).unwrap();
    /// assert!(y.to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
    /// assert_eq!(x.dropout(0.25, false, &mut rng).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 16]);
    /// ```
    pub fn dropout(&self, p: f64, train: bool, rng: &mut Rng) -> Result<Tensor> {
        check_p("dropout", p)?;
        if !train || p == 0.0 {
            return Ok(self.clone());
        }
        let m = mask("dropout", self.shape().clone(), p, self.dtype(), rng)?;
        self.mul(&m)
    }
}
