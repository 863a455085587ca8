//! XEP-0191 in the hub: the blocklist commands, and keeping blocked JIDs'
//! stanzas away from the user and the user's away from them.

use super::{ConnId, Hub};
use crate::jid::Jid;
use crate::modules::blocking::{blocked_error, list_reply, matches, push, BlockingRequest};
use crate::stanza::{iq_result, StanzaError};
use crate::storage::{blocklist_document, StorageRequest};
use crate::xml::Element;

impl Hub {
    /// A blocking command from one of the account's sessions.
    pub(super) fn blocking_iq(
        &mut self,
        account: &str,
        conn: ConnId,
        iq: &Element,
        req: BlockingRequest,
    ) {
        match req {
            BlockingRequest::List => {
                let Some(acc) = self.account_mut(account) else {
                    return;
                };
                if let Some(s) = acc.session_by_conn_mut(conn) {
                    s.blocklist_interested = true;
                }
                let reply = list_reply(iq, acc.blocked.iter());
                self.deliver(conn, reply);
            }
            BlockingRequest::Block(items) => self.change_blocklist(account, conn, iq, true, items),
            BlockingRequest::Unblock(items) => {
                self.change_blocklist(account, conn, iq, false, items)
            }
        }
    }

    fn change_blocklist(
        &mut self,
        account: &str,
        conn: ConnId,
        iq: &Element,
        block: bool,
        items: Vec<String>,
    ) {
        let Some(acc) = self.account_mut(account) else {
            return;
        };
        let changed: Vec<String> = if block {
            items
                .into_iter()
                .filter(|j| acc.blocked.insert(j.clone()))
                .collect()
        } else if items.is_empty() {
            std::mem::take(&mut acc.blocked).into_iter().collect()
        } else {
            items
                .into_iter()
                .filter(|j| acc.blocked.remove(j))
                .collect()
        };
        let document = blocklist_document(acc.blocked.iter());
        let pushes: Vec<(ConnId, String)> = acc
            .sessions
            .values()
            .filter(|s| s.blocklist_interested)
            .map(|s| (s.conn, s.jid.to_string()))
            .collect();
        // Presence follows the list: the newly blocked stop seeing us, the
        // unblocked see us again (XEP-0191 §3.3, §3.4).
        let presences: Vec<Element> = acc.available().filter_map(|s| s.presence()).collect();
        let subscribers: Vec<String> = changed
            .iter()
            .filter(|j| acc.roster.get(*j).is_some_and(|i| i.subscription.from))
            .cloned()
            .collect();
        self.commit(StorageRequest::StoreBlob {
            account: account.to_owned(),
            key: crate::storage::BLOCKLIST_KEY.to_owned(),
            value: (!document.is_empty()).then_some(document),
            limit: None,
        });
        let mut r = iq_result(iq);
        r.remove_attr("from");
        self.deliver(conn, r);
        if changed.is_empty() {
            return;
        }
        for (n, (c, jid)) in pushes.into_iter().enumerate() {
            self.deliver(c, push(block, &changed, &jid, &format!("block-push-{n}")));
        }
        for contact in subscribers {
            for p in &presences {
                let mut p = p.clone();
                p.set_attr("to", &contact);
                if block {
                    p = Element::new(crate::ns::CLIENT, "presence")
                        .with_attr("type", "unavailable")
                        .with_attr("from", p.attr("from").unwrap_or(account))
                        .with_attr("to", &contact);
                }
                self.route(p);
            }
        }
    }

    /// Inbound: is the sender blocked by this account? Then the stanza is
    /// dropped, or answered with service-unavailable for iq requests and
    /// messages (XEP-0191 §3.5); `true` means it was handled.
    pub(super) fn blocked_inbound(&mut self, account: &str, stanza: &Element) -> bool {
        let Some(from) = stanza.attr("from").and_then(|f| Jid::parse(f).ok()) else {
            return false;
        };
        let blocked = self.enabled("blocking")
            && self
                .account(account)
                .is_some_and(|a| !a.blocked.is_empty() && matches(&a.blocked, &from));
        if blocked && stanza.name != "presence" {
            self.bounce(stanza, StanzaError::ServiceUnavailable);
        }
        blocked
    }

    /// Outbound: the user addressed a JID they blocked; `true` means the
    /// stanza was answered with not-acceptable + <blocked/> instead.
    pub(super) fn blocked_outbound(
        &mut self,
        account: &str,
        conn: ConnId,
        stanza: &Element,
    ) -> bool {
        let Some(to) = stanza.attr("to").and_then(|t| Jid::parse(t).ok()) else {
            return false;
        };
        let blocked = self.enabled("blocking")
            && self
                .account(account)
                .is_some_and(|a| !a.blocked.is_empty() && matches(&a.blocked, &to));
        if blocked && !crate::stanza::is_error_or_result(stanza) && stanza.name != "presence" {
            let by = to.domain().to_owned();
            // Straight to the session: routed, it would itself be dropped as
            // coming from the blocked JID.
            self.deliver(conn, blocked_error(stanza, &by));
        }
        blocked
    }
}
