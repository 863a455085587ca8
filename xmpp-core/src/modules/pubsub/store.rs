//! How the service is stored, under its domain as owner (documents of a
//! bare domain belong to the service, see
//! [`crate::storage::StorageRequest::StoreBlob`]): an index of node names
//! (`nodes`), and one small document per node configuration, item,
//! subscription and affiliation under the node's prefix (`n/<node>/…`),
//! so that a subscription costs one write however many there are, and a
//! node is read in pages ([`crate::storage::StorageRequest::ListBlobs`])
//! only when a request names it. Each subscription is also listed under
//! its subscriber (`u/<bare>/<node>/<jid>`), which the per-JID budget and
//! the entity's own subscription list read.

use super::affiliations::Affiliation;
use super::config::NodeConfig;
use super::subscriptions::Subscription;
use crate::xml::{Element, Limits};
use std::collections::BTreeMap;

/// The namespace of the stored documents.
pub const NS: &str = "urn:vireo:pubsub:0";
/// Storage key of the index.
pub const INDEX_KEY: &str = "nodes";

/// A name made safe to embed in a key: '/' separates key parts.
pub fn escape(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

fn unescape(key: &str) -> String {
    key.replace("%2F", "/").replace("%25", "%")
}

/// Prefix of every document of `node`.
pub fn node_prefix(node: &str) -> String {
    format!("n/{}/", escape(node))
}

/// Key of `node`'s configuration.
pub fn config_key(node: &str) -> String {
    format!("{}config", node_prefix(node))
}

/// Key of an item by its sequence number (publication order).
pub fn item_key(node: &str, seq: u64) -> String {
    format!("{}i/{seq:016x}", node_prefix(node))
}

/// Key of `jid`'s subscription to `node`.
pub fn sub_key(node: &str, jid: &str) -> String {
    format!("{}s/{}", node_prefix(node), escape(jid))
}

/// Key of `jid`'s affiliation with `node`.
pub fn aff_key(node: &str, jid: &str) -> String {
    format!("{}a/{}", node_prefix(node), escape(jid))
}

/// Prefix of the subscriptions of the bare JID `bare`.
pub fn user_prefix(bare: &str) -> String {
    format!("u/{}/", escape(bare))
}

/// Key of subscription (`node`, `jid`) under its subscriber.
pub fn user_key(bare: &str, node: &str, jid: &str) -> String {
    format!("{}{}/{}", user_prefix(bare), escape(node), escape(jid))
}

/// An item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Publication order.
    pub seq: u64,
    /// Its id.
    pub id: String,
    /// The bare JID that published it.
    pub publisher: String,
    /// The payload.
    pub payload: Element,
}

impl Item {
    /// As stored.
    pub fn document(&self) -> String {
        Element::new(NS, "item")
            .with_attr("id", self.id.clone())
            .with_attr("publisher", self.publisher.clone())
            .with_child(self.payload.clone())
            .to_xml()
    }
}

/// A node in memory: everything stored under its prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its configuration.
    pub config: NodeConfig,
    /// Items, oldest first.
    pub items: Vec<Item>,
    /// Subscriptions by JID.
    pub subs: BTreeMap<String, Subscription>,
    /// Affiliations other than `none`, by bare JID.
    pub affs: BTreeMap<String, Affiliation>,
}

impl Node {
    /// A new node owned by `owner`.
    pub fn new(config: NodeConfig, owner: &str) -> Self {
        Node {
            config,
            items: Vec::new(),
            subs: BTreeMap::new(),
            affs: BTreeMap::from([(owner.to_owned(), Affiliation::Owner)]),
        }
    }

    /// The next item's sequence number.
    pub fn next_seq(&self) -> u64 {
        self.items.last().map_or(0, |i| i.seq.saturating_add(1))
    }

    /// Bytes of the items' payloads, approximately.
    pub fn item_bytes(&self) -> usize {
        self.items.iter().map(|i| i.payload.approx_size()).sum()
    }

    /// Approximately what the node holds in memory.
    pub fn weight(&self) -> usize {
        self.item_bytes() + self.subs.len() * 128 + self.affs.len() * 64
    }

    /// The owners' bare JIDs.
    pub fn owners(&self) -> Vec<String> {
        self.affs
            .iter()
            .filter(|(_, a)| **a == Affiliation::Owner)
            .map(|(j, _)| j.clone())
            .collect()
    }

    /// Read a node from the documents under its prefix (`prefix` cut off
    /// the keys); `None` without a readable configuration.
    pub fn from_documents(docs: &[(String, String)], cap: usize, max_bytes: usize) -> Option<Self> {
        let limits = Limits {
            max_stanza_bytes: max_bytes.saturating_mul(2).max(64 * 1024),
            ..Limits::stored()
        };
        let parse = |doc: &str| Element::parse_with_limits(doc.as_bytes(), &limits).ok();
        let mut config = None;
        let mut items = Vec::new();
        let mut subs = BTreeMap::new();
        let mut affs = BTreeMap::new();
        for (key, doc) in docs {
            if key == "config" {
                config = parse(doc).and_then(|e| NodeConfig::from_element(&e, cap));
            } else if let Some(seq) = key.strip_prefix("i/") {
                let Some(e) = parse(doc) else { continue };
                let (Ok(seq), Some(id), Some(payload)) = (
                    u64::from_str_radix(seq, 16),
                    e.attr("id"),
                    e.first_element(),
                ) else {
                    continue;
                };
                items.push(Item {
                    seq,
                    id: id.to_owned(),
                    publisher: e.attr("publisher").unwrap_or_default().to_owned(),
                    payload: payload.clone(),
                });
            } else if key.starts_with("s/") {
                if let Some((jid, s)) = parse(doc).as_ref().and_then(Subscription::from_element) {
                    subs.insert(jid, s);
                }
            } else if let Some(jid) = key.strip_prefix("a/") {
                if let Some(a) = parse(doc)
                    .as_ref()
                    .and_then(|e| e.attr("affiliation").and_then(Affiliation::parse))
                {
                    affs.insert(unescape(jid), a);
                }
            }
        }
        // Keys list items in publication order already.
        Some(Node {
            config: config?,
            items,
            subs,
            affs,
        })
    }
}

/// An affiliation as stored.
pub fn aff_document(aff: Affiliation) -> String {
    Element::new(NS, "aff")
        .with_attr("affiliation", aff.name())
        .to_xml()
}

/// The index: node name → the bare JID that created it.
pub type Index = BTreeMap<String, String>;

/// The index as stored.
pub fn index_document(index: &Index) -> String {
    index
        .iter()
        .fold(Element::new(NS, "nodes"), |e, (name, creator)| {
            e.with_child(
                Element::new(NS, "node")
                    .with_attr("name", name.clone())
                    .with_attr("creator", creator.clone()),
            )
        })
        .to_xml()
}

/// A stored index; unreadable entries are skipped.
pub fn parse_index(doc: &str) -> Index {
    let Ok(e) = Element::parse_with_limits(doc.as_bytes(), &Limits::stored()) else {
        tracing::warn!("unreadable pubsub index");
        return Index::new();
    };
    e.elements()
        .filter(|n| n.is(NS, "node"))
        .filter_map(|n| {
            Some((
                n.attr("name")?.to_owned(),
                n.attr("creator").unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// A subscription listed under its subscriber: (node, jid) from the key
/// (the prefix cut off).
pub fn parse_user_key(rest: &str) -> Option<(String, String)> {
    let (node, jid) = rest.split_once('/')?;
    Some((unescape(node), unescape(jid)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::pubsub::config::Access;
    use crate::modules::pubsub::subscriptions::State;

    #[test]
    fn keys_keep_nodes_apart_and_documents_round_trip() {
        assert_ne!(node_prefix("a/b"), format!("{}b/", node_prefix("a")));
        assert!(!sub_key("a/i", "x").starts_with(&format!("{}i/", node_prefix("a"))));
        let rest = user_key("bob@localhost", "a/b", "bob@localhost/r")
            .strip_prefix(&user_prefix("bob@localhost"))
            .map(str::to_owned)
            .expect("prefix");
        assert_eq!(
            parse_user_key(&rest),
            Some(("a/b".into(), "bob@localhost/r".into()))
        );
        let config = NodeConfig::new(Access::Open, 10);
        let mut node = Node::new(config.clone(), "alice@localhost");
        let item = Item {
            seq: 0,
            id: "x".into(),
            publisher: "alice@localhost".into(),
            payload: Element::parse(b"<e xmlns='urn:x'/>").expect("XML"),
        };
        let sub = Subscription {
            subid: "s".into(),
            state: State::Subscribed,
            deliver: true,
        };
        node.items.push(item.clone());
        node.subs.insert("bob@localhost".into(), sub.clone());
        let prefix = node_prefix("n");
        let docs: Vec<(String, String)> = [
            (config_key("n"), config.to_element(NS).to_xml()),
            (item_key("n", 0), item.document()),
            (
                sub_key("n", "bob@localhost"),
                sub.to_element(NS, "bob@localhost").to_xml(),
            ),
            (
                aff_key("n", "alice@localhost"),
                aff_document(Affiliation::Owner),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k[prefix.len()..].to_owned(), v))
        .collect();
        assert_eq!(Node::from_documents(&docs, 10, 1024), Some(node));
        let index = Index::from([("n".into(), "alice@localhost".into())]);
        assert_eq!(parse_index(&index_document(&index)), index);
    }
}
