//! Which connection holds each resumable session (XEP-0198), and which of
//! an account's sessions are hibernating.
//!
//! A hibernated session keeps its connection slot and its queue for the
//! whole resume timeout while the client holds no socket at all, so one
//! account dropping connections in a loop could hoard them. As Prosody
//! does (`smacks_max_hibernated_sessions`), an account keeps at most
//! [`MAX_HIBERNATED_PER_ACCOUNT`]; hibernating one more ends the oldest.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use xmpp_core::hub::ConnId;
use xmpp_core::spare::ReleaseSpare;

/// Hibernated sessions one account may have (Prosody's default).
pub(crate) const MAX_HIBERNATED_PER_ACCOUNT: usize = 10;

#[derive(Debug, Default)]
struct Inner {
    /// SM-ID → (account, connection holding the session).
    sessions: HashMap<String, (String, ConnId)>,
    /// Account → connections of its hibernated sessions, oldest first.
    hibernated: HashMap<String, VecDeque<ConnId>>,
}

impl Inner {
    fn awake(&mut self, account: &str, conn: ConnId) {
        if let Some(q) = self.hibernated.get_mut(account) {
            q.retain(|c| *c != conn);
            if q.is_empty() {
                self.hibernated.remove(account);
                self.hibernated.release_spare();
            }
        }
    }
}

/// The registry of resumable sessions, shared by all connections.
#[derive(Debug, Default)]
pub(crate) struct SmRegistry {
    inner: Mutex<Inner>,
}

impl SmRegistry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection enabled resumable stream management.
    pub(crate) fn register(&self, id: String, account: String, conn: ConnId) {
        let mut inner = self.lock();
        inner.sessions.insert(id, (account, conn));
        tracing::debug!(
            conn,
            resumable = inner.sessions.len(),
            "resumable session registered"
        );
    }

    /// The session ended for good (not handed over). The count logged is
    /// how a leak of ended sessions would show.
    pub(crate) fn unregister(&self, id: &str, conn: ConnId) {
        let mut inner = self.lock();
        let Some((account, _)) = inner.sessions.get(id).filter(|(_, c)| *c == conn).cloned() else {
            return;
        };
        inner.sessions.remove(id);
        inner.sessions.release_spare();
        inner.awake(&account, conn);
        tracing::debug!(
            conn,
            resumable = inner.sessions.len(),
            "resumable session ended"
        );
    }

    /// The connection holding session `id` of `account`.
    pub(crate) fn holder(&self, id: &str, account: &str) -> Option<ConnId> {
        self.lock()
            .sessions
            .get(id)
            .filter(|(a, _)| a == account)
            .map(|(_, conn)| *conn)
    }

    /// `conn`'s session lost its transport and waits to be resumed. Returns
    /// the account's oldest hibernated session when this one is over the
    /// limit: the caller ends it.
    pub(crate) fn hibernated(&self, account: &str, conn: ConnId) -> Option<ConnId> {
        let mut inner = self.lock();
        let q = inner.hibernated.entry(account.to_owned()).or_default();
        if !q.contains(&conn) {
            q.push_back(conn);
        }
        if q.len() > MAX_HIBERNATED_PER_ACCOUNT {
            return q.pop_front();
        }
        None
    }

    /// `conn`'s session is being resumed (or ended): no longer hibernating.
    pub(crate) fn awake(&self, account: &str, conn: ConnId) {
        self.lock().awake(account, conn);
    }

    /// Resumable sessions registered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_holder_unregisters_and_only_for_its_account() {
        let r = SmRegistry::default();
        r.register("id1".into(), "a@x".into(), 1);
        assert_eq!(r.holder("id1", "a@x"), Some(1));
        assert_eq!(
            r.holder("id1", "mallory@x"),
            None,
            "another account's session"
        );
        r.unregister("id1", 2);
        assert_eq!(r.len(), 1, "a connection that no longer holds it");
        r.unregister("id1", 1);
        assert_eq!(r.len(), 0);
        assert_eq!(r.holder("id1", "a@x"), None);
    }

    #[test]
    fn the_oldest_hibernated_session_over_the_limit_is_ended() {
        let r = SmRegistry::default();
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
