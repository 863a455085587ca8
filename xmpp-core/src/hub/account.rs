//! One account's live state inside a hub partition: roster and sessions.

use crate::jid::Jid;
use crate::storage::{AccountData, RosterItem};
use crate::xml::Element;
use std::collections::{BTreeMap, HashSet};

/// Identifies a connection to the driver.
pub type ConnId = u64;

/// A bound resource of an account.
#[derive(Debug, Clone)]
pub struct Session {
    /// The connection carrying it.
    pub conn: ConnId,
    /// The bound full JID.
    pub jid: Jid,
    /// Sent initial presence and not yet unavailable (RFC 6121 §4.2).
    pub available: bool,
    /// Presence priority (RFC 6121 §4.7.2.3).
    pub priority: i8,
    /// The last broadcast presence, answered to probes.
    pub last_presence: Option<Element>,
    /// Requested the roster, so it gets roster pushes (RFC 6121 §2.1.6).
    pub interested: bool,
    /// Targets of directed presence, told when the session goes away (§4.6).
    pub directed: HashSet<String>,
}

impl Session {
    pub(crate) fn new(conn: ConnId, jid: Jid) -> Self {
        Session {
            conn,
            jid,
            available: false,
            priority: 0,
            last_presence: None,
            interested: false,
            directed: HashSet::new(),
        }
    }
}

/// A loaded account.
#[derive(Debug, Default)]
pub struct Account {
    /// Roster keyed by contact bare JID.
    pub roster: BTreeMap<String, RosterItem>,
    /// XEP-0237 roster version.
    pub roster_version: u64,
    /// Bound sessions keyed by resource.
    pub sessions: BTreeMap<String, Session>,
}

impl Account {
    pub(crate) fn from_data(data: AccountData) -> Self {
        Account {
            roster: data
                .roster
                .into_iter()
                .map(|i| (i.jid.clone(), i))
                .collect(),
            roster_version: data.roster_version,
            sessions: BTreeMap::new(),
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
