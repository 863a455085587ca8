//! Inbound processing: the recipient server's delivery rules for a stanza
//! addressed to one of its accounts (RFC 6121 §8.5).

use super::Hub;
use crate::jid::Jid;
use crate::modules::subscription::SubscriptionKind;
use crate::modules::{Addressed, Flow};
use crate::ns;
use crate::stanza::{iq_result, StanzaError};
use crate::xml::Element;

impl Hub {
    pub(super) fn inbound(&mut self, account: &str, stanza: Element) {
        let Some(to) = stanza.attr("to").and_then(|t| Jid::parse(t).ok()) else {
            return;
        };
        if self.module_inbound(account, &stanza) == Flow::Handled {
            return;
        }
        match to.resource() {
            None => self.deliver_to_bare(account, stanza),
            Some(resource) => self.deliver_to_full(account, resource, stanza),
        }
    }

    /// §8.5.3: a full JID. A live session gets it; otherwise the rules of
    /// each stanza kind decide between bare-JID treatment, error and silence.
    fn deliver_to_full(&mut self, account: &str, resource: &str, mut stanza: Element) {
        let is_subscription = stanza.name == "presence"
            && (SubscriptionKind::from_type(stanza.attr("type")).is_some()
                || stanza.attr("type") == Some("probe"));
        if is_subscription {
            return self.deliver_to_bare(account, stanza);
        }
        let conn = self
            .account(account)
            .and_then(|a| a.sessions.get(resource))
            .map(|s| s.conn);
        if let Some(conn) = conn {
            self.accepting(account, &mut stanza);
            self.delivering(account, &stanza, &[conn]);
            return self.deliver(conn, stanza);
        }
        match stanza.name.as_str() {
            "message" => match stanza.attr("type") {
                None | Some("normal") | Some("chat") => self.deliver_to_bare(account, stanza),
                Some("groupchat") => self.bounce(&stanza, StanzaError::ServiceUnavailable),
                _ => {}
            },
            "iq" => self.bounce(&stanza, StanzaError::ServiceUnavailable),
            _ => {}
        }
    }

    /// §8.5.2: a bare JID.
    fn deliver_to_bare(&mut self, account: &str, stanza: Element) {
        match stanza.name.as_str() {
            "message" => self.message_to_bare(account, stanza),
            "presence" => match stanza.attr("type") {
                Some("probe") => self.answer_probe(account, &stanza),
                t if SubscriptionKind::from_type(t).is_some() => {
                    self.inbound_subscription(account, stanza)
                }
                _ => {
                    let targets: Vec<(u64, String)> = self
                        .account(account)
                        .map(|a| a.available().map(|s| (s.conn, s.jid.to_string())).collect())
                        .unwrap_or_default();
                    for (conn, _) in targets {
                        self.deliver(conn, stanza.clone());
                    }
                }
            },
            "iq" => self.account_iq(account, stanza, false),
            _ => {}
        }
    }

    fn message_to_bare(&mut self, account: &str, mut stanza: Element) {
        let mtype = stanza.attr("type").unwrap_or("normal").to_owned();
        let targets = self
            .account(account)
            .map(|a| a.message_targets())
            .unwrap_or_default();
        match mtype.as_str() {
            "groupchat" => return self.bounce(&stanza, StanzaError::ServiceUnavailable),
            "error" | "headline" if targets.is_empty() => return,
            _ => {}
        }
        if targets.is_empty() {
            if !crate::modules::hints::offline_storable(&stanza) {
                // A chat state or a no-store message has no later reader.
                return;
            }
            return self.unavailable(account, stanza, false);
        }
        self.accepting(account, &mut stanza);
        self.delivering(account, &stanza, &targets);
        for conn in targets {
            self.deliver(conn, stanza.clone());
        }
    }

    /// `Hub::redeliver`: an unacknowledged message of an ended session goes
    /// to the account's message targets, or to offline storage, without
    /// being archived (or carbon-copied) a second time.
    pub(super) fn redeliver_loaded(&mut self, account: &str, stanza: Element) {
        let targets = self
            .account(account)
            .map(|a| a.message_targets())
            .unwrap_or_default();
        if targets.is_empty() {
            return self.unavailable(account, stanza, true);
        }
        for conn in targets {
            self.deliver(conn, stanza.clone());
        }
    }

    /// No session takes the message: a module keeps it (XEP-0160), or the
    /// sender is told.
    fn unavailable(&mut self, account: &str, mut stanza: Element, redelivered: bool) {
        if !self.module_unavailable(account, &mut stanza, redelivered) {
            self.bounce(&stanza, StanzaError::ServiceUnavailable);
        }
    }

    /// An iq to an account's bare JID is answered by the server on the
    /// account's behalf (RFC 6120 §10.5.3.1). `own` is true when the account's
    /// own session sent it.
    pub(super) fn account_iq(&mut self, account: &str, iq: Element, own: bool) {
        if !matches!(iq.attr("type"), Some("get") | Some("set")) {
            return;
        }
        let Some(child) = iq.first_element() else {
            return self.bounce(&iq, StanzaError::BadRequest);
        };
        let reply_to = |mut r: Element| {
            r.set_attr("from", account);
            r
        };
        if child.is(ns::ROSTER, "query") {
            if !own {
                return self.bounce(&iq, StanzaError::Forbidden);
            }
            return self.roster_iq(account, iq);
        }
        if self.module_iq(Addressed::Account { account, own }, &iq) == Flow::Handled {
            return;
        }
        if child.is(ns::PING, "ping") && iq.attr("type") == Some("get") {
            let r = reply_to(iq_result(&iq));
            return self.route(r);
        }
        if child.is(ns::DISCO_INFO, "query")
            && iq.attr("type") == Some("get")
            && child.attr("node").is_none()
        {
            let mut q = Element::new(ns::DISCO_INFO, "query").with_child(
                Element::new(ns::DISCO_INFO, "identity")
                    .with_attr("category", "account")
                    .with_attr("type", "registered"),
            );
            let identities: Vec<_> = self.account_identities().copied().collect();
            for (category, kind) in identities {
                q = q.with_child(
                    Element::new(ns::DISCO_INFO, "identity")
                        .with_attr("category", category)
                        .with_attr("type", kind),
                );
            }
            // Sorted, like the server's: the order modules are listed in
            // says nothing.
            let mut features: Vec<&str> = self.account_features().collect();
            features.sort_unstable();
            features.dedup();
            for f in features {
                q = q.with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", f));
            }
            let r = reply_to(iq_result(&iq).with_child(q));
            return self.route(r);
        }
        if child.is(ns::DISCO_ITEMS, "query") && iq.attr("type") == Some("get") {
            let r = reply_to(iq_result(&iq).with_child(Element::new(ns::DISCO_ITEMS, "query")));
            return self.route(r);
        }
        self.bounce(&iq, StanzaError::ServiceUnavailable);
    }
}
