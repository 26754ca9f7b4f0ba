//! The seeded random source of the simulation: xoshiro256++ seeded through SplitMix64, as its
//! authors recommend, from `rand_xoshiro` behind rand's traits.
//!
//! A seed must give the same drill forever: an upgrade must never change a stored prediction
//! or a test's expected timeline. `rand_xoshiro` promises value stability under the rand
//! project's portability policy, and the test below pins the stream to fixed outputs (the same
//! an earlier hand-written copy of the generator gave), so an upgrade that broke the promise
//! would fail the build rather than move a number. The distributions built on it stay in
//! [`crate::dist`], written here for the same reason.

use rand_core::{Rng as _, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A small, fast, seedable generator (xoshiro256++).
#[derive(Clone, Debug)]
pub struct Rng(Xoshiro256PlusPlus);

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// An independent stream for one part of a drill (a probe, a run of a repeat), so that
    /// the order in which parts draw numbers never changes what each part sees.
    pub fn derive(seed: u64, stream: u64) -> Self {
        Rng::new(seed ^ stream.wrapping_mul(0xD605_BBB5_8C8A_BB4D).rotate_left(17))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniform number in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal number (Box–Muller; the second value is discarded to keep the
    /// generator stateless beyond its four words).
    pub fn std_normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]: ln is finite
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream of a seed never moves: these are the outputs of xoshiro256++ seeded through
    /// SplitMix64, as the hand-written generator firedrill shipped before gave them.
    #[test]
    fn the_stream_is_pinned() {
        let first = |seed| {
            let mut r = Rng::new(seed);
            [r.next_u64(), r.next_u64(), r.next_u64(), r.next_u64()]
        };
        assert_eq!(first(0), [5987356902031041503, 7051070477665621255, 6633766593972829180, 211316841551650330]);
        assert_eq!(first(42), [15021278609987233951, 5881210131331364753, 18149643915985481100, 12933668939759105464]);
        assert_eq!(
            first(u64::MAX),
            [6254647548650071986, 16610832622747802512, 16422857234328439435, 5048281510058307187]
        );
    }

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(42);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(42);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(43);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(Rng::derive(42, 1).next_u64(), Rng::derive(42, 2).next_u64());
    }

    #[test]
    fn uniform_and_normal_have_the_right_moments() {
        let mut r = Rng::new(7);
        let n = 200_000;
        let (mut su, mut sn, mut sn2) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let u = r.f64();
            assert!((0.0..1.0).contains(&u));
            su += u;
            let z = r.std_normal();
            sn += z;
            sn2 += z * z;
        }
        let n = n as f64;
        assert!((su / n - 0.5).abs() < 0.01);
        assert!((sn / n).abs() < 0.01);
        assert!((sn2 / n - 1.0).abs() < 0.02);
    }
}
