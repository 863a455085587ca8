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
    /// The session whose presence or message to the room came last
    /// (Prosody's primary session): what others see of the occupant, and
    /// where iqs to it are relayed, since the user is most likely there.
    pub active: String,
    /// The role (§5.1).
    pub role: Role,
    /// Its XEP-0421 occupant id, derived once on entry.
    pub id: String,
}

impl Occupant {
    /// An occupant entering from the session `full` with `presence`.
    pub fn new(
        nick: &str,
        bare: &str,
        full: &str,
        presence: Element,
        role: Role,
        id: String,
    ) -> Self {
        Occupant {
            nick: nick.to_owned(),
            bare: bare.to_owned(),
            sessions: BTreeMap::from([(full.to_owned(), presence)]),
            active: full.to_owned(),
            role,
            id,
        }
    }

    /// The presence others see: the active session's.
    pub fn presence(&self) -> Option<&Element> {
        self.sessions
            .get(&self.active)
            .or_else(|| self.sessions.values().next())
    }

    /// The active session's full JID.
    pub fn active_jid(&self) -> Option<&str> {
        if self.sessions.contains_key(&self.active) {
            return Some(&self.active);
        }
        self.jids().next()
    }

    /// The full JIDs of its sessions.
    pub fn jids(&self) -> impl Iterator<Item = &str> {
        self.sessions.keys().map(String::as_str)
    }

    /// The session `full` sent `presence` (entering or updating): it is
    /// the active one now.
    pub fn set_presence(&mut self, full: &str, presence: Element) {
        self.sessions.insert(full.to_owned(), presence);
        self.active = full.to_owned();
    }

    /// The session `full` sent the room a message: it is the active one
    /// now.
    pub fn touch(&mut self, full: &str) {
        if self.sessions.contains_key(full) && self.active != full {
            self.active = full.to_owned();
        }
    }

    /// The session `full` left; another one (the first) becomes active if
    /// it was.
    pub fn remove_session(&mut self, full: &str) {
        self.sessions.remove(full);
        if self.active == full {
            self.active = self.sessions.keys().next().cloned().unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns;

    fn show(s: &str) -> Element {
        Element::new(ns::CLIENT, "presence")
            .with_child(Element::new(ns::CLIENT, "show").with_text(s))
    }

    #[test]
    fn the_last_session_to_speak_is_active() {
        let mut o = Occupant::new(
            "Bob",
            "bob@l",
            "bob@l/z",
            show("away"),
            Role::Participant,
            "i".into(),
        );
        o.set_presence("bob@l/a", show("chat"));
        assert_eq!(o.active_jid(), Some("bob@l/a"));
        assert_eq!(o.presence(), Some(&show("chat")));
        o.touch("bob@l/z");
        assert_eq!(o.active_jid(), Some("bob@l/z"));
        assert_eq!(o.presence(), Some(&show("away")));
        // A stranger's JID changes nothing.
        o.touch("eve@l/x");
        assert_eq!(o.active_jid(), Some("bob@l/z"));
        o.remove_session("bob@l/z");
        assert_eq!(o.active_jid(), Some("bob@l/a"));
        o.remove_session("bob@l/a");
        assert_eq!(o.active_jid(), None);
    }
}
