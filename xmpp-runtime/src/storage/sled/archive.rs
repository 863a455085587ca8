//! Message archives in sled (XEP-0313), all in the tree `archive`:
//!
//! | key                                   | value                     |
//! |---------------------------------------|---------------------------|
//! | account 0x00 `m` id(16)               | [`codec`] with, stanza    |
//! | account 0x00 `w` with-bare 0x00 id(16) | (empty): the with-index   |
//! | account 0x00 `c`                      | u64 BE: messages          |
//! | account 0x00 `n` with-bare            | u64 BE: messages with it  |
//!
//! Ids begin with the archive time, so the `m` keys are each account's
//! archive in chronological order: a page is one seek and a range read
//! (after/before ids and start/end times are key bounds), an id lookup is a
//! point read, and no separate id or time index exists. The `w` keys give
//! the same for one correspondent's bare JID; the totals answer RSM
//! `<count/>` for whole-archive and per-correspondent queries without
//! scanning.
//!
//! One tree, so that a message, its index entry and both totals change in
//! one sled batch, which sled applies atomically. Every batch (like every
//! transaction) seals sled's write buffer, a write and a `sync_file_range`
//! of its own, so the appends of one group commit share one batch. The
//! totals are read and rewritten under the backend's writer lock, which
//! every mutation holds.

use std::collections::{HashMap, HashSet};

use ::sled::{Batch, IVec};
use xmpp_core::archive::{self, ArchiveId, ArchiveView, ArchivedMessage, QueryError, Scan};
use xmpp_core::storage::StorageResult;

use super::SledBackend;
use crate::storage::codec;
use crate::storage::keys::archive::{decode, id_of, key, tagged, with_key, with_total_key, TOTAL};
use crate::storage::keys::{be_u64, prefix};
use crate::storage::StorageError;

/// Deletions per batch when a purge or an account deletion removes many
/// messages.
const DELETE_CHUNK: usize = 1000;

/// Pending changes to totals, applied with the batch that causes them.
#[derive(Default)]
struct Totals(Vec<(Vec<u8>, i64)>);

impl Totals {
    fn add(&mut self, key: Vec<u8>, delta: i64) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, d)) => *d += delta,
            None => self.0.push((key, delta)),
        }
    }

    /// Write the new totals into `batch` (a total that reaches 0 goes).
    fn apply(self, tree: &::sled::Tree, batch: &mut Batch) -> Result<(), StorageError> {
        for (key, delta) in self.0 {
            let now = match tree.get(&key)? {
                Some(raw) => be_u64(&raw, "archive total")?,
                None => 0,
            };
            match now.saturating_add_signed(delta) {
                0 => batch.remove(key),
                n => batch.insert(key, &n.to_be_bytes()[..]),
            }
        }
        Ok(())
    }
}

/// One account's archive, read through the shared query algorithm.
struct View<'a> {
    db: &'a SledBackend,
    account: &'a str,
}

impl ArchiveView for View<'_> {
    type Error = StorageError;

    fn scan(
        &self,
        lo: ArchiveId,
        hi: ArchiveId,
        with_bare: Option<&str>,
        rev: bool,
    ) -> Scan<'_, StorageError> {
        match with_bare {
            None => {
                let range = self
                    .db
                    .archive
                    .range(key(self.account, lo)..=key(self.account, hi));
                let read = |entry: Result<(IVec, IVec), ::sled::Error>| {
                    let (k, v) = entry?;
                    decode(&k, &v)
                };
                if rev {
                    Box::new(range.rev().map(read))
                } else {
                    Box::new(range.map(read))
                }
            }
            Some(w) => {
                let range = self
                    .db
                    .archive
                    .range(with_key(self.account, w, lo)..=with_key(self.account, w, hi));
                let read = move |entry: Result<(IVec, IVec), ::sled::Error>| {
                    let (k, _) = entry?;
                    let id = id_of(&k)?;
                    // Written in the same batch as the message.
                    self.get(id)?
                        .ok_or(StorageError::BadLength("archive index"))
                };
                if rev {
                    Box::new(range.rev().map(read))
                } else {
                    Box::new(range.map(read))
                }
            }
        }
    }

    fn get(&self, id: ArchiveId) -> Result<Option<ArchivedMessage>, StorageError> {
        let k = key(self.account, id);
        match self.db.archive.get(&k)? {
            Some(v) => decode(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    fn count(&self, with_bare: Option<&str>) -> Result<u64, StorageError> {
        let raw = match with_bare {
            None => self.db.archive.get(tagged(self.account, TOTAL))?,
            Some(w) => self.db.archive.get(with_total_key(self.account, w))?,
        };
        raw.map_or(Ok(0), |r| be_u64(&r, "archive total"))
    }
}

impl SledBackend {
    /// Append messages (of one or several accounts) in one atomic batch;
    /// one result per message: `NotFound` for an unknown account,
    /// `Conflict` for an id already archived (or twice in the group).
    pub(super) fn append_archive(
        &self,
        appends: &[(String, ArchivedMessage)],
    ) -> Result<Vec<StorageResult>, StorageError> {
        let _w = self.lock();
        let mut batch = Batch::default();
        let mut totals = Totals::default();
        let mut written: HashSet<Vec<u8>> = HashSet::new();
        let mut known: HashMap<&str, bool> = HashMap::new();
        let mut results = Vec::with_capacity(appends.len());
        for (account, m) in appends {
            let with_bare = m.with_bare();
            if with_bare.contains('\0') {
                return Err(StorageError::InvalidAccount(m.with.clone()));
            }
            let exists = match known.get(account.as_str()) {
                Some(e) => *e,
                None => {
                    // A service entity's archive (a room) exists without
                    // an account, as a service's documents do.
                    let e =
                        xmpp_core::storage::is_service_owner(account) || self.exists(account)?;
                    known.insert(account, e);
                    e
                }
            };
            if !exists {
                results.push(StorageResult::NotFound);
                continue;
            }
            let k = key(account, m.id);
            if written.contains(&k) || self.archive.contains_key(&k)? {
                results.push(StorageResult::Conflict);
                continue;
            }
            batch.insert(k.as_slice(), codec::encode_archived(&m.with, &m.stanza));
            batch.insert(with_key(account, with_bare, m.id), &[][..]);
            totals.add(tagged(account, TOTAL), 1);
            totals.add(with_total_key(account, with_bare), 1);
            written.insert(k);
            results.push(StorageResult::Done);
        }
        if !written.is_empty() {
            totals.apply(&self.archive, &mut batch)?;
            self.archive.apply_batch(batch)?;
        }
        Ok(results)
    }

    /// Replace the stanza of the archived message `id`, keeping its
    /// `with` (so the with-index and the totals stay as they are):
    /// `NotFound` when it is not archived.
    pub(super) fn replace_archived(
        &self,
        account: &str,
        id: ArchiveId,
        stanza: &str,
    ) -> Result<StorageResult, StorageError> {
        let _w = self.lock();
        let k = key(account, id);
        let Some(old) = self.archive.get(&k)? else {
            return Ok(StorageResult::NotFound);
        };
        let with = decode(&k, &old)?.with;
        self.archive
            .insert(k.as_slice(), codec::encode_archived(&with, stanza))?;
        Ok(StorageResult::Done)
    }

    pub(super) fn query_archive(
        &self,
        account: &str,
        query: &archive::ArchiveQuery,
    ) -> Result<StorageResult, StorageError> {
        match archive::run_query(&View { db: self, account }, query) {
            Ok(page) => Ok(StorageResult::ArchivePage(page)),
            Err(QueryError::UnknownId(_)) => Ok(StorageResult::NotFound),
            Err(QueryError::Backend(e)) => Err(e),
        }
    }

    pub(super) fn archive_metadata(&self, account: &str) -> Result<StorageResult, StorageError> {
        archive::metadata(&View { db: self, account }).map(StorageResult::ArchiveBounds)
    }

    /// Retention: messages archived before `before`, account by account
    /// from `from`, at most `limit` of them, in batches of [`DELETE_CHUNK`]
    /// (each with its index entries and totals).
    pub(super) fn purge_archive(
        &self,
        before: u64,
        from: Option<&str>,
        limit: u64,
    ) -> Result<StorageResult, StorageError> {
        let _w = self.lock();
        let cutoff = ArchiveId::first_at(before);
        let mut removed = 0u64;
        let mut cursor = from.map(prefix).unwrap_or_default();
        loop {
            let Some(first) = self.archive.range(cursor.as_slice()..).next() else {
                return Ok(StorageResult::Purged {
                    removed,
                    next: None,
                });
            };
            let (first_key, _) = first?;
            let end = first_key
                .iter()
                .position(|b| *b == 0)
                .ok_or(StorageError::BadLength("archive key"))?;
            let account = std::str::from_utf8(&first_key[..end])
                .map_err(|_| StorageError::NotUtf8("account name"))?
                .to_owned();
            while removed < limit {
                let want = usize::try_from(limit - removed)
                    .unwrap_or(usize::MAX)
                    .min(DELETE_CHUNK);
                let mut batch = Batch::default();
                let mut totals = Totals::default();
                let mut n = 0u64;
                for entry in self
                    .archive
                    .range(key(&account, ArchiveId::MIN)..key(&account, cutoff))
                    .take(want)
                {
                    let (k, v) = entry?;
                    let m = decode(&k, &v)?;
                    let bare = m.with_bare();
                    batch.remove(k);
                    batch.remove(with_key(&account, bare, m.id));
                    totals.add(tagged(&account, TOTAL), -1);
                    totals.add(with_total_key(&account, bare), -1);
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                totals.apply(&self.archive, &mut batch)?;
                self.archive.apply_batch(batch)?;
                removed += n;
            }
            if removed >= limit {
                return Ok(StorageResult::Purged {
                    removed,
                    next: Some(account),
                });
            }
            // Past every `account 0x00 ...` key: the next account.
            cursor = account.into_bytes();
            cursor.push(1);
        }
    }

    /// Remove an account's whole archive (its deletion, or leftovers of a
    /// deletion a crash interrupted, found when the name is created again).
    /// The caller holds the writer lock.
    pub(super) fn clear_archive(&self, account: &str) -> Result<(), StorageError> {
        let p = prefix(account);
        loop {
            let keys = self
                .archive
                .scan_prefix(&p)
                .keys()
                .take(DELETE_CHUNK * 10)
                .collect::<Result<Vec<IVec>, _>>()?;
            if keys.is_empty() {
                return Ok(());
            }
            let mut batch = Batch::default();
            for k in keys {
                batch.remove(k);
            }
            self.archive.apply_batch(batch)?;
        }
    }

    /// Whether anything is archived under `account` (leftovers).
    pub(super) fn has_archive(&self, account: &str) -> Result<bool, StorageError> {
        Ok(self.archive.scan_prefix(prefix(account)).next().is_some())
    }
}
