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
use crate::jid::Jid;
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
