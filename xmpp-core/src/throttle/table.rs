//! A map with a fixed capacity that forgets its least recently touched
//! entry when full.

use crate::spare::ReleaseSpare;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// A map of at most `capacity` entries; inserting into a full table evicts
/// the entry touched longest ago. Touching is O(1) amortized: the order is
/// a queue of (key, stamp) with stale stamps skipped lazily, and compacted
/// when stale ones outnumber live ones.
#[derive(Debug, Clone)]
pub struct BoundedTable<K, V> {
    capacity: usize,
    map: HashMap<K, (V, u64)>,
    order: VecDeque<(K, u64)>,
    stamp: u64,
}

impl<K: Hash + Eq + Clone, V> BoundedTable<K, V> {
    /// An empty table holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        BoundedTable {
            capacity: capacity.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
            stamp: 0,
        }
    }

    /// The most entries kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Change the capacity (a configuration reload), evicting the oldest
    /// entries beyond it.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        while self.map.len() > self.capacity {
            self.evict_oldest();
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entry for `key`, without touching it.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(v, _)| v)
    }

    /// The entry for `key`, created with `init` if missing (evicting the
    /// oldest entry when full), and marked as the most recently touched.
    pub fn touch(&mut self, key: &K, init: impl FnOnce() -> V) -> &mut V {
        self.stamp += 1;
        let stamp = self.stamp;
        if !self.map.contains_key(key) {
            while self.map.len() >= self.capacity {
                self.evict_oldest();
            }
        }
        self.order.push_back((key.clone(), stamp));
        if self.order.len() > 2 * self.capacity + 16 {
            self.compact();
        }
        let entry = self
            .map
            .entry(key.clone())
            .or_insert_with(|| (init(), stamp));
        entry.1 = stamp;
        &mut entry.0
    }

    /// The entry for `key`, if present, without touching it.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key).map(|(v, _)| v)
    }

    /// Remove `key`'s entry.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let removed = self.map.remove(key).map(|(v, _)| v);
        self.map.release_spare();
        removed
    }

    /// Keep only the entries for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.map.retain(|k, (v, _)| keep(k, v));
        self.compact();
    }

    fn evict_oldest(&mut self) {
        while let Some((key, stamp)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|(_, s)| *s == stamp) {
                self.map.remove(&key);
                return;
            }
        }
        // The queue holds every live entry's latest stamp; reaching here
        // means the map is empty.
        self.map.clear();
    }

    fn compact(&mut self) {
        let map = &self.map;
        self.order
            .retain(|(k, s)| map.get(k).is_some_and(|(_, live)| live == s));
        self.map.release_spare();
        self.order.release_spare();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_touched_when_full() {
        let mut t = BoundedTable::new(3);
        *t.touch(&"a", || 0) += 1;
        *t.touch(&"b", || 0) += 1;
        *t.touch(&"c", || 0) += 1;
        // "a" touched again: "b" is now the oldest.
        *t.touch(&"a", || 0) += 1;
        *t.touch(&"d", || 0) += 1;
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(&"a"), Some(&2));
        assert_eq!(t.get(&"b"), None);
        assert_eq!(t.get(&"c"), Some(&1));
        assert_eq!(t.get(&"d"), Some(&1));
    }

    #[test]
    fn many_keys_stay_bounded_in_entries_and_order() {
        let mut t = BoundedTable::new(100);
        for i in 0..100_000u32 {
            t.touch(&i, || i);
            // A hot key touched over and over must not grow the queue.
            t.touch(&u32::MAX, || 0);
        }
        assert_eq!(t.len(), 100);
        assert!(t.order.len() <= 2 * 100 + 16);
        assert!(t.get(&u32::MAX).is_some());
        assert!(t.get(&99_999).is_some());
        assert!(t.get(&0).is_none());
    }

    #[test]
    fn shrinking_capacity_evicts_oldest() {
        let mut t = BoundedTable::new(4);
        for k in 0..4 {
            t.touch(&k, || k);
        }
        t.set_capacity(2);
        assert_eq!(t.len(), 2);
        assert!(t.get(&3).is_some() && t.get(&2).is_some());
        t.retain(|k, _| *k == 3);
        assert_eq!(t.len(), 1);
        assert_eq!(t.remove(&3), Some(3));
        assert!(t.is_empty());
    }
}
