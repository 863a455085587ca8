//! Outbound processing: what the sender's server does with a stanza from one
//! of its sessions before routing it (RFC 6120 §8.1, RFC 6121 §3–4).

use super::{ConnId, Hub};
use crate::jid::Jid;
use crate::modules::subscription::SubscriptionKind;
use crate::modules::{Addressed, Flow};
use crate::stanza::Kind;
use crate::xml::Element;

impl Hub {
    pub(super) fn outbound(&mut self, account: &str, conn: ConnId, mut stanza: Element) {
        let Some(kind) = Kind::of(&stanza) else {
            return;
        };
        let to = stanza.attr("to").and_then(|t| Jid::parse(t).ok());
        if self.module_outbound(account, conn, &stanza) == Flow::Handled {
            return;
        }
        // An iq without `to` may be for this session alone (XEP-0280).
        let request = matches!(stanza.attr("type"), Some("get") | Some("set"));
        if kind == Kind::Iq
            && to.is_none()
            && request
            && self.module_iq(Addressed::Session { account, conn }, &stanza) == Flow::Handled
        {
            return;
        }
        match kind {
            Kind::Message => {
                if to.is_none() {
                    // RFC 6120 §10.3.1: no `to` means the sender's own bare JID.
                    stanza.set_attr("to", account);
                }
                let archived = self.sending(account, conn, &mut stanza);
                self.sent(account, conn, &stanza, archived);
                self.route_outbound(stanza);
            }
            Kind::Presence => self.outbound_presence(account, conn, stanza, to),
            Kind::Iq => match to {
                None => self.account_iq(account, stanza, true),
                Some(t) if t.is_bare() && t.bare_str() == account => {
                    self.account_iq(account, stanza, true)
                }
                Some(t) if t.local().is_none() && self.is_local_domain(t.domain()) => {
                    self.server_stanza(stanza)
                }
                Some(_) => self.route_outbound(stanza),
            },
        }
    }

    /// Route a stanza from one of our users: the driver takes a remote
    /// domain's to its server when federating; otherwise the partition
    /// that gets it answers `remote-server-not-found` ([`Hub::routed`]).
    pub(super) fn route_outbound(&mut self, stanza: Element) {
        self.route(stanza);
    }

    fn outbound_presence(
        &mut self,
        account: &str,
        conn: ConnId,
        mut stanza: Element,
        to: Option<Jid>,
    ) {
        let ptype = stanza.attr("type").map(str::to_owned);
        if let Some(kind) = SubscriptionKind::from_type(ptype.as_deref()) {
            let Some(contact) = to else { return };
            let adds = matches!(
                kind,
                SubscriptionKind::Subscribe | SubscriptionKind::Subscribed
            );
            if adds && self.roster_full(account, &contact.bare_str()) {
                // The contact would be one roster item too many: the user
                // hears why nothing happened.
                let by = self.cfg.domains.first().cloned().unwrap_or_default();
                let reply = crate::stanza::error_reply(
                    &stanza,
                    crate::stanza::StanzaError::ResourceConstraint,
                    &by,
                );
                return self.deliver(conn, reply);
            }
            return self.outbound_subscription(account, kind, contact.bare());
        }
        if ptype.is_none() {
            // Broadcast and directed availability alike (XEP-0398 §4).
            self.presence_sending(account, conn, &mut stanza, to.is_none());
        }
        match (to, ptype.as_deref()) {
            (None, None) | (None, Some("unavailable")) => {
                self.presence_broadcast(account, conn, stanza)
            }
            (None, _) => {} // probes/errors without a target mean nothing
            (Some(target), Some("probe")) => {
                stanza.set_attr("from", account);
                stanza.set_attr("to", target.bare_str());
                self.route_outbound(stanza);
            }
            (Some(target), t) => {
                // Directed presence (RFC 6121 §4.6): remember the target so it
                // hears about our going offline.
                if let Some(s) = self
                    .account_mut(account)
                    .and_then(|a| a.session_by_conn_mut(conn))
                {
                    if t == Some("unavailable") {
                        s.directed.remove(&target.to_string());
                    } else if t.is_none() {
                        s.directed.insert(target.to_string());
                    }
                }
                self.route_outbound(stanza);
            }
        }
    }
}
