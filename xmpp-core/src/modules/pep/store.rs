//! How PEP is stored: one account document per node (`pep/<node>`: its
//! configuration and items) and an index (`pep`: every node with its
//! access model and stored size), so that nodes are read only when asked
//! for and disco#items and the budgets need only the index.
//!
//! A node's affiliations and subscriptions (XEP-0060 §4.1, §6.1) live in
//! its document; the index only says whether it has affiliations, so that
//! decisions that may depend on them read the node first.

use super::access::{AccessModel, Affiliation};
use super::config::NodeConfig;
use crate::xml::{Element, Limits};
use std::collections::{BTreeMap, BTreeSet};

/// The namespace of the stored documents.
const NS: &str = "urn:vireo:pep:0";
/// Storage key of the index.
pub const INDEX_KEY: &str = "pep";

/// Storage key of `node`.
pub fn node_key(node: &str) -> String {
    format!("pep/{node}")
}

/// A node: its configuration, items, affiliations and subscriptions.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its configuration.
    pub config: NodeConfig,
    /// (id, payload), oldest first. Those of a node that does not persist
    /// items live only here, while the account stays loaded.
    pub items: Vec<(String, Element)>,
    /// Bare JID → `member` or `outcast` (never `none`).
    pub affiliations: BTreeMap<String, Affiliation>,
    /// JIDs (bare or full) subscribed to the node (§6.1): notified
    /// whatever their caps say, as long as the access model admits them.
    pub subscribers: BTreeSet<String>,
}

impl Node {
    /// A new, empty node.
    pub fn new(config: NodeConfig) -> Self {
        Node {
            config,
            items: Vec::new(),
            affiliations: BTreeMap::new(),
            subscribers: BTreeSet::new(),
        }
    }

    /// The affiliation of `bare`.
    pub fn affiliation(&self, bare: &str) -> Affiliation {
        self.affiliations
            .get(bare)
            .copied()
            .unwrap_or(Affiliation::None)
    }

    /// Add or replace item `id` as the newest, dropping the oldest beyond
    /// `max_items`.
    pub fn publish(&mut self, id: String, payload: Element) {
        self.items.retain(|(i, _)| *i != id);
        self.items.push((id, payload));
        self.trim();
    }

    /// Drop the oldest items beyond `max_items`.
    pub fn trim(&mut self) {
        let max = self.config.max_items.limit();
        if self.items.len() > max {
            self.items.drain(..self.items.len() - max);
        }
    }

    /// The stored document (items only when the node persists them).
    pub fn document(&self) -> String {
        self.render(self.config.persist_items)
    }

    /// Bytes the node takes, stored or in memory: what the budgets count
    /// (items that are not stored still take memory while loaded).
    pub fn footprint(&self) -> usize {
        self.render(true).len()
    }

    fn render(&self, items: bool) -> String {
        let mut e = Element::new(NS, "node").with_child(self.config.to_element(NS));
        for (jid, a) in &self.affiliations {
            e = e.with_child(
                Element::new(NS, "affiliation")
                    .with_attr("jid", jid.clone())
                    .with_attr("affiliation", a.name()),
            );
        }
        for jid in &self.subscribers {
            e = e.with_child(Element::new(NS, "subscription").with_attr("jid", jid.clone()));
        }
        if items {
            for (id, payload) in &self.items {
                e = e.with_child(super::protocol::item(NS, id, payload));
            }
        }
        e.to_xml()
    }

    /// A stored node; `None` when unreadable.
    pub fn parse(doc: &str) -> Option<Self> {
        let limits = Limits {
            max_stanza_bytes: super::NODE_BYTES_MAX.saturating_mul(2),
            ..Limits::stored()
        };
        let e = Element::parse_with_limits(doc.as_bytes(), &limits).ok()?;
        let config = NodeConfig::from_element(e.child(NS, "config")?, NS)?;
        let items = e
            .elements()
            .filter(|i| i.is(NS, "item"))
            .filter_map(|i| Some((i.attr("id")?.to_owned(), i.first_element()?.clone())))
            .collect();
        let affiliations = e
            .elements()
            .filter(|a| a.is(NS, "affiliation"))
            .filter_map(|a| {
                let affiliation = Affiliation::parse(a.attr("affiliation")?)?;
                (affiliation != Affiliation::None).then_some(())?;
                Some((a.attr("jid")?.to_owned(), affiliation))
            })
            .collect();
        let subscribers = e
            .elements()
            .filter(|s| s.is(NS, "subscription"))
            .filter_map(|s| s.attr("jid").map(str::to_owned))
            .collect();
        Some(Node {
            config,
            items,
            affiliations,
            subscribers,
        })
    }
}

/// What the index says about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its access model.
    pub access: AccessModel,
    /// Its allowed roster groups.
    pub groups: Vec<String>,
    /// Bytes it takes ([`Node::footprint`]), stored or in memory.
    pub bytes: usize,
    /// It has affiliations: who may read it is known only once it is read.
    pub affiliated: bool,
}

impl Entry {
    /// The entry for `node`.
    pub fn of(node: &Node) -> Self {
        Entry {
            access: node.config.access_model,
            groups: node.config.roster_groups.clone(),
            bytes: node.footprint(),
            affiliated: !node.affiliations.is_empty(),
        }
    }
}

/// The account's nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index(pub BTreeMap<String, Entry>);

impl Index {
    /// Bytes stored in all nodes.
    pub fn bytes(&self) -> usize {
        // Saturating: the sizes come from a stored document.
        self.0
            .values()
            .fold(0usize, |sum, e| sum.saturating_add(e.bytes))
    }

    /// The stored document; `None` when there is no node left.
    pub fn document(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let mut e = Element::new(NS, "index");
        for (name, entry) in &self.0 {
            let mut n = Element::new(NS, "node")
                .with_attr("name", name.clone())
                .with_attr("access", entry.access.name())
                .with_attr("bytes", entry.bytes.to_string());
            if entry.affiliated {
                n.set_attr("affiliated", "1");
            }
            for g in &entry.groups {
                n = n.with_child(Element::new(NS, "group").with_text(g.clone()));
            }
            e = e.with_child(n);
        }
        Some(e.to_xml())
    }

    /// A stored index; unreadable entries are skipped.
    pub fn parse(doc: &str) -> Self {
        let Ok(e) = Element::parse_with_limits(doc.as_bytes(), &Limits::stored()) else {
            tracing::warn!("unreadable PEP index");
            return Index::default();
        };
        Index(
            e.elements()
                .filter(|n| n.is(NS, "node"))
                .filter_map(|n| {
                    let entry = Entry {
                        access: AccessModel::parse(n.attr("access")?)?,
                        groups: n
                            .elements()
                            .filter(|g| g.is(NS, "group"))
                            .map(Element::text)
                            .collect(),
                        bytes: n.attr("bytes")?.parse().ok()?,
                        affiliated: n.attr("affiliated") == Some("1"),
                    };
                    Some((n.attr("name")?.to_owned(), entry))
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip() {
        let mut node = Node::new(NodeConfig::default());
        let payload = Element::parse(b"<list xmlns='urn:x'><d id='1'/></list>").expect("XML");
        node.publish("a".into(), payload.clone());
        node.publish("b".into(), payload);
        assert_eq!(node.items.len(), 1, "max_items 1 keeps the newest");
        node.affiliations.insert("b@x".into(), Affiliation::Member);
        node.affiliations.insert("c@x".into(), Affiliation::Outcast);
        node.subscribers.insert("b@x/r".into());
        let doc = node.document();
        assert_eq!(Node::parse(&doc), Some(node.clone()));
        let mut index = Index::default();
        index.0.insert("n".into(), Entry::of(&node));
        let stored = index.document().expect("a node");
        assert_eq!(Index::parse(&stored), index);
        assert!(index.0.get("n").is_some_and(|e| e.affiliated));
        assert_eq!(Index::default().document(), None);
    }
}
