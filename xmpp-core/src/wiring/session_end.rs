//! What a session that ended leaves behind: nothing it was sent may
//! vanish with it.
//!
//! Once its hub released the session ([`HubOutput::Released`]), the
//! stanzas its stream never had acknowledged (XEP-0198) and those
//! delivered to it that it never took go, oldest first, through
//! [`undeliverable`]: messages back to their account, which gives them to
//! its other resources or to offline storage, and error replies to
//! requests routed to their senders.
//!
//! [`HubOutput::Released`]: crate::hub::HubOutput::Released

use crate::jid::Jid;
use crate::stream::sm::{is_redelivery, undeliverable};
use crate::xml::Element;

/// Where a stanza a session left behind goes.
#[derive(Debug, Clone, PartialEq)]
pub enum LeftBehind {
    /// To the partition owning `account` (a bare JID), for
    /// [`Hub::redeliver`](crate::hub::Hub::redeliver), which keeps its
    /// archive id.
    Redeliver { account: String, stanza: Element },
    /// Routed like any stanza (an error reply to a request).
    Route(Element),
}

/// An undelivered stanza (already made [`undeliverable`]) handed back: a
/// message goes to its account, an error reply is routed.
pub fn hand_back(stanza: Element) -> LeftBehind {
    if !is_redelivery(&stanza) {
        return LeftBehind::Route(stanza);
    }
    let account = stanza
        .attr("to")
        .and_then(|t| Jid::parse(t).ok())
        .map(|j| j.bare_str())
        .unwrap_or_default();
    LeftBehind::Redeliver { account, stanza }
}

/// A stanza delivered to a session that never took it, for the session of
/// an account of `domain`; `None` when nothing becomes of it (presence,
/// results).
pub fn untaken(stanza: Element, domain: &str) -> Option<LeftBehind> {
    undeliverable(stanza, domain).map(hand_back)
}

/// Everything a session that ended leaves behind, oldest first: the
/// stream's `undelivered` stanzas (already made undeliverable by the
/// stream), then what was delivered to it and never taken, for an
/// account of `domain` (a session that never bound has none).
pub fn left_behind(
    undelivered: Vec<Element>,
    never_taken: impl IntoIterator<Item = Element>,
    domain: Option<&str>,
) -> Vec<LeftBehind> {
    let mut out: Vec<LeftBehind> = undelivered.into_iter().map(hand_back).collect();
    if let Some(domain) = domain {
        out.extend(never_taken.into_iter().filter_map(|s| untaken(s, domain)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns;

    fn stanza(name: &str, ty: &str) -> Element {
        Element::new(ns::CLIENT, name)
            .with_attr("to", "alice@localhost/phone")
            .with_attr("from", "bob@localhost/laptop")
            .with_attr("type", ty)
            .with_attr("id", "x")
            .with_child(Element::new(ns::CLIENT, "body").with_text("hi"))
    }

    #[test]
    fn messages_go_back_to_the_account_requests_get_errors_in_order() {
        let undelivered = vec![stanza("message", "chat")];
        let never_taken = vec![
            stanza("presence", "unavailable"),
            stanza("iq", "get"),
            stanza("message", "chat"),
        ];
        let out = left_behind(undelivered, never_taken, Some("localhost"));
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(
            matches!(&out[0], LeftBehind::Redeliver { account, .. } if account == "alice@localhost")
        );
        let LeftBehind::Route(error) = &out[1] else {
            panic!("{out:?}");
        };
        assert_eq!(error.attr("type"), Some("error"));
        assert_eq!(error.attr("to"), Some("bob@localhost/laptop"));
        assert!(matches!(&out[2], LeftBehind::Redeliver { .. }));
        // Without an account, only the stream's own undelivered stanzas.
        let out = left_behind(Vec::new(), vec![stanza("message", "chat")], None);
        assert!(out.is_empty());
    }
}
