//! XEP-0191 Blocking Command: requests, JID matching and the elements the
//! hub sends back.

use crate::jid::Jid;
use crate::stanza::{error_reply, iq_result, StanzaError};
use crate::xml::Element;

/// XEP-0191 namespace.
pub const NS: &str = "urn:xmpp:blocking";
/// Application error namespace for stanzas to a blocked JID.
const ERRORS: &str = "urn:xmpp:blocking:errors";

/// A blocking command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockingRequest {
    /// `<blocklist/>`: the current list.
    List,
    /// `<block>` with at least one item.
    Block(Vec<String>),
    /// `<unblock>`: these items, or everything when empty.
    Unblock(Vec<String>),
}

impl BlockingRequest {
    /// Parse an iq's payload; `None` when it is not a blocking command.
    pub fn parse(iq: &Element) -> Option<Result<Self, StanzaError>> {
        let child = iq.first_element()?;
        if child.ns != NS {
            return None;
        }
        let set = iq.attr("type") == Some("set");
        let items = || -> Result<Vec<String>, StanzaError> {
            child
                .elements()
                .filter(|e| e.is(NS, "item"))
                .map(|e| {
                    e.attr("jid")
                        .and_then(|j| Jid::parse(j).ok())
                        .map(|j| j.to_string())
                        .ok_or(StanzaError::JidMalformed)
                })
                .collect()
        };
        Some(match (child.name.as_str(), set) {
            ("blocklist", false) => Ok(BlockingRequest::List),
            ("block", true) => match items() {
                Ok(v) if v.is_empty() => Err(StanzaError::BadRequest),
                Ok(v) => Ok(BlockingRequest::Block(v)),
                Err(e) => Err(e),
            },
            ("unblock", true) => items().map(BlockingRequest::Unblock),
            _ => Err(StanzaError::BadRequest),
        })
    }
}

/// XEP-0016 §2.1 matching, as XEP-0191 uses it: an item blocks its full
/// JID, a bare JID blocks all its resources, a domain blocks everyone there.
pub fn matches<'a>(blocked: impl IntoIterator<Item = &'a String>, who: &Jid) -> bool {
    let full = who.to_string();
    let bare = who.bare_str();
    let domain = who.domain();
    blocked
        .into_iter()
        .any(|b| *b == full || *b == bare || b == domain)
}

/// The result to `<blocklist/>`.
pub fn list_reply<'a>(iq: &Element, blocked: impl IntoIterator<Item = &'a String>) -> Element {
    let mut list = Element::new(NS, "blocklist");
    for j in blocked {
        list = list.with_child(Element::new(NS, "item").with_attr("jid", j.clone()));
    }
    let mut r = iq_result(iq);
    r.remove_attr("from");
    r.with_child(list)
}

/// The push announcing a change to every resource that asked for the list.
pub fn push(block: bool, items: &[String], to: &str, id: &str) -> Element {
    let mut cmd = Element::new(NS, if block { "block" } else { "unblock" });
    for j in items {
        cmd = cmd.with_child(Element::new(NS, "item").with_attr("jid", j.clone()));
    }
    Element::new(crate::ns::CLIENT, "iq")
        .with_attr("type", "set")
        .with_attr("id", id)
        .with_attr("to", to)
        .with_child(cmd)
}

/// The error for a stanza the user sent to a JID they blocked (§3.5).
pub fn blocked_error(stanza: &Element, by: &str) -> Element {
    let mut e = error_reply(stanza, StanzaError::NotAcceptable, by);
    if let Some(err) = e.child_mut(crate::ns::CLIENT, "error") {
        err.set_attr("type", "cancel");
        err.children
            .push(crate::xml::Node::Element(Element::new(ERRORS, "blocked")));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_xep_0016() {
        let list = vec![
            "bad@x".to_owned(),
            "spam.example".to_owned(),
            "c@y/phone".to_owned(),
        ];
        let j = |s: &str| Jid::parse(s).expect("JID");
        assert!(matches(&list, &j("bad@x/any")));
        assert!(matches(&list, &j("whoever@spam.example/r")));
        assert!(matches(&list, &j("c@y/phone")));
        assert!(!matches(&list, &j("c@y/laptop")));
        assert!(!matches(&list, &j("good@x")));
    }
}
