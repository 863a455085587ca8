//! The embedded backend on redb 5 (spec/design.md, "The embedded store will
//! be redb"): one file, `DIR/vireo.redb`, whose memory is bounded by its
//! cache and whose commits are fsynced.
//!
//! Layout: the key layouts of the sled backend, one redb table per sled
//! tree (keys and values are raw bytes; account names never contain NUL,
//! which separates the account from the rest):
//!
//! | table            | key                          | value                         |
//! |------------------|------------------------------|-------------------------------|
//! | `credentials`    | account                      | [`codec`] credentials         |
//! | `roster`         | account 0x00 contact-jid     | [`codec`] roster item         |
//! | `roster_version` | account                      | u64 big-endian                |
//! | `offline`        | account 0x00 seq (u64 BE)    | stanza (UTF-8)                |
//! | `blobs`          | account 0x00 key             | XML document (UTF-8)          |
//! | `archive`        | see [`archive`]              | XEP-0313 message archives, in chunks |
//! | `journal`        | `archive`, `archive-layout`  | the journal's indexed generation; the archive layout |
//!
//! An account exists iff it has a `credentials` entry.
//!
//! Archived messages take another way in (`journal.rs`): appended to the
//! archive journal, `DIR/archive-journal/`, and answered once it is synced;
//! moved into the `archive` table in large transactions by an indexer
//! thread. Every request that reads or changes the archive otherwise
//! (queries, retraction, retention, account creation and deletion), and a
//! snapshot or close, first has the journal indexed, so it sees every
//! answered message; a crash leaves the journal to be replayed at the next
//! open.
//!
//! Transactions and durability: [`Backend::execute_batch`] is a group
//! commit, ONE redb write transaction for the whole batch, committed with
//! [`Durability::Immediate`] (an fsync) before any answer is returned, so
//! "answered" means "durable". redb has a single writer, so the requests of
//! a batch, and batches of concurrent callers, are serialized by the write
//! transaction itself: no lock of our own. A batch made only of reads runs
//! on a read transaction (a snapshot), as does [`Backend::execute`] of a read.
//!
//! A request that fails leaves none of its writes: every mutating request
//! does all its reads and checks first (existence, limits, decoding what it
//! removes) and only then writes, so its clean failures (`NotFound`,
//! `Conflict`, `Full`, corrupt records, invalid names) happen before its
//! first write. (Savepoints cannot serve per request: redb takes an
//! ephemeral savepoint only before any table of the transaction is opened.)
//! A failure *while writing* (redb I/O error, value too large) may have
//! left part of that request in the transaction, so the whole transaction
//! is aborted and every request of the batch answers `Failed`: nothing of
//! the batch is stored. Likewise when the commit fails. This differs from
//! sled, where the other requests of the batch were kept.
//!
//! Unlike sled, `DeleteAccount` removes the account's archive in the same
//! transaction as the account (redb needs no chunking to keep a batch
//! small), so no leftovers can survive an interrupted deletion; `CreateAccount`
//! still clears leftovers (a store imported from sled may have some).
//!
//! Quick repair is off (see [`RedbBackend::with_quick_repair`]).
//!
//! A sled store is migrated by [`RedbBackend::import_sled`]: every tree is
//! copied into the table of the same name and compared back entry by entry
//! (the server's `open_store` does it once, then moves the sled files aside).

use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock, RwLockReadGuard, Weak};
use std::time::Duration;

use ::redb::{
    Builder, Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, Table, TableDefinition, TableHandle, WriteTransaction,
};
use std::collections::HashMap;
use xmpp_core::archive::ArchiveId;
use xmpp_core::storage::{AccountData, KeyLimit, OfflinePage, StorageRequest, StorageResult};

mod archive;
mod chunk;
mod journal;

use journal::{Journal, Record};

use super::codec;
use super::keys::{account_key, be_u64, offline_key, offline_seq, prefix, prefix_end};
use super::{check_account, Backend, StorageError};

/// Bytes of redb page cache when the configuration names none, like sled's
/// `DEFAULT_CACHE_BYTES`: the hub keeps live accounts in memory itself and
/// archive writes append at the end of one table, so a small cache serves.
pub const DEFAULT_CACHE_BYTES: u64 = 2 * 1024 * 1024;

/// The database file inside the store directory.
pub const FILE_NAME: &str = "vireo.redb";

/// Keys and values are raw bytes.
type Bytes = &'static [u8];
type Def = TableDefinition<'static, Bytes, Bytes>;

const CREDENTIALS: Def = TableDefinition::new("credentials");
const ROSTER: Def = TableDefinition::new("roster");
const ROSTER_VERSION: Def = TableDefinition::new("roster_version");
const OFFLINE: Def = TableDefinition::new("offline");
const BLOBS: Def = TableDefinition::new("blobs");
const ARCHIVE: Def = TableDefinition::new("archive");
/// Every table, created when the store is opened.
const ALL: [Def; 6] = [CREDENTIALS, ROSTER, ROSTER_VERSION, OFFLINE, BLOBS, ARCHIVE];
/// The archive journal's state: under [`JOURNAL_GENERATION`], the first
/// generation of journal segments not indexed yet (u64 BE). Not in [`ALL`]:
/// a copy of the tables (snapshot, migration) is taken with the journal
/// indexed, so it has none.
const JOURNAL: Def = TableDefinition::new("journal");
const JOURNAL_GENERATION: &[u8] = b"archive";

/// The journal's directory inside the store directory.
pub const JOURNAL_DIR: &str = "archive-journal";

/// How long pending journal records may wait for the indexer when fewer
/// than [`journal::INDEX_AFTER_BYTES`] arrive: short enough that a replay
/// after a crash is small, long enough that a quiet server indexes seldom.
const INDEX_EVERY: Duration = Duration::from_secs(2);

/// redb's operations each have an error type; all of them convert into
/// `redb::Error`, and so into ours.
macro_rules! from_redb_error {
    ($($e:ident),*) => {$(
        impl From<::redb::$e> for StorageError {
            fn from(e: ::redb::$e) -> Self {
                StorageError::Redb(e.into())
            }
        }
    )*};
}

from_redb_error!(
    StorageError,
    TableError,
    TransactionError,
    CommitError,
    SetDurabilityError
);

/// How a request inside a write transaction failed.
#[derive(Debug)]
enum Fail {
    /// Before its first write: the request answers `Failed`, the batch
    /// goes on.
    Clean(StorageError),
    /// While writing: the transaction may hold part of the request, so the
    /// whole batch is aborted.
    Poisoned(StorageError),
}

impl From<StorageError> for Fail {
    fn from(e: StorageError) -> Self {
        Fail::Clean(e)
    }
}

impl From<::redb::StorageError> for Fail {
    fn from(e: ::redb::StorageError) -> Self {
        Fail::Clean(e.into())
    }
}

/// For the writes of a request: `.map_err(poison)?`.
fn poison(e: ::redb::StorageError) -> Fail {
    Fail::Poisoned(e.into())
}

/// The six tables, read-only (a read transaction) or writable.
struct Tables<T> {
    credentials: T,
    roster: T,
    roster_version: T,
    offline: T,
    blobs: T,
    archive: T,
}

type ReadTables = Tables<ReadOnlyTable<Bytes, Bytes>>;
type WriteTables<'t> = Tables<Table<'t, Bytes, Bytes>>;

impl ReadTables {
    fn open(tx: &ReadTransaction) -> Result<Self, StorageError> {
        Ok(Tables {
            credentials: tx.open_table(CREDENTIALS)?,
            roster: tx.open_table(ROSTER)?,
            roster_version: tx.open_table(ROSTER_VERSION)?,
            offline: tx.open_table(OFFLINE)?,
            blobs: tx.open_table(BLOBS)?,
            archive: tx.open_table(ARCHIVE)?,
        })
    }
}

impl<'t> WriteTables<'t> {
    fn open(tx: &'t WriteTransaction) -> Result<Self, StorageError> {
        Ok(Tables {
            credentials: tx.open_table(CREDENTIALS)?,
            roster: tx.open_table(ROSTER)?,
            roster_version: tx.open_table(ROSTER_VERSION)?,
            offline: tx.open_table(OFFLINE)?,
            blobs: tx.open_table(BLOBS)?,
            archive: tx.open_table(ARCHIVE)?,
        })
    }
}

/// A [`Backend`] storing everything in one redb database file, archived
/// messages first in the archive journal (`journal.rs`).
pub struct RedbBackend {
    inner: Arc<Inner>,
    indexer: Arc<IndexerSignal>,
}

/// Requests that must see every archived message in the archive table:
/// the journal is indexed before them.
fn needs_indexed_archive(req: &StorageRequest) -> bool {
    matches!(
        req,
        StorageRequest::QueryArchive { .. }
            | StorageRequest::ArchiveMetadata { .. }
            | StorageRequest::ReplaceArchived { .. }
            | StorageRequest::PurgeArchive { .. }
            | StorageRequest::CreateAccount { .. }
            | StorageRequest::DeleteAccount { .. }
    )
}

/// Journal records into the archive table, and the journal generation
/// from which segments are not indexed, in the write transaction `tx`.
/// A record the table refuses (its account is gone, its id archived
/// already) is skipped: it was answered when journaled, and what it asked
/// is moot now.
fn index_records(
    tx: &WriteTransaction,
    records: &[Record],
    next_generation: u64,
) -> Result<(), StorageError> {
    let mut tables = WriteTables::open(tx)?;
    let mut by_owner: HashMap<&str, Vec<&xmpp_core::archive::ArchivedMessage>> = HashMap::new();
    for r in records {
        by_owner.entry(&r.account).or_default().push(&r.message);
    }
    for (account, messages) in by_owner {
        if !xmpp_core::storage::is_service_owner(account) && !exists(&tables.credentials, account)?
        {
            tracing::debug!(%account, messages = messages.len(), "journaled messages of an account deleted since: not indexed");
            continue;
        }
        match archive::insert(&mut tables.archive, account, messages, true) {
            Ok(_) => {}
            Err(Fail::Clean(e)) => {
                tracing::warn!(%account, error = %e, "archive journal records not indexed");
            }
            Err(Fail::Poisoned(e)) => return Err(e),
        }
    }
    let mut meta = tx.open_table(JOURNAL)?;
    meta.insert(JOURNAL_GENERATION, &next_generation.to_be_bytes()[..])?;
    Ok(())
}

/// The archive layout of this build (chunks); stores without the mark
/// are converted when opened (`archive::convert`).
const ARCHIVE_LAYOUT: &[u8] = b"archive-layout";
const CHUNKED: u64 = 2;

/// Bytes of messages moved per write transaction while converting.
const CONVERT_BYTES: usize = 32 * 1024 * 1024;

/// Converts an archive of the old layout into chunks, unless the store
/// says it is chunked (`force`: check anyway, after an import of sled
/// trees), and marks the store.
fn convert_layout(db: &Database, force: bool) -> Result<(), StorageError> {
    if !force {
        let tx = db.begin_read()?;
        let meta = tx.open_table(JOURNAL)?;
        let layout = meta.get(ARCHIVE_LAYOUT)?;
        if let Some(raw) = layout {
            if be_u64(raw.value(), "archive layout")? == CHUNKED {
                return Ok(());
            }
        }
    }
    let started = std::time::Instant::now();
    let mut rounds = 0u32;
    loop {
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        let done = {
            let mut table = tx.open_table(ARCHIVE)?;
            match archive::convert(&mut table, CONVERT_BYTES) {
                Ok(done) => done,
                Err(Fail::Clean(e) | Fail::Poisoned(e)) => return Err(e),
            }
        };
        if done {
            let mut meta = tx.open_table(JOURNAL)?;
            meta.insert(ARCHIVE_LAYOUT, &CHUNKED.to_be_bytes()[..])?;
        }
        tx.commit()?;
        rounds += 1;
        if rounds > 1 {
            tracing::info!(rounds, "converting the message archive to chunks");
        }
        if done {
            break;
        }
    }
    if rounds > 1 {
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "message archive converted to chunks"
        );
    }
    Ok(())
}

/// Opens the journal of a store just opened, indexing what a crash left
/// in it before anything else runs.
fn replay_journal(db: &Database, dir: &Path) -> Result<Journal, StorageError> {
    let indexed = {
        let tx = db.begin_read()?;
        let meta = tx.open_table(JOURNAL)?;
        let stored = meta.get(JOURNAL_GENERATION)?;
        match stored {
            Some(raw) => be_u64(raw.value(), "journal generation")?,
            None => 0,
        }
    };
    let (journal, replay) = Journal::open(dir, indexed)?;
    if !replay.records.is_empty() || replay.next_generation != indexed {
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        index_records(&tx, &replay.records, replay.next_generation)?;
        tx.commit()?;
    }
    journal.retire(replay.next_generation);
    Ok(journal)
}

/// The store, shared with its indexer thread.
pub struct Inner {
    /// `None` once [`Backend::close`]d. redb marks its file clean only when
    /// the `Database` is dropped, and a server's storage threads hold the
    /// backend until the process ends: without closing, every start after
    /// a clean stop paid a repair walk of the whole file (~1.3 s/GB).
    db: RwLock<Option<Database>>,
    /// The database file.
    path: PathBuf,
    quick_repair: AtomicBool,
    journal: Journal,
    /// Held while journal records are being indexed, so that a reader of
    /// the archive waits for an indexing under way instead of missing its
    /// records.
    indexing: Mutex<()>,
}

impl Deref for RedbBackend {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// Wakes the indexer thread: when pending records reach
/// [`journal::INDEX_AFTER_BYTES`], and to stop it.
#[derive(Default)]
struct IndexerSignal {
    woken: Mutex<bool>,
    cv: Condvar,
    stop: AtomicBool,
}

impl IndexerSignal {
    fn wake(&self) {
        *self.woken.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_one();
    }

    /// Waits for a wake-up or [`INDEX_EVERY`]; whether to go on.
    fn wait(&self) -> bool {
        let guard = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut woken, _) = self
            .cv
            .wait_timeout_while(guard, INDEX_EVERY, |woken| !*woken)
            .unwrap_or_else(PoisonError::into_inner);
        *woken = false;
        !self.stop.load(Ordering::Acquire)
    }
}

impl Drop for RedbBackend {
    fn drop(&mut self) {
        self.indexer.stop.store(true, Ordering::Release);
        self.indexer.wake();
    }
}

/// The indexer: moves pending journal records into the archive table when
/// woken or every [`INDEX_EVERY`], off the storage threads' path. It holds
/// the store only while indexing, so dropping the backend ends it.
fn spawn_indexer(inner: Weak<Inner>, signal: Arc<IndexerSignal>) {
    let spawned = std::thread::Builder::new()
        .name("vireo-archive-index".to_owned())
        .spawn(move || {
            while signal.wait() {
                let Some(inner) = inner.upgrade() else { break };
                if !inner.journal.has_pending() {
                    continue;
                }
                if let Err(e) = inner.index_journal() {
                    // The records stay pending (and on disk); reads index
                    // them, or the next round retries.
                    tracing::error!(error = %e, path = %inner.path.display(), "indexing the archive journal failed");
                }
            }
        });
    if let Err(e) = spawned {
        // Reads and the threshold still index (`index_journal`).
        tracing::error!(error = %e, "cannot spawn the archive indexer thread");
    }
}

/// The open database, held for as long as a transaction on it runs (so
/// that closing waits for it).
struct Open<'a>(RwLockReadGuard<'a, Option<Database>>);

impl Deref for Open<'_> {
    type Target = Database;
    fn deref(&self) -> &Database {
        match self.0.as_ref() {
            Some(db) => db,
            // `RedbBackend::open_db` only makes an `Open` of `Some`.
            None => unreachable!("an Open guard of a closed store"),
        }
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn utf8(raw: &[u8], what: &'static str) -> Result<String, StorageError> {
    String::from_utf8(raw.to_vec()).map_err(|_| StorageError::NotUtf8(what))
}

fn exists<T: ReadableTable<Bytes, Bytes>>(
    credentials: &T,
    account: &str,
) -> Result<bool, StorageError> {
    Ok(credentials.get(account.as_bytes())?.is_some())
}

fn get_string<T: ReadableTable<Bytes, Bytes>>(
    table: &T,
    key: &[u8],
    what: &'static str,
) -> Result<Option<String>, StorageError> {
    match table.get(key)? {
        Some(raw) => utf8(raw.value(), what).map(Some),
        None => Ok(None),
    }
}

/// The sequence numbers of an account's oldest and newest offline message.
fn offline_bounds<T: ReadableTable<Bytes, Bytes>>(
    offline: &T,
    account: &str,
) -> Result<(Option<u64>, Option<u64>), StorageError> {
    let (p, end) = (prefix(account), prefix_end(account));
    let mut range = offline.range(p.as_slice()..end.as_slice())?;
    let first = match range.next() {
        Some(entry) => Some(offline_seq(entry?.0.value())?),
        None => None,
    };
    let last = match range.next_back() {
        Some(entry) => Some(offline_seq(entry?.0.value())?),
        None => None,
    };
    Ok((first, last.or(first)))
}

/// The front page of an account's offline queue: its keys and stanzas.
fn offline_page<T: ReadableTable<Bytes, Bytes>>(
    offline: &T,
    account: &str,
    page: OfflinePage,
) -> Result<(Vec<Vec<u8>>, Vec<String>), StorageError> {
    let (p, end) = (prefix(account), prefix_end(account));
    let mut keys = Vec::new();
    let mut stanzas: Vec<String> = Vec::new();
    let mut bytes = 0usize;
    for entry in offline.range(p.as_slice()..end.as_slice())? {
        let (key, raw) = entry?;
        let raw = raw.value();
        if !page.admits(stanzas.len(), bytes, raw.len()) {
            break;
        }
        bytes = bytes.saturating_add(raw.len());
        stanzas.push(utf8(raw, "offline stanza")?);
        keys.push(key.value().to_vec());
    }
    Ok((keys, stanzas))
}

/// Whether a [`KeyLimit`] refuses storing `key`: counting stops at the
/// limit, so a full account costs `max` key reads, never more.
fn blob_refused<T: ReadableTable<Bytes, Bytes>>(
    blobs: &T,
    account: &str,
    key: &[u8],
    limit: Option<&KeyLimit>,
) -> Result<bool, StorageError> {
    let Some(limit) = limit else {
        return Ok(false);
    };
    let replaces = blobs.get(key)?.is_some();
    let take = usize::try_from(limit.max).unwrap_or(usize::MAX);
    let p = account_key(account, &limit.prefix);
    let mut existing = 0u64;
    for entry in blobs.range(p.as_slice()..)?.take(take) {
        if !entry?.0.value().starts_with(&p) {
            break;
        }
        existing += 1;
    }
    Ok(limit.refuses(existing, replaces))
}

/// Answers a read-only request; `None` for a mutating one.
fn read<T: ReadableTable<Bytes, Bytes>>(
    t: &Tables<T>,
    req: &StorageRequest,
) -> Option<Result<StorageResult, StorageError>> {
    Some(match req {
        StorageRequest::LoadCredentials { account } => load_credentials(t, account),
        StorageRequest::LoadAccount { account, documents } => load_account(t, account, documents),
        StorageRequest::LoadBlob { account, key } => {
            get_string(&t.blobs, &account_key(account, key), "stored document")
                .map(StorageResult::Blob)
        }
        StorageRequest::ListBlobs {
            account,
            prefix,
            after,
            max,
        } => list_blobs(t, account, prefix, after.as_deref(), *max),
        StorageRequest::QueryArchive { account, query } => {
            archive::query(&t.archive, account, query)
        }
        StorageRequest::ArchiveMetadata { account } => archive::metadata(&t.archive, account),
        _ => return None,
    })
}

/// A page of the account's documents under `prefix`, after `after`.
fn list_blobs<T: ReadableTable<Bytes, Bytes>>(
    t: &Tables<T>,
    account: &str,
    prefix: &str,
    after: Option<&str>,
    max: usize,
) -> Result<StorageResult, StorageError> {
    let head = super::keys::prefix(account).len();
    let under = account_key(account, prefix);
    // Keys after `after` and under `prefix`: start at whichever is later
    // (the `after` key itself is skipped).
    let skip = after
        .filter(|k| *k >= prefix)
        .map(|k| account_key(account, k));
    let start = skip.clone().unwrap_or_else(|| under.clone());
    let range = t.blobs.range(start.as_slice()..)?;
    let mut items = Vec::new();
    for entry in range {
        let (key, value) = entry?;
        let key = key.value();
        if !key.starts_with(&under) {
            break;
        }
        if skip.as_deref() == Some(key) {
            continue;
        }
        if items.len() == max {
            return Ok(StorageResult::Documents { items, more: true });
        }
        let name = utf8(&key[head..], "document key")?;
        items.push((name, utf8(value.value(), "stored document")?));
    }
    Ok(StorageResult::Documents { items, more: false })
}

fn load_credentials<T: ReadableTable<Bytes, Bytes>>(
    t: &Tables<T>,
    account: &str,
) -> Result<StorageResult, StorageError> {
    match t.credentials.get(account.as_bytes())? {
        None => Ok(StorageResult::Credentials(None)),
        Some(raw) => codec::decode_credentials(raw.value())
            .map(|c| StorageResult::Credentials(Some(c)))
            .map_err(|source| StorageError::Corrupt {
                what: "credentials",
                source,
            }),
    }
}

fn load_account<T: ReadableTable<Bytes, Bytes>>(
    t: &Tables<T>,
    account: &str,
    documents: &[&'static str],
) -> Result<StorageResult, StorageError> {
    if !exists(&t.credentials, account)? {
        return Ok(StorageResult::Account(None));
    }
    let (p, end) = (prefix(account), prefix_end(account));
    let mut roster = Vec::new();
    for entry in t.roster.range(p.as_slice()..end.as_slice())? {
        let (_, raw) = entry?;
        roster.push(codec::decode_roster_item(raw.value()).map_err(|source| {
            StorageError::Corrupt {
                what: "roster item",
                source,
            }
        })?);
    }
    let roster_version = match t.roster_version.get(account.as_bytes())? {
        Some(raw) => be_u64(raw.value(), "roster version")?,
        None => 0,
    };
    let mut loaded = Vec::with_capacity(documents.len());
    for &key in documents {
        if let Some(doc) = get_string(&t.blobs, &account_key(account, key), "account document")? {
            loaded.push((key, doc));
        }
    }
    Ok(StorageResult::Account(Some(AccountData {
        roster,
        roster_version,
        documents: loaded.into_iter().collect(),
    })))
}

/// Applies one request inside the batch's write transaction; reads first,
/// then writes (see the module docs).
fn write(t: &mut WriteTables<'_>, req: StorageRequest) -> Result<StorageResult, Fail> {
    if let Some(answer) = read(t, &req) {
        return answer.map_err(Fail::Clean);
    }
    match req {
        StorageRequest::CreateAccount {
            account,
            credentials,
        } => {
            if exists(&t.credentials, &account)? {
                return Ok(StorageResult::Conflict);
            }
            // Leftovers of an interrupted deletion (in a store imported
            // from sled) must not become the new account's archive.
            let leftovers = archive::has_archive(&t.archive, &account)?;
            let value = codec::encode_credentials(&credentials);
            if leftovers {
                archive::clear(&mut t.archive, &account).map_err(poison)?;
            }
            t.credentials
                .insert(account.as_bytes(), value.as_slice())
                .map_err(poison)?;
            Ok(StorageResult::Done)
        }
        StorageRequest::SetCredentials {
            account,
            credentials,
        } => {
            if !exists(&t.credentials, &account)? {
                return Ok(StorageResult::NotFound);
            }
            let value = codec::encode_credentials(&credentials);
            t.credentials
                .insert(account.as_bytes(), value.as_slice())
                .map_err(poison)?;
            Ok(StorageResult::Done)
        }
        StorageRequest::PutRosterItem {
            account,
            item,
            version,
        } => {
            if !exists(&t.credentials, &account)? {
                return Ok(StorageResult::NotFound);
            }
            let key = account_key(&account, &item.jid);
            let value = codec::encode_roster_item(&item);
            t.roster
                .insert(key.as_slice(), value.as_slice())
                .map_err(poison)?;
            t.roster_version
                .insert(account.as_bytes(), &version.to_be_bytes()[..])
                .map_err(poison)?;
            Ok(StorageResult::Done)
        }
        StorageRequest::RemoveRosterItem {
            account,
            jid,
            version,
        } => {
            if !exists(&t.credentials, &account)? {
                return Ok(StorageResult::NotFound);
            }
            let key = account_key(&account, &jid);
            t.roster.remove(key.as_slice()).map_err(poison)?;
            t.roster_version
                .insert(account.as_bytes(), &version.to_be_bytes()[..])
                .map_err(poison)?;
            Ok(StorageResult::Done)
        }
        StorageRequest::PushOffline {
            account,
            stanza,
            limit,
        } => {
            if !exists(&t.credentials, &account)? {
                return Ok(StorageResult::NotFound);
            }
            let (first, last) = offline_bounds(&t.offline, &account)?;
            // Keys are consecutive (pages are taken from the front), so the
            // ends give the length without a scan.
            let len = match (first, last) {
                (Some(f), Some(l)) => l.saturating_sub(f).saturating_add(1),
                _ => 0,
            };
            if limit.is_some_and(|l| len >= l) {
                return Ok(StorageResult::Full);
            }
            let seq = last.map_or(0, |l| l.saturating_add(1));
            t.offline
                .insert(offline_key(&account, seq).as_slice(), stanza.as_bytes())
                .map_err(poison)?;
            Ok(StorageResult::Done)
        }
        StorageRequest::TakeOffline { account, page } => {
            let (keys, stanzas) = offline_page(&t.offline, &account, page)?;
            for key in keys {
                t.offline.remove(key.as_slice()).map_err(poison)?;
            }
            Ok(StorageResult::Offline(stanzas))
        }
        StorageRequest::DeleteAccount { account } => {
            if !exists(&t.credentials, &account)? {
                return Ok(StorageResult::NotFound);
            }
            let (p, end) = (prefix(&account), prefix_end(&account));
            t.credentials.remove(account.as_bytes()).map_err(poison)?;
            t.roster_version
                .remove(account.as_bytes())
                .map_err(poison)?;
            for table in [&mut t.roster, &mut t.offline, &mut t.blobs] {
                table
                    .retain_in(p.as_slice()..end.as_slice(), |_, _| false)
                    .map_err(poison)?;
            }
            archive::clear(&mut t.archive, &account).map_err(poison)?;
            Ok(StorageResult::Done)
        }
        StorageRequest::StoreBlob {
            account,
            key,
            value,
            limit,
        } => {
            // A service domain's documents need no account.
            if !xmpp_core::storage::is_service_owner(&account) && !exists(&t.credentials, &account)?
            {
                return Ok(StorageResult::NotFound);
            }
            let k = account_key(&account, &key);
            match value {
                Some(_) if blob_refused(&t.blobs, &account, &k, limit.as_ref())? => {
                    Ok(StorageResult::Full)
                }
                Some(v) => {
                    t.blobs.insert(k.as_slice(), v.as_bytes()).map_err(poison)?;
                    Ok(StorageResult::Done)
                }
                None => {
                    t.blobs.remove(k.as_slice()).map_err(poison)?;
                    Ok(StorageResult::Done)
                }
            }
        }
        StorageRequest::AppendArchive { account, message } => {
            archive::append(t, &account, &message)
        }
        StorageRequest::ReplaceArchived {
            account,
            id,
            stanza,
        } => archive::replace(t, &account, id, &stanza),
        StorageRequest::PurgeArchive {
            before,
            from,
            limit,
        } => archive::purge(&mut t.archive, before, from.as_deref(), limit),
        // Answered by `read` above.
        read_only @ (StorageRequest::LoadCredentials { .. }
        | StorageRequest::LoadAccount { .. }
        | StorageRequest::LoadBlob { .. }
        | StorageRequest::ListBlobs { .. }
        | StorageRequest::QueryArchive { .. }
        | StorageRequest::ArchiveMetadata { .. }) => Err(Fail::Clean(StorageError::Open {
            path: PathBuf::new(),
            reason: format!("internal: read request reached the writer: {read_only:?}"),
        })),
    }
}

impl RedbBackend {
    /// Opens (creating if needed) the store in the directory `dir`, with a
    /// cache of [`DEFAULT_CACHE_BYTES`].
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// [`RedbBackend::open`] with a cache of `cache_bytes`.
    ///
    /// After a crash redb repairs the file while opening it (a walk of the
    /// whole file, about 1.3 s/GB, logged as it goes). A panic inside redb
    /// while opening a damaged file is caught and returned as
    /// [`StorageError::Open`], like sled's.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StorageError> {
        let open_error = |path: &Path, reason: String| StorageError::Open {
            path: path.to_owned(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_error(dir, e.to_string()))?;
        let path = dir.join(FILE_NAME);
        let cache = usize::try_from(cache_bytes).unwrap_or(usize::MAX);
        let opened = catch_unwind(AssertUnwindSafe(|| -> Result<Database, StorageError> {
            let shown = path.display().to_string();
            let db = Builder::new()
                .set_cache_size(cache)
                .set_repair_callback(move |session| {
                    tracing::warn!(
                        path = %shown,
                        progress = session.progress(),
                        "repairing the store after an unclean shutdown"
                    );
                })
                .create(&path)
                .map_err(|e| StorageError::Redb(e.into()))?;
            let tx = db.begin_write()?;
            for def in ALL {
                tx.open_table(def)?;
            }
            tx.open_table(JOURNAL)?;
            tx.commit()?;
            Ok(db)
        }));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(open_error(&path, e.to_string())),
            Err(panic) => {
                let msg = super::panic_message(panic.as_ref());
                tracing::error!(path = %path.display(), panic = %msg, "redb panicked while opening the store");
                return Err(open_error(
                    &path,
                    format!(
                        "redb panicked while opening the database ({msg}); \
                         the store may be damaged: restore it from a backup or move it aside"
                    ),
                ));
            }
        };
        convert_layout(&db, false)
            .map_err(|e| open_error(&path, format!("converting the message archive: {e}")))?;
        let journal = replay_journal(&db, &dir.join(JOURNAL_DIR))
            .map_err(|e| open_error(&path, format!("archive journal: {e}")))?;
        tracing::debug!(path = %path.display(), "redb store opened");
        let inner = Arc::new(Inner {
            db: RwLock::new(Some(db)),
            path,
            quick_repair: AtomicBool::new(false),
            journal,
            indexing: Mutex::new(()),
        });
        let indexer = Arc::new(IndexerSignal::default());
        spawn_indexer(Arc::downgrade(&inner), indexer.clone());
        Ok(RedbBackend { inner, indexer })
    }

    /// Whether commits save redb's allocator state so that reopening after
    /// a crash is almost instant instead of a repair walk of the whole file.
    ///
    /// Off by default: quick repair turns on two-phase commit, so every
    /// group commit (every acknowledged write) pays two fsyncs instead of
    /// one and writes the allocator state besides, while the repair walk is
    /// paid only after a crash and is short at the sizes a store of this
    /// server reaches (about 1.3 s/GB). Measured (`storage::rss_bench`, 500,000
    /// archive appends in group commits of 256, ext4): 9.8 s without, 18.5 s
    /// with. A deployment with a large archive that cares more about restart
    /// time than write throughput can turn it on.
    pub fn with_quick_repair(self, enabled: bool) -> Self {
        self.quick_repair.store(enabled, Ordering::Relaxed);
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Inner {
    /// The database, unless the store was closed.
    fn open_db(&self) -> Result<Open<'_>, StorageError> {
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            return Err(StorageError::Unavailable(format!(
                "the store {} is closed (the server is stopping)",
                self.path.display()
            )));
        }
        Ok(Open(guard))
    }

    fn failed(&self, e: StorageError) -> StorageResult {
        tracing::error!(error = %e, path = %self.path.display(), "storage request failed");
        StorageResult::Failed(e.to_string())
    }

    /// One write transaction for every request of the batch, committed
    /// durably (one fsync) before the answers are returned.
    fn commit_batch(&self, reqs: Vec<StorageRequest>) -> Vec<StorageResult> {
        let n = reqs.len();
        let db = match self.open_db() {
            Ok(db) => db,
            Err(e) => return vec![self.failed(e); n],
        };
        let mut tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(e) => return vec![self.failed(e.into()); n],
        };
        tx.set_quick_repair(self.quick_repair.load(Ordering::Relaxed));
        if let Err(e) = tx.set_durability(Durability::Immediate) {
            return vec![self.failed(e.into()); n];
        }
        match self.write_batch(&tx, reqs) {
            Ok(results) => match tx.commit() {
                Ok(()) => results,
                Err(e) => vec![self.failed(e.into()); n],
            },
            Err(e) => {
                if let Err(abort) = tx.abort() {
                    tracing::error!(error = %abort, path = %self.path.display(), "aborting a storage transaction failed");
                }
                vec![self.failed(e); n]
            }
        }
    }

    /// Moves the pending journal records into the archive table, in one
    /// write transaction that also stores the journal generation they end
    /// at; only then are their segments deleted. On failure they stay
    /// pending and on disk.
    fn index_journal(&self) -> Result<(), StorageError> {
        let _indexing = self.indexing.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(taken) = self.journal.take()? else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let committed = self.open_db().and_then(|db| {
            let mut tx = db.begin_write()?;
            tx.set_quick_repair(self.quick_repair.load(Ordering::Relaxed));
            tx.set_durability(Durability::Immediate)?;
            index_records(&tx, &taken.records, taken.next_generation)?;
            tx.commit()?;
            Ok(())
        });
        match committed {
            Ok(()) => {
                tracing::debug!(
                    records = taken.records.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "archive journal indexed"
                );
                self.journal.retire(taken.next_generation);
                Ok(())
            }
            Err(e) => {
                self.journal.restore(taken);
                Err(e)
            }
        }
    }

    /// Archived messages into the journal: each checked as the archive
    /// table would (the account exists, the id is not archived yet), the
    /// accepted ones written and synced together. Answers with their
    /// positions in the batch, and the journal's pending bytes.
    fn append_journal(&self, batch: Vec<(usize, Record)>) -> (Vec<(usize, StorageResult)>, usize) {
        let verdicts = match self.check_appends(&batch) {
            Ok(v) => v,
            Err(e) => {
                let failed = self.failed(e);
                return (
                    batch
                        .into_iter()
                        .map(|(i, _)| (i, failed.clone()))
                        .collect(),
                    0,
                );
            }
        };
        let mut answers = Vec::with_capacity(batch.len());
        let mut accepted = Vec::with_capacity(batch.len());
        let mut accepted_at = Vec::with_capacity(batch.len());
        for ((i, record), verdict) in batch.into_iter().zip(verdicts) {
            match verdict {
                Some(answer) => answers.push((i, answer)),
                None => {
                    accepted_at.push(i);
                    accepted.push(record);
                }
            }
        }
        match self.journal.append(accepted) {
            Ok(pending) => {
                answers.extend(accepted_at.into_iter().map(|i| (i, StorageResult::Done)));
                (answers, pending)
            }
            Err(e) => {
                let failed = self.failed(e);
                answers.extend(accepted_at.into_iter().map(|i| (i, failed.clone())));
                (answers, 0)
            }
        }
    }

    /// For each record, `None` if it may be appended, or its answer:
    /// `Failed` for an invalid name, `NotFound` for an unknown account,
    /// `Conflict` for an id archived already (in the table, pending in the
    /// journal, or earlier in the batch). An id whose record the indexer
    /// holds at that moment is in neither: its duplicate answers `Done` and
    /// is skipped when indexed. Only a replay of an id can meet this (live
    /// ids only grow), and nothing is stored twice.
    fn check_appends(
        &self,
        batch: &[(usize, Record)],
    ) -> Result<Vec<Option<StorageResult>>, StorageError> {
        let db = self.open_db()?;
        let tx = db.begin_read()?;
        let credentials = tx.open_table(CREDENTIALS)?;
        let table = tx.open_table(ARCHIVE)?;
        /// What the checks need of an owner, looked up once per batch: ids
        /// only grow, so a copy newer than everything stored, pending and
        /// earlier in the batch needs no lookup at all.
        struct Owner {
            exists: bool,
            newest: Option<ArchiveId>,
        }
        let mut owners: HashMap<&str, Owner> = HashMap::new();
        let mut verdicts = Vec::with_capacity(batch.len());
        for (at, (_, r)) in batch.iter().enumerate() {
            let account = r.account.as_str();
            if let Err(e) = check_account(account) {
                verdicts.push(Some(self.failed(e)));
                continue;
            }
            if r.message.with_bare().contains('\0') {
                verdicts.push(Some(
                    self.failed(StorageError::InvalidAccount(r.message.with.clone())),
                ));
                continue;
            }
            let owner = match owners.entry(account) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let exists = xmpp_core::storage::is_service_owner(account)
                        || exists(&credentials, account)?;
                    let newest = if exists {
                        archive::newest(&table, account)?.max(self.journal.newest_pending(account))
                    } else {
                        None
                    };
                    v.insert(Owner { exists, newest })
                }
            };
            if !owner.exists {
                verdicts.push(Some(StorageResult::NotFound));
                continue;
            }
            let id = r.message.id;
            let seen = owner.newest.is_some_and(|newest| id <= newest)
                && (batch[..at].iter().zip(&verdicts).any(|((_, earlier), v)| {
                    v.is_none() && earlier.message.id == id && earlier.account == r.account
                }) || self.journal.is_pending(account, id)
                    || archive::contains(&table, account, id)?);
            if seen {
                verdicts.push(Some(StorageResult::Conflict));
                continue;
            }
            owner.newest = owner.newest.max(Some(id));
            verdicts.push(None);
        }
        Ok(verdicts)
    }

    /// Read-only requests on one read transaction (a snapshot).
    fn read_batch(&self, reqs: Vec<StorageRequest>) -> Vec<StorageResult> {
        let n = reqs.len();
        let db = match self.open_db() {
            Ok(db) => db,
            Err(e) => return vec![self.failed(e); n],
        };
        let tables = db
            .begin_read()
            .map_err(StorageError::from)
            .and_then(|tx| ReadTables::open(&tx));
        let tables = match tables {
            Ok(t) => t,
            Err(e) => return vec![self.failed(e); n],
        };
        reqs.into_iter()
            .map(|req| {
                if let Some(Err(e)) = req.account().map(check_account) {
                    return self.failed(e);
                }
                match read(&tables, &req) {
                    Some(Ok(result)) => result,
                    Some(Err(e)) => self.failed(e),
                    None => self.failed(StorageError::Open {
                        path: self.path.clone(),
                        reason: format!("internal: write request in a read batch: {req:?}"),
                    }),
                }
            })
            .collect()
    }

    /// The requests of a batch in one write transaction; `Err` when it must
    /// be aborted.
    fn write_batch(
        &self,
        tx: &WriteTransaction,
        reqs: Vec<StorageRequest>,
    ) -> Result<Vec<StorageResult>, StorageError> {
        let mut tables = WriteTables::open(tx)?;
        let mut results = Vec::with_capacity(reqs.len());
        for req in reqs {
            if let Some(Err(e)) = req.account().map(check_account) {
                results.push(self.failed(e));
                continue;
            }
            match write(&mut tables, req) {
                Ok(result) => results.push(result),
                Err(Fail::Clean(e)) => results.push(self.failed(e)),
                Err(Fail::Poisoned(e)) => return Err(e),
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
impl RedbBackend {
    /// Archive entries of the layout before chunks (`m` and `w` keys).
    pub(crate) fn old_layout_keys(&self) -> Result<usize, StorageError> {
        let db = self.open_db()?;
        let tx = db.begin_read()?;
        let table = tx.open_table(ARCHIVE)?;
        let mut n = 0;
        for entry in table.iter()? {
            let (k, _) = entry?;
            let k = k.value();
            let tag = k.iter().position(|b| *b == 0).and_then(|at| k.get(at + 1));
            if matches!(tag, Some(b'm' | b'w')) {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// What [`RedbBackend::import_sled`] copied: entries per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// `(table, entries)` for every table, in [`ALL`] order.
    pub tables: Vec<(&'static str, u64)>,
    /// Accounts (entries of `credentials`).
    pub accounts: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
}

/// Bytes of keys and values per write transaction while importing: redb
/// keeps a transaction's dirty pages until it commits.
const IMPORT_CHUNK_BYTES: u64 = 32 * 1024 * 1024;

impl RedbBackend {
    /// Copies every tree of a sled store into the table of the same name
    /// (the key layouts are the same) and then verifies the copy: every
    /// table is read back and compared entry by entry with its tree, which
    /// covers the accounts and the archive totals. The copy runs in write
    /// transactions of about [`IMPORT_CHUNK_BYTES`]; the last one is
    /// committed durably (an fsync), the others need not be. Meant for an
    /// empty store: entries already present are overwritten, none removed.
    ///
    /// The sled store is only read.
    pub fn import_sled(&self, sled: &super::SledBackend) -> Result<ImportReport, StorageError> {
        self.import_sled_in_chunks(sled, IMPORT_CHUNK_BYTES)
    }

    /// [`RedbBackend::import_sled`] committing every `chunk_bytes`.
    pub(crate) fn import_sled_in_chunks(
        &self,
        sled: &super::SledBackend,
        chunk_bytes: u64,
    ) -> Result<ImportReport, StorageError> {
        let mismatch = |table: &str, what: String| StorageError::Open {
            path: self.path.clone(),
            reason: format!("imported table {table} differs from the sled tree: {what}"),
        };
        let mut report = ImportReport::default();
        let db = self.open_db()?;
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::None)?;
        let mut in_tx = 0u64;
        for (def, (name, tree)) in ALL.into_iter().zip(sled.trees()) {
            debug_assert_eq!(def.name(), name);
            let mut entries = 0u64;
            let mut iter = tree.iter();
            loop {
                {
                    let mut table = tx.open_table(def)?;
                    for entry in iter.by_ref() {
                        let (k, v) = entry?;
                        table.insert(&k[..], &v[..])?;
                        entries += 1;
                        let n = (k.len() + v.len()) as u64;
                        report.bytes += n;
                        in_tx += n;
                        if in_tx >= chunk_bytes {
                            break;
                        }
                    }
                }
                if in_tx < chunk_bytes {
                    break; // this tree is done
                }
                tx.commit()?;
                tx = db.begin_write()?;
                tx.set_durability(Durability::None)?;
                in_tx = 0;
            }
            report.tables.push((name, entries));
        }
        tx.set_durability(Durability::Immediate)?;
        tx.commit()?;
        // Verify: both sides in key order, entry by entry.
        let read = db.begin_read()?;
        for (def, (name, tree)) in ALL.into_iter().zip(sled.trees()) {
            let table = read.open_table(def)?;
            let mut ours = table.iter()?;
            for entry in tree.iter() {
                let (k, v) = entry?;
                match ours.next() {
                    Some(got) => {
                        let (gk, gv) = got?;
                        if gk.value() != &k[..] || gv.value() != &v[..] {
                            return Err(mismatch(name, format!("at key {:?}", &k[..])));
                        }
                    }
                    None => return Err(mismatch(name, format!("key {:?} missing", &k[..]))),
                }
            }
            if ours.next().is_some() {
                return Err(mismatch(name, "extra entries".to_owned()));
            }
            if u64::try_from(tree.len()).ok() != Some(table.len()?) {
                return Err(mismatch(name, "entry counts differ".to_owned()));
            }
        }
        report.accounts = report.tables.first().map(|&(_, n)| n).unwrap_or_default();
        if self.accounts()?.len() as u64 != report.accounts
            || sled.accounts()?.len() as u64 != report.accounts
        {
            return Err(mismatch("credentials", "account counts differ".to_owned()));
        }
        // The trees hold sled's archive layout, verified as such above.
        convert_layout(&db, true)?;
        Ok(report)
    }
}

impl Backend for RedbBackend {
    fn execute(&self, req: StorageRequest) -> StorageResult {
        let mut results = self.execute_batch(vec![req]);
        results
            .pop()
            .unwrap_or_else(|| StorageResult::Failed("no answer".to_owned()))
    }

    /// Group commit: archived messages go to the archive journal (one
    /// write and one shared sync), everything else into one write
    /// transaction committed durably (one fsync), both before the answers
    /// are returned. A batch that reads or changes the archive otherwise
    /// (queries, retraction, retention, account creation and deletion)
    /// first has the journal indexed, and then runs as one transaction.
    fn execute_batch(&self, reqs: Vec<StorageRequest>) -> Vec<StorageResult> {
        let n = reqs.len();
        let is_append = |r: &StorageRequest| matches!(r, StorageRequest::AppendArchive { .. });
        if reqs.iter().all(StorageRequest::is_read) {
            if reqs.iter().any(needs_indexed_archive) {
                if let Err(e) = self.index_journal() {
                    return vec![self.failed(e); n];
                }
            }
            return self.read_batch(reqs);
        }
        if !reqs.iter().any(is_append) || reqs.iter().any(needs_indexed_archive) {
            if reqs
                .iter()
                .any(|r| is_append(r) || needs_indexed_archive(r))
            {
                if let Err(e) = self.index_journal() {
                    return vec![self.failed(e); n];
                }
            }
            return self.commit_batch(reqs);
        }
        let mut results: Vec<Option<StorageResult>> = vec![None; n];
        let mut appends = Vec::new();
        let (mut rest, mut rest_at) = (Vec::new(), Vec::new());
        for (i, req) in reqs.into_iter().enumerate() {
            match req {
                StorageRequest::AppendArchive { account, message } => {
                    appends.push((i, Record { account, message }));
                }
                other => {
                    rest_at.push(i);
                    rest.push(other);
                }
            }
        }
        if !rest.is_empty() {
            for (i, r) in rest_at.into_iter().zip(self.commit_batch(rest)) {
                results[i] = Some(r);
            }
        }
        let (answers, pending) = self.append_journal(appends);
        for (i, r) in answers {
            results[i] = Some(r);
        }
        if pending >= journal::INDEX_NOW_BYTES {
            // The indexer fell behind: catch up here (waiting for it if it
            // runs), which bounds the journal's memory and slows this
            // writer to the indexing rate.
            if let Err(e) = self.index_journal() {
                tracing::error!(error = %e, path = %self.path.display(), "indexing the archive journal failed");
            }
        } else if pending >= journal::INDEX_AFTER_BYTES {
            self.indexer.wake();
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| StorageResult::Failed("no answer".to_owned())))
            .collect()
    }

    /// Every answered write is durable already; the journal is indexed so
    /// that the database file alone holds everything (a backup copies it).
    fn flush(&self) -> Result<(), StorageError> {
        self.index_journal()
    }

    /// Drops the database (waiting for running transactions), which marks
    /// the file clean: the next open needs no repair walk.
    fn close(&self) {
        self.indexer.stop.store(true, Ordering::Release);
        self.indexer.wake();
        if let Err(e) = self.index_journal() {
            tracing::error!(error = %e, path = %self.path.display(), "indexing the archive journal at close failed; it is replayed at the next start");
        }
        let db = self
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(db);
        tracing::debug!(path = %self.path.display(), "redb store closed");
    }

    /// A read transaction is a consistent snapshot while writes go on; its
    /// tables are copied into a new database `dest/vireo.redb`.
    fn snapshot(&self, dest: &Path) -> Result<(), StorageError> {
        if dest.exists() {
            return Err(StorageError::Open {
                path: dest.to_owned(),
                reason: "snapshot destination already exists".to_owned(),
            });
        }
        self.index_journal()?;
        let db = self.open_db()?;
        let source = db.begin_read()?;
        let copy = RedbBackend::open(dest)?;
        let copy_db = copy.open_db()?;
        let tx = copy_db.begin_write()?;
        {
            for def in ALL {
                let from = source.open_table(def)?;
                let mut to = tx.open_table(def)?;
                for entry in from.iter()? {
                    let (k, v) = entry?;
                    to.insert(k.value(), v.value())?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// From the tables' headers: redb keeps each table's length, so this
    /// reads no entry.
    fn sizes(&self) -> Option<super::StoreSizes> {
        // Archived messages are counted in the table.
        self.index_journal().ok()?;
        let db = self.open_db().ok()?;
        let tx = db.begin_read().ok()?;
        let len = |def: Def| {
            tx.open_table(def)
                .ok()
                .and_then(|t| t.len().ok())
                .unwrap_or(0)
        };
        // The archive table also holds the with-index and the totals: the
        // messages are the sum of the owners' totals (one seek per owner).
        let archived = tx.open_table(ARCHIVE).ok().and_then(|t| {
            let mut sum = 0u64;
            let mut cursor: Vec<u8> = Vec::new();
            loop {
                let next = match t.range(cursor.as_slice()..).ok()?.next() {
                    Some(entry) => entry.ok()?.0.value().to_vec(),
                    None => break,
                };
                let end = next.iter().position(|&b| b == 0).unwrap_or(next.len());
                let owner = std::str::from_utf8(&next[..end]).ok()?.to_owned();
                let total = super::keys::archive::tagged(&owner, super::keys::archive::TOTAL);
                if let Some(raw) = t.get(total.as_slice()).ok()? {
                    sum += be_u64(raw.value(), "archive total").ok()?;
                }
                cursor = prefix_end(&owner);
            }
            Some(sum)
        });
        Some(super::StoreSizes {
            offline: len(OFFLINE),
            archived: archived.unwrap_or(0),
        })
    }

    fn ready(&self) -> Result<(), StorageError> {
        super::ready_by_reading(self)
    }

    fn service_owners(&self) -> Result<Vec<String>, StorageError> {
        // A room may own nothing but journaled messages yet.
        self.index_journal()?;
        let db = self.open_db()?;
        let tx = db.begin_read()?;
        let mut owners = Vec::new();
        for def in [BLOBS, ARCHIVE] {
            let table = tx.open_table(def)?;
            // One seek per owner: past every `owner 0x00 ...` key.
            let mut cursor: Vec<u8> = Vec::new();
            loop {
                let next = match table.range(cursor.as_slice()..)?.next() {
                    Some(entry) => entry?.0.value().to_vec(),
                    None => break,
                };
                let end = next.iter().position(|&b| b == 0).unwrap_or(next.len());
                let owner = utf8(&next[..end], "owner")?;
                cursor = prefix_end(&owner);
                if xmpp_core::storage::is_service_owner(&owner) {
                    owners.push(owner);
                }
            }
        }
        owners.sort();
        owners.dedup();
        Ok(owners)
    }

    fn peek_offline(&self, account: &str) -> Result<Vec<String>, StorageError> {
        check_account(account)?;
        let db = self.open_db()?;
        let tx = db.begin_read()?;
        let offline = tx.open_table(OFFLINE)?;
        let (p, end) = (prefix(account), prefix_end(account));
        let mut stanzas = Vec::new();
        for entry in offline.range(p.as_slice()..end.as_slice())? {
            stanzas.push(utf8(entry?.1.value(), "offline stanza")?);
        }
        Ok(stanzas)
    }

    fn accounts(&self) -> Result<Vec<String>, StorageError> {
        let db = self.open_db()?;
        let tx = db.begin_read()?;
        let credentials = tx.open_table(CREDENTIALS)?;
        let mut accounts = Vec::new();
        for entry in credentials.iter()? {
            accounts.push(utf8(entry?.0.value(), "account name")?);
        }
        Ok(accounts)
    }
}

#[cfg(test)]
mod tests;
