//! Storage backends: redb (embedded default), sled (its predecessor, kept to
//! migrate stores from and for configurations that name it) and memory
//! (tests).
//!
//! The core never touches storage: it emits [`StorageRequest`] values and
//! continues when the driver hands back the [`StorageResult`]. A [`Backend`]
//! is the runtime side of that contract. Backends are synchronous and may
//! block (they fsync their commits), so the driver calls them from a blocking
//! thread pool (`smol::unblock`), never from the executor threads.
//!
//! Semantics shared by every backend (tested against both by the same
//! generic test body):
//! - an account exists once it has credentials (`CreateAccount`);
//! - `PutRosterItem`, `RemoveRosterItem`, `PushOffline` and
//!   `SetCredentials` on an unknown account answer `NotFound` and store
//!   nothing, so no orphaned data outlives `DeleteAccount`;
//! - `LoadAccount` lists roster items ordered by contact JID, and the
//!   stored documents among those it names (a backend knows no keys);
//! - `TakeOffline` on an unknown account answers an empty queue.

#[cfg(test)]
mod archive_tests;
pub mod codec;
mod keys;
pub mod memory;
pub mod on_delete;
pub mod postgres;
pub mod redb;
#[cfg(test)]
mod rss_bench;
pub mod sled;
pub mod transfer;

pub use self::memory::MemoryBackend;
pub use self::postgres::{PgOptions, PostgresBackend};
pub use self::redb::RedbBackend;
pub use self::sled::SledBackend;
pub use codec::DecodeError;

use std::path::PathBuf;
use xmpp_core::storage::{StorageRequest, StorageResult};

/// The text of a caught panic (an embedded store that panicked while
/// opening: the error names it rather than crashing the server).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Entries a store holds, as `/metrics` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreSizes {
    /// Messages in offline storage, over all accounts.
    pub offline: u64,
    /// Entries of the message archives (XEP-0313), over all archives.
    pub archived: u64,
}

/// A storage backend answering the core's requests.
pub trait Backend: Send + Sync {
    /// Execute one request. Must be durable (flushed) before returning for
    /// PushOffline, CreateAccount, SetCredentials, DeleteAccount,
    /// PutRosterItem, RemoveRosterItem.
    fn execute(&self, req: StorageRequest) -> StorageResult;
    /// Execute several requests in order, with the same durability promise
    /// for each by the time this returns. Backends override it to share one
    /// flush (group commit).
    fn execute_batch(&self, reqs: Vec<StorageRequest>) -> Vec<StorageResult> {
        reqs.into_iter().map(|r| self.execute(r)).collect()
    }
    /// Flush everything (graceful shutdown).
    fn flush(&self) -> Result<(), StorageError>;
    /// Close the store at the end of a graceful shutdown, after the last
    /// request: later requests fail. Required (like `ready`) so that a
    /// wrapper forwards it: redb marks its file clean only here.
    fn close(&self);
    /// List accounts (bare JIDs) — for admin commands.
    fn accounts(&self) -> Result<Vec<String>, StorageError>;
    /// How much the store holds, for `/metrics`, when the backend can say
    /// it cheaply (`None` otherwise).
    fn sizes(&self) -> Option<StoreSizes> {
        None
    }
    /// Whether the store answers now (`/health`): one short probe, no
    /// retries. (Required, like the two below, so that a wrapper cannot
    /// forget to forward it.)
    fn ready(&self) -> Result<(), StorageError>;
    /// The owners of stored documents or archives that are not accounts:
    /// services (`pubsub.example.org`) and their entities
    /// (`conference.example.org/room`), in byte order. With
    /// [`Backend::accounts`], every owner there is: what a migration or an
    /// export walks.
    fn service_owners(&self) -> Result<Vec<String>, StorageError>;
    /// An account's offline queue, oldest first, left in place (an export
    /// reads it; `TakeOffline` would take it).
    fn peek_offline(&self, account: &str) -> Result<Vec<String>, StorageError>;
    /// Write a consistent copy of the whole store to `dest` (a new
    /// directory), while the store stays in use: for backups of a running
    /// server.
    fn snapshot(&self, dest: &std::path::Path) -> Result<(), StorageError> {
        Err(StorageError::Open {
            path: dest.to_owned(),
            reason: "this backend cannot take snapshots".to_owned(),
        })
    }
}

/// Why a storage operation failed. Inside [`Backend::execute`] these become
/// [`StorageResult::Failed`] (and are logged); they surface as values from
/// opening, flushing and listing.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The sled database reported an error (I/O, corruption, ...).
    #[error("sled: {0}")]
    Sled(#[from] ::sled::Error),
    /// The redb database reported an error (I/O, corruption, ...).
    #[error("redb: {0}")]
    Redb(#[from] ::redb::Error),
    /// PostgreSQL or its driver reported an error.
    #[error("PostgreSQL: {0}")]
    Sql(#[from] sqlx::Error),
    /// The store cannot be used; the text says why in an operator's words
    /// (PostgreSQL unreachable, login refused, no such database).
    #[error("{0}")]
    Unavailable(String),
    /// The database was set up by a newer Vireo.
    #[error("the database's schema is version {found}, newer than this Vireo supports ({supported}): run the newer Vireo, or restore the database from before it")]
    NewerSchema {
        /// The version in the database.
        found: i32,
        /// The newest version this build knows.
        supported: i32,
    },
    /// Opening the store failed; `reason` says how (including a panic
    /// inside sled while recovering, which we catch rather than crash on).
    #[error("cannot open store at {path}: {reason}")]
    Open {
        /// The store directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file of the store could not be read or written (the archive
    /// journal of the redb store).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A stored record could not be decoded: the store is corrupt or was
    /// written by an incompatible version.
    #[error("corrupt {what} record: {source}")]
    Corrupt {
        /// Which kind of record (credentials, roster item, ...).
        what: &'static str,
        /// The decoding failure.
        #[source]
        source: DecodeError,
    },
    /// A stored key or value that must be UTF-8 (account name, stanza) is not.
    #[error("corrupt {0} record: not valid UTF-8")]
    NotUtf8(&'static str),
    /// A stored integer has the wrong size.
    #[error("corrupt {0} record: wrong length")]
    BadLength(&'static str),
    /// The account name cannot be used as a key (empty or contains NUL,
    /// which we use as the key separator; normalized JIDs never do).
    #[error("invalid account name {0:?}")]
    InvalidAccount(String),
}

/// [`Backend::ready`] for a store in this process: a read of an account
/// that cannot exist, which touches the store and changes nothing.
pub fn ready_by_reading(backend: &dyn Backend) -> Result<(), StorageError> {
    match backend.execute(StorageRequest::LoadCredentials {
        account: "health-probe@invalid".into(),
    }) {
        StorageResult::Credentials(_) => Ok(()),
        other => Err(StorageError::Unavailable(format!(
            "the store answered {other:?}"
        ))),
    }
}

/// Rejects account names that would break the `account 0x00 ...` key layout.
fn check_account(account: &str) -> Result<(), StorageError> {
    if account.is_empty() || account.contains('\0') {
        return Err(StorageError::InvalidAccount(account.to_owned()));
    }
    Ok(())
}

/// Shared behaviour tests run against every backend.
#[cfg(test)]
pub(crate) mod conformance {
    use super::Backend;
    use xmpp_core::sasl::{ScramKeys, StoredCredentials};
    use xmpp_core::storage::{
        AccountData, RosterItem, StorageRequest as Req, StorageResult as Res, Subscription,
    };

    /// The account documents the tests load with an account (the hub
    /// asks for those its modules declare).
    pub const LOADED: &[&str] = &["blocklist", "push", "avatar", "mam-prefs"];

    pub fn creds(n: u8) -> StoredCredentials {
        StoredCredentials {
            iterations: 4096 + u32::from(n),
            salt: vec![n; 16],
            sha1: ScramKeys {
                stored_key: vec![n; 20],
                server_key: vec![n.wrapping_add(1); 20],
            },
            sha256: ScramKeys {
                stored_key: vec![n; 32],
                server_key: vec![n.wrapping_add(2); 32],
            },
        }
    }

    pub fn item(jid: &str, to: bool) -> RosterItem {
        RosterItem {
            jid: jid.into(),
            name: Some(format!("name of {jid}")),
            subscription: Subscription {
                to,
                from: !to,
                pending_out: false,
                pending_in: to,
            },
            groups: vec!["g1".into(), "g2".into()],
            in_roster: true,
        }
    }

    fn a(s: &str) -> String {
        s.to_owned()
    }

    fn archived(n: u8, with: &str) -> xmpp_core::archive::ArchivedMessage {
        let mut id = [0u8; 16];
        id[7] = n;
        xmpp_core::archive::ArchivedMessage {
            id: xmpp_core::archive::ArchiveId::from_bytes(id),
            with: with.to_owned(),
            stanza: format!("<message xmlns='jabber:client'><body>{n}</body></message>"),
        }
    }

    /// A store with something in every tree: two accounts, a roster, an
    /// offline message, stored documents and an archive; what
    /// [`check_migrated`] expects to find in a copy.
    pub fn fill_for_migration<B: Backend>(b: &B) {
        let (alice, bob) = (a("alice@example.com"), a("bob@example.com"));
        let mut reqs = vec![
            Req::CreateAccount {
                account: alice.clone(),
                credentials: creds(1),
            },
            Req::CreateAccount {
                account: bob.clone(),
                credentials: creds(2),
            },
            Req::PutRosterItem {
                account: alice.clone(),
                item: item("bob@example.com", true),
                version: 7,
            },
            Req::PushOffline {
                account: bob.clone(),
                stanza: a("<message><body>hi</body></message>"),
                limit: None,
            },
            Req::StoreBlob {
                account: alice.clone(),
                key: a("vcard"),
                value: Some(a("<vCard xmlns='vcard-temp'/>")),
                limit: None,
            },
        ];
        for n in 1..=5 {
            reqs.push(Req::AppendArchive {
                account: alice.clone(),
                message: archived(n, "bob@example.com/phone"),
            });
        }
        // What services own: a pubsub node's item, a room's archive.
        reqs.push(Req::StoreBlob {
            account: a("pubsub.example.com"),
            key: a("n/news"),
            value: Some(a("<node/>")),
            limit: None,
        });
        reqs.push(Req::AppendArchive {
            account: a("conference.example.com/lobby"),
            message: archived(9, "conference.example.com/lobby/amy"),
        });
        let results = b.execute_batch(reqs);
        assert!(results.iter().all(|r| *r == Res::Done), "{results:?}");
        b.flush().expect("flush");
    }

    /// The contents [`fill_for_migration`] wrote, read through requests.
    pub fn check_migrated<B: Backend>(b: &B) {
        let (alice, bob) = (a("alice@example.com"), a("bob@example.com"));
        let mut accounts = b.accounts().expect("accounts");
        accounts.sort();
        assert_eq!(accounts, vec![alice.clone(), bob.clone()]);
        assert_eq!(
            b.service_owners().expect("service owners"),
            vec![a("conference.example.com/lobby"), a("pubsub.example.com")]
        );
        assert_eq!(
            b.peek_offline(&bob).expect("peek"),
            vec![a("<message><body>hi</body></message>")],
            "peeking leaves the queue in place (taken below)"
        );
        assert_eq!(b.peek_offline(&alice).expect("peek"), Vec::<String>::new());
        if let Some(sizes) = b.sizes() {
            // What /metrics reports: messages, not index entries or totals.
            assert_eq!(
                sizes,
                super::StoreSizes {
                    offline: 1,
                    archived: 6
                }
            );
        }
        assert_eq!(
            b.execute(Req::LoadCredentials {
                account: bob.clone()
            }),
            Res::Credentials(Some(creds(2)))
        );
        match b.execute(Req::LoadAccount {
            account: alice.clone(),
            documents: crate::storage::conformance::LOADED.into(),
        }) {
            Res::Account(Some(data)) => {
                assert_eq!(data.roster, vec![item("bob@example.com", true)]);
                assert_eq!(data.roster_version, 7);
            }
            other => panic!("expected alice's account, got {other:?}"),
        }
        assert_eq!(
            b.execute(Req::LoadBlob {
                account: alice.clone(),
                key: a("vcard"),
            }),
            Res::Blob(Some(a("<vCard xmlns='vcard-temp'/>")))
        );
        let query = xmpp_core::archive::ArchiveQuery {
            filter: xmpp_core::archive::ArchiveFilter::default(),
            page: xmpp_core::archive::PageRequest {
                max: 10,
                after: None,
                before: None,
                backward: false,
            },
        };
        match b.execute(Req::QueryArchive {
            account: alice.clone(),
            query,
        }) {
            Res::ArchivePage(page) => {
                let expected: Vec<_> = (1..=5)
                    .map(|n| archived(n, "bob@example.com/phone"))
                    .collect();
                assert_eq!(page.items, expected);
                assert_eq!(page.count, Some(5));
            }
            other => panic!("expected a page, got {other:?}"),
        }
        assert_eq!(
            b.execute(Req::TakeOffline {
                account: bob,
                page: xmpp_core::storage::OfflinePage::ALL,
            }),
            Res::Offline(vec![a("<message><body>hi</body></message>")])
        );
    }

    /// Exercises every request kind and its edge cases.
    pub fn all_requests<B: Backend>(b: &B) {
        let alice = a("alice@example.com");
        let bob = a("bob@example.com");

        // Unknown account.
        assert_eq!(
            b.execute(Req::LoadCredentials {
                account: alice.clone()
            }),
            Res::Credentials(None)
        );
        assert_eq!(
            b.execute(Req::LoadAccount {
                account: alice.clone(),
                documents: crate::storage::conformance::LOADED.into(),
            }),
            Res::Account(None)
        );
        assert_eq!(
            b.execute(Req::TakeOffline {
                page: xmpp_core::storage::OfflinePage::ALL,
                account: alice.clone()
            }),
            Res::Offline(vec![])
        );
        assert_eq!(
            b.execute(Req::SetCredentials {
                account: alice.clone(),
                credentials: creds(1)
            }),
            Res::NotFound
        );
        assert_eq!(
            b.execute(Req::DeleteAccount {
                account: alice.clone()
            }),
            Res::NotFound
        );
        assert_eq!(
            b.execute(Req::PushOffline {
                limit: None,
                account: alice.clone(),
                stanza: a("<message/>")
            }),
            Res::NotFound
        );
        assert_eq!(
            b.execute(Req::PutRosterItem {
                account: alice.clone(),
                item: item("x@y", true),
                version: 1
            }),
            Res::NotFound
        );
        assert_eq!(
            b.execute(Req::RemoveRosterItem {
                account: alice.clone(),
                jid: a("x@y"),
                version: 1
            }),
            Res::NotFound
        );
        assert_eq!(b.accounts().ok(), Some(vec![]));

        // Create, conflict, set credentials.
        assert_eq!(
            b.execute(Req::CreateAccount {
                account: alice.clone(),
                credentials: creds(1)
            }),
            Res::Done
        );
        assert_eq!(
            b.execute(Req::CreateAccount {
                account: alice.clone(),
                credentials: creds(2)
            }),
            Res::Conflict
        );
        assert_eq!(
            b.execute(Req::LoadCredentials {
                account: alice.clone()
            }),
            Res::Credentials(Some(creds(1)))
        );
        assert_eq!(
            b.execute(Req::SetCredentials {
                account: alice.clone(),
                credentials: creds(3)
            }),
            Res::Done
        );
        assert_eq!(
            b.execute(Req::LoadCredentials {
                account: alice.clone()
            }),
            Res::Credentials(Some(creds(3)))
        );
        assert_eq!(
            b.execute(Req::LoadAccount {
                account: alice.clone(),
                documents: crate::storage::conformance::LOADED.into(),
            }),
            Res::Account(Some(AccountData::default()))
        );
        assert_eq!(
            b.execute(Req::CreateAccount {
                account: bob.clone(),
                credentials: creds(4)
            }),
            Res::Done
        );
        // A name that is a prefix of another must not see its data.
        let al = a("alice@example.co");
        assert_eq!(
            b.execute(Req::CreateAccount {
                account: al.clone(),
                credentials: creds(5)
            }),
            Res::Done
        );
        assert_eq!(
            b.accounts().ok(),
            Some(vec![al.clone(), alice.clone(), bob.clone()])
        );

        // Roster: put (insert, replace), remove, versions, ordering.
        for (jid, to, v) in [("zed@z", true, 1), ("amy@a", false, 2), ("zed@z", false, 3)] {
            assert_eq!(
                b.execute(Req::PutRosterItem {
                    account: alice.clone(),
                    item: item(jid, to),
                    version: v
                }),
                Res::Done
            );
        }
        assert_eq!(
            b.execute(Req::LoadAccount {
                account: alice.clone(),
                documents: crate::storage::conformance::LOADED.into(),
            }),
            Res::Account(Some(AccountData {
                roster: vec![item("amy@a", false), item("zed@z", false)],
                roster_version: 3,
                documents: Default::default(),
            }))
        );
        assert_eq!(
            b.execute(Req::RemoveRosterItem {
                account: alice.clone(),
                jid: a("amy@a"),
                version: 4
            }),
            Res::Done
        );
        // Removing an absent item still records the version.
        assert_eq!(
            b.execute(Req::RemoveRosterItem {
                account: alice.clone(),
                jid: a("nobody@n"),
                version: 5
            }),
            Res::Done
        );
        assert_eq!(
            b.execute(Req::LoadAccount {
                account: alice.clone(),
                documents: crate::storage::conformance::LOADED.into(),
            }),
            Res::Account(Some(AccountData {
                roster: vec![item("zed@z", false)],
                roster_version: 5,
                documents: Default::default(),
            }))
        );
        assert_eq!(
            b.execute(Req::LoadAccount {
                account: al.clone(),
                documents: crate::storage::conformance::LOADED.into(),
            }),
            Res::Account(Some(AccountData::default()))
        );

        // Offline: order, take empties the queue, per-account isolation.
        for i in 0..300 {
            assert_eq!(
                b.execute(Req::PushOffline {
                    limit: None,
                    account: alice.clone(),
                    stanza: format!("<message id='{i}'/>")
                }),
                Res::Done
            );
        }
        assert_eq!(
            b.execute(Req::PushOffline {
                limit: None,
                account: bob.clone(),
                stanza: a("<message id='bob'/>")
            }),
            Res::Done
        );
        let expected: Vec<String> = (0..300).map(|i| format!("<message id='{i}'/>")).collect();
        assert_eq!(
            b.execute(Req::TakeOffline {
                page: xmpp_core::storage::OfflinePage::ALL,
                account: alice.clone()
            }),
            Res::Offline(expected)
        );
        assert_eq!(
            b.execute(Req::TakeOffline {
                page: xmpp_core::storage::OfflinePage::ALL,
                account: alice.clone()
            }),
            Res::Offline(vec![])
        );
        assert_eq!(
            b.execute(Req::TakeOffline {
                page: xmpp_core::storage::OfflinePage::ALL,
                account: al.clone()
            }),
            Res::Offline(vec![])
        );
        // Pushing after a take keeps order.
        for s in ["<a/>", "<b/>"] {
            assert_eq!(
                b.execute(Req::PushOffline {
                    limit: None,
                    account: alice.clone(),
                    stanza: a(s)
                }),
                Res::Done
            );
        }
        assert_eq!(
            b.execute(Req::TakeOffline {
                page: xmpp_core::storage::OfflinePage::ALL,
                account: alice.clone()
            }),
            Res::Offline(vec![a("<a/>"), a("<b/>")])
        );

        // Quota and pages: the queue's length survives pages taken from its
        // front (sled counts it from the ends of its key range), a full
        // queue stores nothing, and a page stops at its count or bytes.
        for i in 0..5 {
            assert_eq!(
                b.execute(Req::PushOffline {
                    limit: Some(4),
                    account: alice.clone(),
                    stanza: format!("<m{i}/>")
                }),
                if i < 4 { Res::Done } else { Res::Full },
                "message {i}"
            );
        }
        let page = |max, max_bytes| Req::TakeOffline {
            page: xmpp_core::storage::OfflinePage { max, max_bytes },
            account: alice.clone(),
        };
        assert_eq!(
            b.execute(page(2, 1000)),
            Res::Offline(vec![a("<m0/>"), a("<m1/>")])
        );
        assert_eq!(
            b.execute(Req::PushOffline {
                limit: Some(4),
                account: alice.clone(),
                stanza: a("<m4/>")
            }),
            Res::Done,
            "room again after a page"
        );
        assert_eq!(b.execute(page(10, 6)), Res::Offline(vec![a("<m2/>")]));
        assert_eq!(
            b.execute(page(10, 12)),
            Res::Offline(vec![a("<m3/>"), a("<m4/>")])
        );
        assert_eq!(b.execute(page(10, 12)), Res::Offline(vec![]));

        // Delete removes everything of that account only.
        assert_eq!(
            b.execute(Req::PushOffline {
                limit: None,
                account: alice.clone(),
                stanza: a("<c/>")
            }),
            Res::Done
        );
        assert_eq!(
            b.execute(Req::PutRosterItem {
                account: bob.clone(),
                item: item("alice@example.com", true),
                version: 7
            }),
            Res::Done
        );
        // Stored XML documents: absent, stored, replaced, removed, and
        // refused for unknown accounts.
        let blob = |key: &str| Req::LoadBlob {
            account: alice.clone(),
            key: key.to_owned(),
        };
        assert_eq!(b.execute(blob("vcard")), Res::Blob(None));
        for v in [
            "<vCard xmlns='vcard-temp'/>",
            "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>",
        ] {
            assert_eq!(
                b.execute(Req::StoreBlob {
                    account: alice.clone(),
                    key: "vcard".into(),
                    value: Some(v.into()),
                    limit: None,
                }),
                Res::Done
            );
            assert_eq!(b.execute(blob("vcard")), Res::Blob(Some(v.into())));
        }
        assert_eq!(
            b.execute(Req::StoreBlob {
                account: alice.clone(),
                key: "private:a:b".into(),
                value: Some("<b xmlns='a'/>".into()),
                limit: None,
            }),
            Res::Done
        );
        assert_eq!(
            b.execute(Req::StoreBlob {
                account: alice.clone(),
                key: "private:a:b".into(),
                value: None,
                limit: None,
            }),
            Res::Done
        );
        assert_eq!(b.execute(blob("private:a:b")), Res::Blob(None));
        // A key limit counts the documents sharing a prefix (the vCard
        // stored above is not one of them): new keys
        // beyond it are refused, replacing one is not, and deleting one
        // makes room again.
        let limited = |key: &str, value: Option<&str>| Req::StoreBlob {
            account: alice.clone(),
            key: key.to_owned(),
            value: value.map(str::to_owned),
            limit: Some(xmpp_core::storage::KeyLimit {
                prefix: "p ".into(),
                max: 2,
            }),
        };
        assert_eq!(b.execute(limited("p 1", Some("<a/>"))), Res::Done);
        assert_eq!(b.execute(limited("p 2", Some("<a/>"))), Res::Done);
        assert_eq!(b.execute(limited("p 3", Some("<a/>"))), Res::Full);
        assert_eq!(b.execute(blob("p 3")), Res::Blob(None));
        assert_eq!(b.execute(limited("p 2", Some("<b/>"))), Res::Done);
        assert_eq!(b.execute(blob("p 2")), Res::Blob(Some("<b/>".into())));
        assert_eq!(b.execute(limited("p 1", None)), Res::Done);
        assert_eq!(b.execute(limited("p 3", Some("<c/>"))), Res::Done);
        // Documents are listed by key prefix, in key order, in pages.
        for key in ["pep/a/1", "pep/a/2", "pep/a/3", "pep/b/1", "pep/a"] {
            assert_eq!(
                b.execute(Req::StoreBlob {
                    account: alice.clone(),
                    key: key.into(),
                    value: Some(format!("<{}/>", key.replace('/', "-"))),
                    limit: None,
                }),
                Res::Done
            );
        }
        let list = |prefix: &str, after: Option<&str>, max| Req::ListBlobs {
            account: alice.clone(),
            prefix: prefix.into(),
            after: after.map(str::to_owned),
            max,
        };
        let keys = |r: Res| match r {
            Res::Documents { items, more } => {
                (items.into_iter().map(|(k, _)| k).collect::<Vec<_>>(), more)
            }
            other => panic!("expected documents, got {other:?}"),
        };
        assert_eq!(
            b.execute(list("pep/a/", None, 2)),
            Res::Documents {
                items: vec![
                    ("pep/a/1".into(), "<pep-a-1/>".into()),
                    ("pep/a/2".into(), "<pep-a-2/>".into())
                ],
                more: true
            }
        );
        assert_eq!(
            keys(b.execute(list("pep/a/", Some("pep/a/2"), 2))),
            (vec!["pep/a/3".to_owned()], false)
        );
        assert_eq!(
            keys(b.execute(list("pep/a/", Some("a"), 1))),
            (vec!["pep/a/1".to_owned()], true),
            "an `after` before the prefix starts at the prefix"
        );
        assert_eq!(
            keys(b.execute(list("pep/", Some("pep/a/3"), 10))),
            (vec!["pep/b/1".to_owned()], false)
        );
        assert_eq!(keys(b.execute(list("pep/a/", None, 0))), (vec![], true));
        assert_eq!(
            keys(b.execute(Req::ListBlobs {
                account: "nobody@localhost".into(),
                prefix: "pep/".into(),
                after: None,
                max: 10,
            })),
            (vec![], false)
        );
        // A service domain (no '@') owns documents without an account:
        // stored, listed, read and deleted; an unknown account still has
        // none.
        let service = |key: &str, value: Option<&str>| Req::StoreBlob {
            account: "pubsub.localhost".into(),
            key: key.into(),
            value: value.map(str::to_owned),
            limit: None,
        };
        assert_eq!(b.execute(service("node/a", Some("<a/>"))), Res::Done);
        assert_eq!(b.execute(service("node/b", Some("<b/>"))), Res::Done);
        assert_eq!(
            keys(b.execute(Req::ListBlobs {
                account: "pubsub.localhost".into(),
                prefix: "node/".into(),
                after: None,
                max: 10,
            })),
            (vec!["node/a".to_owned(), "node/b".to_owned()], false)
        );
        assert_eq!(b.execute(service("node/a", None)), Res::Done);
        assert_eq!(
            b.execute(Req::LoadBlob {
                account: "pubsub.localhost".into(),
                key: "node/b".into(),
            }),
            Res::Blob(Some("<b/>".into()))
        );
        assert_eq!(
            b.execute(Req::LoadBlob {
                account: "pubsub.localhost".into(),
                key: "node/a".into(),
            }),
            Res::Blob(None)
        );
        assert_eq!(
            b.execute(Req::StoreBlob {
                account: "nobody@localhost".into(),
                key: "x".into(),
                value: Some("<x/>".into()),
                limit: None,
            }),
            Res::NotFound
        );
        // The documents a load names come back with the account, in the
        // order named; others (the vCard stored above) do not.
        match b.execute(Req::LoadAccount {
            account: alice.clone(),
            documents: ["p 3", "missing", "p 2"].as_slice().into(),
        }) {
            Res::Account(Some(data)) => assert_eq!(
                data.documents.iter().collect::<Vec<_>>(),
                vec![("p 3", "<c/>"), ("p 2", "<b/>")]
            ),
            other => panic!("{other:?}"),
        }
        // Push registrations come back with the account (XEP-0357).
        let push_doc = "<push xmlns='urn:vireo:push' pending='1'/>";
        assert_eq!(
            b.execute(Req::StoreBlob {
                account: alice.clone(),
                key: xmpp_core::storage::PUSH_KEY.into(),
                value: Some(push_doc.into()),
                limit: None,
            }),
            Res::Done
        );
        match b.execute(Req::LoadAccount {
            account: alice.clone(),
            documents: crate::storage::conformance::LOADED.into(),
        }) {
            Res::Account(Some(data)) => assert_eq!(
                data.documents.get(xmpp_core::storage::PUSH_KEY),
                Some(push_doc)
            ),
            other => panic!("{other:?}"),
        }
        // The avatar hash (XEP-0153) comes back with the account.
        let avatar = xmpp_core::modules::avatar::AVATAR_KEY;
        assert_eq!(
            b.execute(Req::StoreBlob {
                account: alice.clone(),
                key: avatar.into(),
                value: Some("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d".into()),
                limit: None,
            }),
            Res::Done
        );
        match b.execute(Req::LoadAccount {
            account: alice.clone(),
            documents: crate::storage::conformance::LOADED.into(),
        }) {
            Res::Account(Some(data)) => assert_eq!(
                data.documents.get(avatar),
                Some("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            b.execute(Req::StoreBlob {
                account: alice.clone(),
                key: avatar.into(),
                value: Some(String::new()),
                limit: None,
            }),
            Res::Done
        );
        match b.execute(Req::LoadAccount {
            account: alice.clone(),
            documents: crate::storage::conformance::LOADED.into(),
        }) {
            Res::Account(Some(data)) => assert_eq!(data.documents.get(avatar), Some("")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            b.execute(Req::StoreBlob {
                account: "nobody@localhost".into(),
                key: "vcard".into(),
                value: Some("<x/>".into()),
                limit: None,
            }),
            Res::NotFound
        );
        assert_eq!(
            b.execute(Req::DeleteAccount {
                account: alice.clone()
            }),
            Res::Done
        );
        assert_eq!(b.execute(blob("vcard")), Res::Blob(None));
        assert_eq!(
            b.execute(Req::LoadCredentials {
                account: alice.clone()
            }),
            Res::Credentials(None)
        );
        assert_eq!(
            b.execute(Req::LoadAccount {
                account: alice.clone(),
                documents: crate::storage::conformance::LOADED.into(),
            }),
            Res::Account(None)
        );
        assert_eq!(
            b.execute(Req::TakeOffline {
                page: xmpp_core::storage::OfflinePage::ALL,
                account: alice.clone()
            }),
            Res::Offline(vec![])
        );
        assert_eq!(b.accounts().ok(), Some(vec![al.clone(), bob.clone()]));
        // Recreating starts from scratch.
        assert_eq!(
            b.execute(Req::CreateAccount {
                account: alice.clone(),
                credentials: creds(6)
            }),
            Res::Done
        );
        assert_eq!(
            b.execute(Req::LoadAccount {
                account: alice.clone(),
                documents: crate::storage::conformance::LOADED.into(),
            }),
            Res::Account(Some(AccountData::default()))
        );
        // Bob is untouched.
        assert_eq!(
            b.execute(Req::LoadAccount {
                account: bob.clone(),
                documents: crate::storage::conformance::LOADED.into(),
            }),
            Res::Account(Some(AccountData {
                roster: vec![item("alice@example.com", true)],
                roster_version: 7,
                documents: Default::default(),
            }))
        );
        assert_eq!(
            b.execute(Req::TakeOffline {
                page: xmpp_core::storage::OfflinePage::ALL,
                account: bob.clone()
            }),
            Res::Offline(vec![a("<message id='bob'/>")])
        );

        // Invalid account names fail cleanly.
        assert!(matches!(
            b.execute(Req::CreateAccount {
                account: a("bad\0name"),
                credentials: creds(1)
            }),
            Res::Failed(_)
        ));
        assert!(matches!(
            b.execute(Req::LoadAccount {
                account: a(""),
                documents: crate::storage::conformance::LOADED.into(),
            }),
            Res::Failed(_)
        ));
        assert!(b.flush().is_ok());
    }
}
