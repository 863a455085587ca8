//! Storage as data: the core asks with a [`StorageRequest`] and continues when
//! the embedder hands back the matching [`StorageResult`].
//!
//! Keeping storage out of the core is what lets the same machines run against
//! redb, sled, PostgreSQL or an in-memory map, and lets tests answer synchronously.

mod memory;

pub use memory::MemoryStore;

/// Whether a document owner is a service domain (`pubsub.localhost`)
/// rather than an account: account JIDs always have a local part. A
/// service's documents exist without an account (see
/// [`StorageRequest::StoreBlob`]).
pub fn is_service_owner(owner: &str) -> bool {
    !owner.contains('@')
}

use crate::archive::{ArchiveBounds, ArchiveId, ArchivePage, ArchiveQuery, ArchivedMessage};
use crate::sasl::StoredCredentials;
use crate::time::Millis;

/// Correlates a request with its result.
pub type RequestId = u64;

/// One account's roster entry, as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterItem {
    /// Bare JID of the contact (normalized, as a string).
    pub jid: String,
    /// User-assigned handle.
    pub name: Option<String>,
    /// Subscription state, including pending flags (RFC 6121 Appendix A).
    pub subscription: Subscription,
    /// Roster groups.
    pub groups: Vec<String>,
    /// False for contacts that only asked to subscribe: RFC 6121 §3.1.3 keeps
    /// those out of the roster until the user acts on them.
    pub in_roster: bool,
}

/// Subscription state per RFC 6121 Appendix A: the four base states plus the
/// "pending out" (we asked) and "pending in" (they asked) flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Subscription {
    /// We receive the contact's presence.
    pub to: bool,
    /// The contact receives ours.
    pub from: bool,
    /// We asked to subscribe and wait for an answer.
    pub pending_out: bool,
    /// The contact asked to subscribe and waits for the user's answer.
    pub pending_in: bool,
}

impl Subscription {
    /// The `subscription` attribute value for roster results and pushes.
    pub fn as_attr(&self) -> &'static str {
        match (self.to, self.from) {
            (true, true) => "both",
            (true, false) => "to",
            (false, true) => "from",
            (false, false) => "none",
        }
    }
}

/// The keys of the account documents (see [`StorageRequest::StoreBlob`])
/// that come with every account load: those the hub's modules consult on
/// every stanza (the blocklist, push registrations, archive preferences).
/// Modules declare them, so a backend reads them without knowing any.
pub type DocumentKeys = std::sync::Arc<[&'static str]>;

/// An account's persisted state, loaded when the account becomes active.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountData {
    /// Roster items, including hidden pending-in entries.
    pub roster: Vec<RosterItem>,
    /// Roster version counter (XEP-0237).
    pub roster_version: u64,
    /// The documents the load asked for that are stored.
    pub documents: Documents,
}

/// Stored account documents by key, in the order a load asked for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Documents(Vec<(&'static str, String)>);

impl Documents {
    /// The document under `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, d)| d.as_str())
    }

    /// Replace (or add) the document under `key`.
    pub fn set(&mut self, key: &'static str, document: String) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = document,
            None => self.0.push((key, document)),
        }
    }

    /// Every (key, document).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(k, d)| (*k, d.as_str()))
    }
}

impl FromIterator<(&'static str, String)> for Documents {
    fn from_iter<I: IntoIterator<Item = (&'static str, String)>>(iter: I) -> Self {
        Documents(iter.into_iter().collect())
    }
}

/// Storage key of the push registrations document.
pub const PUSH_KEY: &str = "push";

/// What the core asks the storage backend to do. Accounts are keyed by their
/// normalized bare JID (`user@domain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageRequest {
    /// Read the SCRAM credentials of an account. Answer: [`StorageResult::Credentials`].
    LoadCredentials { account: String },
    /// Read roster and version and the stored documents under `documents`;
    /// `None` when the account does not exist. Answer:
    /// [`StorageResult::Account`].
    LoadAccount {
        account: String,
        documents: DocumentKeys,
    },
    /// Insert or replace one roster item and store the new roster version.
    PutRosterItem {
        account: String,
        item: RosterItem,
        version: u64,
    },
    /// Remove one roster item and store the new roster version.
    RemoveRosterItem {
        account: String,
        jid: String,
        version: u64,
    },
    /// Append a serialized stanza to the account's offline queue (XEP-0160).
    /// The backend must make it durable before answering. With a `limit`,
    /// a queue already holding that many messages stores nothing and
    /// answers [`StorageResult::Full`] (the per-account quota); `None`
    /// stores regardless (a message the server already accepted once).
    PushOffline {
        account: String,
        stanza: String,
        limit: Option<u64>,
    },
    /// Remove and return one page of the offline queue, oldest first: what
    /// [`OfflinePage`] admits. Answer: [`StorageResult::Offline`].
    TakeOffline { account: String, page: OfflinePage },
    /// Create an account. Fails with `Conflict` if it exists.
    CreateAccount {
        account: String,
        credentials: StoredCredentials,
    },
    /// Replace an account's credentials. Fails with `NotFound` if missing.
    SetCredentials {
        account: String,
        credentials: StoredCredentials,
    },
    /// Delete an account and everything stored for it.
    DeleteAccount { account: String },
    /// Read one of the account's stored XML documents (vCard, private XML
    /// storage), by key. Answer: [`StorageResult::Blob`].
    LoadBlob { account: String, key: String },
    /// Replace (`Some`) or delete (`None`) one of the account's stored XML
    /// documents. `NotFound` for an unknown account. An owner without '@'
    /// is a service domain (`pubsub.localhost`), not an account: its
    /// documents belong to the service at that domain and exist without
    /// any account being created (account JIDs always have a local part,
    /// so the two never collide). With a `limit`, a new
    /// key (not a replacement) is refused with [`StorageResult::Full`] when
    /// the account already has `limit.max` keys starting with
    /// `limit.prefix`: the per-account quota of private XML documents.
    StoreBlob {
        account: String,
        key: String,
        value: Option<String>,
        limit: Option<KeyLimit>,
    },
    /// One page of the account's stored documents whose keys start with
    /// `prefix`, in key order, after the key `after` (exclusive): at most
    /// `max`. A module keeps a collection this way (items of a PEP node
    /// under `pep/<node>/`) without a request kind of its own. An unknown
    /// account has none. Answer: [`StorageResult::Documents`].
    ListBlobs {
        account: String,
        prefix: String,
        after: Option<String>,
        max: usize,
    },
    /// Append one message to the account's archive (XEP-0313). `NotFound`
    /// for an unknown account. Ids only grow, so this is an append.
    AppendArchive {
        account: String,
        message: ArchivedMessage,
    },
    /// Replace the stanza of the archived message `id`, keeping its id
    /// (and so its time and place) and its `with`: a retracted message
    /// becomes a tombstone (XEP-0424, XEP-0425), so queries no longer
    /// return what it said. `NotFound` when the account or the message is
    /// unknown (never archived, or already gone by retention).
    ReplaceArchived {
        account: String,
        id: ArchiveId,
        stanza: String,
    },
    /// Run an archive query. Answer: [`StorageResult::ArchivePage`], or
    /// `NotFound` when an id the query names is not in the archive.
    QueryArchive {
        account: String,
        query: ArchiveQuery,
    },
    /// The archive's first and last message. Answer:
    /// [`StorageResult::ArchiveBounds`].
    ArchiveMetadata { account: String },
    /// Retention: delete messages archived before `before` (ms), going
    /// through the archives in account order from `from` (inclusive),
    /// stopping after `limit` deletions so one request never holds the
    /// store for long. Answer: [`StorageResult::Purged`].
    PurgeArchive {
        before: Millis,
        from: Option<String>,
        limit: u64,
    },
}

impl StorageRequest {
    /// Roughly the memory a request holds while it waits for the store: its
    /// stanzas and documents, plus a fixed allowance for the rest. What a
    /// queue of requests costs is bounded with this, not with their number
    /// (one offline message may be 256 KiB, one roster change 200 bytes).
    pub fn approx_bytes(&self) -> usize {
        const FIXED: usize = 128;
        let payload = match self {
            StorageRequest::PushOffline { stanza, .. } => stanza.len(),
            StorageRequest::StoreBlob { key, value, .. } => {
                key.len() + value.as_ref().map_or(0, String::len)
            }
            StorageRequest::AppendArchive { message, .. } => {
                message.with.len() + message.stanza.len()
            }
            StorageRequest::ReplaceArchived { stanza, .. } => stanza.len(),
            StorageRequest::LoadBlob { key, .. } => key.len(),
            StorageRequest::ListBlobs { prefix, after, .. } => {
                prefix.len() + after.as_ref().map_or(0, String::len)
            }
            StorageRequest::RemoveRosterItem { jid, .. } => jid.len(),
            _ => 0,
        };
        let account = self.account().map_or(0, str::len);
        FIXED + account + payload
    }

    /// Whether the request only reads: backends answer a batch of these
    /// without a write transaction.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            StorageRequest::LoadCredentials { .. }
                | StorageRequest::LoadAccount { .. }
                | StorageRequest::LoadBlob { .. }
                | StorageRequest::ListBlobs { .. }
                | StorageRequest::QueryArchive { .. }
                | StorageRequest::ArchiveMetadata { .. }
        )
    }

    /// The account a request is about (for validation, logs and sharding);
    /// `None` for requests about every account (archive retention).
    pub fn account(&self) -> Option<&str> {
        Some(match self {
            StorageRequest::LoadCredentials { account }
            | StorageRequest::LoadAccount { account, .. }
            | StorageRequest::PutRosterItem { account, .. }
            | StorageRequest::RemoveRosterItem { account, .. }
            | StorageRequest::PushOffline { account, .. }
            | StorageRequest::TakeOffline { account, .. }
            | StorageRequest::CreateAccount { account, .. }
            | StorageRequest::SetCredentials { account, .. }
            | StorageRequest::DeleteAccount { account }
            | StorageRequest::LoadBlob { account, .. }
            | StorageRequest::ListBlobs { account, .. }
            | StorageRequest::StoreBlob { account, .. }
            | StorageRequest::AppendArchive { account, .. }
            | StorageRequest::ReplaceArchived { account, .. }
            | StorageRequest::QueryArchive { account, .. }
            | StorageRequest::ArchiveMetadata { account } => account,
            StorageRequest::PurgeArchive { .. } => return None,
        })
    }
}

/// A cap on how many of an account's stored documents share a key prefix
/// (one kind of document, e.g. every XEP-0049 private element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLimit {
    /// The keys counted.
    pub prefix: String,
    /// Most keys with that prefix.
    pub max: u64,
}

impl KeyLimit {
    /// Whether storing `key` is refused when `existing` keys with the
    /// prefix are stored and `key` itself is (`replaces`) or is not one.
    pub fn refuses(&self, existing: u64, replaces: bool) -> bool {
        !replaces && existing >= self.max
    }
}

/// How much of an offline queue one [`StorageRequest::TakeOffline`] takes:
/// at most `max` messages and `max_bytes` bytes of them, but always the
/// oldest one if there is any (a page that admits nothing would never
/// drain the queue). Pages are what keeps a login with thousands of
/// messages waiting from arriving as one burst that no client can
/// acknowledge in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflinePage {
    /// Most messages in the page.
    pub max: usize,
    /// Most bytes (serialized) in the page, unless its first message alone
    /// is bigger.
    pub max_bytes: usize,
}

impl OfflinePage {
    /// Everything at once (tests, tools).
    pub const ALL: OfflinePage = OfflinePage {
        max: usize::MAX,
        max_bytes: usize::MAX,
    };

    /// Whether a message of `len` bytes joins a page that already holds
    /// `taken` messages of `bytes` bytes.
    pub fn admits(&self, taken: usize, bytes: usize, len: usize) -> bool {
        taken < self.max && (taken == 0 || bytes.saturating_add(len) <= self.max_bytes)
    }

    /// How many of `sizes` (message lengths, oldest first) the page takes.
    pub fn count(&self, sizes: impl IntoIterator<Item = usize>) -> usize {
        let (mut taken, mut bytes) = (0usize, 0usize);
        for len in sizes {
            if !self.admits(taken, bytes, len) {
                break;
            }
            taken += 1;
            bytes = bytes.saturating_add(len);
        }
        taken
    }
}

/// The backend's answer to a [`StorageRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageResult {
    /// The write or delete happened.
    Done,
    /// Credentials, or `None` for an unknown account.
    Credentials(Option<StoredCredentials>),
    /// Account data, or `None` for an unknown account.
    Account(Option<AccountData>),
    /// Offline stanzas, oldest first (serialized XML).
    Offline(Vec<String>),
    /// The account's offline queue, or the kind of document being stored,
    /// is at its limit: nothing was stored.
    Full,
    /// A stored XML document, or `None` when there is none.
    Blob(Option<String>),
    /// A page of stored documents as (key, document), in key order, and
    /// whether more follow.
    Documents {
        items: Vec<(String, String)>,
        more: bool,
    },
    /// A page of archived messages.
    ArchivePage(ArchivePage),
    /// An archive's first and last message; `None` when it is empty.
    ArchiveBounds(Option<ArchiveBounds>),
    /// What a purge removed, and the account to continue from when it
    /// stopped at its limit (`None`: every archive was gone through).
    Purged { removed: u64, next: Option<String> },
    /// The account already exists.
    Conflict,
    /// The account does not exist.
    NotFound,
    /// The backend failed; the text is for logs.
    Failed(String),
}
