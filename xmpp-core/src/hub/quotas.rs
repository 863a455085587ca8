//! Per-account limits: what one account may make the server hold, so that
//! neither its owner nor a stranger writing to it can grow the server
//! without bound or lock the owner out.

use crate::storage::OfflinePage;

/// The limits every account of a hub lives under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Most messages waiting in an account's offline storage (XEP-0160);
    /// beyond it the sender gets `resource-constraint`, as from ejabberd's
    /// `max_user_offline_messages`.
    pub max_offline_messages: u64,
    /// How much offline storage one page delivers before the hub waits for
    /// the client to have it (acknowledged with XEP-0198, written to the
    /// socket without).
    pub offline_page: OfflinePage,
    /// Most sessions (resources) bound to one account at once, hibernated
    /// ones included; one more is refused with `resource-constraint`, as by
    /// Prosody's `max_resources`.
    pub max_sessions: usize,
    /// Most roster items (contacts, and strangers' pending subscription
    /// requests) one account keeps.
    pub max_roster_items: usize,
    /// Most XEP-0049 private XML documents (distinct elements) one account
    /// keeps; storing one more is refused with `resource-constraint`.
    /// Replacing a stored one always works.
    pub max_private_documents: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_offline_messages: 1000,
            offline_page: OfflinePage {
                max: 100,
                max_bytes: 1024 * 1024,
            },
            max_sessions: 10,
            max_roster_items: 2000,
            max_private_documents: 100,
        }
    }
}
