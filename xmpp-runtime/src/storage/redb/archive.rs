//! Message archives in redb (XEP-0313), all in the table `archive`, in
//! chunks of consecutive messages (`chunk.rs`):
//!
//! | key                                         | value                       |
//! |---------------------------------------------|-----------------------------|
//! | account 0x00 `k` first-id(16)               | a chunk: messages in order  |
//! | account 0x00 `x` with-bare 0x00 first-id(16) | (empty): the chunk has messages with it |
//! | account 0x00 `c`                            | u64 BE: messages            |
//! | account 0x00 `n` with-bare                  | u64 BE: messages with it    |
//!
//! An account's chunks are disjoint and ordered: every id of a chunk is
//! below the first id of the next. Ids begin with the archive time, so
//! the `k` keys are the archive in chronological order: a page is a seek
//! to the chunk holding its first id and a read of one or two chunks; an
//! id lookup is a seek and one chunk. A `with` query walks the `x` entries
//! of that correspondent, which name the chunks to read. The totals answer
//! `<count/>`. Messages arrive from the journal (`journal.rs`) in large
//! batches, so an owner's new messages usually extend its last chunk and
//! open new ones: one entry per chunk instead of two per message.
//!
//! Stores written before the chunks (one `m` entry per message, a `w`
//! entry per message for `with`, the layout sled keeps) are converted when
//! opened ([`convert`]).

use std::collections::{BTreeSet, HashMap};

use ::redb::{ReadableTable, Table};
use xmpp_core::archive::{self, ArchiveId, ArchiveView, ArchivedMessage, QueryError, Scan};
use xmpp_core::storage::StorageResult;

use super::chunk::{self, Entry};
use super::{poison, Bytes, Fail};
use crate::storage::keys::archive::{
    account_of, decode, id_of, key as message_key, tagged, with_key, with_total_key, MESSAGE, TOTAL,
};
use crate::storage::keys::{be_u64, prefix_end};
use crate::storage::StorageError;

/// A chunk: `account 0x00 k first-id`.
const CHUNK: u8 = b'k';
/// A chunk's correspondent: `account 0x00 x with-bare 0x00 first-id`.
const CHUNK_WITH: u8 = b'x';

fn chunk_key(account: &str, first: ArchiveId) -> Vec<u8> {
    let mut k = tagged(account, CHUNK);
    k.extend_from_slice(first.as_bytes());
    k
}

fn chunk_with_key(account: &str, with_bare: &[u8], first: ArchiveId) -> Vec<u8> {
    let mut k = tagged(account, CHUNK_WITH);
    k.extend_from_slice(with_bare);
    k.push(0);
    k.extend_from_slice(first.as_bytes());
    k
}

fn total<T: ReadableTable<Bytes, Bytes>>(archive: &T, key: &[u8]) -> Result<u64, StorageError> {
    match archive.get(key)? {
        Some(raw) => be_u64(raw.value(), "archive total"),
        None => Ok(0),
    }
}

/// The first id of the last chunk beginning at or before `id`: the chunk
/// that holds `id` if any does.
fn chunk_at<T: ReadableTable<Bytes, Bytes>>(
    archive: &T,
    account: &str,
    id: ArchiveId,
) -> Result<Option<ArchiveId>, StorageError> {
    let (lo, hi) = (chunk_key(account, ArchiveId::MIN), chunk_key(account, id));
    match archive.range(lo.as_slice()..=hi.as_slice())?.next_back() {
        Some(entry) => Ok(Some(id_of(entry?.0.value())?)),
        None => Ok(None),
    }
}

/// The first id of the first chunk beginning after `first` (or at or
/// after it, with `inclusive`).
fn chunk_after<T: ReadableTable<Bytes, Bytes>>(
    archive: &T,
    account: &str,
    first: ArchiveId,
    inclusive: bool,
) -> Result<Option<ArchiveId>, StorageError> {
    let mut lo = chunk_key(account, first);
    if !inclusive {
        lo.push(0); // the smallest key after it
    }
    let hi = chunk_key(account, ArchiveId::MAX);
    match archive.range(lo.as_slice()..=hi.as_slice())?.next() {
        Some(entry) => Ok(Some(id_of(entry?.0.value())?)),
        None => Ok(None),
    }
}

fn load<T: ReadableTable<Bytes, Bytes>>(
    archive: &T,
    account: &str,
    first: ArchiveId,
) -> Result<Vec<u8>, StorageError> {
    match archive.get(chunk_key(account, first).as_slice())? {
        Some(raw) => Ok(raw.value().to_vec()),
        None => Err(StorageError::BadLength("archive chunk index")),
    }
}

/// The messages of a stored chunk within `lo..=hi` (and with `with_bare`),
/// copied out, oldest first.
fn pick(
    raw: &[u8],
    lo: ArchiveId,
    hi: ArchiveId,
    with_bare: Option<&[u8]>,
) -> Result<Vec<ArchivedMessage>, StorageError> {
    chunk::decode(raw)?
        .into_iter()
        .filter(|e| lo <= e.id && e.id <= hi && with_bare.is_none_or(|w| e.with_bare() == w))
        .map(Entry::to_message)
        .collect()
}

/// A chunk's messages as scan items, newest first with `rev`.
fn items(
    picked: Result<Vec<ArchivedMessage>, StorageError>,
    rev: bool,
) -> Vec<Result<ArchivedMessage, StorageError>> {
    match picked {
        Ok(mut v) => {
            if rev {
                v.reverse();
            }
            v.into_iter().map(Ok).collect()
        }
        Err(e) => vec![Err(e)],
    }
}

/// One account's archive, read through the shared query algorithm.
struct View<'a, T> {
    archive: &'a T,
    account: &'a str,
}

impl<T: ReadableTable<Bytes, Bytes>> View<'_, T> {
    fn scan_all(
        &self,
        lo: ArchiveId,
        hi: ArchiveId,
        rev: bool,
    ) -> Result<Scan<'_, StorageError>, StorageError> {
        let start = chunk_at(self.archive, self.account, lo)?.unwrap_or(lo);
        let (from, to) = (chunk_key(self.account, start), chunk_key(self.account, hi));
        let range = self.archive.range(from.as_slice()..=to.as_slice())?;
        let read = move |entry: Result<_, ::redb::StorageError>| {
            let picked = entry.map_err(StorageError::from).and_then(
                |(_, v): (_, ::redb::AccessGuard<'_, Bytes>)| pick(v.value(), lo, hi, None),
            );
            items(picked, rev)
        };
        Ok(if rev {
            Box::new(range.rev().flat_map(read))
        } else {
            Box::new(range.flat_map(read))
        })
    }

    fn scan_with(
        &self,
        lo: ArchiveId,
        hi: ArchiveId,
        with_bare: &str,
        rev: bool,
    ) -> Result<Scan<'_, StorageError>, StorageError> {
        let w = with_bare.as_bytes().to_vec();
        // The last chunk with this correspondent beginning at or before
        // `lo` may hold messages after `lo`.
        let (floor, at_lo) = (
            chunk_with_key(self.account, &w, ArchiveId::MIN),
            chunk_with_key(self.account, &w, lo),
        );
        let from = match self
            .archive
            .range(floor.as_slice()..=at_lo.as_slice())?
            .next_back()
        {
            Some(entry) => entry?.0.value().to_vec(),
            None => at_lo,
        };
        let to = chunk_with_key(self.account, &w, hi);
        let range = self.archive.range(from.as_slice()..=to.as_slice())?;
        let read = move |entry: Result<_, ::redb::StorageError>| {
            let picked = entry
                .map_err(StorageError::from)
                .and_then(|(k, _): (::redb::AccessGuard<'_, Bytes>, _)| id_of(k.value()))
                .and_then(|first| {
                    match self
                        .archive
                        .get(chunk_key(self.account, first).as_slice())?
                    {
                        Some(raw) => pick(raw.value(), lo, hi, Some(&w)),
                        None => Err(StorageError::BadLength("archive chunk index")),
                    }
                });
            items(picked, rev)
        };
        Ok(if rev {
            Box::new(range.rev().flat_map(read))
        } else {
            Box::new(range.flat_map(read))
        })
    }
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
        let scan = match with_bare {
            None => self.scan_all(lo, hi, rev),
            Some(w) => self.scan_with(lo, hi, w, rev),
        };
        scan.unwrap_or_else(|e| Box::new(std::iter::once(Err(e))))
    }

    fn get(&self, id: ArchiveId) -> Result<Option<ArchivedMessage>, StorageError> {
        let Some(first) = chunk_at(self.archive, self.account, id)? else {
            return Ok(None);
        };
        match self
            .archive
            .get(chunk_key(self.account, first).as_slice())?
        {
            Some(raw) => pick(raw.value(), id, id, None).map(|mut found| found.pop()),
            None => Err(StorageError::BadLength("archive chunk index")),
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

/// Whether `id` is archived for `account`.
pub(super) fn contains<T: ReadableTable<Bytes, Bytes>>(
    archive: &T,
    account: &str,
    id: ArchiveId,
) -> Result<bool, StorageError> {
    let Some(first) = chunk_at(archive, account, id)? else {
        return Ok(false);
    };
    match archive.get(chunk_key(account, first).as_slice())? {
        Some(raw) => chunk::holds(raw.value(), id),
        None => Err(StorageError::BadLength("archive chunk index")),
    }
}

/// The newest id archived for `account` (the last id of its last chunk).
pub(super) fn newest<T: ReadableTable<Bytes, Bytes>>(
    archive: &T,
    account: &str,
) -> Result<Option<ArchiveId>, StorageError> {
    let (lo, hi) = (
        chunk_key(account, ArchiveId::MIN),
        chunk_key(account, ArchiveId::MAX),
    );
    match archive.range(lo.as_slice()..=hi.as_slice())?.next_back() {
        Some(entry) => chunk::tail(entry?.1.value()).map(|(_, last)| last),
        None => Ok(None),
    }
}

/// The distinct bare `with`s of some messages.
fn withs<'a>(entries: &[Entry<'a>]) -> BTreeSet<&'a [u8]> {
    entries.iter().map(Entry::with_bare).collect()
}

/// Replaces the chunk that began at `old` (with `old_withs`; none for a
/// new chunk) by `messages`, cut into chunks. Writes only: every read and
/// check is done by the caller.
fn rewrite(
    archive: &mut Table<'_, Bytes, Bytes>,
    account: &str,
    old: Option<(ArchiveId, &BTreeSet<&[u8]>)>,
    messages: &[Entry<'_>],
) -> Result<(), Fail> {
    let mut at = 0;
    let mut reused: Option<BTreeSet<&[u8]>> = None;
    for n in chunk::split(messages) {
        let piece = &messages[at..at + n];
        at += n;
        let first = piece[0].id;
        let value = chunk::encode(piece.iter().copied())?;
        archive
            .insert(chunk_key(account, first).as_slice(), value.as_slice())
            .map_err(poison)?;
        let piece_withs = withs(piece);
        for w in &piece_withs {
            archive
                .insert(chunk_with_key(account, w, first).as_slice(), &[][..])
                .map_err(poison)?;
        }
        if old.is_some_and(|(f, _)| f == first) {
            reused = Some(piece_withs);
        }
    }
    if let Some((first, old_withs)) = old {
        if reused.is_none() {
            archive
                .remove(chunk_key(account, first).as_slice())
                .map_err(poison)?;
        }
        for w in old_withs {
            if reused.as_ref().is_none_or(|r| !r.contains(w)) {
                archive
                    .remove(chunk_with_key(account, w, first).as_slice())
                    .map_err(poison)?;
            }
        }
    }
    Ok(())
}

/// Adds `messages` (any order) to the archive of `account`, which exists;
/// ids already archived are skipped. With `count`, the totals grow by what
/// was added (a conversion from the old layout moves counted messages).
/// Every error after the first write poisons the transaction.
pub(super) fn insert(
    archive: &mut Table<'_, Bytes, Bytes>,
    account: &str,
    mut messages: Vec<&ArchivedMessage>,
    count: bool,
) -> Result<u64, Fail> {
    messages.sort_by_key(|m| m.id);
    messages.dedup_by_key(|m| m.id);
    let mut added: HashMap<&str, u64> = HashMap::new();
    let mut wrote = false;
    let poisoned = |wrote: bool, e: Fail| match e {
        Fail::Clean(e) if wrote => Fail::Poisoned(e),
        other => other,
    };
    let mut i = 0;
    while i < messages.len() {
        let id = messages[i].id;
        let step = (|| -> Result<usize, Fail> {
            // The chunk these messages join: the one holding `id`'s place,
            // or the first chunk when `id` comes before all of them.
            let mut old = match chunk_at(archive, account, id)? {
                Some(first) => Some(first),
                None => chunk_after(archive, account, ArchiveId::MIN, true)?,
            };
            let upper = match old {
                Some(first) => chunk_after(archive, account, first, false)?,
                None => None,
            };
            if let (Some(first), None) = (old, upper) {
                // Newer than everything: a filled last chunk stays as it is.
                let key = chunk_key(account, first);
                if let Some(raw) = archive.get(key.as_slice())? {
                    let (n, last) = chunk::tail(raw.value())?;
                    if n >= chunk::FILLED && last.is_some_and(|last| id > last) {
                        old = None;
                    }
                }
            }
            let end = messages[i..]
                .iter()
                .position(|m| upper.is_some_and(|u| m.id >= u))
                .map_or(messages.len(), |p| i + p);
            let raw = match old {
                Some(first) => load(archive, account, first)?,
                None => Vec::new(),
            };
            let existing = if raw.is_empty() {
                Vec::new()
            } else {
                chunk::decode(&raw)?
            };
            let incoming = &messages[i..end];
            let mut merged = Vec::with_capacity(existing.len() + incoming.len());
            let (mut a, mut b) = (0, 0);
            while a < existing.len() || b < incoming.len() {
                match (existing.get(a), incoming.get(b)) {
                    (Some(o), Some(n)) if o.id == n.id => {
                        merged.push(*o);
                        a += 1;
                        b += 1;
                    }
                    (Some(o), Some(n)) if o.id < n.id => {
                        merged.push(*o);
                        a += 1;
                    }
                    (_, Some(n)) => {
                        merged.push(chunk::entry(n));
                        *added.entry(n.with_bare()).or_insert(0) += 1;
                        b += 1;
                    }
                    (Some(o), None) => {
                        merged.push(*o);
                        a += 1;
                    }
                    (None, None) => break,
                }
            }
            let old_withs = withs(&existing);
            wrote = true;
            rewrite(
                archive,
                account,
                old.map(|first| (first, &old_withs)),
                &merged,
            )?;
            Ok(end)
        })();
        i = step.map_err(|e| poisoned(wrote, e))?;
    }
    let n: u64 = added.values().sum();
    if count && n > 0 {
        let mut totals = vec![(tagged(account, TOTAL), n)];
        totals.extend(added.iter().map(|(w, k)| (with_total_key(account, w), *k)));
        for (k, delta) in totals {
            let now = total(archive, &k).map_err(Fail::Poisoned)?;
            archive
                .insert(k.as_slice(), &now.saturating_add(delta).to_be_bytes()[..])
                .map_err(poison)?;
        }
    }
    Ok(n)
}

/// Append one message: `NotFound` for an unknown account, `Conflict` for
/// an id already archived.
pub(super) fn append(
    t: &mut super::WriteTables<'_>,
    account: &str,
    m: &ArchivedMessage,
) -> Result<StorageResult, Fail> {
    if m.with_bare().contains('\0') {
        return Err(Fail::Clean(StorageError::InvalidAccount(m.with.clone())));
    }
    // A service entity's archive (a room) exists without an account, as a
    // service's documents do.
    if !xmpp_core::storage::is_service_owner(account) && !super::exists(&t.credentials, account)? {
        return Ok(StorageResult::NotFound);
    }
    if contains(&t.archive, account, m.id)? {
        return Ok(StorageResult::Conflict);
    }
    insert(&mut t.archive, account, vec![m], true)?;
    Ok(StorageResult::Done)
}

/// Replace the stanza of the archived message `id`, keeping its `with`
/// (so the index entries and the totals stay as they are): `NotFound` when
/// it is not archived.
pub(super) fn replace(
    t: &mut super::WriteTables<'_>,
    account: &str,
    id: ArchiveId,
    stanza: &str,
) -> Result<StorageResult, Fail> {
    let Some(first) = chunk_at(&t.archive, account, id)? else {
        return Ok(StorageResult::NotFound);
    };
    let raw = load(&t.archive, account, first)?;
    let mut entries = chunk::decode(&raw)?;
    let Some(at) = entries.iter().position(|e| e.id == id) else {
        return Ok(StorageResult::NotFound);
    };
    entries[at].stanza = stanza.as_bytes();
    let value = chunk::encode(entries.into_iter())?;
    t.archive
        .insert(chunk_key(account, first).as_slice(), value.as_slice())
        .map_err(poison)?;
    Ok(StorageResult::Done)
}

/// Retention: messages archived before `before`, account by account from
/// `from`, at most `limit` of them; chunks are cut or removed whole and the
/// totals lowered.
pub(super) fn purge(
    archive: &mut Table<'_, Bytes, Bytes>,
    before: u64,
    from: Option<&str>,
    limit: u64,
) -> Result<StorageResult, Fail> {
    let cutoff = ArchiveId::first_at(before);
    let mut removed = 0u64;
    let mut cursor = from.map(crate::storage::keys::prefix).unwrap_or_default();
    let mut wrote = false;
    let next = loop {
        let first_key = match archive.range(cursor.as_slice()..)?.next() {
            None => break None,
            Some(entry) => account_of(entry?.0.value())?,
        };
        let account = first_key;
        let step = (|| -> Result<(), Fail> {
            let mut deltas: HashMap<Vec<u8>, u64> = HashMap::new();
            while removed < limit {
                let Some(first) = chunk_after(archive, &account, ArchiveId::MIN, true)? else {
                    break;
                };
                if first >= cutoff {
                    break;
                }
                let raw = load(archive, &account, first)?;
                let entries = chunk::decode(&raw)?;
                let want = usize::try_from(limit - removed).unwrap_or(usize::MAX);
                let doomed = entries
                    .iter()
                    .take_while(|e| e.id < cutoff)
                    .take(want)
                    .count();
                for e in &entries[..doomed] {
                    *deltas.entry(tagged(&account, TOTAL)).or_insert(0) += 1;
                    let w = std::str::from_utf8(e.with_bare())
                        .map_err(|_| StorageError::NotUtf8("archived with"))?;
                    *deltas.entry(with_total_key(&account, w)).or_insert(0) += 1;
                }
                removed += doomed as u64;
                let old_withs = withs(&entries);
                wrote = true;
                rewrite(
                    archive,
                    &account,
                    Some((first, &old_withs)),
                    &entries[doomed..],
                )?;
            }
            for (k, delta) in deltas {
                let now = total(archive, &k).map_err(Fail::Poisoned)?;
                let n = now.saturating_sub(delta);
                if n == 0 {
                    archive.remove(k.as_slice()).map_err(poison)?;
                } else {
                    archive
                        .insert(k.as_slice(), &n.to_be_bytes()[..])
                        .map_err(poison)?;
                }
            }
            Ok(())
        })();
        step.map_err(|e| match e {
            Fail::Clean(e) if wrote => Fail::Poisoned(e),
            other => other,
        })?;
        if removed >= limit {
            break Some(account);
        }
        // Past every `account 0x00 ...` key: the next account.
        cursor = prefix_end(&account);
    };
    Ok(StorageResult::Purged { removed, next })
}

/// Remove an account's whole archive.
pub(super) fn clear(
    archive: &mut Table<'_, Bytes, Bytes>,
    account: &str,
) -> Result<(), ::redb::StorageError> {
    let (p, end) = (crate::storage::keys::prefix(account), prefix_end(account));
    archive.retain_in(p.as_slice()..end.as_slice(), |_, _| false)
}

/// Whether anything is archived under `account` (leftovers).
pub(super) fn has_archive<T: ReadableTable<Bytes, Bytes>>(
    archive: &T,
    account: &str,
) -> Result<bool, StorageError> {
    let (p, end) = (crate::storage::keys::prefix(account), prefix_end(account));
    Ok(archive
        .range(p.as_slice()..end.as_slice())?
        .next()
        .is_some())
}

/// Moves messages of the old layout (an `m` entry per message and a `w`
/// entry per message for `with`) into chunks, owner by owner from the
/// start, until about `budget` bytes were moved: `Ok(true)` once none are
/// left. Totals are kept (they already count these messages). Run in
/// write transactions of that size until done, so a crash in between only
/// leaves the rest for the next start.
pub(super) fn convert(archive: &mut Table<'_, Bytes, Bytes>, budget: usize) -> Result<bool, Fail> {
    let mut cursor: Vec<u8> = Vec::new();
    let mut moved = 0usize;
    loop {
        let owner = match archive.range(cursor.as_slice()..)?.next() {
            None => return Ok(true),
            Some(entry) => account_of(entry?.0.value())?,
        };
        cursor = prefix_end(&owner);
        let (lo, hi) = (tagged(&owner, MESSAGE), tagged(&owner, MESSAGE + 1));
        loop {
            let mut batch = Vec::new();
            let mut bytes = 0usize;
            for entry in archive.range(lo.as_slice()..hi.as_slice())? {
                let (k, v) = entry?;
                let m = decode(k.value(), v.value())?;
                bytes += m.with.len() + m.stanza.len();
                batch.push(m);
                if moved + bytes >= budget {
                    break;
                }
            }
            if batch.is_empty() {
                break;
            }
            insert(archive, &owner, batch.iter().collect(), false)?;
            for m in &batch {
                archive
                    .remove(message_key(&owner, m.id).as_slice())
                    .map_err(poison)?;
                archive
                    .remove(with_key(&owner, m.with_bare(), m.id).as_slice())
                    .map_err(poison)?;
            }
            moved += bytes;
            if moved >= budget {
                return Ok(false);
            }
        }
    }
}
