//! The registry of resumable sessions (XEP-0198) shared by all
//! connections: the core's rules (`xmpp_core::wiring::SmRegistry`, which
//! `sim::World` drives too) behind a lock.

use std::sync::{Mutex, MutexGuard};
use xmpp_core::hub::ConnId;
use xmpp_core::wiring::SmRegistry as Rules;

/// The registry of resumable sessions, shared by all connections.
#[derive(Debug, Default)]
pub(crate) struct SmRegistry {
    inner: Mutex<Rules>,
}

impl SmRegistry {
    fn lock(&self) -> MutexGuard<'_, Rules> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection enabled resumable stream management.
    pub(crate) fn register(&self, id: String, account: String, conn: ConnId) {
        let mut inner = self.lock();
        inner.register(id, account, conn);
        tracing::debug!(
            conn,
            resumable = inner.len(),
            "resumable session registered"
        );
    }

    /// The session ended for good (not handed over). The count logged is
    /// how a leak of ended sessions would show.
    pub(crate) fn unregister(&self, id: &str, conn: ConnId) {
        let mut inner = self.lock();
        if inner.unregister(id, conn) {
            tracing::debug!(conn, resumable = inner.len(), "resumable session ended");
        }
    }

    /// The connection holding session `id` of `account`.
    pub(crate) fn holder(&self, id: &str, account: &str) -> Option<ConnId> {
        self.lock().holder(id, account)
    }

    /// `conn`'s session lost its transport and waits to be resumed. Returns
    /// the account's oldest hibernated session when this one is over the
    /// limit: the caller ends it.
    pub(crate) fn hibernated(&self, account: &str, conn: ConnId) -> Option<ConnId> {
        self.lock().hibernated(account, conn)
    }

    /// `conn`'s session is being resumed (or ended): no longer hibernating.
    pub(crate) fn awake(&self, account: &str, conn: ConnId) {
        self.lock().awake(account, conn);
    }

    /// Sessions waiting, without a transport, to be resumed.
    pub(crate) fn hibernated_count(&self) -> usize {
        self.lock().hibernated_count()
    }
}
