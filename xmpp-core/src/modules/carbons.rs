//! XEP-0280 Message Carbons: which messages are copied, and the copy's shape.

use crate::xml::{Element, Node};

/// XEP-0280 namespace.
pub const NS: &str = "urn:xmpp:carbons:2";
/// XEP-0297 forwarding namespace.
const FORWARD: &str = "urn:xmpp:forward:0";
use super::hints::NS as HINTS;

/// `<enable/>` (true) or `<disable/>` (false), if the iq is a carbons toggle.
pub fn toggle(iq: &Element) -> Option<bool> {
    if iq.attr("type") != Some("set") {
        return None;
    }
    let child = iq.first_element()?;
    if child.is(NS, "enable") {
        Some(true)
    } else if child.is(NS, "disable") {
        Some(false)
    } else {
        None
    }
}

/// XEP-0280 §6: chat messages, and normal messages with a body, are copied;
/// unless marked private or no-copy, or already a carbon (no loops).
pub fn eligible(msg: &Element) -> bool {
    if msg.name != "message" {
        return false;
    }
    let kind = msg.attr("type").unwrap_or("normal");
    let interesting = match kind {
        "chat" => true,
        "normal" => msg.child(crate::ns::CLIENT, "body").is_some(),
        _ => false,
    };
    interesting
        && msg.child(NS, "private").is_none()
        && msg.child(HINTS, "no-copy").is_none()
        && msg.child(NS, "received").is_none()
        && msg.child(NS, "sent").is_none()
}

/// Remove `<private/>`: XEP-0280 §7 asks the sending server to strip it.
pub fn strip_private(msg: &mut Element) {
    msg.remove_children(NS, "private");
}

/// The copy for another resource: `<message from=bare to=resource>` wrapping
/// the original in `<sent/>` or `<received/>` and `<forwarded/>`.
pub fn wrap(original: &Element, sent: bool, bare: &str, to: &str) -> Element {
    let forwarded = Element {
        ns: FORWARD.into(),
        name: "forwarded".to_owned(),
        attrs: Vec::new(),
        children: vec![Node::Element(original.clone())],
    };
    let wrapper = Element::new(NS, if sent { "sent" } else { "received" }).with_child(forwarded);
    let mut m = Element::new(crate::ns::CLIENT, "message")
        .with_attr("from", bare)
        .with_attr("to", to)
        .with_child(wrapper);
    if let Some(t) = original.attr("type") {
        m.set_attr("type", t);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(x: &str) -> Element {
        Element::parse(x.as_bytes()).expect("test XML")
    }

    #[test]
    fn eligibility_follows_the_xep() {
        assert!(eligible(&el(
            "<message xmlns='jabber:client' type='chat'/>"
        )));
        assert!(eligible(&el(
            "<message xmlns='jabber:client'><body>x</body></message>"
        )));
        assert!(!eligible(&el("<message xmlns='jabber:client'/>")));
        assert!(!eligible(&el(
            "<message xmlns='jabber:client' type='groupchat'><body>x</body></message>"
        )));
        assert!(!eligible(&el("<message xmlns='jabber:client' type='chat'><private xmlns='urn:xmpp:carbons:2'/></message>")));
        assert!(!eligible(&el("<message xmlns='jabber:client' type='chat'><no-copy xmlns='urn:xmpp:hints'/></message>")));
        assert!(!eligible(&el("<message xmlns='jabber:client' type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>")));
    }
}
