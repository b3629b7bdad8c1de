//! A seeded, dependency-free pseudo-random stream (xorshift64*) for the property,
//! crash and soak suites: every run with the same seed makes the same choices.
#![allow(dead_code)]

pub struct Rng(pub u64);

impl Rng {
    /// The seed from `IDEM_TEST_SEED` (decimal), else `default`; never zero.
    pub fn from_env(default: u64) -> Self {
        let seed = std::env::var("IDEM_TEST_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default);
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// The iteration count from `name` (an env var), else `default`.
pub fn iterations(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
