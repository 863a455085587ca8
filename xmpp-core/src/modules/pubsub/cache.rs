//! Which nodes stay in memory: every node read or changed is kept while
//! the partition runs, up to a byte budget; beyond it the least recently
//! used are dropped (they are stored, and read again when asked for).

use std::collections::{BTreeMap, HashMap};

/// Nodes in memory, by recency of use, with their approximate sizes.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    tick: u64,
    /// Node → (last use, bytes).
    used: HashMap<String, (u64, usize)>,
    /// Last use → node.
    order: BTreeMap<u64, String>,
    total: usize,
}

impl Cache {
    /// `name` was used and now weighs `bytes`.
    pub fn touch(&mut self, name: &str, bytes: usize) {
        self.forget(name);
        self.tick += 1;
        self.used.insert(name.to_owned(), (self.tick, bytes));
        self.order.insert(self.tick, name.to_owned());
        self.total = self.total.saturating_add(bytes);
    }

    /// `name` is no longer in memory.
    pub fn forget(&mut self, name: &str) {
        if let Some((tick, bytes)) = self.used.remove(name) {
            self.order.remove(&tick);
            self.total = self.total.saturating_sub(bytes);
        }
    }

    /// Bytes of the nodes in memory.
    #[cfg(test)]
    pub fn total(&self) -> usize {
        self.total
    }

    /// The least recently used nodes to drop so that at most `max` bytes
    /// stay, never `keep` (the one in use).
    pub fn evict(&mut self, max: usize, keep: &str) -> Vec<String> {
        let mut dropped = Vec::new();
        while self.total > max {
            let Some(name) = self.order.values().find(|n| n.as_str() != keep).cloned() else {
                break;
            };
            self.forget(&name);
            dropped.push(name);
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first() {
        let mut c = Cache::default();
        c.touch("a", 40);
        c.touch("b", 40);
        c.touch("c", 40);
        c.touch("a", 50);
        assert_eq!(c.total(), 130);
        assert_eq!(c.evict(100, "b"), vec!["c".to_owned()]);
        assert_eq!(c.evict(10, "b"), vec!["a".to_owned()]);
        assert_eq!(
            c.evict(10, "b"),
            Vec::<String>::new(),
            "the node in use stays"
        );
        assert_eq!(c.total(), 40);
    }
}
