//! Subscriptions: subscribe and unsubscribe (§6.1, §6.2), the
//! requester's list (§5.6), and owners' decisions on pending requests
//! (§8.6, §8.8).

use super::affiliations::may_subscribe;
use super::items::item_element;
use super::op::Op;
use super::subscriptions::{self, State, Subscription};
use super::{bare_of, notification, Answer};
use crate::modules::xep0060::form::Fields;
use crate::modules::xep0060::{Refusal, EVENT, NS};
use crate::ns;
use crate::stanza::StanzaError;
use crate::xml::Element;
use std::collections::BTreeMap;

impl Op<'_, '_> {
    /// §6.1: subscribe `jid` (one of the requester's), at once or
    /// pending the owners' approval (§8.6).
    pub(super) fn subscribe(
        &mut self,
        name: &str,
        jid: &str,
        options: Option<&Fields>,
    ) -> Result<Answer, Refusal> {
        if bare_of(jid) != self.who {
            return Err((StanzaError::BadRequest, Some("invalid-jid")));
        }
        let node = self.node(name)?;
        let pending = may_subscribe(&node.config, self.affiliation(node))?;
        if let Some(existing) = node.subs.get(jid) {
            return Answer::with(Element::new(NS, "pubsub").with_child(existing.element(
                NS,
                Some(name),
                jid,
            )));
        }
        let count = self.svc.users.get(self.who).map_or(0, BTreeMap::len);
        if count >= self.settings.subscriptions_per_jid_max {
            return Err((StanzaError::PolicyViolation, Some("too-many-subscriptions")));
        }
        // Counted only for requests that would wait: subscribing to an
        // open node stays O(1) in the number of subscribers.
        let waiting = || {
            node.subs
                .values()
                .filter(|s| s.state == State::Pending)
                .count()
        };
        if pending && waiting() >= self.settings.pending_max {
            return Err((StanzaError::PolicyViolation, Some("too-many-subscriptions")));
        }
        let mut sub = Subscription {
            subid: self.cx.entropy().hex_id(8),
            state: if pending {
                State::Pending
            } else {
                State::Subscribed
            },
            deliver: true,
        };
        if let Some(o) = options {
            sub.apply(o).map_err(|e| (e, Some("invalid-options")))?;
        }
        self.store_sub(name, jid, Some(sub.clone()));
        let node = self.node(name)?;
        let mut then = Vec::new();
        if pending {
            let form = subscriptions::authorization_form(name, jid, &sub.subid);
            for owner in node.owners() {
                then.push(
                    Element::new(ns::CLIENT, "message")
                        .with_attr("from", self.domain)
                        .with_attr("to", owner)
                        .with_child(form.clone()),
                );
            }
        } else if node.config.send_last_on_sub {
            if let Some(last) = node.items.last() {
                let event = Element::new(EVENT, "items")
                    .with_attr("node", name)
                    .with_child(item_element(EVENT, last));
                then.push(notification(self.domain, jid, node.config.headline, event));
            }
        }
        Ok(Answer {
            payload: Some(Element::new(NS, "pubsub").with_child(sub.element(NS, Some(name), jid))),
            then,
        })
    }

    /// §6.2.
    pub(super) fn unsubscribe(&mut self, name: &str, jid: &str) -> Result<Answer, Refusal> {
        self.own_subscription(name, jid)?;
        self.store_sub(name, jid, None);
        Answer::empty()
    }

    /// §5.6: the requester's subscriptions, of every node or of one.
    pub(super) fn my_subscriptions(&self, node: Option<&str>) -> Result<Answer, Refusal> {
        let list = self
            .svc
            .users
            .get(self.who)
            .into_iter()
            .flatten()
            .filter(|((n, _), _)| node.is_none_or(|want| want == n))
            .fold(Element::new(NS, "subscriptions"), |l, ((n, jid), s)| {
                l.with_child(s.element(NS, Some(n), jid))
            });
        Answer::with(Element::new(NS, "pubsub").with_child(list))
    }

    /// §8.6 and §8.8.2: an owner approves or denies a pending
    /// subscription; the subscriber is told (§8.6 example 182).
    pub(super) fn decide(&mut self, name: &str, jid: &str, allow: bool) -> Result<Answer, Refusal> {
        self.owned(name)?;
        let Some(mut sub) = self.node(name)?.subs.get(jid).cloned() else {
            return Answer::empty();
        };
        if allow {
            sub.state = State::Subscribed;
            self.store_sub(name, jid, Some(sub.clone()));
        } else {
            self.store_sub(name, jid, None);
        }
        let event = Element::new(EVENT, "subscription")
            .with_attr("node", name)
            .with_attr("jid", jid)
            .with_attr("subscription", if allow { "subscribed" } else { "none" });
        let headline = self.node(name)?.config.headline;
        Ok(Answer {
            payload: None,
            then: vec![notification(self.domain, jid, headline, event)],
        })
    }

    /// §8.8.2: approve pending subscriptions or remove subscriptions
    /// (subscribing others is refused: their budget is theirs).
    pub(super) fn set_subscriptions(
        &mut self,
        name: &str,
        changes: Vec<(String, bool)>,
    ) -> Result<Answer, Refusal> {
        self.owned(name)?;
        let mut then = Vec::new();
        for (jid, subscribed) in changes {
            let existing = self.node(name)?.subs.get(&jid).cloned();
            match (existing, subscribed) {
                (Some(s), true) if s.state == State::Pending => {
                    then.extend(self.decide(name, &jid, true)?.then);
                }
                (None, true) => return Err((StanzaError::NotAcceptable, None)),
                (Some(_), false) => self.store_sub(name, &jid, None),
                _ => {}
            }
        }
        Ok(Answer {
            payload: None,
            then,
        })
    }
}
