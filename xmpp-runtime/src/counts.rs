//! Things in use per key, each held by a guard that gives it back when
//! dropped: s2s and HTTP connections per address, s2s links being set up
//! per sender. A key whose count falls to zero leaves the map, so the map
//! holds only what is in use now.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counts per key.
#[derive(Debug)]
pub(crate) struct Counts<K>(Mutex<HashMap<K, usize>>);

impl<K: Hash + Eq + Clone> Counts<K> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Counts(Mutex::new(HashMap::new())))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, usize>> {
        // Counting cannot leave the map inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more for `key`, unless it has `max` already.
    pub(crate) fn take(self: &Arc<Self>, key: K, max: usize) -> Option<Counted<K>> {
        let mut counts = self.lock();
        let n = counts.entry(key.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Counted {
            counts: self.clone(),
            key,
        })
    }
}

/// One counted use of a key, given back when dropped.
#[derive(Debug)]
pub(crate) struct Counted<K: Hash + Eq + Clone> {
    counts: Arc<Counts<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Drop for Counted<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_per_key_and_given_back_on_drop() {
        let counts = Counts::new();
        let a1 = counts.take("a", 2);
        let a2 = counts.take("a", 2);
        assert!(a1.is_some() && a2.is_some());
        assert!(counts.take("a", 2).is_none(), "a third for a");
        assert!(counts.take("b", 2).is_some(), "other keys unaffected");
        drop(a1);
        assert!(counts.take("a", 2).is_some(), "one given back");
        drop(a2);
        assert!(counts.lock().is_empty(), "keys at zero leave the map");
    }
}
