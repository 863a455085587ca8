//! Which connection holds each resumable session (XEP-0198), and which of
//! an account's sessions are hibernating.
//!
//! A hibernated session keeps its connection slot and its queue for the
//! whole resume timeout while the client holds no socket at all, so one
//! account dropping connections in a loop could hoard them. As Prosody
//! does (`smacks_max_hibernated_sessions`), an account keeps at most
//! [`MAX_HIBERNATED_PER_ACCOUNT`]; hibernating one more ends the oldest.

use crate::hub::ConnId;
use crate::spare::ReleaseSpare;
use std::collections::{HashMap, VecDeque};

/// Hibernated sessions one account may have (Prosody's default).
pub const MAX_HIBERNATED_PER_ACCOUNT: usize = 10;

/// The registry of resumable sessions. Connections are named by the id
/// the hub knows the session by (a resumed session keeps it).
#[derive(Debug)]
pub struct SmRegistry {
    /// SM-ID → (account, connection holding the session).
    sessions: HashMap<String, (String, ConnId)>,
    /// Account → connections of its hibernated sessions, oldest first.
    hibernated: HashMap<String, VecDeque<ConnId>>,
    max_hibernated: usize,
}

impl Default for SmRegistry {
    fn default() -> Self {
        Self::with_limit(MAX_HIBERNATED_PER_ACCOUNT)
    }
}

impl SmRegistry {
    /// A registry keeping at most `max_hibernated` hibernated sessions per
    /// account (at least one).
    pub fn with_limit(max_hibernated: usize) -> Self {
        SmRegistry {
            sessions: HashMap::new(),
            hibernated: HashMap::new(),
            max_hibernated: max_hibernated.max(1),
        }
    }

    /// A connection enabled resumable stream management with SM-ID `id`.
    pub fn register(&mut self, id: String, account: String, conn: ConnId) {
        self.sessions.insert(id, (account, conn));
    }

    /// The session ended for good (not handed over); false when `conn`
    /// does not hold `id` (any more).
    pub fn unregister(&mut self, id: &str, conn: ConnId) -> bool {
        let Some((account, _)) = self.sessions.get(id).filter(|(_, c)| *c == conn).cloned() else {
            return false;
        };
        self.sessions.remove(id);
        self.sessions.release_spare();
        self.awake(&account, conn);
        true
    }

    /// The connection holding session `id`, if it is `account`'s: another
    /// account's SM-ID resumes nothing.
    pub fn holder(&self, id: &str, account: &str) -> Option<ConnId> {
        self.sessions
            .get(id)
            .filter(|(a, _)| a == account)
            .map(|(_, conn)| *conn)
    }

    /// `conn`'s session lost its transport and waits to be resumed. Returns
    /// the account's oldest hibernated session when this one is over the
    /// limit: the caller ends it.
    pub fn hibernated(&mut self, account: &str, conn: ConnId) -> Option<ConnId> {
        let q = self.hibernated.entry(account.to_owned()).or_default();
        if !q.contains(&conn) {
            q.push_back(conn);
        }
        if q.len() > self.max_hibernated {
            return q.pop_front();
        }
        None
    }

    /// `conn`'s session is being resumed (or ended): no longer hibernating.
    pub fn awake(&mut self, account: &str, conn: ConnId) {
        if let Some(q) = self.hibernated.get_mut(account) {
            q.retain(|c| *c != conn);
            if q.is_empty() {
                self.hibernated.remove(account);
                self.hibernated.release_spare();
            }
        }
    }

    /// Hibernated sessions, over all accounts.
    pub fn hibernated_count(&self) -> usize {
        self.hibernated.values().map(|q| q.len()).sum()
    }

    /// Resumable sessions registered (a leak of ended sessions shows here).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no resumable session is registered.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_holder_unregisters_and_only_for_its_account() {
        let mut r = SmRegistry::default();
        r.register("id1".into(), "a@x".into(), 1);
        assert_eq!(r.holder("id1", "a@x"), Some(1));
        assert_eq!(
            r.holder("id1", "mallory@x"),
            None,
            "another account's session"
        );
        assert!(!r.unregister("id1", 2));
        assert_eq!(r.len(), 1, "a connection that no longer holds it");
        assert!(r.unregister("id1", 1));
        assert!(r.is_empty());
        assert_eq!(r.holder("id1", "a@x"), None);
    }

    #[test]
    fn the_oldest_hibernated_session_over_the_limit_is_ended() {
        let mut r = SmRegistry::default();
        for conn in 0..MAX_HIBERNATED_PER_ACCOUNT as ConnId {
            r.register(format!("id{conn}"), "a@x".into(), conn);
            assert_eq!(r.hibernated("a@x", conn), None);
        }
        assert_eq!(r.hibernated("b@x", 100), None, "other accounts count apart");
        // Resuming one frees its place; hibernating twice counts once.
        r.awake("a@x", 3);
        assert_eq!(r.hibernated("a@x", 50), None);
        assert_eq!(r.hibernated("a@x", 50), None);
        assert_eq!(r.hibernated("a@x", 51), Some(0));
        // An ended session no longer counts either.
        r.unregister("id1", 1);
        assert_eq!(r.hibernated("a@x", 52), None);
        assert_eq!(r.hibernated("a@x", 53), Some(2));
    }
}
