//! One account's live state inside a hub partition: roster and sessions.

use crate::jid::Jid;
use crate::storage::{AccountData, RosterItem};
use crate::xml::Element;
use std::collections::{BTreeMap, HashSet};

/// Identifies a connection to the driver.
pub type ConnId = u64;

/// A bound resource of an account.
#[derive(Debug)]
pub struct Session {
    /// The connection carrying it.
    pub conn: ConnId,
    /// The bound full JID.
    pub jid: Jid,
    /// Sent initial presence and not yet unavailable (RFC 6121 §4.2).
    pub available: bool,
    /// Presence priority (RFC 6121 §4.7.2.3).
    pub priority: i8,
    /// The last broadcast presence, answered to probes — kept serialized:
    /// it is read rarely (probes, new resources) and an element tree costs
    /// several times the bytes for every idle session.
    pub last_presence: Option<Box<str>>,
    /// Requested the roster, so it gets roster pushes (RFC 6121 §2.1.6).
    pub interested: bool,
    /// What modules keep for this session (`Context::session_state`).
    pub ext: super::Extensions,
    /// Targets of directed presence, told when the session goes away (§4.6).
    pub directed: HashSet<String>,
    /// Its connection broke and it waits to be resumed (XEP-0198): still
    /// available, but messages reach the user only through push (XEP-0357).
    pub hibernated: bool,
}

impl Session {
    /// The last broadcast presence as an element, if any.
    pub fn presence(&self) -> Option<Element> {
        self.last_presence
            .as_deref()
            .and_then(|p| Element::parse(p.as_bytes()).ok())
    }

    pub(crate) fn new(conn: ConnId, jid: Jid) -> Self {
        Session {
            conn,
            jid,
            available: false,
            priority: 0,
            last_presence: None,
            interested: false,
            ext: super::Extensions::default(),
            directed: HashSet::new(),
            hibernated: false,
        }
    }
}

/// An account's sessions. Almost every account has one or two, so a small
/// vector beats a map (a B-tree node alone is ~2 KiB per idle account).
#[derive(Debug, Default)]
pub struct Sessions(Vec<Session>);

impl Sessions {
    /// The session bound to `resource`.
    pub fn get(&self, resource: &str) -> Option<&Session> {
        self.0.iter().find(|s| s.jid.resource() == Some(resource))
    }

    /// Add a session, replacing one bound to the same resource.
    pub fn insert(&mut self, resource: String, session: Session) {
        match self
            .0
            .iter_mut()
            .find(|s| s.jid.resource() == Some(resource.as_str()))
        {
            Some(slot) => *slot = session,
            None => {
                // Exact growth: a default Vec reserves four ~200-byte slots.
                self.0.reserve_exact(1);
                self.0.push(session)
            }
        }
    }

    /// All sessions.
    pub fn values(&self) -> impl Iterator<Item = &Session> {
        self.0.iter()
    }

    /// All sessions, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Session> {
        self.0.iter_mut()
    }

    /// Keep the sessions for which `keep(resource, session)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Session) -> bool) {
        self.0
            .retain(|s| keep(s.jid.resource().unwrap_or_default(), s));
    }

    /// How many sessions are bound.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No session left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A loaded account.
#[derive(Debug, Default)]
pub struct Account {
    /// Roster keyed by contact bare JID.
    pub roster: BTreeMap<String, RosterItem>,
    /// XEP-0237 roster version.
    pub roster_version: u64,
    /// Bound sessions.
    pub sessions: Sessions,
    /// What modules keep for this account (`Context::account_state`).
    pub ext: super::Extensions,
}

impl Account {
    /// The account as loaded; the modules' state is set up from the
    /// documents afterwards.
    pub(crate) fn from_data(data: AccountData) -> Self {
        Account {
            roster: data
                .roster
                .into_iter()
                .map(|i| (i.jid.clone(), i))
                .collect(),
            roster_version: data.roster_version,
            sessions: Sessions::default(),
            ext: super::Extensions::default(),
        }
    }

    /// Sessions that sent initial presence.
    pub fn available(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values().filter(|s| s.available)
    }

    /// The session on a connection.
    pub fn session_by_conn(&self, conn: ConnId) -> Option<&Session> {
        self.sessions.values().find(|s| s.conn == conn)
    }

    /// The session on a connection, mutably.
    pub fn session_by_conn_mut(&mut self, conn: ConnId) -> Option<&mut Session> {
        self.sessions.values_mut().find(|s| s.conn == conn)
    }

    /// Connections of the available resources with the highest non-negative
    /// priority: where a message to the bare JID goes (RFC 6121 §8.5.2.1.1).
    pub fn message_targets(&self) -> Vec<ConnId> {
        let best = self
            .available()
            .map(|s| s.priority)
            .filter(|p| *p >= 0)
            .max();
        match best {
            Some(b) => self
                .available()
                .filter(|s| s.priority == b)
                .map(|s| s.conn)
                .collect(),
            None => Vec::new(),
        }
    }
}
