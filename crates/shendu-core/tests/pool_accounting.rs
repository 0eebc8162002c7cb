//! The pool's byte counters, which `shendu train --mem-report` reads. One test in this binary,
//! so no other thread allocates while it counts.

use shendu_core::pool::{self, PooledVec};

#[test]
fn live_pooled_and_peak_bytes_follow_the_buffers() {
    pool::clear();
    let base = pool::stats();
    pool::reset_peaks();
    let a = PooledVec::<f32>::uninit(1000);
    let b = PooledVec::<f64>::uninit(500);
    let s = pool::stats();
    assert_eq!(s.live_bytes - base.live_bytes, 4000 + 4000);
    assert_eq!(s.peak_live_bytes - base.live_bytes, 8000);
    drop(a);
    // Back in the pool: no longer live, still held.
    let s = pool::stats();
    assert_eq!(s.live_bytes - base.live_bytes, 4000);
    assert_eq!(s.pooled_bytes - base.pooled_bytes, 4000);
    assert_eq!(s.peak_held_bytes - base.live_bytes, 8000);
    // Taken again (at a shorter length): the pool's capacity counts, not the length.
    let c = PooledVec::<f32>::uninit(900);
    assert_eq!(pool::stats().live_bytes - base.live_bytes, 8000);
    assert_eq!(pool::stats().pooled_bytes, base.pooled_bytes);
    drop((b, c));
    pool::reset_peaks();
    let s = pool::stats();
    assert_eq!(s.peak_live_bytes, s.live_bytes);
    assert_eq!(s.peak_held_bytes, s.live_bytes + s.pooled_bytes);
    pool::clear();
    assert_eq!(pool::stats().pooled_bytes, 0);
}
