//! Roster get/set and pushes (RFC 6121 §2, XEP-0237 versioning).

use super::{ConnId, Hub};
use crate::modules::roster::{item_element, parse_set, RosterSet};
use crate::modules::subscription::SubscriptionKind;
use crate::ns;
use crate::stanza::{iq_result, StanzaError};
use crate::storage::{RosterItem, StorageRequest, Subscription};
use crate::xml::Element;

impl Hub {
    /// Whether `contact` would be one roster item too many for `account`
    /// (`Quotas::max_roster_items`): rosters are loaded whole with the
    /// account and walked for every presence broadcast.
    pub(super) fn roster_full(&self, account: &str, contact: &str) -> bool {
        self.account(account).is_some_and(|a| {
            !a.roster.contains_key(contact) && a.roster.len() >= self.cfg.quotas.max_roster_items
        })
    }

    pub(super) fn roster_iq(&mut self, account: &str, iq: Element) {
        let conn = iq
            .attr("from")
            .and_then(|f| crate::jid::Jid::parse(f).ok())
            .and_then(|f| {
                self.account(account)
                    .and_then(|a| f.resource().and_then(|r| a.sessions.get(r)))
                    .map(|s| s.conn)
            });
        match iq.attr("type") {
            Some("get") => self.roster_get(account, conn, &iq),
            Some("set") => self.roster_set(account, &iq),
            _ => {}
        }
    }

    fn roster_get(&mut self, account: &str, conn: Option<ConnId>, iq: &Element) {
        let Some(acc) = self.account_mut(account) else {
            return;
        };
        if let Some(s) = conn.and_then(|c| acc.session_by_conn_mut(c)) {
            s.interested = true;
        }
        let version = acc.roster_version.to_string();
        let client_ver = iq
            .first_element()
            .and_then(|q| q.attr("ver"))
            .map(str::to_owned);
        let mut reply = iq_result(iq);
        reply.remove_attr("from");
        if client_ver.as_deref() == Some(version.as_str()) {
            // XEP-0237 §4: unchanged roster → empty result, pushes follow.
            return self.deliver_or_route(conn, reply);
        }
        let mut query = Element::new(ns::ROSTER, "query");
        if client_ver.is_some() {
            query.set_attr("ver", version);
        }
        for item in acc.roster.values().filter(|i| i.in_roster) {
            query = query.with_child(item_element(item));
        }
        self.deliver_or_route(conn, reply.with_child(query));
    }

    fn deliver_or_route(&mut self, conn: Option<ConnId>, stanza: Element) {
        match conn {
            Some(c) => self.deliver(c, stanza),
            None => self.route(stanza),
        }
    }

    fn roster_set(&mut self, account: &str, iq: &Element) {
        let Some(query) = iq.first_element() else {
            return self.bounce(iq, StanzaError::BadRequest);
        };
        let set = match parse_set(query) {
            Ok(s) => s,
            Err(e) => return self.bounce(iq, e),
        };
        match set {
            RosterSet::Remove(jid) => {
                let contact = jid.bare_str();
                let Some(acc) = self.account_mut(account) else {
                    return;
                };
                let Some(item) = acc.roster.remove(&contact) else {
                    return self.bounce(iq, StanzaError::ItemNotFound);
                };
                acc.roster_version += 1;
                let version = acc.roster_version;
                self.commit(StorageRequest::RemoveRosterItem {
                    account: account.to_owned(),
                    jid: contact.clone(),
                    version,
                });
                self.reply_result(iq);
                // RFC 6121 §2.5.2: removing cancels both directions.
                let s = item.subscription;
                if s.to || s.pending_out {
                    self.send_subscription(account, &contact, SubscriptionKind::Unsubscribe);
                }
                if s.from || s.pending_in {
                    self.send_subscription(account, &contact, SubscriptionKind::Unsubscribed);
                }
                self.roster_push(account, &item, true);
            }
            RosterSet::Update { jid, name, groups } => {
                let contact = jid.bare_str();
                if contact == account {
                    return self.bounce(iq, StanzaError::NotAllowed);
                }
                if self.roster_full(account, &contact) {
                    return self.bounce(iq, StanzaError::ResourceConstraint);
                }
                let Some(acc) = self.account_mut(account) else {
                    return;
                };
                let mut item = acc.roster.get(&contact).cloned().unwrap_or(RosterItem {
                    jid: contact.clone(),
                    name: None,
                    subscription: Subscription::default(),
                    groups: Vec::new(),
                    in_roster: true,
                });
                item.name = name;
                item.groups = groups;
                item.in_roster = true;
                acc.roster.insert(contact, item.clone());
                acc.roster_version += 1;
                let version = acc.roster_version;
                self.commit(StorageRequest::PutRosterItem {
                    account: account.to_owned(),
                    item: item.clone(),
                    version,
                });
                self.reply_result(iq);
                self.roster_push(account, &item, false);
            }
        }
    }

    fn reply_result(&mut self, iq: &Element) {
        let mut r = iq_result(iq);
        r.remove_attr("from");
        self.route(r);
    }

    fn send_subscription(&mut self, account: &str, contact: &str, kind: SubscriptionKind) {
        let p = Element::new(ns::CLIENT, "presence")
            .with_attr("type", kind.as_type())
            .with_attr("from", account)
            .with_attr("to", contact);
        self.route_outbound(p);
    }

    /// Push an item change to every interested resource (RFC 6121 §2.1.6).
    pub(super) fn roster_push(&mut self, account: &str, item: &RosterItem, removed: bool) {
        let Some(acc) = self.account(account) else {
            return;
        };
        let mut el = item_element(item);
        if removed {
            el.set_attr("subscription", "remove");
            el.remove_attr("ask");
        }
        let version = acc.roster_version;
        let query = Element::new(ns::ROSTER, "query")
            .with_attr("ver", version.to_string())
            .with_child(el);
        let targets: Vec<(ConnId, String)> = acc
            .sessions
            .values()
            .filter(|s| s.interested)
            .map(|s| (s.conn, s.jid.to_string()))
            .collect();
        for (n, (conn, jid)) in targets.into_iter().enumerate() {
            let push = Element::new(ns::CLIENT, "iq")
                .with_attr("type", "set")
                .with_attr("id", format!("push{version}-{n}"))
                .with_attr("to", jid)
                .with_child(query.clone());
            self.deliver(conn, push);
        }
    }
}
