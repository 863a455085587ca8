//! XEP-0012 §3 in the hub: when an account goes offline its logout time
//! and status are stored; a `jabber:iq:last` query to its bare JID is
//! answered on its behalf — forbidden to those not allowed to see its
//! presence, 0 seconds while a resource is connected, else the time since
//! that logout with its status.

use super::{Hub, Pending};
use crate::jid::Jid;
use crate::modules::last::{logout_document, parse_logout, query, LAST_KEY};
use crate::stanza::{iq_result, StanzaError};
use crate::storage::{StorageRequest, StorageResult};
use crate::xml::Element;

impl Hub {
    /// A resource of `account` went offline, leaving `status`. Stored even
    /// when other resources remain: while they are connected queries get 0,
    /// and the last one to leave overwrites it.
    pub(super) fn record_logout(&mut self, account: &str, status: &str) {
        if !self.enabled("last") {
            return;
        }
        self.write(StorageRequest::StoreBlob {
            account: account.to_owned(),
            key: LAST_KEY.to_owned(),
            value: Some(logout_document(self.now, status)),
            limit: None,
        });
    }

    /// A last-activity query to the account's bare JID (`own`: from the
    /// account itself).
    pub(super) fn last_activity_iq(&mut self, account: &str, iq: Element, own: bool) {
        let Some(acc) = self.account(account) else {
            return;
        };
        let requester = iq
            .attr("from")
            .and_then(|f| Jid::parse(f).ok())
            .map(|j| j.bare_str());
        // §3: only for those who may see the account's presence.
        let allowed = own
            || requester.as_deref() == Some(account)
            || requester
                .as_deref()
                .and_then(|r| acc.roster.get(r))
                .is_some_and(|i| i.subscription.from);
        if !allowed {
            return self.bounce(&iq, StanzaError::Forbidden);
        }
        if !acc.sessions.is_empty() {
            let mut r = iq_result(&iq).with_child(query(0, ""));
            r.set_attr("from", account);
            return self.route(r);
        }
        self.request(
            StorageRequest::LoadBlob {
                account: account.to_owned(),
                key: LAST_KEY.to_owned(),
            },
            Pending::Last(Box::new((account.to_owned(), iq))),
        );
    }

    /// The stored logout arrived.
    pub(super) fn last_activity_loaded(
        &mut self,
        account: &str,
        iq: &Element,
        result: StorageResult,
    ) {
        let logout = match &result {
            StorageResult::Blob(Some(doc)) => parse_logout(doc),
            StorageResult::Blob(None) => None,
            other => {
                tracing::error!(account, ?other, "reading the last logout failed");
                return self.bounce(iq, StanzaError::InternalServerError);
            }
        };
        // Never logged out since this was recorded: nothing to tell.
        let Some((at, status)) = logout else {
            return self.bounce(iq, StanzaError::ItemNotFound);
        };
        let seconds = self.now.saturating_sub(at) / 1000;
        let mut r = iq_result(iq).with_child(query(seconds, status));
        r.set_attr("from", account);
        self.route(r);
    }
}
