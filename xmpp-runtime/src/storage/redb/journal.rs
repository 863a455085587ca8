//! The archive journal: the durable write path of archived messages on
//! redb (spec/design.md, "Archiving cost per message").
//!
//! Archiving is two appends per message, and written straight into the
//! archive's B-trees each costs a handful of page rewrites per group commit
//! (pages of every owner touched, branch pages, the fsync of all of them):
//! measured, the archive tripled the CPU of a message. Here an archived
//! message is first a *record* appended to a segment file — every record
//! of a group commit in one write, one `fdatasync` shared by every storage
//! thread that wrote meanwhile (leader and followers) — and answered once
//! that sync returned. The records stay in memory (*pending*, bounded by
//! [`INDEX_AFTER_BYTES`]) until the indexer moves them into the archive
//! table in one large write transaction, which costs each page once per
//! thousands of messages instead of once per commit.
//!
//! Segments are `DIR/archive-journal/<generation, 16 hex digits>.log`, a
//! magic header then framed records: `length (u32 LE) | CRC-32 of the
//! payload (u32 LE) | payload`, the payload `account length (u16 LE) |
//! account | archive id (16) | codec::encode_archived(with, stanza)`. Taking
//! the pending records for indexing syncs the segment and starts the next
//! generation, so a segment is indexed whole; the index transaction stores
//! the generation from which segments are *not* indexed yet, and only after
//! its commit are older segments deleted. On open, segments from that
//! generation on are replayed (a torn record at a segment's end — a crash
//! mid-write, never answered — ends it), so nothing answered is lost and
//! nothing is indexed twice (an id already in the table is skipped).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use xmpp_core::archive::{ArchiveId, ArchivedMessage};

use crate::storage::codec;
use crate::storage::StorageError;

/// The first bytes of every segment.
const MAGIC: &[u8; 8] = b"VIREOAJ1";

/// Pending bytes (stanzas and names) after which the indexer is woken:
/// the memory a journal holds at most, give or take one group commit. At
/// ~0.5 KB per archived copy this is ~8,000 copies per index transaction.
pub(crate) const INDEX_AFTER_BYTES: usize = 4 * 1024 * 1024;

/// Pending bytes at which a writer indexes before it returns instead of
/// leaving it to the indexer: when appends outrun indexing, the journal's
/// memory stays bounded and the writers slow down to the indexing rate.
pub(crate) const INDEX_NOW_BYTES: usize = 4 * INDEX_AFTER_BYTES;

/// The largest record a segment may hold (a stanza is at most the
/// configured stanza size, 256 KiB by default, plus names): a length field
/// beyond this is a torn or damaged record, not an allocation to make.
const MAX_RECORD: u32 = 64 * 1024 * 1024;

/// One archived message for one owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub account: String,
    pub message: ArchivedMessage,
}

impl Record {
    fn bytes(&self) -> usize {
        self.account.len() + self.message.with.len() + self.message.stanza.len() + 64
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), StorageError> {
        let account_len = u16::try_from(self.account.len())
            .map_err(|_| StorageError::InvalidAccount(self.account.clone()))?;
        let start = out.len();
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&account_len.to_le_bytes());
        out.extend_from_slice(self.account.as_bytes());
        out.extend_from_slice(self.message.id.as_bytes());
        out.extend_from_slice(&codec::encode_archived(
            &self.message.with,
            &self.message.stanza,
        ));
        let payload = &out[start + 8..];
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|n| *n <= MAX_RECORD)
            .ok_or(StorageError::BadLength("journal record"))?;
        let crc = crc32fast::hash(payload);
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    fn decode(payload: &[u8]) -> Result<Record, StorageError> {
        let bad = StorageError::BadLength("journal record");
        let (len, rest) = payload.split_first_chunk::<2>().ok_or(bad)?;
        let len = usize::from(u16::from_le_bytes(*len));
        if rest.len() < len + 16 {
            return Err(StorageError::BadLength("journal record"));
        }
        let (account, rest) = rest.split_at(len);
        let (id, rest) = rest.split_at(16);
        let account = std::str::from_utf8(account)
            .map_err(|_| StorageError::NotUtf8("journal account"))?
            .to_owned();
        let id = ArchiveId::from_slice(id).ok_or(StorageError::BadLength("journal id"))?;
        let (with, stanza) =
            codec::decode_archived(rest).map_err(|source| StorageError::Corrupt {
                what: "journal record",
                source,
            })?;
        Ok(Record {
            account,
            message: ArchivedMessage { id, with, stanza },
        })
    }
}

/// The segment being written and what is not indexed yet.
struct State {
    generation: u64,
    file: Arc<File>,
    /// Bytes written to the segment.
    len: u64,
    /// Written records not yet taken by the indexer, in order.
    pending: Vec<Record>,
    pending_bytes: usize,
    /// Each pending owner's newest pending id: an append at or below it
    /// is checked against the pending records (a duplicate is a conflict).
    newest: HashMap<String, ArchiveId>,
}

/// The journal of one store (see the module documentation).
pub(crate) struct Journal {
    dir: PathBuf,
    state: Mutex<State>,
    /// How far the current segment is known to be on disk: (generation,
    /// length). Held while syncing, so concurrent committers wait for the
    /// running sync and usually find their records covered by it.
    synced: Mutex<(u64, u64)>,
}

/// Records taken for indexing: once they are committed to the archive
/// table with [`Taken::next_generation`] as the stored generation,
/// [`Journal::retire`] deletes their segments.
pub(crate) struct Taken {
    pub records: Vec<Record>,
    pub next_generation: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io_error(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

fn segment_name(generation: u64) -> String {
    format!("{generation:016x}.log")
}

/// The generations of the segments in `dir`, oldest first.
fn segments(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        if stem.len() == 16 {
            if let Ok(generation) = u64::from_str_radix(stem, 16) {
                found.push(generation);
            }
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// The records of one segment, up to its first torn or damaged record.
fn read_segment(path: &Path) -> Result<Vec<Record>, StorageError> {
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(|e| io_error(path, e))?;
    if raw.len() < MAGIC.len() || &raw[..MAGIC.len()] != MAGIC {
        // Created but its header never reached the disk: nothing in it was
        // ever answered.
        tracing::warn!(path = %path.display(), "archive journal segment without a header; ignored");
        return Ok(Vec::new());
    }
    let mut records = Vec::new();
    let mut at = MAGIC.len();
    while at < raw.len() {
        let frame = raw.get(at..at + 8).and_then(|head| {
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            let end = (at + 8).checked_add(usize::try_from(len).ok()?)?;
            (len <= MAX_RECORD)
                .then(|| raw.get(at + 8..end))
                .flatten()
                .filter(|payload| crc32fast::hash(payload) == crc)
                .map(|payload| (payload, end))
        });
        let Some((payload, end)) = frame else {
            tracing::warn!(
                path = %path.display(),
                offset = at,
                bytes = raw.len() - at,
                "archive journal ends in a torn record (a crash while writing it; it was never answered)"
            );
            break;
        };
        match Record::decode(payload) {
            Ok(r) => records.push(r),
            Err(e) => {
                tracing::error!(path = %path.display(), offset = at, error = %e, "undecodable archive journal record skipped");
            }
        }
        at = end;
    }
    Ok(records)
}

/// Creates segment `generation` with its header, durably (file and
/// directory entry).
fn create_segment(dir: &Path, generation: u64) -> Result<File, StorageError> {
    let path = dir.join(segment_name(generation));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    file.write_all(MAGIC).map_err(|e| io_error(&path, e))?;
    file.sync_all().map_err(|e| io_error(&path, e))?;
    sync_dir(dir)?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

/// What [`Journal::open`] found to replay.
pub(crate) struct Replay {
    /// Records of segments not indexed yet, in order.
    pub records: Vec<Record>,
    /// The generation to store once they are indexed; the journal writes
    /// to it.
    pub next_generation: u64,
}

impl Journal {
    /// Opens the journal in `dir` (created if missing) given the generation
    /// stored with the archive (`indexed`: segments before it are indexed).
    /// Segments before `indexed` are deleted; the records of the others are
    /// returned to be indexed, after which [`Journal::retire`] with
    /// `next_generation` deletes them. Writing goes to a new segment.
    pub(crate) fn open(dir: &Path, indexed: u64) -> Result<(Journal, Replay), StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let mut records = Vec::new();
        let mut newest = indexed;
        for generation in segments(dir)? {
            let path = dir.join(segment_name(generation));
            if generation < indexed {
                std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                continue;
            }
            records.extend(read_segment(&path)?);
            newest = newest.max(generation.saturating_add(1));
        }
        if !records.is_empty() {
            tracing::info!(
                records = records.len(),
                dir = %dir.display(),
                "replaying the archive journal (the server did not stop cleanly)"
            );
        }
        let file = create_segment(dir, newest)?;
        let journal = Journal {
            dir: dir.to_owned(),
            state: Mutex::new(State {
                generation: newest,
                file: Arc::new(file),
                len: MAGIC.len() as u64,
                pending: Vec::new(),
                pending_bytes: 0,
                newest: HashMap::new(),
            }),
            synced: Mutex::new((newest, MAGIC.len() as u64)),
        };
        Ok((
            journal,
            Replay {
                records,
                next_generation: newest,
            },
        ))
    }

    /// The newest id pending for `account`.
    pub(crate) fn newest_pending(&self, account: &str) -> Option<ArchiveId> {
        lock(&self.state).newest.get(account).copied()
    }

    /// Whether `id` is pending for `account` (an append of it again is a
    /// conflict). Ids only grow per owner, so this is one map lookup unless
    /// the id is not newer than the owner's newest pending one.
    pub(crate) fn is_pending(&self, account: &str, id: ArchiveId) -> bool {
        let st = lock(&self.state);
        match st.newest.get(account) {
            Some(newest) if id <= *newest => st
                .pending
                .iter()
                .any(|r| r.message.id == id && r.account == account),
            _ => false,
        }
    }

    /// Appends `records` and returns once they are on disk (one write, and
    /// a sync shared with concurrent callers). Returns the bytes pending
    /// now, which say whether to index ([`INDEX_AFTER_BYTES`],
    /// [`INDEX_NOW_BYTES`]).
    pub(crate) fn append(&self, records: Vec<Record>) -> Result<usize, StorageError> {
        if records.is_empty() {
            return Ok(0);
        }
        let mut buf = Vec::with_capacity(records.iter().map(Record::bytes).sum());
        for r in &records {
            r.encode(&mut buf)?;
        }
        let (generation, end, file, pending) = {
            let mut st = lock(&self.state);
            let path = self.dir.join(segment_name(st.generation));
            st.file
                .write_all_at(&buf, st.len)
                .map_err(|e| io_error(&path, e))?;
            st.len += buf.len() as u64;
            for r in records {
                st.pending_bytes += r.bytes();
                let newest = st.newest.entry(r.account.clone()).or_insert(r.message.id);
                if r.message.id > *newest {
                    *newest = r.message.id;
                }
                st.pending.push(r);
            }
            (st.generation, st.len, st.file.clone(), st.pending_bytes)
        };
        self.sync_to(generation, end, &file)?;
        Ok(pending)
    }

    /// Returns once segment `generation` is on disk up to `end`.
    fn sync_to(&self, generation: u64, end: u64, file: &File) -> Result<(), StorageError> {
        let mut synced = lock(&self.synced);
        if synced.0 > generation || (synced.0 == generation && synced.1 >= end) {
            // A later segment is only begun after this one was synced
            // ([`Journal::take`]), or a concurrent sync covered us.
            return Ok(());
        }
        let (current, len, current_file) = {
            let st = lock(&self.state);
            (st.generation, st.len, st.file.clone())
        };
        let target = if current == generation {
            current_file.as_ref()
        } else {
            file
        };
        let path = self.dir.join(segment_name(generation));
        target.sync_data().map_err(|e| io_error(&path, e))?;
        if current == generation {
            *synced = (current, len);
        }
        Ok(())
    }

    /// Whether anything waits to be indexed.
    pub(crate) fn has_pending(&self) -> bool {
        !lock(&self.state).pending.is_empty()
    }

    /// Takes every pending record for indexing and begins the next segment
    /// (the current one synced first, so everything in it is on disk).
    /// `None` when nothing is pending.
    pub(crate) fn take(&self) -> Result<Option<Taken>, StorageError> {
        let (records, next) = {
            let mut st = lock(&self.state);
            if st.pending.is_empty() {
                return Ok(None);
            }
            let path = self.dir.join(segment_name(st.generation));
            st.file.sync_data().map_err(|e| io_error(&path, e))?;
            let next = st.generation + 1;
            let file = create_segment(&self.dir, next)?;
            st.generation = next;
            st.file = Arc::new(file);
            st.len = MAGIC.len() as u64;
            st.pending_bytes = 0;
            st.newest.clear();
            (std::mem::take(&mut st.pending), next)
        };
        // Not under the state lock: `sync_to` takes the two the other way
        // round. A sync of the new segment may have run meanwhile.
        let mut synced = lock(&self.synced);
        if *synced < (next, MAGIC.len() as u64) {
            *synced = (next, MAGIC.len() as u64);
        }
        drop(synced);
        Ok(Some(Taken {
            records,
            next_generation: next,
        }))
    }

    /// Indexing `taken` failed: its records are pending again (in front,
    /// in order), so reads keep seeing them; their segments stay on disk.
    pub(crate) fn restore(&self, taken: Taken) {
        let mut st = lock(&self.state);
        let mut records = taken.records;
        for r in &records {
            st.pending_bytes += r.bytes();
            let newest = st.newest.entry(r.account.clone()).or_insert(r.message.id);
            if r.message.id > *newest {
                *newest = r.message.id;
            }
        }
        records.append(&mut st.pending);
        st.pending = records;
    }

    /// Deletes the segments before `generation`: their records are indexed
    /// and committed.
    pub(crate) fn retire(&self, generation: u64) {
        let old = match segments(&self.dir) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the archive journal");
                return;
            }
        };
        for g in old.into_iter().filter(|g| *g < generation) {
            let path = self.dir.join(segment_name(g));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot delete an indexed archive journal segment")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
