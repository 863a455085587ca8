//! Items: publish (§7.1, XEP-0223 preconditions), retrieval (§6.5, with
//! XEP-0059 pages) and retraction (§7.2).

use super::affiliations::{may_publish, may_read, may_retract, Affiliation};
use super::op::Op;
use super::protocol::Page;
use super::store::{self, Item};
use super::{put, Answer};
use crate::modules::mam::rsm;
use crate::modules::pep::config::Fields;
use crate::modules::pep::protocol::{item, Refusal, EVENT, NS};
use crate::stanza::StanzaError;
use crate::xml::Element;

impl Op<'_, '_> {
    /// §7.1: publish, replacing an item of the same id, trimming to
    /// `max_items`.
    pub(super) fn publish(
        &mut self,
        name: &str,
        id: Option<String>,
        payload: Element,
        options: Option<&Fields>,
    ) -> Result<Answer, Refusal> {
        if payload.to_xml().len() > self.settings.item_bytes_max {
            return Err((StanzaError::NotAcceptable, Some("payload-too-big")));
        }
        let cap = self.settings.items_per_node_max;
        let node = self.node(name)?;
        may_publish(&node.config, self.affiliation(node), self.subscribed(node))?;
        if options.is_some_and(|o| !node.config.meets(o, cap)) {
            return Err((StanzaError::Conflict, Some("precondition-not-met")));
        }
        let id = id.unwrap_or_else(|| self.cx.entropy().hex_id(8));
        let who = self.who.to_owned();
        let node_bytes_max = self.settings.node_bytes_max;
        let node = self.node_mut(name)?;
        let item = Item {
            seq: node.next_seq(),
            id: id.clone(),
            publisher: who,
            payload,
        };
        let mut gone: Vec<u64> = node
            .items
            .iter()
            .filter(|i| i.id == id)
            .map(|i| i.seq)
            .collect();
        node.items.retain(|i| i.id != id);
        node.items.push(item.clone());
        let excess = node.items.len().saturating_sub(node.config.max_items);
        gone.extend(node.items.drain(..excess).map(|i| i.seq));
        // The node's byte budget: the oldest go first, the new item stays.
        let mut bytes = node.item_bytes();
        let mut over = 0;
        while bytes > node_bytes_max && over + 1 < node.items.len() {
            bytes = bytes.saturating_sub(node.items[over].payload.approx_size());
            over += 1;
        }
        gone.extend(node.items.drain(..over).map(|i| i.seq));
        let persist = node.config.persist_items;
        for seq in gone {
            put(self.cx, self.domain, store::item_key(name, seq), None);
        }
        if persist {
            put(
                self.cx,
                self.domain,
                store::item_key(name, item.seq),
                Some(item.document()),
            );
        }
        let node = self.node(name)?;
        let event = Element::new(EVENT, "items")
            .with_attr("node", name)
            .with_child(if node.config.deliver_payloads {
                item_element(EVENT, &item)
            } else {
                Element::new(EVENT, "item").with_attr("id", id.clone())
            });
        let then = self.fan_out(node, &event);
        Ok(Answer {
            payload: Some(
                Element::new(NS, "pubsub").with_child(
                    Element::new(NS, "publish")
                        .with_attr("node", name)
                        .with_child(Element::new(NS, "item").with_attr("id", id)),
                ),
            ),
            then,
        })
    }

    /// §6.5: items: all, by id, the newest `max`, or a XEP-0059 page
    /// (in publication order).
    pub(super) fn items(
        &mut self,
        name: &str,
        max: Option<usize>,
        ids: &[String],
        page: Option<Page>,
    ) -> Result<Answer, Refusal> {
        let node = self.node(name)?;
        may_read(&node.config, self.affiliation(node), self.subscribed(node))?;
        let all: Vec<&Item> = node.items.iter().collect();
        let mut set = None;
        let chosen: Vec<&Item> = if !ids.is_empty() {
            let found: Vec<&Item> = all.into_iter().filter(|i| ids.contains(&i.id)).collect();
            if found.is_empty() {
                return Err((StanzaError::ItemNotFound, None));
            }
            found
        } else if let Some(page) = page {
            let position = |id: &str| {
                all.iter()
                    .position(|i| i.id == id)
                    .ok_or((StanzaError::ItemNotFound, None))
            };
            let limit = page.max.unwrap_or(all.len());
            let (from, to) = match (&page.after, &page.before) {
                (Some(after), _) => {
                    let from = position(after)? + 1;
                    (from, from.saturating_add(limit).min(all.len()))
                }
                (None, Some(before)) => {
                    let to = if before.is_empty() {
                        all.len()
                    } else {
                        position(before)?
                    };
                    (to.saturating_sub(limit), to)
                }
                (None, None) => (0, limit.min(all.len())),
            };
            let chosen: Vec<&Item> = all.get(from..to).map(<[_]>::to_vec).unwrap_or_default();
            let mut s = Element::new(rsm::NS, "set");
            if let (Some(first), Some(last)) = (chosen.first(), chosen.last()) {
                s = s
                    .with_child(
                        Element::new(rsm::NS, "first")
                            .with_attr("index", from.to_string())
                            .with_text(first.id.clone()),
                    )
                    .with_child(Element::new(rsm::NS, "last").with_text(last.id.clone()));
            }
            set =
                Some(s.with_child(Element::new(rsm::NS, "count").with_text(all.len().to_string())));
            chosen
        } else {
            let skip = all.len().saturating_sub(max.unwrap_or(usize::MAX));
            all.into_iter().skip(skip).collect()
        };
        let list = chosen
            .into_iter()
            .fold(Element::new(NS, "items").with_attr("node", name), |l, i| {
                l.with_child(item_element(NS, i))
            });
        let mut pubsub = Element::new(NS, "pubsub").with_child(list);
        if let Some(s) = set {
            pubsub = pubsub.with_child(s);
        }
        Answer::with(pubsub)
    }

    /// §7.2: delete items, notifying when asked or configured.
    pub(super) fn retract(
        &mut self,
        name: &str,
        ids: &[String],
        notify: bool,
    ) -> Result<Answer, Refusal> {
        let node = self.node(name)?;
        let aff = self.affiliation(node);
        if aff == Affiliation::Outcast {
            return Err((StanzaError::Forbidden, None));
        }
        for id in ids {
            let item = node
                .items
                .iter()
                .find(|i| i.id == *id)
                .ok_or((StanzaError::ItemNotFound, None))?;
            may_retract(aff, item.publisher == self.who)?;
        }
        let node = self.node_mut(name)?;
        let gone: Vec<u64> = node
            .items
            .iter()
            .filter(|i| ids.contains(&i.id))
            .map(|i| i.seq)
            .collect();
        node.items.retain(|i| !ids.contains(&i.id));
        for seq in gone {
            put(self.cx, self.domain, store::item_key(name, seq), None);
        }
        let node = self.node(name)?;
        let then = if notify || node.config.notify_retract {
            let event = ids.iter().fold(
                Element::new(EVENT, "items").with_attr("node", name),
                |e, id| e.with_child(Element::new(EVENT, "retract").with_attr("id", id.clone())),
            );
            self.fan_out(node, &event)
        } else {
            Vec::new()
        };
        Ok(Answer {
            payload: None,
            then,
        })
    }
}

/// `<item id='…'>payload</item>` in namespace `ns`.
pub(super) fn item_element(ns: &'static str, i: &Item) -> Element {
    item(ns, &i.id, &i.payload)
}
