//! Message archives (XEP-0313) as storage sees them: ids, records, queries,
//! and the one query algorithm every backend runs.
//!
//! The protocol side (forms, RSM, result stanzas) lives in
//! [`crate::modules::mam`]; the hub decides what is archived. Backends only
//! provide an [`ArchiveView`] (ordered scans, point reads, counts) over
//! their own layout and call [`run_query`], so the memory store, redb and
//! sled answer every query identically by construction, and the property
//! tests comparing them check the views.

mod id;
mod prefs;
mod query;

pub use id::{ArchiveId, IdGenerator, IdSequence, TEXT_LEN as ID_TEXT_LEN};
pub use prefs::{ArchivePrefs, DefaultPref, PREFS_KEY};
pub use query::{metadata, run_query, ArchiveView, QueryError, Scan, COUNT_SCAN_LIMIT};

use crate::time::Millis;

/// One archived message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedMessage {
    /// Its archive id (which also says when it was archived).
    pub id: ArchiveId,
    /// The other party: the sender of an incoming message, the recipient of
    /// an outgoing one, as the full or bare JID the stanza carried.
    pub with: String,
    /// The message as received, serialized.
    pub stanza: String,
}

impl ArchivedMessage {
    /// The bare JID of [`with`](Self::with), the key of the with-index.
    pub fn with_bare(&self) -> &str {
        bare_of(&self.with)
    }
}

/// The bare part of a normalized JID string (local and domain parts never
/// contain `/`).
pub fn bare_of(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(bare, _)| bare)
}

/// The `with` filter: a bare JID matches every resource of it (XEP-0313
/// §4.1.1), a full JID only itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithJid {
    /// The bare JID.
    pub bare: String,
    /// The resource, for a full JID.
    pub resource: Option<String>,
}

impl WithJid {
    /// From a normalized JID string.
    pub fn new(jid: &str) -> Self {
        match jid.split_once('/') {
            Some((bare, res)) => WithJid {
                bare: bare.to_owned(),
                resource: Some(res.to_owned()),
            },
            None => WithJid {
                bare: jid.to_owned(),
                resource: None,
            },
        }
    }

    /// Whether a stored `with` matches.
    pub fn matches(&self, with: &str) -> bool {
        match &self.resource {
            None => bare_of(with) == self.bare,
            Some(res) => with
                .split_once('/')
                .is_some_and(|(b, r)| b == self.bare && r == res),
        }
    }
}

/// What a query selects (the XEP-0313 form).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveFilter {
    /// `with`.
    pub with: Option<WithJid>,
    /// `start`: archived at or after (ms).
    pub start: Option<Millis>,
    /// `end`: archived at or before (ms).
    pub end: Option<Millis>,
    /// `after-id` (#extended): strictly after this id.
    pub after_id: Option<ArchiveId>,
    /// `before-id` (#extended): strictly before this id.
    pub before_id: Option<ArchiveId>,
    /// `ids` (#extended): only these.
    pub ids: Option<Vec<ArchiveId>>,
}

/// Which page of the selection (XEP-0059).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Most items in the page.
    pub max: usize,
    /// RSM `<after/>`: the page starts after this id.
    pub after: Option<ArchiveId>,
    /// RSM `<before/>` with an id: the page ends before it.
    pub before: Option<ArchiveId>,
    /// A `<before/>` was given (empty or not): page backwards from the end.
    pub backward: bool,
}

/// A query: selection and page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveQuery {
    /// What matches.
    pub filter: ArchiveFilter,
    /// Which part of it to return.
    pub page: PageRequest,
}

/// A page of results, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePage {
    /// The messages, in chronological order.
    pub items: Vec<ArchivedMessage>,
    /// No further matching messages in the paging direction (XEP-0313
    /// `complete`).
    pub complete: bool,
    /// How many messages match the whole selection, when cheap to know
    /// (RSM `<count/>` is optional; see [`COUNT_SCAN_LIMIT`]).
    pub count: Option<u64>,
    /// Position of the first item in the selection, when known (RSM
    /// `<first index/>`).
    pub first_index: Option<u64>,
}

/// First and last message of an archive (XEP-0313 §5 metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveBounds {
    /// The oldest message's id.
    pub first: ArchiveId,
    /// The newest message's id.
    pub last: ArchiveId,
}
