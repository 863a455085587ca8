//! An occupant: one nickname in one room, held by one user (bare JID)
//! from one or more of their sessions (§7.2.9: a user's several clients
//! share the nickname).

use super::permissions::Role;
use crate::xml::Element;
use std::collections::BTreeMap;

/// An occupant of a room.
#[derive(Debug, Clone, PartialEq)]
pub struct Occupant {
    /// The nickname (the resource of the occupant JID).
    pub nick: String,
    /// The user's bare JID.
    pub bare: String,
    /// The sessions in the room: full JID → the presence it last sent
    /// (without its `muc` extension).
    pub sessions: BTreeMap<String, Element>,
    /// The role (§5.1).
    pub role: Role,
    /// Its XEP-0421 occupant id, derived once on entry.
    pub id: String,
}

impl Occupant {
    /// The presence others see: the one most recently joined session's.
    pub fn presence(&self) -> Option<&Element> {
        self.sessions.values().next()
    }

    /// The full JIDs of its sessions.
    pub fn jids(&self) -> impl Iterator<Item = &str> {
        self.sessions.keys().map(String::as_str)
    }
}
