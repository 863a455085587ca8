//! Node administration: creation (§8.1), deletion with redirect (§8.4),
//! purge (§8.5), configuration (§8.2) and affiliations (§8.9).

use super::affiliations::Affiliation;
use super::config::NodeConfig;
use super::op::Op;
use super::store::{self, Node, NS as STORE};
use super::{bare_of, put, Answer};
use crate::modules::xep0060::form::Fields;
use crate::modules::xep0060::{Refusal, EVENT, NS};
use crate::stanza::StanzaError;
use crate::xml::Element;

impl Op<'_, '_> {
    /// §8.1: a named or instant node, configured as asked.
    pub(super) fn create(
        &mut self,
        name: Option<String>,
        fields: Option<&Fields>,
    ) -> Result<Answer, Refusal> {
        if !self.settings.may_create(self.who) {
            return Err((StanzaError::Forbidden, None));
        }
        let instant = name.is_none();
        let name = name.unwrap_or_else(|| self.cx.entropy().hex_id(8));
        let mut config = NodeConfig::new(
            self.settings.default_access,
            self.settings.default_max_items,
        );
        if let Some(f) = fields {
            config
                .apply(f, self.settings.items_per_node_max)
                .map_err(|e| (e, None))?;
        }
        let who = self.who.to_owned();
        let nodes_max = self.settings.nodes_per_owner_max;
        let index = self.index()?;
        if index.contains_key(&name) {
            return Err((StanzaError::Conflict, None));
        }
        if index.values().filter(|c| **c == who).count() >= nodes_max {
            return Err((StanzaError::PolicyViolation, Some("max-nodes-exceeded")));
        }
        index.insert(name.clone(), who.clone());
        put(
            self.cx,
            self.domain,
            store::config_key(&name),
            Some(config.to_element(STORE).to_xml()),
        );
        put(
            self.cx,
            self.domain,
            store::aff_key(&name, &who),
            Some(store::aff_document(Affiliation::Owner)),
        );
        self.store_index()?;
        self.svc.nodes.insert(name.clone(), Node::new(config, &who));
        if instant {
            return Answer::with(
                Element::new(NS, "pubsub")
                    .with_child(Element::new(NS, "create").with_attr("node", name)),
            );
        }
        Answer::empty()
    }

    /// §8.4: delete the node and everything under it; subscribers are
    /// told (with the redirect, §8.4.2).
    pub(super) fn delete(
        &mut self,
        name: &str,
        redirect: Option<String>,
    ) -> Result<Answer, Refusal> {
        let node = self.owned(name)?;
        let mut event = Element::new(EVENT, "delete").with_attr("node", name);
        if let Some(uri) = redirect {
            event = event.with_child(Element::new(EVENT, "redirect").with_attr("uri", uri));
        }
        let then = if node.config.notify_delete {
            self.fan_out(node, &event)
        } else {
            Vec::new()
        };
        let node = self
            .svc
            .nodes
            .remove(name)
            .ok_or((StanzaError::ItemNotFound, None))?;
        for item in &node.items {
            put(self.cx, self.domain, store::item_key(name, item.seq), None);
        }
        for jid in node.subs.keys() {
            self.store_sub(name, jid, None);
        }
        for jid in node.affs.keys() {
            put(self.cx, self.domain, store::aff_key(name, jid), None);
        }
        put(self.cx, self.domain, store::config_key(name), None);
        self.index()?.remove(name);
        self.store_index()?;
        Ok(Answer {
            payload: None,
            then,
        })
    }

    /// §8.5: delete every item; subscribers are told.
    pub(super) fn purge(&mut self, name: &str) -> Result<Answer, Refusal> {
        self.owned(name)?;
        let node = self.node_mut(name)?;
        let gone: Vec<u64> = node.items.drain(..).map(|i| i.seq).collect();
        for seq in gone {
            put(self.cx, self.domain, store::item_key(name, seq), None);
        }
        let node = self.node(name)?;
        let then = if node.config.notify_delete {
            self.fan_out(node, &Element::new(EVENT, "purge").with_attr("node", name))
        } else {
            Vec::new()
        };
        Ok(Answer {
            payload: None,
            then,
        })
    }

    /// §8.2.5: a new configuration; items beyond `max_items` go.
    pub(super) fn configure(&mut self, name: &str, fields: &Fields) -> Result<Answer, Refusal> {
        self.owned(name)?;
        let cap = self.settings.items_per_node_max;
        let node = self.node_mut(name)?;
        node.config.apply(fields, cap).map_err(|e| (e, None))?;
        let excess = node.items.len().saturating_sub(node.config.max_items);
        let gone: Vec<u64> = node.items.drain(..excess).map(|i| i.seq).collect();
        let doc = node.config.to_element(STORE).to_xml();
        for seq in gone {
            put(self.cx, self.domain, store::item_key(name, seq), None);
        }
        put(self.cx, self.domain, store::config_key(name), Some(doc));
        let node = self.node(name)?;
        let then = if node.config.notify_config {
            let mut event = Element::new(EVENT, "configuration").with_attr("node", name);
            if node.config.deliver_payloads {
                event = event.with_child(node.config.meta_data(&node.owners()));
            }
            self.fan_out(node, &event)
        } else {
            Vec::new()
        };
        Ok(Answer {
            payload: None,
            then,
        })
    }

    /// §8.9.2: change affiliations; an outcast loses its subscriptions,
    /// and the node keeps at least one owner.
    pub(super) fn set_affiliations(
        &mut self,
        name: &str,
        changes: Vec<(String, Affiliation)>,
    ) -> Result<Answer, Refusal> {
        self.owned(name)?;
        let mut affs = self.node(name)?.affs.clone();
        for (jid, aff) in &changes {
            let bare = bare_of(jid).to_owned();
            match aff {
                Affiliation::None => affs.remove(&bare),
                a => affs.insert(bare, *a),
            };
        }
        if !affs.values().any(|a| *a == Affiliation::Owner) {
            return Err((StanzaError::NotAcceptable, None));
        }
        for (jid, aff) in changes {
            let bare = bare_of(&jid).to_owned();
            let doc = (aff != Affiliation::None).then(|| store::aff_document(aff));
            put(self.cx, self.domain, store::aff_key(name, &bare), doc);
            if aff == Affiliation::Outcast {
                let theirs: Vec<String> = self
                    .node(name)?
                    .subs
                    .keys()
                    .filter(|j| bare_of(j) == bare)
                    .cloned()
                    .collect();
                for j in theirs {
                    self.store_sub(name, &j, None);
                }
            }
        }
        self.node_mut(name)?.affs = affs;
        Answer::empty()
    }
}
