//! Giving back what a peak left in long-lived collections.
//!
//! Rust's hash maps and queues never shrink by themselves: after 15,000
//! sessions came and went, the maps keyed by account and by connection kept
//! their buckets for 15,000 entries, so a server that lived through one peak
//! (or one attack) kept part of its worst footprint for ever, whatever the
//! allocator gave back. Collections that grow with the number of sessions
//! call [`ReleaseSpare::release_spare`] after removing entries.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hash};

/// Below this capacity a collection is never shrunk: small tables are
/// cheap, and shrinking them would only make them grow again.
const KEEP_AT_LEAST: usize = 64;

/// Shrink a collection once it uses less than a quarter of its capacity.
///
/// It is shrunk to twice its length, so it has to lose half of what is left
/// before the next shrink: the rehash is paid for by the removals that led
/// to it (amortized O(1) per removal), and a map that oscillates around one
/// size never rehashes.
pub trait ReleaseSpare {
    /// Release spare capacity if the collection has become sparse.
    fn release_spare(&mut self);
}

fn target(len: usize, capacity: usize) -> Option<usize> {
    let sparse = capacity > KEEP_AT_LEAST && len.saturating_mul(4) < capacity;
    sparse.then(|| len.saturating_mul(2).max(KEEP_AT_LEAST))
}

impl<K: Eq + Hash, V, S: BuildHasher> ReleaseSpare for HashMap<K, V, S> {
    fn release_spare(&mut self) {
        if let Some(to) = target(self.len(), self.capacity()) {
            self.shrink_to(to);
        }
    }
}

impl<K: Eq + Hash, S: BuildHasher> ReleaseSpare for HashSet<K, S> {
    fn release_spare(&mut self) {
        if let Some(to) = target(self.len(), self.capacity()) {
            self.shrink_to(to);
        }
    }
}

impl<T> ReleaseSpare for VecDeque<T> {
    fn release_spare(&mut self) {
        if let Some(to) = target(self.len(), self.capacity()) {
            self.shrink_to(to);
        }
    }
}

impl<T> ReleaseSpare for Vec<T> {
    fn release_spare(&mut self) {
        if let Some(to) = target(self.len(), self.capacity()) {
            self.shrink_to(to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_emptied_after_a_peak_gives_its_buckets_back() {
        let mut m: HashMap<u32, [u8; 64]> = (0..15_000).map(|i| (i, [0; 64])).collect();
        let peak = m.capacity();
        for i in 0..15_000 {
            m.remove(&i);
            m.release_spare();
        }
        assert!(peak >= 15_000);
        assert!(m.capacity() <= 2 * KEEP_AT_LEAST, "{}", m.capacity());
    }

    #[test]
    fn a_small_or_busy_map_is_left_alone() {
        // Vectors: a hash map's reported capacity moves with its tombstones
        // (and its random seed), so only a vector's is exact here.
        let mut v: Vec<u32> = (0..40).collect();
        let cap = v.capacity();
        v.truncate(2);
        v.release_spare();
        assert_eq!(v.capacity(), cap, "below KEEP_AT_LEAST nothing is shrunk");

        let mut v: Vec<u32> = (0..1000).collect();
        let cap = v.capacity();
        v.truncate(600);
        v.release_spare();
        assert_eq!(v.capacity(), cap, "more than a quarter used: kept");
    }

    #[test]
    fn shrinking_is_amortized() {
        // Remove everything one by one: the number of shrinks is
        // logarithmic, not linear, in the peak size.
        let mut v: Vec<u32> = (0..100_000).collect();
        let mut shrinks = 0;
        while v.pop().is_some() {
            let before = v.capacity();
            v.release_spare();
            if v.capacity() != before {
                shrinks += 1;
            }
        }
        assert!(shrinks <= 20, "{shrinks}");
    }
}
