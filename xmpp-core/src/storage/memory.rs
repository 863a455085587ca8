//! [`MemoryStore`]: a synchronous, in-memory answerer of [`StorageRequest`]s,
//! the reference implementation of the storage contract. The simulated
//! world answers with it, and the runtime's memory backend wraps it; it
//! lives here, not in `sim`, because a shipped backend stands on it.
//!
//! It implements the semantics every Vireo backend shares (see the runtime's
//! `storage` module), so tests against the simulated world see what a real
//! server would:
//! - an account exists once it has credentials (`CreateAccount`, or
//!   [`MemoryStore::add_user`]);
//! - `PutRosterItem`, `RemoveRosterItem`, `PushOffline` and `SetCredentials`
//!   on an unknown account answer `NotFound` and store nothing;
//! - `LoadAccount` lists roster items ordered by contact JID, and the
//!   documents asked for that are stored, in the order asked;
//! - `TakeOffline` drains one page of the queue oldest first, and answers
//!   an empty queue for an unknown account; `PushOffline` with a limit
//!   answers `Full` and stores nothing once the queue holds that many;
//! - an owner without '@' is a service domain (`pubsub.localhost`): its
//!   documents (`StoreBlob`, `LoadBlob`, `ListBlobs`) exist without an
//!   account, apart from every account's;
//! - an empty account name or one containing NUL is refused with `Failed`;
//! - archive queries run [`crate::archive::run_query`] over the account's
//!   archive; appending an id that is already archived answers `Conflict`.

use crate::archive::{self, ArchiveId, ArchiveView, ArchivedMessage, QueryError};
use crate::sasl::StoredCredentials;
use crate::storage::{is_service_owner, AccountData, RosterItem, StorageRequest, StorageResult};
use std::collections::BTreeMap;
use std::convert::Infallible;

/// Everything stored for one account.
#[derive(Debug, Clone)]
struct StoredAccount {
    credentials: StoredCredentials,
    roster: BTreeMap<String, RosterItem>,
    roster_version: u64,
    offline: Vec<String>,
    blobs: BTreeMap<String, String>,
    archive: BTreeMap<ArchiveId, ArchivedMessage>,
}

/// An account's archive as the shared query algorithm reads it.
struct MemoryArchive<'a>(&'a BTreeMap<ArchiveId, ArchivedMessage>);

impl ArchiveView for MemoryArchive<'_> {
    type Error = Infallible;

    fn scan(
        &self,
        lo: ArchiveId,
        hi: ArchiveId,
        with_bare: Option<&str>,
        rev: bool,
    ) -> archive::Scan<'_, Infallible> {
        let with_bare = with_bare.map(str::to_owned);
        let range = self.0.range(lo..=hi).map(|(_, m)| m);
        let keep =
            move |m: &&ArchivedMessage| with_bare.as_deref().is_none_or(|w| m.with_bare() == w);
        if rev {
            Box::new(range.rev().filter(keep).cloned().map(Ok))
        } else {
            Box::new(range.filter(keep).cloned().map(Ok))
        }
    }

    fn get(&self, id: ArchiveId) -> Result<Option<ArchivedMessage>, Infallible> {
        Ok(self.0.get(&id).cloned())
    }

    fn count(&self, with_bare: Option<&str>) -> Result<u64, Infallible> {
        Ok(match with_bare {
            None => self.0.len(),
            Some(w) => self.0.values().filter(|m| m.with_bare() == w).count(),
        } as u64)
    }
}

/// An empty archive, for accounts that do not exist.
static NO_ARCHIVE: BTreeMap<ArchiveId, ArchivedMessage> = BTreeMap::new();

/// A pure in-memory storage backend for tests and embedding: no locks, no
/// I/O, answers immediately.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    accounts: BTreeMap<String, StoredAccount>,
    /// Documents of service domains (owners without '@').
    services: BTreeMap<String, BTreeMap<String, String>>,
    /// Archives of service entities (`conference.example/room`), which
    /// exist without an account.
    service_archives: BTreeMap<String, BTreeMap<ArchiveId, ArchivedMessage>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Create the account `jid` (a bare JID string such as
    /// `alice@localhost`) with SCRAM credentials derived from `password`.
    ///
    /// The salt is fixed per account (derived from its name), so runs are
    /// deterministic; use `iterations = 4096` (the minimum) for speed.
    /// Answers like `CreateAccount`: `Done`, or `Conflict` when it exists, or
    /// `Failed` when the password or iteration count is refused.
    pub fn add_user(&mut self, jid: &str, password: &str, iterations: u32) -> StorageResult {
        let salt = format!("vireo-sim-salt:{jid}");
        match StoredCredentials::derive(password, salt.as_bytes(), iterations) {
            Ok(credentials) => self.execute(StorageRequest::CreateAccount {
                account: jid.to_owned(),
                credentials,
            }),
            Err(f) => StorageResult::Failed(format!("cannot derive credentials: {f:?}")),
        }
    }

    /// Replace the password of `jid` (salt fixed per account, like
    /// [`add_user`](Self::add_user)). Answers like `SetCredentials`.
    pub fn set_password(&mut self, jid: &str, password: &str, iterations: u32) -> StorageResult {
        let salt = format!("vireo-sim-salt:{jid}");
        match StoredCredentials::derive(password, salt.as_bytes(), iterations) {
            Ok(credentials) => self.execute(StorageRequest::SetCredentials {
                account: jid.to_owned(),
                credentials,
            }),
            Err(f) => StorageResult::Failed(format!("cannot derive credentials: {f:?}")),
        }
    }

    /// True when the account exists.
    pub fn has_account(&self, account: &str) -> bool {
        self.accounts.contains_key(account)
    }

    /// Every account, sorted.
    pub fn accounts(&self) -> Vec<String> {
        self.accounts.keys().cloned().collect()
    }

    /// The stored roster and version of an account, with the stored
    /// documents under `documents`.
    pub fn account_data(&self, account: &str, documents: &[&'static str]) -> Option<AccountData> {
        self.accounts.get(account).map(|a| AccountData {
            roster: a.roster.values().cloned().collect(),
            roster_version: a.roster_version,
            documents: documents
                .iter()
                .filter_map(|&key| Some((key, a.blobs.get(key)?.clone())))
                .collect(),
        })
    }

    /// How many messages an account's archive holds.
    pub fn archive_len(&self, account: &str) -> usize {
        self.archive_of(account).0.len()
    }

    fn archive_of(&self, account: &str) -> MemoryArchive<'_> {
        MemoryArchive(if is_service_owner(account) {
            self.service_archives.get(account).unwrap_or(&NO_ARCHIVE)
        } else {
            self.accounts
                .get(account)
                .map_or(&NO_ARCHIVE, |a| &a.archive)
        })
    }

    fn purge(
        &mut self,
        before: crate::time::Millis,
        from: Option<String>,
        limit: u64,
    ) -> StorageResult {
        let cutoff = ArchiveId::first_at(before);
        let mut removed = 0u64;
        let start = from.unwrap_or_default();
        // Accounts' and service entities' archives, in owner order (as
        // the on-disk stores keep them).
        let names: std::collections::BTreeSet<String> = self
            .accounts
            .range(start.clone()..)
            .map(|(n, _)| n.clone())
            .chain(self.service_archives.range(start..).map(|(n, _)| n.clone()))
            .collect();
        for name in names {
            let archive = match self.accounts.get_mut(&name) {
                Some(a) => &mut a.archive,
                None => match self.service_archives.get_mut(&name) {
                    Some(a) => a,
                    None => continue,
                },
            };
            while removed < limit {
                match archive.first_key_value() {
                    Some((id, _)) if *id < cutoff => {
                        let id = *id;
                        archive.remove(&id);
                        removed += 1;
                    }
                    _ => break,
                }
            }
            if removed >= limit {
                return StorageResult::Purged {
                    removed,
                    next: Some(name),
                };
            }
        }
        StorageResult::Purged {
            removed,
            next: None,
        }
    }

    /// Owners of documents or archives that are not accounts (services and
    /// their entities), in order.
    pub fn service_owners(&self) -> Vec<String> {
        let owners: std::collections::BTreeSet<&String> = self
            .services
            .keys()
            .chain(self.service_archives.keys())
            .collect();
        owners.into_iter().cloned().collect()
    }

    /// The offline queue of an account (serialized stanzas, oldest first).
    pub fn offline(&self, account: &str) -> &[String] {
        self.accounts
            .get(account)
            .map(|a| a.offline.as_slice())
            .unwrap_or_default()
    }

    /// Answer one request.
    pub fn execute(&mut self, req: StorageRequest) -> StorageResult {
        if let Some(name) = req.account() {
            if name.is_empty() || name.contains('\0') {
                return StorageResult::Failed(format!("invalid account name {name:?}"));
            }
        }
        match req {
            StorageRequest::LoadCredentials { account } => StorageResult::Credentials(
                self.accounts.get(&account).map(|a| a.credentials.clone()),
            ),
            StorageRequest::LoadAccount { account, documents } => {
                StorageResult::Account(self.account_data(&account, &documents))
            }
            StorageRequest::PutRosterItem {
                account,
                item,
                version,
            } => match self.accounts.get_mut(&account) {
                Some(a) => {
                    a.roster.insert(item.jid.clone(), item);
                    a.roster_version = version;
                    StorageResult::Done
                }
                None => StorageResult::NotFound,
            },
            StorageRequest::RemoveRosterItem {
                account,
                jid,
                version,
            } => match self.accounts.get_mut(&account) {
                Some(a) => {
                    a.roster.remove(&jid);
                    a.roster_version = version;
                    StorageResult::Done
                }
                None => StorageResult::NotFound,
            },
            StorageRequest::PushOffline {
                account,
                stanza,
                limit,
            } => match self.accounts.get_mut(&account) {
                Some(a) if limit.is_some_and(|l| a.offline.len() as u64 >= l) => {
                    StorageResult::Full
                }
                Some(a) => {
                    a.offline.push(stanza);
                    StorageResult::Done
                }
                None => StorageResult::NotFound,
            },
            StorageRequest::TakeOffline { account, page } => StorageResult::Offline(
                self.accounts
                    .get_mut(&account)
                    .map(|a| {
                        let n = page.count(a.offline.iter().map(String::len));
                        a.offline.drain(..n).collect()
                    })
                    .unwrap_or_default(),
            ),
            StorageRequest::CreateAccount {
                account,
                credentials,
            } => {
                if self.accounts.contains_key(&account) {
                    return StorageResult::Conflict;
                }
                self.accounts.insert(
                    account,
                    StoredAccount {
                        credentials,
                        roster: BTreeMap::new(),
                        roster_version: 0,
                        offline: Vec::new(),
                        blobs: BTreeMap::new(),
                        archive: BTreeMap::new(),
                    },
                );
                StorageResult::Done
            }
            StorageRequest::SetCredentials {
                account,
                credentials,
            } => match self.accounts.get_mut(&account) {
                Some(a) => {
                    a.credentials = credentials;
                    StorageResult::Done
                }
                None => StorageResult::NotFound,
            },
            StorageRequest::DeleteAccount { account } => match self.accounts.remove(&account) {
                Some(_) => StorageResult::Done,
                None => StorageResult::NotFound,
            },
            StorageRequest::ListBlobs {
                account,
                prefix,
                after,
                max,
            } => {
                let blobs = if is_service_owner(&account) {
                    self.services.get(&account)
                } else {
                    self.accounts.get(&account).map(|a| &a.blobs)
                };
                let Some(blobs) = blobs else {
                    return StorageResult::Documents {
                        items: Vec::new(),
                        more: false,
                    };
                };
                // Keys after `after` and under `prefix`: the range starts at
                // whichever comes later.
                let from = match &after {
                    Some(k) if *k >= prefix => std::ops::Bound::Excluded(k.clone()),
                    _ => std::ops::Bound::Included(prefix.clone()),
                };
                let mut matching = blobs
                    .range((from, std::ops::Bound::Unbounded))
                    .take_while(|(k, _)| k.starts_with(&prefix));
                let items: Vec<(String, String)> = matching
                    .by_ref()
                    .take(max)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let more = matching.next().is_some();
                StorageResult::Documents { items, more }
            }
            StorageRequest::LoadBlob { account, key } => {
                StorageResult::Blob(if is_service_owner(&account) {
                    self.services
                        .get(&account)
                        .and_then(|b| b.get(&key).cloned())
                } else {
                    self.accounts
                        .get(&account)
                        .and_then(|a| a.blobs.get(&key).cloned())
                })
            }
            StorageRequest::StoreBlob {
                account,
                key,
                value,
                limit,
            } => {
                let blobs = if is_service_owner(&account) {
                    Some(self.services.entry(account).or_default())
                } else {
                    self.accounts.get_mut(&account).map(|a| &mut a.blobs)
                };
                match blobs {
                    Some(blobs) => {
                        let refused = value.is_some()
                            && limit.is_some_and(|l| {
                                let existing =
                                    blobs.keys().filter(|k| k.starts_with(&l.prefix)).count();
                                l.refuses(
                                    u64::try_from(existing).unwrap_or(u64::MAX),
                                    blobs.contains_key(&key),
                                )
                            });
                        if refused {
                            return StorageResult::Full;
                        }
                        match value {
                            Some(v) => blobs.insert(key, v),
                            None => blobs.remove(&key),
                        };
                        StorageResult::Done
                    }
                    None => StorageResult::NotFound,
                }
            }
            StorageRequest::AppendArchive { account, message } => {
                let archive = if is_service_owner(&account) {
                    Some(self.service_archives.entry(account).or_default())
                } else {
                    self.accounts.get_mut(&account).map(|a| &mut a.archive)
                };
                match archive {
                    Some(a) if a.contains_key(&message.id) => StorageResult::Conflict,
                    Some(a) => {
                        a.insert(message.id, message);
                        StorageResult::Done
                    }
                    None => StorageResult::NotFound,
                }
            }
            StorageRequest::ReplaceArchived {
                account,
                id,
                stanza,
            } => {
                let archive = if is_service_owner(&account) {
                    self.service_archives.get_mut(&account)
                } else {
                    self.accounts.get_mut(&account).map(|a| &mut a.archive)
                };
                match archive.and_then(|a| a.get_mut(&id)) {
                    Some(m) => {
                        m.stanza = stanza;
                        StorageResult::Done
                    }
                    None => StorageResult::NotFound,
                }
            }
            StorageRequest::QueryArchive { account, query } => {
                match archive::run_query(&self.archive_of(&account), &query) {
                    Ok(page) => StorageResult::ArchivePage(page),
                    Err(QueryError::UnknownId(_)) => StorageResult::NotFound,
                    Err(QueryError::Backend(never)) => match never {},
                }
            }
            StorageRequest::ArchiveMetadata { account } => {
                match archive::metadata(&self.archive_of(&account)) {
                    Ok(bounds) => StorageResult::ArchiveBounds(bounds),
                    Err(never) => match never {},
                }
            }
            StorageRequest::PurgeArchive {
                before,
                from,
                limit,
            } => self.purge(before, from, limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OfflinePage;

    #[test]
    fn offline_pages_and_the_queue_limit() {
        let mut s = MemoryStore::new();
        let bob = a("bob@localhost");
        assert_eq!(s.add_user(&bob, "pw", 4096), StorageResult::Done);
        for n in 0..5 {
            let push = StorageRequest::PushOffline {
                account: bob.clone(),
                stanza: format!("m{n}"),
                limit: Some(4),
            };
            let want = if n < 4 {
                StorageResult::Done
            } else {
                StorageResult::Full
            };
            assert_eq!(s.execute(push), want, "message {n}");
        }
        let take = |max, max_bytes| StorageRequest::TakeOffline {
            account: bob.clone(),
            page: OfflinePage { max, max_bytes },
        };
        let page = |v: &[&str]| StorageResult::Offline(v.iter().map(|x| a(x)).collect());
        assert_eq!(s.execute(take(3, 1000)), page(&["m0", "m1", "m2"]));
        // A first message bigger than the byte budget still comes out.
        assert_eq!(s.execute(take(3, 1)), page(&["m3"]));
        assert_eq!(s.execute(take(3, 1000)), page(&[]));
    }

    fn a(s: &str) -> String {
        s.to_owned()
    }

    #[test]
    fn account_lifecycle_and_offline_order() {
        let mut s = MemoryStore::new();
        let alice = a("alice@localhost");
        assert_eq!(
            s.execute(StorageRequest::LoadCredentials {
                account: alice.clone()
            }),
            StorageResult::Credentials(None)
        );
        assert_eq!(
            s.execute(StorageRequest::PushOffline {
                account: alice.clone(),
                stanza: a("<message/>"),
                limit: None,
            }),
            StorageResult::NotFound
        );
        assert_eq!(
            s.execute(StorageRequest::TakeOffline {
                account: alice.clone(),
                page: OfflinePage::ALL,
            }),
            StorageResult::Offline(vec![])
        );
        assert_eq!(s.add_user(&alice, "pw", 4096), StorageResult::Done);
        assert_eq!(s.add_user(&alice, "pw", 4096), StorageResult::Conflict);
        assert!(matches!(
            s.add_user("x@y", "pw", 1),
            StorageResult::Failed(_)
        ));
        for n in ["1", "2", "3"] {
            assert_eq!(
                s.execute(StorageRequest::PushOffline {
                    account: alice.clone(),
                    stanza: a(n),
                    limit: None,
                }),
                StorageResult::Done
            );
        }
        assert_eq!(s.offline(&alice).len(), 3);
        assert_eq!(
            s.execute(StorageRequest::TakeOffline {
                account: alice.clone(),
                page: OfflinePage::ALL,
            }),
            StorageResult::Offline(vec![a("1"), a("2"), a("3")])
        );
        assert_eq!(
            s.execute(StorageRequest::TakeOffline {
                account: alice.clone(),
                page: OfflinePage::ALL,
            }),
            StorageResult::Offline(vec![])
        );
        assert!(matches!(
            s.execute(StorageRequest::LoadAccount {
                account: a(""),
                documents: Default::default(),
            }),
            StorageResult::Failed(_)
        ));
        assert_eq!(
            s.execute(StorageRequest::DeleteAccount {
                account: alice.clone()
            }),
            StorageResult::Done
        );
        assert!(!s.has_account(&alice));
    }
}
