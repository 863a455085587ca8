//! Which messages go into a user archive (XEP-0313 §7.1.1, XEP-0334 hints)
//! and the XEP-0359 stanza-id that tells the recipient where it went.

use crate::archive::ArchiveId;
use crate::jid::Jid;
use crate::ns;
use crate::xml::{Element, Node};

/// XEP-0359 namespace.
pub const SID: &str = "urn:xmpp:sid:0";
/// XEP-0334 namespace.
const HINTS: &str = "urn:xmpp:hints";

/// Chat and normal messages with a body, or hinted `<store/>`; never
/// errors, headlines or groupchat, never what is hinted `<no-store/>` or
/// `<no-permanent-store/>` (so chat states, receipts and markers without a
/// body stay out).
pub fn archivable(msg: &Element) -> bool {
    if msg.name != "message" || !matches!(msg.attr("type"), None | Some("normal") | Some("chat")) {
        return false;
    }
    if msg.child(HINTS, "no-store").is_some() || msg.child(HINTS, "no-permanent-store").is_some() {
        return false;
    }
    msg.child(ns::CLIENT, "body").is_some() || msg.child(HINTS, "store").is_some()
}

/// Whether the message carries a stanza-id claiming to come from archive
/// `by` (which [`strip_stanza_ids`] removes): rare, so the common case needs
/// no copy of the message.
pub fn has_stanza_id(msg: &Element, by: &str) -> bool {
    msg.elements().any(|e| claims_archive(e, by))
}

/// A `<stanza-id/>` whose `by` names archive `by` (a normalised bare JID)
/// in any spelling: `Juliet@Capulet.lit` claims `juliet@capulet.lit` too.
fn claims_archive(e: &Element, by: &str) -> bool {
    if !e.is(SID, "stanza-id") {
        return false;
    }
    match e.attr("by") {
        Some(b) if b == by => true,
        Some(b) => Jid::parse(b).is_ok_and(|j| j.as_str() == by),
        None => false,
    }
}

/// XEP-0359 §5: remove stanza-ids claiming to come from archive `by`, so a
/// sender cannot plant ids in the recipient's archive namespace.
pub fn strip_stanza_ids(msg: &mut Element, by: &str) {
    if !has_stanza_id(msg, by) {
        return;
    }
    msg.children.retain(|n| match n {
        Node::Element(e) => !claims_archive(e, by),
        Node::Text(_) => true,
    });
}

/// Add `<stanza-id id by/>`.
pub fn add_stanza_id(msg: &mut Element, id: ArchiveId, by: &str) {
    msg.children.push(Node::Element(
        Element::new(SID, "stanza-id")
            .with_attr("id", id.text())
            .with_attr("by", by),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(x: &str) -> Element {
        Element::parse(x.as_bytes()).expect("test XML")
    }

    #[test]
    fn archives_conversation_messages_only() {
        for (xml, yes) in [
            ("<message xmlns='jabber:client' type='chat'><body>hi</body></message>", true),
            ("<message xmlns='jabber:client'><body>hi</body></message>", true),
            ("<message xmlns='jabber:client' type='normal'><body/></message>", true),
            ("<message xmlns='jabber:client' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>", false),
            ("<message xmlns='jabber:client' type='chat'><received xmlns='urn:xmpp:receipts' id='x'/><store xmlns='urn:xmpp:hints'/></message>", true),
            ("<message xmlns='jabber:client' type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>", false),
            ("<message xmlns='jabber:client' type='chat'><body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>", false),
            ("<message xmlns='jabber:client' type='groupchat'><body>x</body></message>", false),
            ("<message xmlns='jabber:client' type='headline'><body>x</body></message>", false),
            ("<message xmlns='jabber:client' type='error'><body>x</body></message>", false),
            ("<presence xmlns='jabber:client'/>", false),
        ] {
            assert_eq!(archivable(&el(xml)), yes, "{xml}");
        }
    }

    #[test]
    fn forged_ids_of_this_archive_are_stripped() {
        let mut m = el("<message xmlns='jabber:client'><body>x</body>\
            <stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='juliet@capulet.lit'/>\
            <stanza-id xmlns='urn:xmpp:sid:0' id='forged2' by='Juliet@Capulet.LIT'/>\
            <stanza-id xmlns='urn:xmpp:sid:0' id='muc' by='room@muc.lit'/></message>");
        assert!(has_stanza_id(&m, "juliet@capulet.lit"));
        strip_stanza_ids(&mut m, "juliet@capulet.lit");
        assert!(!has_stanza_id(&m, "juliet@capulet.lit"));
        add_stanza_id(&mut m, ArchiveId::MIN, "juliet@capulet.lit");
        let ids: Vec<(Option<&str>, Option<&str>)> = m
            .elements()
            .filter(|e| e.is(SID, "stanza-id"))
            .map(|e| (e.attr("id"), e.attr("by")))
            .collect();
        assert_eq!(
            ids,
            vec![
                (Some("muc"), Some("room@muc.lit")),
                (
                    Some("00000000000000000000000000"),
                    Some("juliet@capulet.lit")
                )
            ]
        );
    }
}
