//! What the archive appends of a running server keep re-reading, kept in
//! memory: per account that it exists and its newest archived id, and the
//! stored totals.
//!
//! Every archived message used to cost three sled reads besides its two
//! writes (does the account exist, is the id already archived, what are the
//! totals); a sled read walks the tree like a write does. Ids of one
//! account only grow, so an id above the newest one known is new without a
//! look-up, and an account with a cached tail exists: `DeleteAccount` and
//! the clearing of an archive drop the entry under the same writer lock.
//! The cache lives inside that lock, so it is never read while sled and the
//! cache disagree; a failed write clears it.

use std::collections::HashMap;

use xmpp_core::archive::ArchiveId;

/// Entries kept before the cache starts over (a few MB at most): a server
/// with more archiving accounts than this pays the reads again, nothing
/// else.
const MAX_ENTRIES: usize = 65_536;

/// The writer lock's data: see the module docs.
#[derive(Debug, Default)]
pub(crate) struct TailCache {
    /// Per account: no archived id of it is greater than this.
    newest: HashMap<String, ArchiveId>,
    /// Stored archive totals by their sled key.
    totals: HashMap<Vec<u8>, u64>,
}

impl TailCache {
    /// The newest id of the account's archive, if known (then the account
    /// exists).
    pub(super) fn newest(&self, account: &str) -> Option<ArchiveId> {
        self.newest.get(account).copied()
    }

    /// Record that the account exists and `id` is its newest archived id.
    pub(super) fn set_newest(&mut self, account: &str, id: ArchiveId) {
        match self.newest.get_mut(account) {
            Some(n) => *n = id,
            None => {
                if self.newest.len() >= MAX_ENTRIES {
                    self.newest.clear();
                }
                self.newest.insert(account.to_owned(), id);
            }
        }
    }

    /// A stored total, if known.
    pub(super) fn total(&self, key: &[u8]) -> Option<u64> {
        self.totals.get(key).copied()
    }

    /// Record a total just written (0: removed).
    pub(super) fn set_total(&mut self, key: Vec<u8>, value: u64) {
        if self.totals.len() >= MAX_ENTRIES && !self.totals.contains_key(&key) {
            self.totals.clear();
        }
        self.totals.insert(key, value);
    }

    /// Forget everything about keys under `prefix` (`account 0x00`) and the
    /// account's tail: its archive was cleared or the account deleted.
    pub(super) fn forget(&mut self, account: &str, prefix: &[u8]) {
        self.newest.remove(account);
        self.totals.retain(|k, _| !k.starts_with(prefix));
    }

    /// Forget everything (a write failed: sled may hold less than the
    /// cache says).
    pub(super) fn clear(&mut self) {
        self.newest.clear();
        self.totals.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgetting_an_account_keeps_the_others() {
        let mut c = TailCache::default();
        let t = ArchiveId::first_at(5);
        c.set_newest("a@x", t);
        c.set_newest("b@x", t);
        c.set_total(b"a@x\0c".to_vec(), 3);
        c.set_total(b"b@x\0c".to_vec(), 4);
        c.forget("a@x", b"a@x\0");
        assert_eq!(c.newest("a@x"), None);
        assert_eq!(c.total(b"a@x\0c"), None);
        assert_eq!(c.newest("b@x"), Some(t));
        assert_eq!(c.total(b"b@x\0c"), Some(4));
        c.clear();
        assert_eq!(c.newest("b@x"), None);
        assert_eq!(c.total(b"b@x\0c"), None);
    }

    #[test]
    fn stays_bounded() {
        let mut c = TailCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            c.set_newest(&format!("u{i}@x"), ArchiveId::MIN);
            c.set_total(format!("u{i}@x\0c").into_bytes(), 1);
        }
        assert!(c.newest.len() <= MAX_ENTRIES);
        assert!(c.totals.len() <= MAX_ENTRIES);
    }
}
