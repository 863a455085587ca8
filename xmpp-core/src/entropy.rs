//! Deterministic randomness from a seed the embedder supplies.
//!
//! The core never draws randomness itself (Sans-IO rule 3): the driver seeds
//! each machine from the OS, tests seed it with a constant so transcripts and
//! fuzz crashes replay exactly. The generator is SHA-256 in counter mode over a
//! secret 32-byte seed, which is unpredictable as long as the seed is.

use sha2::{Digest, Sha256};

/// A seeded byte source.
#[derive(Clone)]
pub struct Entropy {
    seed: [u8; 32],
    counter: u64,
}

impl std::fmt::Debug for Entropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entropy(..)")
    }
}

impl Entropy {
    /// A generator from a 32-byte seed.
    pub fn new(seed: [u8; 32]) -> Self {
        Entropy { seed, counter: 0 }
    }

    /// A generator for tests and transcripts.
    pub fn from_u64(seed: u64) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        Entropy::new(s)
    }

    /// Fill `out` with fresh bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            let mut h = Sha256::new();
            h.update(self.seed);
            h.update(self.counter.to_le_bytes());
            self.counter = self.counter.wrapping_add(1);
            let block = h.finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }

    /// `n` fresh bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }

    /// A fresh identifier of `n` random bytes, lowercase hex.
    pub fn hex_id(&mut self, n: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(n * 2);
        for b in self.bytes(n) {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_different_seed_different_bytes() {
        let mut a = Entropy::from_u64(7);
        let mut b = Entropy::from_u64(7);
        let mut c = Entropy::from_u64(8);
        assert_eq!(a.bytes(40), b.bytes(40));
        assert_ne!(a.bytes(16), c.bytes(16));
        assert_eq!(a.hex_id(4).len(), 8);
    }
}
