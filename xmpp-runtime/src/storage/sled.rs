//! The embedded default backend, on sled 0.34.
//!
//! Layout, one sled tree per kind of record (keys are raw bytes; account
//! names never contain NUL, which separates the account from the rest):
//!
//! | tree             | key                          | value                         |
//! |------------------|------------------------------|-------------------------------|
//! | `credentials`    | account                      | [`codec`] credentials         |
//! | `roster`         | account 0x00 contact-jid     | [`codec`] roster item         |
//! | `roster_version` | account                      | u64 big-endian                |
//! | `offline`        | account 0x00 seq (u64 BE)    | stanza (UTF-8)                |
//! | `blobs`          | account 0x00 key             | XML document (UTF-8)          |
//! | `archive`        | see [`archive`]              | XEP-0313 message archives     |
//!
//! An account exists iff it has a `credentials` entry. Big-endian sequence
//! numbers make sled's key order the queue order.
//!
//! Consistency: every mutating request runs under one writer lock, so
//! check-then-write sequences (existence checks, next sequence number, the
//! key scans of `DeleteAccount`/`TakeOffline`) cannot interleave. Changes
//! that touch several keys go through one sled batch or multi-tree
//! transaction, which sled recovers all-or-nothing, so a crash never leaves
//! a half-applied request. The flush that makes a write durable happens after
//! the lock is released, so concurrent writers share fsyncs.

use std::convert::Infallible;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ::sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use ::sled::{Batch, Db, IVec, Tree};
use xmpp_core::storage::{AccountData, KeyLimit, StorageRequest, StorageResult};

mod archive;

use super::codec;
use super::keys::{account_key, be_u64, offline_key, prefix};
use super::{check_account, Backend, StorageError};

/// Bytes of sled page cache when the configuration names none
/// (`storage.cache_size`). The hub keeps live accounts in memory itself and
/// archive writes append at the end of one tree, so a small cache serves;
/// sled keeps what it caches after a peak of logins, so this is also part of
/// what a server holds on to after the peak (spec/performance.md, "Peak and
/// release").
pub const DEFAULT_CACHE_BYTES: u64 = 2 * 1024 * 1024;

/// A [`Backend`] storing everything in a sled database directory.
pub struct SledBackend {
    db: Db,
    credentials: Tree,
    roster: Tree,
    roster_version: Tree,
    offline: Tree,
    blobs: Tree,
    archive: Tree,
    /// Serializes mutations; see the module docs.
    writer: Mutex<()>,
    path: PathBuf,
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Result type of our transactions: they never abort by choice.
type TxResult<T> = Result<T, TransactionError<Infallible>>;

fn tx_error(e: TransactionError<Infallible>) -> StorageError {
    match e {
        TransactionError::Storage(e) => StorageError::Sled(e),
        TransactionError::Abort(never) => match never {},
    }
}

impl SledBackend {
    /// Opens (creating if needed) the store in `dir`.
    ///
    /// sled 0.34 has reports of panics while recovering a database after an
    /// abrupt stop; such a panic is caught here and returned as
    /// [`StorageError::Open`] so the server can report it instead of dying
    /// with a backtrace.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// [`SledBackend::open`] with a page cache of `cache_bytes`.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StorageError> {
        // A store closed a moment ago in this process may still be locked
        // while sled's background flusher winds down: retry briefly.
        let mut attempt = 0;
        loop {
            match Self::open_once(dir, cache_bytes) {
                Err(StorageError::Open { reason, .. })
                    if reason.contains("could not acquire lock") && attempt < 50 =>
                {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    fn open_once(dir: &Path, cache_bytes: u64) -> Result<Self, StorageError> {
        let opened = catch_unwind(AssertUnwindSafe(|| -> Result<_, ::sled::Error> {
            // sled's page cache defaults to 1 GiB and grows with every account
            // read; see DEFAULT_CACHE_BYTES.
            let db = ::sled::Config::new()
                .path(dir)
                .cache_capacity(cache_bytes)
                .open()?;
            let credentials = db.open_tree("credentials")?;
            let roster = db.open_tree("roster")?;
            let roster_version = db.open_tree("roster_version")?;
            let offline = db.open_tree("offline")?;
            let blobs = db.open_tree("blobs")?;
            let archive = db.open_tree("archive")?;
            Ok((
                db,
                credentials,
                roster,
                roster_version,
                offline,
                blobs,
                archive,
            ))
        }));
        let (db, credentials, roster, roster_version, offline, blobs, archive) = match opened {
            Ok(Ok(trees)) => trees,
            Ok(Err(e)) => {
                return Err(StorageError::Open {
                    path: dir.to_owned(),
                    reason: e.to_string(),
                })
            }
            Err(panic) => {
                let msg = super::panic_message(panic.as_ref());
                tracing::error!(path = %dir.display(), panic = %msg, "sled panicked while opening the store");
                return Err(StorageError::Open {
                    path: dir.to_owned(),
                    reason: format!(
                        "sled panicked while recovering the database ({msg}); \
                         the store may be damaged: restore it from a backup or move it aside"
                    ),
                });
            }
        };
        tracing::debug!(path = %dir.display(), "sled store opened");
        Ok(SledBackend {
            db,
            credentials,
            roster,
            roster_version,
            offline,
            blobs,
            archive,
            writer: Mutex::new(()),
            path: dir.to_owned(),
        })
    }

    /// Every tree with its name (the redb backend's table of the same name
    /// holds the same keys and values), for migrating a store.
    pub(crate) fn trees(&self) -> [(&'static str, &Tree); 6] {
        [
            ("credentials", &self.credentials),
            ("roster", &self.roster),
            ("roster_version", &self.roster_version),
            ("offline", &self.offline),
            ("blobs", &self.blobs),
            ("archive", &self.archive),
        ]
    }

    /// The guarded data is sled's, which stays consistent whatever a panicking
    /// holder did, so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn durable(&self, result: StorageResult, flush: bool) -> Result<StorageResult, StorageError> {
        if flush && result == StorageResult::Done {
            self.db.flush()?;
        }
        Ok(result)
    }

    fn exists(&self, account: &str) -> Result<bool, StorageError> {
        Ok(self.credentials.contains_key(account.as_bytes())?)
    }

    /// The sequence numbers of an account's oldest and newest offline
    /// message.
    fn offline_bounds(&self, account: &str) -> Result<(Option<u64>, Option<u64>), StorageError> {
        let seq = |entry: Option<Result<(::sled::IVec, ::sled::IVec), ::sled::Error>>| {
            entry
                .map(|e| {
                    let (key, _) = e?;
                    let tail = key.len().saturating_sub(8);
                    be_u64(&key[tail..], "offline key")
                })
                .transpose()
        };
        let mut scan = self.offline.scan_prefix(prefix(account));
        let first = seq(scan.next())?;
        let last = seq(scan.next_back())?;
        Ok((first, last.or(first)))
    }

    /// Execute one request; `flush` makes a successful write durable before
    /// returning (batches flush once at the end instead).
    fn run(&self, req: StorageRequest, flush: bool) -> Result<StorageResult, StorageError> {
        if let Some(account) = req.account() {
            check_account(account)?;
        }
        match req {
            StorageRequest::LoadCredentials { account } => {
                match self.credentials.get(account.as_bytes())? {
                    None => Ok(StorageResult::Credentials(None)),
                    Some(raw) => codec::decode_credentials(&raw)
                        .map(|c| StorageResult::Credentials(Some(c)))
                        .map_err(|source| StorageError::Corrupt {
                            what: "credentials",
                            source,
                        }),
                }
            }
            StorageRequest::LoadAccount { account, documents } => {
                // Under the lock so the roster and its version are a snapshot.
                let _w = self.lock();
                if !self.exists(&account)? {
                    return Ok(StorageResult::Account(None));
                }
                let mut roster = Vec::new();
                for entry in self.roster.scan_prefix(prefix(&account)) {
                    let (_, raw) = entry?;
                    roster.push(codec::decode_roster_item(&raw).map_err(|source| {
                        StorageError::Corrupt {
                            what: "roster item",
                            source,
                        }
                    })?);
                }
                let roster_version = match self.roster_version.get(account.as_bytes())? {
                    Some(raw) => be_u64(&raw, "roster version")?,
                    None => 0,
                };
                let mut loaded = Vec::with_capacity(documents.len());
                for &key in documents.iter() {
                    if let Some(raw) = self.blobs.get(account_key(&account, key))? {
                        let doc = String::from_utf8(raw.to_vec())
                            .map_err(|_| StorageError::NotUtf8("account document"))?;
                        loaded.push((key, doc));
                    }
                }
                Ok(StorageResult::Account(Some(AccountData {
                    roster,
                    roster_version,
                    documents: loaded.into_iter().collect(),
                })))
            }
            StorageRequest::PutRosterItem {
                account,
                item,
                version,
            } => {
                let key = account_key(&account, &item.jid);
                let value = codec::encode_roster_item(&item);
                self.roster_change(&account, version, flush, |roster| {
                    roster.insert(key.as_slice(), value.as_slice()).map(drop)
                })
            }
            StorageRequest::RemoveRosterItem {
                account,
                jid,
                version,
            } => {
                let key = account_key(&account, &jid);
                self.roster_change(&account, version, flush, |roster| {
                    roster.remove(key.as_slice()).map(drop)
                })
            }
            StorageRequest::PushOffline {
                account,
                stanza,
                limit,
            } => {
                let result = {
                    let _w = self.lock();
                    if !self.exists(&account)? {
                        StorageResult::NotFound
                    } else {
                        let (first, last) = self.offline_bounds(&account)?;
                        // Keys are consecutive (pages are taken from the
                        // front), so the ends give the length without a scan.
                        let len = match (first, last) {
                            (Some(f), Some(l)) => l.saturating_sub(f).saturating_add(1),
                            _ => 0,
                        };
                        if limit.is_some_and(|l| len >= l) {
                            StorageResult::Full
                        } else {
                            let seq = last.map_or(0, |l| l.saturating_add(1));
                            self.offline
                                .insert(offline_key(&account, seq), stanza.as_bytes())?;
                            StorageResult::Done
                        }
                    }
                };
                self.durable(result, flush)
            }
            StorageRequest::TakeOffline { account, page } => {
                let stanzas = {
                    let _w = self.lock();
                    let mut keys = Vec::new();
                    let mut stanzas: Vec<String> = Vec::new();
                    let mut bytes = 0usize;
                    for entry in self.offline.scan_prefix(prefix(&account)) {
                        let (key, raw) = entry?;
                        if !page.admits(stanzas.len(), bytes, raw.len()) {
                            break;
                        }
                        bytes = bytes.saturating_add(raw.len());
                        let stanza = String::from_utf8(raw.to_vec())
                            .map_err(|_| StorageError::NotUtf8("offline stanza"))?;
                        keys.push(key);
                        stanzas.push(stanza);
                    }
                    if keys.is_empty() {
                        return Ok(StorageResult::Offline(stanzas));
                    }
                    let mut batch = Batch::default();
                    for key in keys {
                        batch.remove(key);
                    }
                    self.offline.apply_batch(batch)?;
                    stanzas
                };
                // Not required by the contract, but without it a crash right
                // after delivery would deliver the same messages again.
                self.db.flush()?;
                Ok(StorageResult::Offline(stanzas))
            }
            StorageRequest::CreateAccount {
                account,
                credentials,
            } => {
                let value = codec::encode_credentials(&credentials);
                let result = {
                    let _w = self.lock();
                    // Leftovers of a deletion a crash interrupted must not
                    // become the new account's archive.
                    if !self.exists(&account)? && self.has_archive(&account)? {
                        self.clear_archive(&account)?;
                    }
                    match self.credentials.compare_and_swap(
                        account.as_bytes(),
                        None::<&[u8]>,
                        Some(value),
                    )? {
                        Ok(()) => StorageResult::Done,
                        Err(_) => StorageResult::Conflict,
                    }
                };
                self.durable(result, flush)
            }
            StorageRequest::SetCredentials {
                account,
                credentials,
            } => {
                let value = codec::encode_credentials(&credentials);
                let result = {
                    let _w = self.lock();
                    if self.exists(&account)? {
                        self.credentials.insert(account.as_bytes(), value)?;
                        StorageResult::Done
                    } else {
                        StorageResult::NotFound
                    }
                };
                self.durable(result, flush)
            }
            StorageRequest::DeleteAccount { account } => {
                let result = {
                    let _w = self.lock();
                    let p = prefix(&account);
                    let roster_keys = self
                        .roster
                        .scan_prefix(&p)
                        .keys()
                        .collect::<Result<Vec<IVec>, _>>()?;
                    let offline_keys = self
                        .offline
                        .scan_prefix(&p)
                        .keys()
                        .collect::<Result<Vec<IVec>, _>>()?;
                    let blob_keys = self
                        .blobs
                        .scan_prefix(&p)
                        .keys()
                        .collect::<Result<Vec<IVec>, _>>()?;
                    let trees = (
                        &self.credentials,
                        &self.roster,
                        &self.roster_version,
                        &self.offline,
                        &self.blobs,
                    );
                    let tx: TxResult<StorageResult> =
                        trees.transaction(|(creds, roster, version, offline, blobs)| {
                            if creds.remove(account.as_bytes())?.is_none() {
                                return Ok(StorageResult::NotFound);
                            }
                            version.remove(account.as_bytes())?;
                            for key in &roster_keys {
                                roster.remove(key)?;
                            }
                            for key in &offline_keys {
                                offline.remove(key)?;
                            }
                            for key in &blob_keys {
                                blobs.remove(key)?;
                            }
                            Ok::<_, ConflictableTransactionError<Infallible>>(StorageResult::Done)
                        });
                    let result = tx.map_err(tx_error)?;
                    // An archive can hold millions of messages: it goes in
                    // chunks after the account itself, which is what makes it
                    // invisible (an interruption is cleaned up on re-creation).
                    if result == StorageResult::Done {
                        self.clear_archive(&account)?;
                    }
                    result
                };
                self.durable(result, flush)
            }
            StorageRequest::AppendArchive { account, message } => {
                let result = self
                    .append_archive(&[(account, message)])?
                    .pop()
                    .unwrap_or(StorageResult::Done);
                self.durable(result, flush)
            }
            StorageRequest::ReplaceArchived {
                account,
                id,
                stanza,
            } => {
                let result = self.replace_archived(&account, id, &stanza)?;
                self.durable(result, flush)
            }
            StorageRequest::QueryArchive { account, query } => self.query_archive(&account, &query),
            StorageRequest::ArchiveMetadata { account } => self.archive_metadata(&account),
            StorageRequest::PurgeArchive {
                before,
                from,
                limit,
            } => {
                let result = self.purge_archive(before, from.as_deref(), limit)?;
                if flush {
                    self.db.flush()?;
                }
                Ok(result)
            }
            StorageRequest::ListBlobs {
                account,
                prefix: under_prefix,
                after,
                max,
            } => {
                let head = prefix(&account).len();
                let under = account_key(&account, &under_prefix);
                // Keys after `after` and under the prefix: start at
                // whichever is later (the `after` key itself is skipped).
                let skip = after
                    .filter(|k| *k >= under_prefix)
                    .map(|k| account_key(&account, &k));
                let start = skip.clone().unwrap_or_else(|| under.clone());
                let mut items = Vec::new();
                for entry in self.blobs.range(start..) {
                    let (key, value) = entry?;
                    if !key.starts_with(&under) {
                        break;
                    }
                    if skip.as_deref() == Some(&key[..]) {
                        continue;
                    }
                    if items.len() == max {
                        return Ok(StorageResult::Documents { items, more: true });
                    }
                    let name = String::from_utf8(key[head..].to_vec())
                        .map_err(|_| StorageError::NotUtf8("document key"))?;
                    let doc = String::from_utf8(value.to_vec())
                        .map_err(|_| StorageError::NotUtf8("stored document"))?;
                    items.push((name, doc));
                }
                Ok(StorageResult::Documents { items, more: false })
            }
            StorageRequest::LoadBlob { account, key } => {
                match self.blobs.get(account_key(&account, &key))? {
                    None => Ok(StorageResult::Blob(None)),
                    Some(raw) => String::from_utf8(raw.to_vec())
                        .map(|v| StorageResult::Blob(Some(v)))
                        .map_err(|_| StorageError::NotUtf8("stored document")),
                }
            }
            StorageRequest::StoreBlob {
                account,
                key,
                value,
                limit,
            } => {
                let result = {
                    let _w = self.lock();
                    // A service domain's documents need no account.
                    if !xmpp_core::storage::is_service_owner(&account) && !self.exists(&account)? {
                        return Ok(StorageResult::NotFound);
                    }
                    let k = account_key(&account, &key);
                    match value {
                        Some(_) if self.blob_refused(&account, &k, limit.as_ref())? => {
                            StorageResult::Full
                        }
                        Some(v) => {
                            self.blobs.insert(k, v.as_bytes())?;
                            StorageResult::Done
                        }
                        None => {
                            self.blobs.remove(k)?;
                            StorageResult::Done
                        }
                    }
                };
                self.durable(result, flush)
            }
        }
    }

    /// Whether a [`KeyLimit`] refuses storing `key`: counting stops at the
    /// limit, so a full account costs `max` key reads, never more.
    fn blob_refused(
        &self,
        account: &str,
        key: &[u8],
        limit: Option<&KeyLimit>,
    ) -> Result<bool, StorageError> {
        let Some(limit) = limit else {
            return Ok(false);
        };
        let replaces = self.blobs.contains_key(key)?;
        let take = usize::try_from(limit.max).unwrap_or(usize::MAX);
        let mut existing = 0u64;
        for k in self
            .blobs
            .scan_prefix(account_key(account, &limit.prefix))
            .keys()
            .take(take)
        {
            k?;
            existing += 1;
        }
        Ok(limit.refuses(existing, replaces))
    }

    /// Applies one roster change together with the new roster version, in one
    /// transaction so a crash never separates the two.
    fn roster_change(
        &self,
        account: &str,
        version: u64,
        flush: bool,
        change: impl Fn(
            &::sled::transaction::TransactionalTree,
        ) -> Result<(), ::sled::transaction::UnabortableTransactionError>,
    ) -> Result<StorageResult, StorageError> {
        let result = {
            let _w = self.lock();
            let trees = (&self.credentials, &self.roster, &self.roster_version);
            let tx: TxResult<StorageResult> = trees.transaction(|(creds, roster, versions)| {
                if creds.get(account.as_bytes())?.is_none() {
                    return Ok(StorageResult::NotFound);
                }
                change(roster)?;
                versions.insert(account.as_bytes(), &version.to_be_bytes()[..])?;
                Ok::<_, ConflictableTransactionError<Infallible>>(StorageResult::Done)
            });
            tx.map_err(tx_error)?
        };
        self.durable(result, flush)
    }
}

impl SledBackend {
    fn failed(&self, e: StorageError) -> StorageResult {
        tracing::error!(error = %e, path = %self.path.display(), "storage request failed");
        StorageResult::Failed(e.to_string())
    }

    /// Archive appends of one group commit, one result each.
    fn append_group(
        &self,
        appends: Vec<(String, xmpp_core::archive::ArchivedMessage)>,
    ) -> Vec<StorageResult> {
        let n = appends.len();
        let invalid = appends.iter().find_map(|(a, _)| check_account(a).err());
        match invalid.map_or_else(|| self.append_archive(&appends), Err) {
            Ok(results) => results,
            Err(e) => {
                let failed = self.failed(e);
                vec![failed; n]
            }
        }
    }
}

impl Backend for SledBackend {
    fn execute(&self, req: StorageRequest) -> StorageResult {
        match self.run(req, true) {
            Ok(result) => result,
            Err(e) => self.failed(e),
        }
    }

    /// Group commit: every request applied, then one flush for all of them,
    /// so a burst of writes costs one fsync instead of one each. Results are
    /// returned only after that flush, so "answered" still means "durable".
    fn execute_batch(&self, reqs: Vec<StorageRequest>) -> Vec<StorageResult> {
        let mut results: Vec<StorageResult> = Vec::with_capacity(reqs.len());
        // Consecutive archive appends go into one atomic sled batch: each
        // batch seals sled's write buffer (a write and a sync_file_range),
        // which per message would cost more than the message itself.
        let mut appends: Vec<(String, xmpp_core::archive::ArchivedMessage)> = Vec::new();
        for req in reqs {
            if let StorageRequest::AppendArchive { account, message } = req {
                appends.push((account, message));
                continue;
            }
            if !appends.is_empty() {
                results.extend(self.append_group(std::mem::take(&mut appends)));
            }
            results.push(self.run(req, false).unwrap_or_else(|e| self.failed(e)));
        }
        if !appends.is_empty() {
            results.extend(self.append_group(appends));
        }
        if results.contains(&StorageResult::Done) {
            if let Err(e) = self.db.flush() {
                let e = StorageError::from(e);
                tracing::error!(error = %e, path = %self.path.display(), "storage flush failed");
                for r in results.iter_mut().filter(|r| **r == StorageResult::Done) {
                    *r = StorageResult::Failed(e.to_string());
                }
            }
        }
        results
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush()?;
        Ok(())
    }

    /// Holds the writer lock (every mutation takes it), so the copy is one
    /// consistent state across all trees; sled's export/import copies the
    /// logical contents into a fresh database.
    fn snapshot(&self, dest: &Path) -> Result<(), StorageError> {
        if dest.exists() {
            return Err(StorageError::Open {
                path: dest.to_owned(),
                reason: "snapshot destination already exists".to_owned(),
            });
        }
        let _w = self.lock();
        self.db.flush()?;
        let copy = ::sled::Config::new()
            .path(dest)
            .cache_capacity(DEFAULT_CACHE_BYTES)
            .open()?;
        copy.import(self.db.export());
        copy.flush()?;
        Ok(())
    }

    fn ready(&self) -> Result<(), StorageError> {
        super::ready_by_reading(self)
    }

    /// Nothing to close: the store is flushed, and sled recovers from its
    /// log either way.
    fn close(&self) {}

    fn service_owners(&self) -> Result<Vec<String>, StorageError> {
        let mut owners = Vec::new();
        for tree in [&self.blobs, &self.archive] {
            // One seek per owner: past every `owner 0x00 ...` key.
            let mut cursor: Vec<u8> = Vec::new();
            while let Some(entry) = tree.range(cursor.as_slice()..).next() {
                let (key, _) = entry?;
                let end = key.iter().position(|&b| b == 0).unwrap_or(key.len());
                let owner = String::from_utf8(key[..end].to_vec())
                    .map_err(|_| StorageError::NotUtf8("owner"))?;
                cursor = super::keys::prefix_end(&owner);
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
        let (p, end) = (
            super::keys::prefix(account),
            super::keys::prefix_end(account),
        );
        self.offline
            .range(p.as_slice()..end.as_slice())
            .values()
            .map(|v| {
                String::from_utf8(v?.to_vec()).map_err(|_| StorageError::NotUtf8("offline stanza"))
            })
            .collect()
    }

    fn accounts(&self) -> Result<Vec<String>, StorageError> {
        self.credentials
            .iter()
            .keys()
            .map(|key| {
                let key = key?;
                String::from_utf8(key.to_vec()).map_err(|_| StorageError::NotUtf8("account name"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    use xmpp_core::storage::StorageRequest as Req;

    fn open(dir: &Path) -> SledBackend {
        match SledBackend::open(dir) {
            Ok(b) => b,
            Err(e) => panic!("open failed: {e}"),
        }
    }

    #[test]
    fn batch_applies_in_order_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let b = open(dir.path());
            let creds = super::super::conformance::creds(1);
            let results = b.execute_batch(vec![
                Req::CreateAccount {
                    account: "a@x".into(),
                    credentials: creds,
                },
                Req::PushOffline {
                    limit: None,
                    account: "a@x".into(),
                    stanza: "<m1/>".into(),
                },
                Req::PushOffline {
                    limit: None,
                    account: "nobody@x".into(),
                    stanza: "<m/>".into(),
                },
                Req::PushOffline {
                    limit: None,
                    account: "a@x".into(),
                    stanza: "<m2/>".into(),
                },
            ]);
            assert_eq!(
                results,
                vec![
                    StorageResult::Done,
                    StorageResult::Done,
                    StorageResult::NotFound,
                    StorageResult::Done
                ]
            );
        }
        let b = open(dir.path());
        assert_eq!(
            b.execute(Req::TakeOffline {
                page: xmpp_core::storage::OfflinePage::ALL,
                account: "a@x".into()
            }),
            StorageResult::Offline(vec!["<m1/>".into(), "<m2/>".into()])
        );
    }

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        super::super::conformance::all_requests(&open(dir.path()));
    }

    #[test]
    fn data_survives_reopen() {
        use super::super::conformance::{creds, item};
        let dir = tempfile::tempdir().unwrap();
        let account = "a@b".to_owned();
        {
            let b = open(dir.path());
            assert_eq!(
                b.execute(Req::CreateAccount {
                    account: account.clone(),
                    credentials: creds(1)
                }),
                StorageResult::Done
            );
            assert_eq!(
                b.execute(Req::PutRosterItem {
                    account: account.clone(),
                    item: item("c@d", true),
                    version: 9
                }),
                StorageResult::Done
            );
            assert_eq!(
                b.execute(Req::PushOffline {
                    limit: None,
                    account: account.clone(),
                    stanza: "<m/>".into()
                }),
                StorageResult::Done
            );
        }
        let b = open(dir.path());
        assert_eq!(
            b.execute(Req::LoadCredentials {
                account: account.clone()
            }),
            StorageResult::Credentials(Some(creds(1)))
        );
        assert_eq!(
            b.execute(Req::LoadAccount {
                account: account.clone(),
                documents: crate::storage::conformance::LOADED.into(),
            }),
            StorageResult::Account(Some(AccountData {
                roster: vec![item("c@d", true)],
                roster_version: 9,
                documents: Default::default(),
            }))
        );
        assert_eq!(
            b.execute(Req::TakeOffline {
                page: xmpp_core::storage::OfflinePage::ALL,
                account
            }),
            StorageResult::Offline(vec!["<m/>".into()])
        );
    }

    #[test]
    fn corrupt_records_fail_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let b = open(dir.path());
        b.credentials.insert("x@y", &b"\x01garbage"[..]).unwrap();
        b.roster
            .insert(account_key("x@y", "z@w"), &[1u8][..])
            .unwrap();
        b.roster_version.insert("x@y", &[1u8, 2][..]).unwrap();
        b.offline
            .insert(offline_key("x@y", 0), &[0xffu8][..])
            .unwrap();
        for req in [
            Req::LoadCredentials {
                account: "x@y".into(),
            },
            Req::LoadAccount {
                account: "x@y".into(),
                documents: crate::storage::conformance::LOADED.into(),
            },
            Req::TakeOffline {
                page: xmpp_core::storage::OfflinePage::ALL,
                account: "x@y".into(),
            },
        ] {
            assert!(matches!(b.execute(req), StorageResult::Failed(_)));
        }
    }

    #[test]
    fn open_on_a_regular_file_is_an_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = SledBackend::open(file.path()).unwrap_err();
        assert!(matches!(err, StorageError::Open { .. }), "{err}");
        assert!(err.to_string().contains(&file.path().display().to_string()));
    }

    const CHILD_DIR: &str = "VIREO_SLED_CRASH_CHILD_DIR";
    const CHILD_ACCOUNT: &str = "VIREO_SLED_CRASH_CHILD_ACCOUNT";

    /// The child half of [`survives_sigkill_mid_write`]: a no-op unless the
    /// parent re-executed this test binary with the environment set. Pushes
    /// offline messages forever, printing `ack N` once message N is durable.
    #[test]
    fn crash_child() {
        let (Some(dir), Some(account)) = (
            std::env::var_os(CHILD_DIR),
            std::env::var(CHILD_ACCOUNT).ok(),
        ) else {
            return;
        };
        let b = open(Path::new(&dir));
        let created = b.execute(Req::CreateAccount {
            account: account.clone(),
            credentials: super::super::conformance::creds(1),
        });
        assert!(matches!(
            created,
            StorageResult::Done | StorageResult::Conflict
        ));
        let mut out = std::io::stdout().lock();
        for i in 0u64.. {
            let r = b.execute(Req::PushOffline {
                limit: None,
                account: account.clone(),
                stanza: format!(
                    "<message id='{i}'>{}</message>",
                    "x".repeat(i as usize % 500)
                ),
            });
            assert_eq!(r, StorageResult::Done);
            writeln!(out, "ack {i}").unwrap();
            out.flush().unwrap();
        }
    }

    /// Every message acknowledged before a SIGKILL must be there after
    /// reopening, in order, and reopening must not panic. Several rounds so
    /// recovery also runs on a store that was itself recovered.
    #[test]
    fn survives_sigkill_mid_write() {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let mut acked: Vec<(String, u64)> = Vec::new();
        for round in 0..6u64 {
            let account = format!("user{round}@example.com");
            let mut child = Command::new(&exe)
                .args([
                    "--exact",
                    "storage::sled::tests::crash_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DIR, dir.path())
                .env(CHILD_ACCOUNT, &account)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let target = 40 + round * 73;
            let mut last_ack = None;
            let stdout = child.stdout.take().unwrap();
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                if let Some(n) = line.strip_prefix("ack ") {
                    let n: u64 = n.trim().parse().unwrap();
                    last_ack = Some(n);
                    if n + 1 >= target {
                        // Child::kill is SIGKILL on Unix: no destructors, no
                        // flush, the child is mid-write of the next message.
                        child.kill().unwrap();
                        break;
                    }
                }
            }
            let status = child.wait().unwrap();
            assert!(!status.success(), "child exited on its own: {status}");
            let n = match last_ack {
                Some(n) => n + 1,
                None => panic!("child acknowledged nothing in round {round}"),
            };
            acked.push((account, n));

            // Reopen: must not panic and must hold every acknowledged message
            // of every round, in order; at most the in-flight ones beyond.
            let b = match SledBackend::open(dir.path()) {
                Ok(b) => b,
                Err(e) => panic!("reopen after SIGKILL failed in round {round}: {e}"),
            };
            for (account, n) in &acked {
                let stored: Vec<String> = b
                    .offline
                    .scan_prefix(prefix(account))
                    .values()
                    .map(|v| String::from_utf8(v.unwrap().to_vec()).unwrap())
                    .collect();
                assert!(
                    stored.len() as u64 >= *n,
                    "{account}: {} stored < {n} acknowledged",
                    stored.len()
                );
                for (i, s) in stored.iter().enumerate() {
                    assert!(
                        s.starts_with(&format!("<message id='{i}'>")),
                        "{account}: message {i} out of order: {s}"
                    );
                }
            }
            drop(b);
        }
    }
}
