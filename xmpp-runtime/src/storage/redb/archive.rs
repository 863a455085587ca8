//! Message archives in redb (XEP-0313), all in the table `archive`, with
//! the sled backend's key layout (`keys::archive`):
//!
//! | key                                    | value                     |
//! |----------------------------------------|---------------------------|
//! | account 0x00 `m` id(16)                | [`codec`] with, stanza    |
//! | account 0x00 `w` with-bare 0x00 id(16) | (empty): the with-index   |
//! | account 0x00 `c`                       | u64 BE: messages          |
//! | account 0x00 `n` with-bare             | u64 BE: messages with it  |
//!
//! Ids begin with the archive time, so the `m` keys are each account's
//! archive in chronological order: a page is one seek and a range read, an
//! id lookup a point read. A message, its index entry and both totals are
//! written in the batch's write transaction, so they commit together.

use std::collections::HashMap;

use ::redb::{AccessGuard, ReadableTable, Table};
use xmpp_core::archive::{self, ArchiveId, ArchiveView, ArchivedMessage, QueryError, Scan};
use xmpp_core::storage::StorageResult;

use super::{poison, Bytes, Fail, WriteTables};
use crate::storage::codec;
use crate::storage::keys::archive::{
    account_of, decode, id_of, key, tagged, with_key, with_total_key, TOTAL,
};
use crate::storage::keys::{be_u64, prefix, prefix_end};
use crate::storage::StorageError;

type Entry<'a> = Result<(AccessGuard<'a, Bytes>, AccessGuard<'a, Bytes>), ::redb::StorageError>;

fn message(entry: Entry<'_>) -> Result<ArchivedMessage, StorageError> {
    let (k, v) = entry?;
    decode(k.value(), v.value())
}

fn total<T: ReadableTable<Bytes, Bytes>>(archive: &T, key: &[u8]) -> Result<u64, StorageError> {
    match archive.get(key)? {
        Some(raw) => be_u64(raw.value(), "archive total"),
        None => Ok(0),
    }
}

/// One account's archive, read through the shared query algorithm.
struct View<'a, T> {
    archive: &'a T,
    account: &'a str,
}

impl<T: ReadableTable<Bytes, Bytes>> ArchiveView for View<'_, T> {
    type Error = StorageError;

    fn scan(
        &self,
        lo: ArchiveId,
        hi: ArchiveId,
        with_bare: Option<&str>,
        rev: bool,
    ) -> Scan<'_, StorageError> {
        let (from, to) = match with_bare {
            None => (key(self.account, lo), key(self.account, hi)),
            Some(w) => (with_key(self.account, w, lo), with_key(self.account, w, hi)),
        };
        let range = match self.archive.range(from.as_slice()..=to.as_slice()) {
            Ok(range) => range,
            Err(e) => return Box::new(std::iter::once(Err(e.into()))),
        };
        match with_bare {
            None if rev => Box::new(range.rev().map(message)),
            None => Box::new(range.map(message)),
            Some(_) => {
                let read = move |entry: Entry<'_>| {
                    let (k, _) = entry?;
                    let id = id_of(k.value())?;
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
        match self.archive.get(k.as_slice())? {
            Some(v) => decode(&k, v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn count(&self, with_bare: Option<&str>) -> Result<u64, StorageError> {
        match with_bare {
            None => total(self.archive, &tagged(self.account, TOTAL)),
            Some(w) => total(self.archive, &with_total_key(self.account, w)),
        }
    }
}

pub(super) fn query<T: ReadableTable<Bytes, Bytes>>(
    archive: &T,
    account: &str,
    query: &archive::ArchiveQuery,
) -> Result<StorageResult, StorageError> {
    match archive::run_query(&View { archive, account }, query) {
        Ok(page) => Ok(StorageResult::ArchivePage(page)),
        Err(QueryError::UnknownId(_)) => Ok(StorageResult::NotFound),
        Err(QueryError::Backend(e)) => Err(e),
    }
}

pub(super) fn metadata<T: ReadableTable<Bytes, Bytes>>(
    archive: &T,
    account: &str,
) -> Result<StorageResult, StorageError> {
    archive::metadata(&View { archive, account }).map(StorageResult::ArchiveBounds)
}

/// Append one message: `NotFound` for an unknown account, `Conflict` for
/// an id already archived.
pub(super) fn append(
    t: &mut WriteTables<'_>,
    account: &str,
    m: &ArchivedMessage,
) -> Result<StorageResult, Fail> {
    let with_bare = m.with_bare();
    if with_bare.contains('\0') {
        return Err(Fail::Clean(StorageError::InvalidAccount(m.with.clone())));
    }
    // A service entity's archive (a room) exists without an account, as a
    // service's documents do.
    if !xmpp_core::storage::is_service_owner(account) && !super::exists(&t.credentials, account)? {
        return Ok(StorageResult::NotFound);
    }
    let k = key(account, m.id);
    if t.archive.get(k.as_slice())?.is_some() {
        return Ok(StorageResult::Conflict);
    }
    let total_key = tagged(account, TOTAL);
    let with_total = with_total_key(account, with_bare);
    let n = total(&t.archive, &total_key)?.saturating_add(1);
    let n_with = total(&t.archive, &with_total)?.saturating_add(1);
    let value = codec::encode_archived(&m.with, &m.stanza);
    let archive = &mut t.archive;
    archive
        .insert(k.as_slice(), value.as_slice())
        .map_err(poison)?;
    archive
        .insert(with_key(account, with_bare, m.id).as_slice(), &[][..])
        .map_err(poison)?;
    archive
        .insert(total_key.as_slice(), &n.to_be_bytes()[..])
        .map_err(poison)?;
    archive
        .insert(with_total.as_slice(), &n_with.to_be_bytes()[..])
        .map_err(poison)?;
    Ok(StorageResult::Done)
}

/// Replace the stanza of the archived message `id`, keeping its `with`
/// (so the with-index and the totals stay as they are): `NotFound` when it
/// is not archived.
pub(super) fn replace(
    t: &mut WriteTables<'_>,
    account: &str,
    id: ArchiveId,
    stanza: &str,
) -> Result<StorageResult, Fail> {
    let k = key(account, id);
    let with = match t.archive.get(k.as_slice())? {
        Some(v) => decode(k.as_slice(), v.value())?.with,
        None => return Ok(StorageResult::NotFound),
    };
    let value = codec::encode_archived(&with, stanza);
    t.archive
        .insert(k.as_slice(), value.as_slice())
        .map_err(poison)?;
    Ok(StorageResult::Done)
}

/// Retention: messages archived before `before`, account by account from
/// `from`, at most `limit` of them, each with its index entry and totals.
/// Everything to remove is read and decoded first, then removed.
pub(super) fn purge(
    archive: &mut Table<'_, Bytes, Bytes>,
    before: u64,
    from: Option<&str>,
    limit: u64,
) -> Result<StorageResult, Fail> {
    let cutoff = ArchiveId::first_at(before);
    let mut doomed: Vec<Vec<u8>> = Vec::new();
    let mut deltas: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut removed = 0u64;
    let mut cursor = from.map(prefix).unwrap_or_default();
    let next = loop {
        let first = match archive.range(cursor.as_slice()..)?.next() {
            None => break None,
            Some(entry) => account_of(entry?.0.value())?,
        };
        let account = first;
        let want = usize::try_from(limit - removed).unwrap_or(usize::MAX);
        let (lo, hi) = (key(&account, ArchiveId::MIN), key(&account, cutoff));
        for entry in archive.range(lo.as_slice()..hi.as_slice())?.take(want) {
            let m = message(entry)?;
            let bare = m.with_bare();
            doomed.push(key(&account, m.id));
            doomed.push(with_key(&account, bare, m.id));
            *deltas.entry(tagged(&account, TOTAL)).or_insert(0) += 1;
            *deltas.entry(with_total_key(&account, bare)).or_insert(0) += 1;
            removed += 1;
        }
        if removed >= limit {
            break Some(account);
        }
        // Past every `account 0x00 ...` key: the next account.
        cursor = prefix_end(&account);
    };
    let mut totals = Vec::with_capacity(deltas.len());
    for (k, delta) in deltas {
        let now = total(archive, &k)?;
        totals.push((k, now.saturating_sub(delta)));
    }
    for k in doomed {
        archive.remove(k.as_slice()).map_err(poison)?;
    }
    for (k, n) in totals {
        if n == 0 {
            archive.remove(k.as_slice()).map_err(poison)?;
        } else {
            archive
                .insert(k.as_slice(), &n.to_be_bytes()[..])
                .map_err(poison)?;
        }
    }
    Ok(StorageResult::Purged { removed, next })
}

/// Remove an account's whole archive.
pub(super) fn clear(
    archive: &mut Table<'_, Bytes, Bytes>,
    account: &str,
) -> Result<(), ::redb::StorageError> {
    let (p, end) = (prefix(account), prefix_end(account));
    archive.retain_in(p.as_slice()..end.as_slice(), |_, _| false)
}

/// Whether anything is archived under `account` (leftovers).
pub(super) fn has_archive<T: ReadableTable<Bytes, Bytes>>(
    archive: &T,
    account: &str,
) -> Result<bool, StorageError> {
    let (p, end) = (prefix(account), prefix_end(account));
    Ok(archive
        .range(p.as_slice()..end.as_slice())?
        .next()
        .is_some())
}
