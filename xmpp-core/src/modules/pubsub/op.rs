//! One request against one service ([`Op`]): the dispatch to what each
//! request does (in `nodes`, `items`, `subscribing`, `disco`) and what
//! they share: the records in memory, the requester's affiliation and
//! subscriptions, durable writes and notification fan-out.

use super::affiliations::{may_own, Affiliation};
use super::config::NodeConfig;
use super::protocol::Request;
use super::settings::Settings;
use super::store::{self, Index, Node, NS as STORE};
use super::subscriptions::{State, Subscription};
use super::{bare_of, notification, put, Answer, Service};
use crate::modules::xep0060::parse::UNSUPPORTED;
use crate::modules::xep0060::{Refusal, NS, OWNER};
use crate::modules::Context;
use crate::stanza::StanzaError;
use crate::xml::Element;

/// One request against one service.
pub(super) struct Op<'a, 'c> {
    pub(super) cx: &'a mut Context<'c>,
    pub(super) domain: &'a str,
    pub(super) who: &'a str,
    pub(super) settings: &'a Settings,
    pub(super) svc: &'a mut Service,
    /// Subscribers whose lists this request changed.
    pub(super) touched: Vec<String>,
}

impl Op<'_, '_> {
    /// Run `request`: the result's payload and what to send after it.
    pub(super) fn request(&mut self, request: Request) -> Result<Answer, Refusal> {
        match request {
            Request::Create { node, config } => self.create(node, config.as_ref()),
            Request::Default => {
                let config = NodeConfig::new(
                    self.settings.default_access,
                    self.settings.default_max_items,
                );
                Answer::with(
                    Element::new(OWNER, "pubsub")
                        .with_child(Element::new(OWNER, "default").with_child(config.form())),
                )
            }
            Request::MySubscriptions { node } => self.my_subscriptions(node.as_deref()),
            Request::Publish {
                node,
                id,
                payload,
                options,
            } => self.publish(&node, id, payload, options.as_ref()),
            Request::Items {
                node,
                max,
                ids,
                page,
            } => self.items(&node, max, &ids, page),
            Request::Retract { node, ids, notify } => self.retract(&node, &ids, notify),
            Request::Subscribe { node, jid, options } => {
                self.subscribe(&node, &jid, options.as_ref())
            }
            Request::Unsubscribe { node, jid } => self.unsubscribe(&node, &jid),
            Request::OptionsGet { node, jid } => {
                let sub = self.own_subscription(&node, &jid)?;
                Answer::with(
                    Element::new(NS, "pubsub").with_child(
                        Element::new(NS, "options")
                            .with_attr("node", node)
                            .with_attr("jid", jid)
                            .with_attr("subid", sub.subid.clone())
                            .with_child(sub.options_form()),
                    ),
                )
            }
            Request::OptionsSet { node, jid, fields } => {
                let mut sub = self.own_subscription(&node, &jid)?;
                sub.apply(&fields)
                    .map_err(|e| (e, Some("invalid-options")))?;
                self.store_sub(&node, &jid, Some(sub));
                Answer::empty()
            }
            Request::Delete { node, redirect } => self.delete(&node, redirect),
            Request::Purge { node } => self.purge(&node),
            Request::ConfigureGet { node } => {
                let n = self.owned(&node)?;
                Answer::with(
                    Element::new(OWNER, "pubsub").with_child(
                        Element::new(OWNER, "configure")
                            .with_attr("node", node)
                            .with_child(n.config.form()),
                    ),
                )
            }
            Request::ConfigureSet { node, fields } => self.configure(&node, &fields),
            Request::SubscriptionsGet { node } => {
                let n = self.owned(&node)?;
                let list = n.subs.iter().fold(
                    Element::new(OWNER, "subscriptions").with_attr("node", node.clone()),
                    |l, (jid, s)| l.with_child(s.element(OWNER, None, jid)),
                );
                Answer::with(Element::new(OWNER, "pubsub").with_child(list))
            }
            Request::SubscriptionsSet { node, changes } => self.set_subscriptions(&node, changes),
            Request::AffiliationsGet { node } => {
                let n = self.owned(&node)?;
                let list = n.affs.iter().fold(
                    Element::new(OWNER, "affiliations").with_attr("node", node.clone()),
                    |l, (jid, a)| {
                        l.with_child(
                            Element::new(OWNER, "affiliation")
                                .with_attr("jid", jid.clone())
                                .with_attr("affiliation", a.name()),
                        )
                    },
                );
                Answer::with(Element::new(OWNER, "pubsub").with_child(list))
            }
            Request::AffiliationsSet { node, changes } => self.set_affiliations(&node, changes),
            // The service's nodes' disco#info is the disco module's.
            Request::Info { .. } => Err(UNSUPPORTED),
        }
    }

    pub(super) fn index(&mut self) -> Result<&mut Index, Refusal> {
        self.svc
            .index
            .as_mut()
            .ok_or((StanzaError::InternalServerError, None))
    }

    pub(super) fn node(&self, name: &str) -> Result<&Node, Refusal> {
        self.svc
            .nodes
            .get(name)
            .ok_or((StanzaError::ItemNotFound, None))
    }

    pub(super) fn node_mut(&mut self, name: &str) -> Result<&mut Node, Refusal> {
        self.svc
            .nodes
            .get_mut(name)
            .ok_or((StanzaError::ItemNotFound, None))
    }

    /// The requester's affiliation with `node` (administrators own
    /// every node).
    pub(super) fn affiliation(&self, node: &Node) -> Affiliation {
        if self.settings.is_admin(self.who) {
            return Affiliation::Owner;
        }
        node.affs
            .get(self.who)
            .copied()
            .unwrap_or(Affiliation::None)
    }

    /// Whether one of the requester's JIDs is subscribed to `node`.
    pub(super) fn subscribed(&self, node: &Node) -> bool {
        node.subs
            .range(self.who.to_owned()..)
            .take_while(|(j, _)| j.starts_with(self.who))
            .any(|(j, s)| bare_of(j) == self.who && s.state == State::Subscribed)
    }

    /// `node`, which the requester owns.
    pub(super) fn owned(&self, name: &str) -> Result<&Node, Refusal> {
        let node = self.node(name)?;
        may_own(self.affiliation(node))?;
        Ok(node)
    }

    /// The requester's subscription `jid` to `node`.
    pub(super) fn own_subscription(&self, name: &str, jid: &str) -> Result<Subscription, Refusal> {
        let node = self.node(name)?;
        if bare_of(jid) != self.who && may_own(self.affiliation(node)).is_err() {
            return Err((StanzaError::Forbidden, None));
        }
        node.subs
            .get(jid)
            .cloned()
            .ok_or((StanzaError::UnexpectedRequest, Some("not-subscribed")))
    }

    /// Store subscription (`node`, `jid`), or remove it (`None`), under
    /// the node and under its subscriber.
    pub(super) fn store_sub(&mut self, name: &str, jid: &str, sub: Option<Subscription>) {
        let doc = sub.as_ref().map(|s| s.to_element(STORE, jid).to_xml());
        let bare = bare_of(jid).to_owned();
        if let Some(node) = self.svc.nodes.get_mut(name) {
            match &sub {
                Some(s) => node.subs.insert(jid.to_owned(), s.clone()),
                None => node.subs.remove(jid),
            };
        }
        if let Some(user) = self.svc.users.get_mut(&bare) {
            let key = (name.to_owned(), jid.to_owned());
            match &sub {
                Some(s) => user.insert(key, s.clone()),
                None => user.remove(&key),
            };
        }
        put(self.cx, self.domain, store::sub_key(name, jid), doc.clone());
        put(self.cx, self.domain, store::user_key(&bare, name, jid), doc);
        self.touched.push(bare);
    }

    /// The index as it now is, stored.
    pub(super) fn store_index(&mut self) -> Result<(), Refusal> {
        let doc = store::index_document(self.index()?);
        put(self.cx, self.domain, store::INDEX_KEY.to_owned(), Some(doc));
        Ok(())
    }

    /// Notifications of `event` to the subscribers of `node` who want
    /// them (state `subscribed`, `pubsub#deliver` on).
    pub(super) fn fan_out(&self, node: &Node, event: &Element) -> Vec<Element> {
        if !node.config.deliver_notifications {
            return Vec::new();
        }
        node.subs
            .iter()
            .filter(|(_, s)| s.state == State::Subscribed && s.deliver)
            .map(|(jid, _)| notification(self.domain, jid, node.config.headline, event.clone()))
            .collect()
    }
}
