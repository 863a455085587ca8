//! The server's connections: each one's id and mailbox, and how many are
//! running. Hub partitions know the mailboxes of bound sessions themselves;
//! this registry is for what reaches a connection by its id alone (a
//! resuming connection, the hibernation limit, shutdown).

use crate::mailbox::Mailbox;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use xmpp_core::hub::ConnId;
use xmpp_core::jid::Jid;
use xmpp_core::spare::ReleaseSpare;
use xmpp_core::time::Millis;

/// A bound client session, as the admin API lists it.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    pub(crate) jid: Jid,
    /// `tcp`, `websocket` or `bosh`.
    pub(crate) transport: &'static str,
    pub(crate) address: Option<IpAddr>,
    /// When it bound, ms since the epoch.
    pub(crate) since: Millis,
}

/// Every connection's mailbox by id, the next id and the live count.
#[derive(Debug)]
pub(crate) struct ConnRegistry {
    mailboxes: Mutex<HashMap<ConnId, Arc<Mailbox>>>,
    /// The bound client sessions, for the admin API.
    sessions: Mutex<HashMap<ConnId, SessionInfo>>,
    /// Ids are never reused: a late message for an ended connection must
    /// not reach a new one.
    next: AtomicU64,
    live: AtomicUsize,
}

impl Default for ConnRegistry {
    fn default() -> Self {
        ConnRegistry {
            mailboxes: Mutex::default(),
            sessions: Mutex::default(),
            next: AtomicU64::new(1),
            live: AtomicUsize::new(0),
        }
    }
}

impl ConnRegistry {
    /// Lock the mailboxes, recovering from a poisoned lock (a panicking task
    /// must not take the whole server down; a map insert or remove cannot
    /// be left half done).
    fn lock(&self) -> MutexGuard<'_, HashMap<ConnId, Arc<Mailbox>>> {
        self.mailboxes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection's id.
    pub(crate) fn next_id(&self) -> ConnId {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Register a new connection's mailbox, holding at most `limit` bytes
    /// of stanzas.
    pub(crate) fn open(&self, conn: ConnId, limit: usize) -> Arc<Mailbox> {
        let mailbox = Arc::new(Mailbox::with_limit(limit));
        self.lock().insert(conn, mailbox.clone());
        mailbox
    }

    /// The mailbox of `conn`, while it runs.
    pub(crate) fn mailbox(&self, conn: ConnId) -> Option<Arc<Mailbox>> {
        self.lock().get(&conn).cloned()
    }

    /// Every running connection's mailbox.
    pub(crate) fn mailboxes(&self) -> Vec<Arc<Mailbox>> {
        self.lock().values().cloned().collect()
    }

    /// A connection ended (or became another one): forget its mailbox.
    pub(crate) fn forget(&self, conn: ConnId) {
        let mut mailboxes = self.lock();
        mailboxes.remove(&conn);
        mailboxes.release_spare();
        drop(mailboxes);
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&conn);
        sessions.release_spare();
    }

    /// Connection `conn` is the client session `info` (bound, or resumed).
    pub(crate) fn bind(&self, conn: ConnId, info: SessionInfo) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.insert(conn, info);
    }

    /// The bound client sessions and their connections.
    pub(crate) fn sessions(&self) -> Vec<(ConnId, SessionInfo)> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.iter().map(|(c, i)| (*c, i.clone())).collect()
    }

    /// Connections running now.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Count a connection as running until the returned guard is dropped.
    pub(crate) fn count(self: &Arc<Self>) -> Live {
        self.live.fetch_add(1, Ordering::Relaxed);
        Live(self.clone())
    }

    /// Connections that have ended so far: every accepted connection took
    /// an id, and `live` counts those still running.
    pub(crate) fn closed(&self) -> u64 {
        let accepted = self.next.load(Ordering::Relaxed).saturating_sub(1);
        let live = u64::try_from(self.live()).unwrap_or(u64::MAX);
        accepted.saturating_sub(live)
    }
}

/// One running connection in [`ConnRegistry::live`].
#[derive(Debug)]
pub(crate) struct Live(Arc<ConnRegistry>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_mailboxes_and_counts() {
        let conns = Arc::new(ConnRegistry::default());
        let (a, b) = (conns.next_id(), conns.next_id());
        assert_ne!(a, b);
        let live = (conns.count(), conns.count());
        let mailbox = conns.open(a, 1024);
        assert!(conns.mailbox(a).is_some_and(|m| Arc::ptr_eq(&m, &mailbox)));
        assert!(conns.mailbox(b).is_none());
        assert_eq!(conns.live(), 2);
        assert_eq!(conns.closed(), 0);
        drop(live.0);
        conns.forget(a);
        assert!(conns.mailboxes().is_empty());
        assert_eq!((conns.live(), conns.closed()), (1, 1));
    }
}
