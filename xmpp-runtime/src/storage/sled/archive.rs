//! Message archives in sled (XEP-0313).
//!
//! | tree            | key                                      | value               |
//! |-----------------|------------------------------------------|---------------------|
//! | `archive`       | account 0x00 id(16)                      | [`codec`] with, stanza |
//! | `archive_with`  | account 0x00 with-bare 0x00 id(16)       | (empty)             |
//! | `archive_count` | account                                  | u64 BE: messages    |
//! | `archive_count` | account 0x00 with-bare                   | u64 BE: with it     |
//!
//! Ids begin with the archive time, so `archive` is each account's archive
//! in chronological order: a page is one range read starting at a seek
//! (after/before ids and start/end times are key bounds), and an id lookup
//! is a point read, without a separate id index. `archive_with` gives the
//! same for one correspondent's bare JID; the counts answer RSM `<count/>`
//! for whole-archive and per-correspondent queries without scanning.
//!
//! A message, its index entry and both counts change in one transaction.

use std::convert::Infallible;

use ::sled::transaction::{ConflictableTransactionError, Transactional, TransactionalTree};
use ::sled::{Batch, IVec};
use xmpp_core::archive::{self, ArchiveId, ArchiveView, ArchivedMessage, QueryError, Scan};
use xmpp_core::storage::StorageResult;

use super::{be_u64, prefix, tx_error, SledBackend, TxResult};
use crate::storage::codec;
use crate::storage::StorageError;

/// Deletions per transaction when a purge or an account deletion removes
/// many messages.
const DELETE_CHUNK: usize = 1000;

/// `account 0x00 id`.
fn key(account: &str, id: ArchiveId) -> Vec<u8> {
    let mut k = prefix(account);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `account 0x00 with-bare 0x00`: one correspondent's index entries.
fn with_prefix(account: &str, with_bare: &str) -> Vec<u8> {
    let mut k = prefix(account);
    k.extend_from_slice(with_bare.as_bytes());
    k.push(0);
    k
}

fn with_key(account: &str, with_bare: &str, id: ArchiveId) -> Vec<u8> {
    let mut k = with_prefix(account, with_bare);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `account 0x00 with-bare`: the per-correspondent count.
fn with_count_key(account: &str, with_bare: &str) -> Vec<u8> {
    let mut k = prefix(account);
    k.extend_from_slice(with_bare.as_bytes());
    k
}

/// The id at the end of a key.
fn id_of(key: &[u8]) -> Result<ArchiveId, StorageError> {
    key.len()
        .checked_sub(16)
        .and_then(|at| ArchiveId::from_slice(&key[at..]))
        .ok_or(StorageError::BadLength("archive key"))
}

fn decode(key: &[u8], value: &[u8]) -> Result<ArchivedMessage, StorageError> {
    let id = id_of(key)?;
    let (with, stanza) = codec::decode_archived(value).map_err(|source| StorageError::Corrupt {
        what: "archived message",
        source,
    })?;
    Ok(ArchivedMessage { id, with, stanza })
}

fn read_count(raw: Option<IVec>) -> Result<u64, StorageError> {
    raw.map_or(Ok(0), |r| be_u64(&r, "archive count"))
}

/// Add `delta` to a count inside a transaction (removing it at zero).
fn bump(
    counts: &TransactionalTree,
    key: &[u8],
    delta: i64,
) -> Result<(), ConflictableTransactionError<Infallible>> {
    let now = match counts.get(key)? {
        Some(raw) => <[u8; 8]>::try_from(raw.as_ref()).map_or(0, u64::from_be_bytes),
        None => 0,
    };
    let next = now.saturating_add_signed(delta);
    if next == 0 {
        counts.remove(key)?;
    } else {
        counts.insert(key, &next.to_be_bytes()[..])?;
    }
    Ok(())
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
                    .archive_with
                    .range(with_key(self.account, w, lo)..=with_key(self.account, w, hi));
                let read = move |entry: Result<(IVec, IVec), ::sled::Error>| {
                    let (k, _) = entry?;
                    let id = id_of(&k)?;
                    // Written in the same transaction as the message.
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
            None => self.db.archive_count.get(self.account.as_bytes())?,
            Some(w) => self.db.archive_count.get(with_count_key(self.account, w))?,
        };
        read_count(raw)
    }
}

impl SledBackend {
    pub(super) fn append_archive(
        &self,
        account: &str,
        m: &ArchivedMessage,
    ) -> Result<StorageResult, StorageError> {
        let with_bare = m.with_bare();
        if with_bare.contains('\0') {
            return Err(StorageError::InvalidAccount(m.with.clone()));
        }
        let k = key(account, m.id);
        let wk = with_key(account, with_bare, m.id);
        let ck = with_count_key(account, with_bare);
        let value = codec::encode_archived(&m.with, &m.stanza);
        let _w = self.lock();
        let trees = (
            &self.credentials,
            &self.archive,
            &self.archive_with,
            &self.archive_count,
        );
        let tx: TxResult<StorageResult> = trees.transaction(|(creds, archive, index, counts)| {
            if creds.get(account.as_bytes())?.is_none() {
                return Ok(StorageResult::NotFound);
            }
            if archive.get(&k)?.is_some() {
                return Ok(StorageResult::Conflict);
            }
            archive.insert(k.as_slice(), value.as_slice())?;
            index.insert(wk.as_slice(), &[][..])?;
            bump(counts, account.as_bytes(), 1)?;
            bump(counts, &ck, 1)?;
            Ok(StorageResult::Done)
        });
        tx.map_err(tx_error)
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

    /// Delete messages (with their index entries and counts) in chunks,
    /// each chunk one transaction.
    fn delete_messages(
        &self,
        account: &str,
        messages: &[(IVec, String)],
    ) -> Result<(), StorageError> {
        for chunk in messages.chunks(DELETE_CHUNK) {
            let trees = (&self.archive, &self.archive_with, &self.archive_count);
            let tx: TxResult<()> = trees.transaction(|(archive, index, counts)| {
                for (k, with) in chunk {
                    let Ok(id) = id_of(k) else { continue };
                    let bare = archive::bare_of(with);
                    archive.remove(k)?;
                    index.remove(with_key(account, bare, id))?;
                    bump(counts, account.as_bytes(), -1)?;
                    bump(counts, &with_count_key(account, bare), -1)?;
                }
                Ok::<_, ConflictableTransactionError<Infallible>>(())
            });
            tx.map_err(tx_error)?;
        }
        Ok(())
    }

    /// Retention: messages archived before `before`, account by account
    /// from `from`, at most `limit` of them.
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
            let want = usize::try_from(limit - removed).unwrap_or(usize::MAX);
            let mut old = Vec::new();
            for entry in self
                .archive
                .range(prefix(&account)..key(&account, cutoff))
                .take(want)
            {
                let (k, v) = entry?;
                let m = decode(&k, &v)?;
                old.push((k, m.with));
            }
            self.delete_messages(&account, &old)?;
            removed += old.len() as u64;
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
        for tree in [&self.archive, &self.archive_with, &self.archive_count] {
            loop {
                let keys = tree
                    .scan_prefix(&p)
                    .keys()
                    .take(DELETE_CHUNK * 10)
                    .collect::<Result<Vec<IVec>, _>>()?;
                if keys.is_empty() {
                    break;
                }
                let mut batch = Batch::default();
                for k in keys {
                    batch.remove(k);
                }
                tree.apply_batch(batch)?;
            }
        }
        self.archive_count.remove(account.as_bytes())?;
        Ok(())
    }

    /// Whether anything is archived under `account` (leftovers).
    pub(super) fn has_archive(&self, account: &str) -> Result<bool, StorageError> {
        Ok(self.archive.scan_prefix(prefix(account)).next().is_some()
            || self.archive_count.contains_key(account.as_bytes())?)
    }
}
