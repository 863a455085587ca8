//! Presence (RFC 6121 §4) and subscriptions (§3): broadcast, probes,
//! offline redelivery of subscription requests, and the state tables applied
//! to rosters.

use super::{ConnId, Hub, Session};
use crate::jid::Jid;
use crate::modules::subscription::{inbound, outbound, SubscriptionKind};
use crate::ns;
use crate::storage::{RosterItem, StorageRequest, Subscription};
use crate::xml::Element;
use std::collections::HashSet;

fn presence(ptype: Option<&str>, from: &str, to: &str) -> Element {
    let mut p = Element::new(ns::CLIENT, "presence")
        .with_attr("from", from)
        .with_attr("to", to);
    if let Some(t) = ptype {
        p.set_attr("type", t);
    }
    p
}

impl Hub {
    /// Broadcast presence from a session (no `to`): initial, update or
    /// unavailable (RFC 6121 §4.2–4.5).
    pub(super) fn presence_broadcast(&mut self, account: &str, conn: ConnId, stanza: Element) {
        let unavailable = stanza.attr("type") == Some("unavailable");
        let priority = stanza
            .child_text(ns::CLIENT, "priority")
            .and_then(|p| p.trim().parse::<i8>().ok())
            .unwrap_or(0);
        let Some(acc) = self.account_mut(account) else {
            return;
        };
        let Some(session) = acc.session_by_conn_mut(conn) else {
            return;
        };
        let initial = !session.available && !unavailable;
        let logout = session.available && unavailable;
        let directed = if unavailable {
            std::mem::take(&mut session.directed)
        } else {
            HashSet::new()
        };
        session.available = !unavailable;
        session.priority = priority;
        session.last_presence = (!unavailable).then(|| stanza.to_xml().into_boxed_str());
        let own_jid = session.jid.clone();

        self.broadcast_presence(account, conn, &stanza, &directed);
        if initial {
            self.initial_presence(account, conn, &own_jid);
        }
        if logout {
            let status = stanza.child_text(ns::CLIENT, "status").unwrap_or_default();
            self.announce(crate::modules::Event::Offline {
                account,
                status: &status,
            });
        }
    }

    /// Send `stanza` to subscribers (`from`), to `extra` directed targets and
    /// to the account's available resources, including the sender itself.
    pub(super) fn broadcast_presence(
        &mut self,
        account: &str,
        conn: ConnId,
        stanza: &Element,
        extra: &HashSet<String>,
    ) {
        let Some(acc) = self.account(account) else {
            return;
        };
        let subscribers: Vec<String> = acc
            .roster
            .values()
            .filter(|i| i.subscription.from)
            .map(|i| i.jid.clone())
            .collect();
        let own: Vec<(ConnId, String)> = acc
            .sessions
            .values()
            .filter(|s| s.available || s.conn == conn)
            .map(|s| (s.conn, s.jid.to_string()))
            .collect();
        for to in subscribers.iter().chain(extra.iter()) {
            // Modules may withhold it (XEP-0191 §3.3: blocked contacts).
            if self.module_broadcasting(account, to, stanza) == crate::modules::Flow::Handled {
                continue;
            }
            let mut p = stanza.clone();
            p.set_attr("to", to);
            self.route(p);
        }
        for (c, jid) in own {
            let mut p = stanza.clone();
            p.set_attr("to", jid);
            self.deliver(c, p);
        }
    }

    /// First available presence of a session: probe contacts, show it the
    /// other resources, re-deliver pending subscription requests; modules
    /// hear it (XEP-0160 flushes offline messages).
    fn initial_presence(&mut self, account: &str, conn: ConnId, own_jid: &Jid) {
        let Some(acc) = self.account(account) else {
            return;
        };
        let probes: Vec<String> = acc
            .roster
            .values()
            .filter(|i| i.subscription.to)
            .map(|i| i.jid.clone())
            .collect();
        let requests: Vec<String> = acc
            .roster
            .values()
            .filter(|i| i.subscription.pending_in)
            .map(|i| i.jid.clone())
            .collect();
        let others: Vec<Element> = acc
            .available()
            .filter(|s| s.conn != conn)
            .filter_map(Session::presence)
            .collect();
        let me = own_jid.to_string();
        for contact in probes {
            self.route(presence(Some("probe"), account, &contact));
        }
        for mut p in others {
            p.set_attr("to", &me);
            self.deliver(conn, p);
        }
        for contact in requests {
            self.deliver(conn, presence(Some("subscribe"), &contact, account));
        }
        self.announce(crate::modules::Event::Online { account, conn });
        self.announce(crate::modules::Event::Seen { account });
    }

    /// A probe reached the account (RFC 6121 §4.3.2): answer with the current
    /// presence of each available resource if the prober is subscribed.
    pub(super) fn answer_probe(&mut self, account: &str, probe: &Element) {
        let Some(from) = probe.attr("from").and_then(|f| Jid::parse(f).ok()) else {
            return;
        };
        let Some(acc) = self.account(account) else {
            return;
        };
        let allowed = from.bare_str() == account
            || acc
                .roster
                .get(&from.bare_str())
                .is_some_and(|i| i.subscription.from);
        if !allowed {
            return;
        }
        let replies: Vec<Element> = acc.available().filter_map(Session::presence).collect();
        let to = from.to_string();
        for mut p in replies {
            p.set_attr("to", &to);
            self.route(p);
        }
    }

    /// The user sent subscribe/subscribed/unsubscribe/unsubscribed to `contact`.
    pub(super) fn outbound_subscription(
        &mut self,
        account: &str,
        kind: SubscriptionKind,
        contact: Jid,
    ) {
        let contact_s = contact.bare_str();
        if contact_s == account {
            return;
        }
        let current = self
            .account(account)
            .and_then(|a| a.roster.get(&contact_s))
            .map(|i| i.subscription)
            .unwrap_or_default();
        let t = outbound(current, kind);
        // Subscribing puts the contact on the roster (RFC 6121 §3.1.2), and
        // so does approving a request (§3.1.5).
        let add = kind == SubscriptionKind::Subscribe
            || (kind == SubscriptionKind::Subscribed && t.forward);
        self.update_subscription(account, &contact_s, t.state, add);
        if t.forward {
            self.route_outbound(presence(Some(kind.as_type()), account, &contact_s));
        }
        if !t.forward {
            return;
        }
        let sessions: Vec<Element> = self
            .account(account)
            .map(|a| a.available().filter_map(Session::presence).collect())
            .unwrap_or_default();
        match kind {
            // Approving sends our current presence (RFC 6121 §3.1.5).
            SubscriptionKind::Subscribed => {
                for mut p in sessions {
                    p.set_attr("to", &contact_s);
                    self.route(p);
                }
                self.announce(crate::modules::Event::SubscriptionApproved {
                    account,
                    contact: &contact_s,
                });
            }
            // Cancelling sends unavailable from every resource (§3.2.1).
            SubscriptionKind::Unsubscribed => {
                for p in sessions {
                    let from = p.attr("from").unwrap_or(account).to_owned();
                    self.route(presence(Some("unavailable"), &from, &contact_s));
                }
            }
            _ => {}
        }
    }

    /// A contact's subscription stanza reached the account.
    pub(super) fn inbound_subscription(&mut self, account: &str, stanza: Element) {
        let Some(kind) = SubscriptionKind::from_type(stanza.attr("type")) else {
            return;
        };
        let Some(from) = stanza.attr("from").and_then(|f| Jid::parse(f).ok()) else {
            return;
        };
        let contact = from.bare_str();
        if self.roster_full(account, &contact) {
            // A stranger's request would add a (hidden) item: refused with
            // an answer, not dropped.
            return self.bounce(&stanza, crate::stanza::StanzaError::ResourceConstraint);
        }
        let current = self
            .account(account)
            .and_then(|a| a.roster.get(&contact))
            .map(|i| i.subscription)
            .unwrap_or_default();
        let t = inbound(current, kind);
        self.update_subscription(account, &contact, t.state, false);
        if t.auto_reply_subscribed {
            self.route(presence(Some("subscribed"), account, &contact));
        }
        if t.forward {
            let mut p = stanza;
            p.set_attr("from", &contact);
            let targets: Vec<(ConnId, String)> = self
                .account(account)
                .map(|a| a.available().map(|s| (s.conn, s.jid.to_string())).collect())
                .unwrap_or_default();
            for (conn, jid) in targets {
                let mut copy = p.clone();
                copy.set_attr("to", jid);
                self.deliver(conn, copy);
            }
        }
    }

    /// Store a new subscription state for `contact`, creating a hidden item
    /// when needed and removing one that no longer carries anything; roster
    /// pushes follow when the visible roster changed.
    fn update_subscription(
        &mut self,
        account: &str,
        contact: &str,
        state: Subscription,
        add_to_roster: bool,
    ) {
        let Some(acc) = self.account_mut(account) else {
            return;
        };
        let existing = acc.roster.get(contact).cloned();
        let mut item = existing.clone().unwrap_or_else(|| RosterItem {
            jid: contact.to_owned(),
            name: None,
            subscription: Subscription::default(),
            groups: Vec::new(),
            in_roster: false,
        });
        item.subscription = state;
        item.in_roster |= add_to_roster;
        if existing.as_ref() == Some(&item) {
            return;
        }
        let visible_change = item.in_roster
            && existing
                .as_ref()
                .is_none_or(|e| !e.in_roster || roster_view(e) != roster_view(&item));
        let empty = !item.in_roster && item.subscription == Subscription::default();
        if empty {
            acc.roster.remove(contact);
            acc.roster_version += 1;
            let version = acc.roster_version;
            self.commit(StorageRequest::RemoveRosterItem {
                account: account.to_owned(),
                jid: contact.to_owned(),
                version,
            });
            return;
        }
        acc.roster.insert(contact.to_owned(), item.clone());
        acc.roster_version += 1;
        let version = acc.roster_version;
        self.commit(StorageRequest::PutRosterItem {
            account: account.to_owned(),
            item: item.clone(),
            version,
        });
        if visible_change {
            self.roster_push(account, &item, false);
        }
    }
}

/// The parts of an item a client sees in the roster (`pending_in` is not shown).
fn roster_view(i: &RosterItem) -> (bool, bool, bool, &Option<String>, &Vec<String>) {
    (
        i.subscription.to,
        i.subscription.from,
        i.subscription.pending_out,
        &i.name,
        &i.groups,
    )
}
