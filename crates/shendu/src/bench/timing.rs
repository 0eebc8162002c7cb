//! The timing method of the peer harness (`peers/py/common.py`, `peers/rust/common/harness.rs`),
//! so that shendu's figures and the peers' are measured alike.

use std::time::Instant;

/// One repetition lasts at least this long (the inner loop is calibrated to it).
pub const MIN_REP_S: f64 = 0.1;
/// Untimed calls before calibration (the first one included).
pub const WARMUP: usize = 3;
/// A call this slow skips further warm-up and calibration and gets 5 repetitions.
pub const SLOW_S: f64 = 2.0;
/// Repetitions when `--reps` is not given, as the peers' default `PEER_REPS`.
pub const DEFAULT_REPS: usize = 7;

/// Median seconds per call of `f` over `reps` timed repetitions.
///
/// The first call is untimed; if the second takes `SLOW_S` or more there is no further warm-up,
/// one call per repetition and 5 repetitions. Otherwise `WARMUP - 1` more warm-up calls, then
/// an inner loop count `k` is grown until `k` calls last `MIN_REP_S`, and each repetition times
/// `k` calls.
pub fn bench<E>(reps: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<f64, E> {
    f()?;
    let t0 = Instant::now();
    f()?;
    let slow = t0.elapsed().as_secs_f64() >= SLOW_S;
    let reps = if slow { 5 } else { reps.max(1) };
    let mut k: usize = 1;
    if !slow {
        for _ in 0..WARMUP - 1 {
            f()?;
        }
        loop {
            let t0 = Instant::now();
            for _ in 0..k {
                f()?;
            }
            let dt = t0.elapsed().as_secs_f64();
            if dt >= MIN_REP_S || k >= 1 << 20 {
                break;
            }
            k = (k * 2).max((k as f64 * MIN_REP_S / dt.max(1e-9) * 1.2) as usize);
        }
    }
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        for _ in 0..k {
            f()?;
        }
        times.push(t0.elapsed().as_secs_f64() / k as f64);
    }
    Ok(median(&mut times))
}

/// The median, averaging the two middle values for an even count (Python's `statistics.median`).
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn bench_calibrates_and_propagates_errors() {
        let mut calls = 0usize;
        let s = bench::<()>(3, || {
            calls += 1;
            std::hint::black_box((0..1000u64).sum::<u64>());
            Ok(())
        })
        .unwrap();
        assert!(s > 0.0 && s < 0.01);
        // 3 warm-up calls plus at least 0.3 s of timed calls at well under 10 ms each
        assert!(calls > 30);
        let mut n = 0;
        let r = bench(5, || {
            n += 1;
            if n == 2 {
                Err("boom")
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err("boom"));
    }
}
