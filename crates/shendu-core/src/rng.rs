//! A small seedable generator (xoshiro256++ seeded by splitmix64) so that `randn` with a seed
//! gives the same numbers on every machine and thread count.

use std::cell::RefCell;

#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Standard normal by the Box-Muller transform.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: log never sees 0
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// The generator's full state, for checkpoints that resume bit-identically.
    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    /// A generator continuing from a state saved by [`Rng::state`].
    pub fn from_state(s: [u64; 4]) -> Self {
        Rng { s }
    }

    /// Bernoulli(p).
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
}

thread_local! {
    static DEFAULT: RefCell<Rng> = RefCell::new(Rng::new(0x5eed));
}

/// Seeds this thread's default generator (PyTorch's `torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    DEFAULT.with(|r| *r.borrow_mut() = Rng::new(seed));
}

/// Runs `f` with this thread's default generator.
pub fn with_default_rng<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    DEFAULT.with(|r| f(&mut r.borrow_mut()))
}

/// The state of this thread's default generator (saved in checkpoints so that a resumed run
/// draws the same dropout masks and initialisations).
pub fn default_rng_state() -> [u64; 4] {
    DEFAULT.with(|r| r.borrow().state())
}

/// Restores this thread's default generator from [`default_rng_state`].
pub fn set_default_rng_state(state: [u64; 4]) {
    DEFAULT.with(|r| *r.borrow_mut() = Rng::from_state(state));
}
