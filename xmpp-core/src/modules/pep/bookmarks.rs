//! XEP-0411 and XEP-0402 §5.3: legacy bookmarks (XEP-0048, one
//! `<storage xmlns='storage:bookmarks'/>` in XEP-0049 private storage)
//! and PEP native bookmarks (XEP-0402, one item per room in the
//! `urn:xmpp:bookmarks:1` node) kept in step both ways, so that old and
//! new clients of one account see the same rooms. A legacy write
//! publishes and retracts items (notified as any publish); a publish,
//! retract, purge or delete on the node rewrites the legacy document,
//! keeping what it held besides rooms (`<url/>`s). Each direction changes
//! only the other side, so they do not loop.

use super::access::AccessModel;
use super::config::{MaxItems, NodeConfig, SendLast};
use super::notify::{notify, Audience};
use super::protocol::{self, item};
use super::store::Node;
use super::{fits, store, Load, Parked, PepState, NODES_MAX};
use crate::jid::Jid;
use crate::modules::Context;
use crate::storage::{StorageRequest, StorageResult};
use crate::xml::Element;

/// XEP-0402's node and payload namespace.
pub const NODE: &str = "urn:xmpp:bookmarks:1";
/// XEP-0048's namespace, stored with XEP-0049.
pub const LEGACY: &str = "storage:bookmarks";

/// The node's configuration when a legacy write creates it (XEP-0402
/// §4: private, every item kept, never sent on presence).
pub fn node_config() -> NodeConfig {
    NodeConfig {
        access_model: AccessModel::Whitelist,
        roster_groups: Vec::new(),
        persist_items: true,
        max_items: MaxItems::Max,
        send_last: SendLast::Never,
    }
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("true" | "1"))
}

/// The rooms of a legacy `<storage/>`: (room JID, XEP-0402 payload), one
/// per room (the last of duplicates), at most `max`; rooms whose JID
/// does not parse are skipped.
pub fn from_legacy(storage: &Element, max: usize) -> Vec<(String, Element)> {
    let mut rooms: Vec<(String, Element)> = Vec::new();
    for c in storage.elements().filter(|c| c.is(LEGACY, "conference")) {
        let Some(jid) = c
            .attr("jid")
            .and_then(|j| Jid::parse(j).ok())
            .map(|j| j.bare_str().to_string())
        else {
            continue;
        };
        let mut conference = Element::new(NODE, "conference");
        if let Some(name) = c.attr("name") {
            conference.set_attr("name", name);
        }
        if truthy(c.attr("autojoin")) {
            conference.set_attr("autojoin", "true");
        }
        for child in ["nick", "password"] {
            if let Some(text) = c.child_text(LEGACY, child) {
                conference = conference.with_child(Element::new(NODE, child).with_text(text));
            }
        }
        rooms.retain(|(j, _)| *j != jid);
        rooms.push((jid, conference));
    }
    let skip = rooms.len().saturating_sub(max);
    rooms.drain(..skip);
    rooms
}

/// The legacy `<storage/>` for the node's `items`, with what `previous`
/// held besides rooms.
pub fn to_legacy(items: &[(String, Element)], previous: Option<&Element>) -> Element {
    let mut storage = Element::new(LEGACY, "storage");
    for (jid, c) in items.iter().filter(|(_, c)| c.is(NODE, "conference")) {
        let mut conference = Element::new(LEGACY, "conference").with_attr("jid", jid.clone());
        if let Some(name) = c.attr("name") {
            conference.set_attr("name", name);
        }
        conference.set_attr(
            "autojoin",
            if truthy(c.attr("autojoin")) {
                "true"
            } else {
                "false"
            },
        );
        for child in ["nick", "password"] {
            if let Some(text) = c.child_text(NODE, child) {
                conference = conference.with_child(Element::new(LEGACY, child).with_text(text));
            }
        }
        storage = storage.with_child(conference);
    }
    for other in previous
        .into_iter()
        .flat_map(Element::elements)
        .filter(|e| !e.is(LEGACY, "conference"))
    {
        storage = storage.with_child(other.clone());
    }
    storage
}

impl super::Pep {
    /// XEP-0411: legacy bookmarks stored, their rooms published to the
    /// XEP-0402 node (created private if need be) and the rooms no longer
    /// there retracted, in one write; the owner's resources (and whoever
    /// the node admits) are notified as for any publish.
    pub(super) fn legacy_stored(&mut self, cx: &mut Context<'_>, account: &str, xml: String) {
        let Ok(storage) = Element::parse(xml.as_bytes()) else {
            return;
        };
        if !storage.is(LEGACY, "storage") {
            return;
        }
        let Some(state) = cx.account_state::<PepState>(account) else {
            return;
        };
        let Some(index) = &state.index else {
            return self.wait(cx, account, Load::Index, Parked::Legacy { xml });
        };
        let name = NODE;
        if index.0.contains_key(name) && !state.nodes.contains_key(name) {
            return self.wait(
                cx,
                account,
                Load::Node(name.to_owned()),
                Parked::Legacy { xml },
            );
        }
        if !index.0.contains_key(name) && index.0.len() >= NODES_MAX {
            return tracing::info!(account, "legacy bookmarks not converted: too many nodes");
        }
        // XEP-0411 §6: only the owner may read what private storage held.
        let shared = state.nodes.get(name).is_some_and(|n| {
            n.config.access_model != AccessModel::Whitelist || !n.affiliations.is_empty()
        });
        if shared {
            return tracing::info!(
                account,
                "legacy bookmarks not converted: the node is shared"
            );
        }
        let mut node = state
            .nodes
            .get(name)
            .cloned()
            .unwrap_or_else(|| Node::new(node_config()));
        let rooms = from_legacy(&storage, node.config.max_items.limit());
        let gone: Vec<String> = node
            .items
            .iter()
            .filter(|(id, _)| !rooms.iter().any(|(r, _)| r == id))
            .map(|(id, _)| id.clone())
            .collect();
        node.items.retain(|(id, _)| !gone.contains(id));
        let mut events = Vec::new();
        for (room, mut payload) in rooms {
            // XEP-0402 §3.3: the extensions other clients stored stay.
            let extensions = node
                .items
                .iter()
                .find(|(id, _)| *id == room)
                .and_then(|(_, p)| p.child(NODE, "extensions"))
                .cloned();
            if let Some(e) = extensions {
                payload = payload.with_child(e);
            }
            if node
                .items
                .iter()
                .any(|(id, p)| *id == room && *p == payload)
            {
                continue;
            }
            events.push(
                Element::new(protocol::EVENT, "items")
                    .with_attr("node", name)
                    .with_child(item(protocol::EVENT, &room, &payload)),
            );
            node.publish(room, payload);
        }
        if !gone.is_empty() {
            events.push(gone.iter().fold(
                Element::new(protocol::EVENT, "items").with_attr("node", name),
                |e, id| {
                    e.with_child(
                        Element::new(protocol::EVENT, "retract").with_attr("id", id.clone()),
                    )
                },
            ));
        }
        if events.is_empty() {
            return;
        }
        if let Err(refusal) = fits(index, name, &node) {
            return tracing::info!(account, ?refusal, "legacy bookmarks not converted");
        }
        let audience = Audience::of(&node);
        state.nodes.insert(name.to_owned(), node);
        if let Err(refusal) = store(cx, account, name) {
            return tracing::error!(account, ?refusal, "legacy bookmarks not converted");
        }
        for event in events {
            notify(cx, &self.interests, account, &audience, &event);
        }
    }

    /// XEP-0411 the other way: the legacy document is read, to be
    /// rewritten from the node ([`rewrite_legacy`]).
    pub(super) fn read_legacy(&mut self, cx: &mut Context<'_>, account: &str) {
        let id = cx.request(StorageRequest::LoadBlob {
            account: account.to_owned(),
            key: legacy_key(),
        });
        cx.hold_account(account);
        self.legacy.insert(id, account.to_owned());
    }
}

/// Storage key of the legacy bookmarks (XEP-0049's for the element).
pub(super) fn legacy_key() -> String {
    crate::modules::stored_xml::StoredXmlRequest::PrivateGet {
        ns: LEGACY.to_owned(),
        name: "storage".to_owned(),
    }
    .key()
}

/// The legacy bookmarks read: stored again with the node's rooms (and
/// what they held besides rooms).
pub(super) fn rewrite_legacy(cx: &mut Context<'_>, account: &str, result: StorageResult) {
    let previous = match result {
        StorageResult::Blob(doc) => doc.and_then(|d| Element::parse(d.as_bytes()).ok()),
        other => {
            return tracing::error!(account, ?other, "reading legacy bookmarks failed");
        }
    };
    let items = cx
        .account_state_ref::<PepState>(account)
        .and_then(|s| s.nodes.get(NODE))
        .map(|n| n.items.clone())
        .unwrap_or_default();
    let storage = to_legacy(&items, previous.as_ref());
    if previous.as_ref() == Some(&storage) {
        return;
    }
    let max = cx.quotas().max_private_documents;
    cx.write(StorageRequest::StoreBlob {
        account: account.to_owned(),
        key: legacy_key(),
        value: Some(storage.to_xml()),
        limit: Some(crate::storage::KeyLimit {
            prefix: crate::modules::stored_xml::PRIVATE_KEY_PREFIX.to_owned(),
            max,
        }),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        Element::parse(xml.as_bytes()).expect("XML")
    }

    #[test]
    fn legacy_and_native_bookmarks_convert_both_ways() {
        let legacy = parse(
            "<storage xmlns='storage:bookmarks'>\
               <conference jid='Room@Conf.example' name='Room' autojoin='1'><nick>al</nick></conference>\
               <conference jid='not a jid@@' name='bad'/>\
               <conference jid='room@conf.example' name='Again' autojoin='false'/>\
               <url name='Site' url='https://example.org'/>\
             </storage>",
        );
        let rooms = from_legacy(&legacy, 64);
        assert_eq!(rooms.len(), 1, "{rooms:?}");
        assert_eq!(rooms[0].0, "room@conf.example");
        assert_eq!(rooms[0].1.attr("name"), Some("Again"));
        assert_eq!(rooms[0].1.attr("autojoin"), None);
        let back = to_legacy(&rooms, Some(&legacy));
        let c = back.child(LEGACY, "conference").expect("a room");
        assert_eq!(c.attr("jid"), Some("room@conf.example"));
        assert_eq!(c.attr("autojoin"), Some("false"));
        assert!(back.child(LEGACY, "url").is_some(), "the url is kept");
        let nick = parse(
            "<storage xmlns='storage:bookmarks'><conference jid='a@c' autojoin='true'><nick>n</nick><password>p</password></conference></storage>",
        );
        let rooms = from_legacy(&nick, 64);
        assert_eq!(rooms[0].1.attr("autojoin"), Some("true"));
        assert_eq!(
            rooms[0].1.child_text(NODE, "password").as_deref(),
            Some("p")
        );
        assert_eq!(
            to_legacy(&rooms, None)
                .child(LEGACY, "conference")
                .and_then(|c| c.child_text(LEGACY, "nick"))
                .as_deref(),
            Some("n")
        );
    }

    /// Many rooms: the newest `max` are kept.
    #[test]
    fn legacy_rooms_have_a_budget() {
        let many: String = (0..1000)
            .map(|i| format!("<conference jid='r{i}@c'/>"))
            .collect();
        let storage = parse(&format!(
            "<storage xmlns='storage:bookmarks'>{many}</storage>"
        ));
        let rooms = from_legacy(&storage, 64);
        assert_eq!(rooms.len(), 64);
        assert_eq!(rooms[63].0, "r999@c");
    }
}
