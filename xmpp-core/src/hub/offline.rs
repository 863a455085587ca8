//! Offline storage (XEP-0160) under a quota, delivered in pages.
//!
//! A queue with no bound, loaded whole at login and sent in one burst,
//! let anyone lock a user out: the burst overran the client's XEP-0198
//! queue, the session ended with `resource-constraint`, its unacknowledged
//! messages went back offline and the next login did it again. So a
//! queue holds at most `max_offline_messages` (beyond it the sender is
//! told `resource-constraint`, nothing vanishes silently), and a login
//! takes it one page at a time: the hub sends a page, then
//! [`HubOutput::OfflinePageSent`]; the connection answers through
//! [`Hub::offline_page_delivered`] once the client has the page
//! (acknowledged with XEP-0198, written to the socket without), and only
//! then is the next page read.

use super::{ConnId, Hub, HubOutput, Pending};
use crate::stanza::StanzaError;
use crate::storage::{StorageRequest, StorageResult};
use crate::time::Millis;
use crate::xml::Element;

impl Hub {
    /// Store a message in `account`'s offline queue. A new message counts
    /// against the quota and is answered with an error when refused; one
    /// being redelivered (the server accepted it once, and its session
    /// ended before the client had it) is stored regardless.
    pub(super) fn push_offline(&mut self, account: &str, stanza: Element) {
        let redelivered = self.redelivering;
        let xml = stanza.to_xml();
        // Kept serialized while storage answers (an element tree costs
        // several times its text, and a flood keeps many in flight); parsed
        // again only to answer a refusal.
        let pending = (!redelivered).then(|| xml.clone().into_boxed_str());
        let request = StorageRequest::PushOffline {
            account: account.to_owned(),
            stanza: xml,
            limit: (!redelivered).then_some(self.cfg.quotas.max_offline_messages),
        };
        match pending {
            Some(xml) => self.request(request, Pending::OfflineStore(xml)),
            None => self.write(request),
        }
    }

    /// The store's answer to [`Hub::push_offline`] for a new message (as
    /// it was serialized for storage).
    pub(super) fn offline_stored(&mut self, xml: &str, result: StorageResult) {
        let cond = match result {
            StorageResult::Done => return,
            // ejabberd answers a full queue the same way.
            StorageResult::Full => StanzaError::ResourceConstraint,
            // Deleted meanwhile: as for any message to a missing account.
            StorageResult::NotFound => StanzaError::ServiceUnavailable,
            other => {
                tracing::error!(result = ?other, "storing an offline message failed");
                StanzaError::InternalServerError
            }
        };
        match Element::parse(xml.as_bytes()) {
            Ok(stanza) => {
                tracing::debug!(to = ?stanza.attr("to"), ?cond, "offline message refused");
                self.bounce(&stanza, cond);
            }
            Err(e) => tracing::error!(error = %e, "refused offline message unreadable"),
        }
    }

    /// Read the next page of `account`'s offline queue for the session on
    /// `conn`.
    pub(super) fn take_offline_page(&mut self, account: &str, conn: ConnId) {
        self.request(
            StorageRequest::TakeOffline {
                account: account.to_owned(),
                page: self.cfg.quotas.offline_page,
            },
            Pending::Offline(account.to_owned(), conn),
        );
    }

    /// A page of offline messages came back from storage: deliver it to
    /// the session and mark its end, or put it back if the session left.
    pub(super) fn offline_loaded(&mut self, account: &str, conn: ConnId, result: StorageResult) {
        let StorageResult::Offline(stanzas) = result else {
            if let StorageResult::Failed(e) = result {
                tracing::error!(account, error = %e, "loading offline messages failed");
            }
            return;
        };
        let connected = self
            .account(account)
            .is_some_and(|a| a.session_by_conn(conn).is_some());
        let more = connected && !stanzas.is_empty();
        for raw in stanzas {
            match Element::parse(raw.as_bytes()) {
                Ok(stanza) if connected => self.deliver(conn, stanza),
                Ok(_) => {
                    // The session left while storage answered: keep it
                    // stored (accepted once, so beyond the quota too).
                    self.write(StorageRequest::PushOffline {
                        account: account.to_owned(),
                        stanza: raw,
                        limit: None,
                    });
                }
                Err(e) => tracing::error!(account, error = %e, "unreadable offline message"),
            }
        }
        if more {
            // A page that came back empty ends the flush.
            self.out.push_back(HubOutput::OfflinePageSent { conn });
        }
        self.maybe_unload(account);
    }

    /// The client on `conn` has the last page of offline messages it was
    /// sent ([`HubOutput::OfflinePageSent`]): read the next one.
    pub fn offline_page_delivered(&mut self, now: Millis, conn: ConnId) {
        self.tick(now);
        let Some(account) = self.conns.get(&conn).cloned() else {
            return;
        };
        let present = self
            .account(&account)
            .is_some_and(|a| a.session_by_conn(conn).is_some());
        if present && self.cfg.offline_messages {
            self.take_offline_page(&account, conn);
        }
    }
}
