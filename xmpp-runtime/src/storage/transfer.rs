//! Copying a whole store into another backend, and checking the copy:
//! `vireo storage migrate` (redb, sled, PostgreSQL, in any direction).
//!
//! Both directions go through the storage contract only (reads by
//! requests, [`Backend::accounts`], [`Backend::service_owners`],
//! [`Backend::peek_offline`]; writes by requests), so any pair of backends
//! works and what the copy holds is what the server would read. The
//! source is read owner by owner, an archive a page at a time, and written
//! in batches (one group commit each), so memory stays bounded by a page,
//! not by the store. Archived messages keep their ids (so their times and
//! XEP-0359 stanza-ids), offline messages their order, rosters their
//! version.
//!
//! The target must be empty: merging two stores is not a migration, and
//! an interrupted copy is started over on an emptied target rather than
//! resumed. [`verify`] reads both stores the same way and compares every
//! owner's data, so a copy is only reported good when it reads back equal.

use xmpp_core::archive::{ArchiveFilter, ArchiveId, ArchiveQuery, ArchivedMessage, PageRequest};
use xmpp_core::sasl::StoredCredentials;
use xmpp_core::storage::{RosterItem, StorageRequest as Req, StorageResult as Res};

use super::Backend;

/// Archived messages read (and written) per request.
const ARCHIVE_PAGE: usize = 1000;
/// Documents read per request.
const DOCUMENT_PAGE: usize = 500;
/// Requests per write batch (one group commit).
const WRITE_BATCH: usize = 1000;
/// Bytes of stanzas and documents per write batch, beyond which it is
/// committed early (offline messages and documents may be large).
const WRITE_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// What a copy or a verification went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferReport {
    /// Accounts.
    pub accounts: u64,
    /// Owners that are services or their entities (rooms, pubsub).
    pub services: u64,
    /// Roster items.
    pub roster_items: u64,
    /// Stored documents (vCards, private XML, PEP, rooms, ...).
    pub documents: u64,
    /// Offline messages.
    pub offline: u64,
    /// Archived messages.
    pub archived: u64,
}

impl std::fmt::Display for TransferReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accounts {}, services and rooms {}, roster items {}, documents {}, offline messages {}, archived messages {}",
            self.accounts, self.services, self.roster_items, self.documents, self.offline, self.archived
        )
    }
}

/// Why a copy or a verification stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Reading the source failed.
    #[error("reading the source store: {0}")]
    Source(String),
    /// Writing the target failed.
    #[error("writing the target store ({owner}): {detail}")]
    Target {
        /// Whose data was being written.
        owner: String,
        /// The request and its answer.
        detail: String,
    },
    /// The target already holds data.
    #[error("the target store is not empty ({0}); a migration copies into an empty store")]
    NotEmpty(String),
    /// The copy does not read back like the source.
    #[error("verification failed: {owner}: {what} differ between the source and the target")]
    Mismatch {
        /// Whose data differs.
        owner: String,
        /// Which part.
        what: &'static str,
    },
}

fn source_error(e: impl std::fmt::Display) -> TransferError {
    TransferError::Source(e.to_string())
}

/// One owner's data other than its archive, read through requests.
#[derive(Debug, PartialEq, Eq)]
struct OwnerData {
    credentials: Option<StoredCredentials>,
    roster: Vec<RosterItem>,
    roster_version: u64,
    documents: Vec<(String, String)>,
    offline: Vec<String>,
}

fn read_owner(b: &dyn Backend, owner: &str, account: bool) -> Result<OwnerData, String> {
    let mut data = OwnerData {
        credentials: None,
        roster: Vec::new(),
        roster_version: 0,
        documents: Vec::new(),
        offline: Vec::new(),
    };
    if account {
        data.credentials = match b.execute(Req::LoadCredentials {
            account: owner.into(),
        }) {
            Res::Credentials(c) => c,
            other => return Err(format!("{owner}: credentials: {other:?}")),
        };
        match b.execute(Req::LoadAccount {
            account: owner.into(),
            documents: std::sync::Arc::from(Vec::new()),
        }) {
            Res::Account(Some(a)) => {
                data.roster = a.roster;
                data.roster_version = a.roster_version;
            }
            other => return Err(format!("{owner}: roster: {other:?}")),
        }
        data.offline = b
            .peek_offline(owner)
            .map_err(|e| format!("{owner}: offline: {e}"))?;
    }
    let mut after = None;
    loop {
        match b.execute(Req::ListBlobs {
            account: owner.into(),
            prefix: String::new(),
            after: after.clone(),
            max: DOCUMENT_PAGE,
        }) {
            Res::Documents { items, more } => {
                after = items.last().map(|(k, _)| k.clone());
                data.documents.extend(items);
                if !more {
                    break;
                }
            }
            other => return Err(format!("{owner}: documents: {other:?}")),
        }
    }
    Ok(data)
}

/// One page of an owner's archive after `after`, oldest first.
fn archive_page(
    b: &dyn Backend,
    owner: &str,
    after: Option<ArchiveId>,
) -> Result<Vec<ArchivedMessage>, String> {
    match b.execute(Req::QueryArchive {
        account: owner.into(),
        query: ArchiveQuery {
            filter: ArchiveFilter::default(),
            page: PageRequest {
                max: ARCHIVE_PAGE,
                after,
                before: None,
                backward: false,
            },
        },
    }) {
        Res::ArchivePage(page) => Ok(page.items),
        other => Err(format!("{owner}: archive: {other:?}")),
    }
}

/// Requests written in batches, each answer checked.
struct Writer<'a> {
    to: &'a dyn Backend,
    owner: String,
    batch: Vec<Req>,
    bytes: usize,
}

impl<'a> Writer<'a> {
    fn new(to: &'a dyn Backend, owner: &str) -> Self {
        Writer {
            to,
            owner: owner.into(),
            batch: Vec::new(),
            bytes: 0,
        }
    }

    fn push(&mut self, req: Req) -> Result<(), TransferError> {
        self.bytes += req.approx_bytes();
        self.batch.push(req);
        if self.batch.len() >= WRITE_BATCH || self.bytes >= WRITE_BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), TransferError> {
        let batch = std::mem::take(&mut self.batch);
        self.bytes = 0;
        if batch.is_empty() {
            return Ok(());
        }
        let kinds: Vec<String> = batch
            .iter()
            .map(|r| format!("{r:?}").chars().take(120).collect())
            .collect();
        for (answer, kind) in self.to.execute_batch(batch).into_iter().zip(kinds) {
            if answer != Res::Done {
                return Err(TransferError::Target {
                    owner: self.owner.clone(),
                    detail: format!("{kind} answered {answer:?}"),
                });
            }
        }
        Ok(())
    }
}

/// Copies everything in `from` into the empty `to`; `progress` hears of
/// each owner done (with the running totals).
pub fn copy(
    from: &dyn Backend,
    to: &dyn Backend,
    progress: &mut dyn FnMut(&TransferReport),
) -> Result<TransferReport, TransferError> {
    let held = to
        .accounts()
        .map_err(|e| TransferError::Target {
            owner: "(listing)".into(),
            detail: e.to_string(),
        })?
        .len();
    let services = to
        .service_owners()
        .map_err(|e| TransferError::Target {
            owner: "(listing)".into(),
            detail: e.to_string(),
        })?
        .len();
    if held + services > 0 {
        return Err(TransferError::NotEmpty(format!(
            "{held} accounts, {services} services or rooms"
        )));
    }
    let mut report = TransferReport::default();
    for (owner, account) in owners(from)? {
        let data = read_owner(from, &owner, account).map_err(TransferError::Source)?;
        let mut w = Writer::new(to, &owner);
        if let Some(credentials) = data.credentials {
            w.push(Req::CreateAccount {
                account: owner.clone(),
                credentials,
            })?;
            report.accounts += 1;
        } else {
            report.services += 1;
        }
        if data.roster.is_empty() && data.roster_version > 0 {
            // Only the version to keep: removing nothing records it.
            w.push(Req::RemoveRosterItem {
                account: owner.clone(),
                jid: String::new(),
                version: data.roster_version,
            })?;
        }
        for item in data.roster {
            report.roster_items += 1;
            w.push(Req::PutRosterItem {
                account: owner.clone(),
                item,
                version: data.roster_version,
            })?;
        }
        for (key, value) in data.documents {
            report.documents += 1;
            w.push(Req::StoreBlob {
                account: owner.clone(),
                key,
                value: Some(value),
                limit: None,
            })?;
        }
        for stanza in data.offline {
            report.offline += 1;
            w.push(Req::PushOffline {
                account: owner.clone(),
                stanza,
                limit: None,
            })?;
        }
        let mut after = None;
        loop {
            let page = archive_page(from, &owner, after).map_err(TransferError::Source)?;
            after = page.last().map(|m| m.id);
            let full = page.len() == ARCHIVE_PAGE;
            for message in page {
                report.archived += 1;
                w.push(Req::AppendArchive {
                    account: owner.clone(),
                    message,
                })?;
            }
            if !full {
                break;
            }
        }
        w.flush()?;
        progress(&report);
    }
    to.flush().map_err(|e| TransferError::Target {
        owner: "(flush)".into(),
        detail: e.to_string(),
    })?;
    Ok(report)
}

/// Every owner of `b`: accounts (`true`) and services, in order.
fn owners(b: &dyn Backend) -> Result<Vec<(String, bool)>, TransferError> {
    let accounts = b.accounts().map_err(source_error)?;
    let services = b.service_owners().map_err(source_error)?;
    let mut all: Vec<(String, bool)> = accounts
        .into_iter()
        .map(|a| (a, true))
        .chain(services.into_iter().map(|s| (s, false)))
        .collect();
    all.sort();
    Ok(all)
}

/// Reads `a` and `b` owner by owner and compares everything; the report
/// counts what `a` holds.
pub fn verify(
    a: &dyn Backend,
    b: &dyn Backend,
    progress: &mut dyn FnMut(&TransferReport),
) -> Result<TransferReport, TransferError> {
    let owners_a = owners(a)?;
    let owners_b = owners(b).map_err(|e| TransferError::Target {
        owner: "(listing)".into(),
        detail: e.to_string(),
    })?;
    if owners_a != owners_b {
        let first = owners_a
            .iter()
            .zip(&owners_b)
            .find(|(x, y)| x != y)
            .map(|(x, _)| x.0.clone())
            .unwrap_or_else(|| format!("{} vs {} owners", owners_a.len(), owners_b.len()));
        return Err(TransferError::Mismatch {
            owner: first,
            what: "the owners (accounts, services, rooms)",
        });
    }
    let mut report = TransferReport::default();
    for (owner, account) in owners_a {
        let da = read_owner(a, &owner, account).map_err(TransferError::Source)?;
        let db = read_owner(b, &owner, account).map_err(|detail| TransferError::Target {
            owner: owner.clone(),
            detail,
        })?;
        let mismatch = |what| TransferError::Mismatch {
            owner: owner.clone(),
            what,
        };
        if da.credentials != db.credentials {
            return Err(mismatch("the credentials"));
        }
        if (&da.roster, da.roster_version) != (&db.roster, db.roster_version) {
            return Err(mismatch("the rosters"));
        }
        if da.documents != db.documents {
            return Err(mismatch("the stored documents"));
        }
        if da.offline != db.offline {
            return Err(mismatch("the offline messages"));
        }
        if account {
            report.accounts += 1;
        } else {
            report.services += 1;
        }
        report.roster_items += da.roster.len() as u64;
        report.documents += da.documents.len() as u64;
        report.offline += da.offline.len() as u64;
        let mut after = None;
        loop {
            let pa = archive_page(a, &owner, after).map_err(TransferError::Source)?;
            let pb = archive_page(b, &owner, after).map_err(|detail| TransferError::Target {
                owner: owner.clone(),
                detail,
            })?;
            if pa != pb {
                return Err(mismatch("the archived messages"));
            }
            after = pa.last().map(|m| m.id);
            report.archived += pa.len() as u64;
            if pa.len() < ARCHIVE_PAGE {
                break;
            }
        }
        progress(&report);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{conformance, MemoryBackend, RedbBackend};

    #[test]
    fn memory_to_redb_and_back_reads_equal() {
        let source = MemoryBackend::new();
        conformance::fill_for_migration(&source);
        let dir = tempfile::tempdir().expect("tempdir");
        let redb = RedbBackend::open(dir.path()).expect("redb");
        let copied = copy(&source, &redb, &mut |_| {}).expect("copy");
        assert_eq!(copied.accounts, 2);
        assert_eq!(copied.services, 2);
        assert_eq!(copied.archived, 6);
        assert_eq!(verify(&source, &redb, &mut |_| {}).expect("verify"), copied);
        let back = MemoryBackend::new();
        copy(&redb, &back, &mut |_| {}).expect("copy back");
        // (check_migrated takes the offline queue: last.)
        conformance::check_migrated(&redb);
        conformance::check_migrated(&back);
    }

    #[test]
    fn a_target_with_data_is_refused() {
        let source = MemoryBackend::new();
        conformance::fill_for_migration(&source);
        let target = MemoryBackend::new();
        conformance::fill_for_migration(&target);
        assert!(matches!(
            copy(&source, &target, &mut |_| {}),
            Err(TransferError::NotEmpty(_))
        ));
    }

    #[test]
    fn a_difference_is_found() {
        let a = MemoryBackend::new();
        conformance::fill_for_migration(&a);
        let b = MemoryBackend::new();
        copy(&a, &b, &mut |_| {}).expect("copy");
        assert_eq!(
            b.execute(Req::PushOffline {
                account: "bob@example.com".into(),
                stanza: "<message/>".into(),
                limit: None,
            }),
            Res::Done
        );
        match verify(&a, &b, &mut |_| {}) {
            Err(TransferError::Mismatch { owner, what }) => {
                assert_eq!(owner, "bob@example.com");
                assert_eq!(what, "the offline messages");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn postgres_round_trip() {
        let Some(cluster) = super::super::postgres::cluster::Cluster::get() else {
            return;
        };
        let source = MemoryBackend::new();
        conformance::fill_for_migration(&source);
        let pg = super::super::PostgresBackend::open(cluster.fresh_database()).expect("pg");
        copy(&source, &pg, &mut |_| {}).expect("copy");
        verify(&source, &pg, &mut |_| {}).expect("verify");
        conformance::check_migrated(&pg);
    }
}
