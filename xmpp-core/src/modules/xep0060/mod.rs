//! The XEP-0060 wire layer shared by both publish-subscribe services: PEP
//! (XEP-0163, a service on every account) and the service at
//! `pubsub.<domain>`. Namespaces, refusals and their pubsub#errors
//! conditions, items and notifications are built here once; the
//! `jabber:x:data` forms are in [`form`] and the request pieces both
//! parsers read alike in [`parse`]. What differs between the services
//! (access models, affiliations, who may publish) stays in each module.

pub mod form;
pub mod parse;
pub mod request;

use crate::stanza::{error_reply, StanzaError};
use crate::xml::{Element, Node};

/// `http://jabber.org/protocol/pubsub`.
pub const NS: &str = "http://jabber.org/protocol/pubsub";
/// The owner's namespace.
pub const OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
/// Notifications.
pub const EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// Application-specific error conditions.
pub const ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";

/// Longest node name or item id, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// A refusal: the stanza error and its pubsub#errors condition.
pub type Refusal = (StanzaError, Option<&'static str>);

/// The error answering `iq`, from `from` (the service's address), with an
/// optional pubsub#errors condition (XEP-0060 §7.1.3 and following).
pub fn error(iq: &Element, from: &str, domain: &str, refusal: Refusal) -> Element {
    let (condition, specific) = refusal;
    let mut e = error_reply(iq, condition, domain);
    e.set_attr("from", from);
    if let (Some(specific), Some(err)) = (specific, e.child_mut(crate::ns::CLIENT, "error")) {
        let mut app = Element::new(ERRORS, specific);
        if specific == "unsupported" {
            app.set_attr("feature", "pubsub");
        }
        err.children.push(Node::Element(app));
    }
    e
}

/// `<item id='…'>payload</item>` in namespace `ns`.
pub fn item(ns: &'static str, id: &str, payload: &Element) -> Element {
    Element::new(ns, "item")
        .with_attr("id", id)
        .with_child(payload.clone())
}

/// The headline message notifying `to` of `event` (an `<items/>`,
/// `<delete/>`, … in the event namespace), from the service's address.
pub fn notification(from: &str, to: &str, event: Element) -> Element {
    Element::new(crate::ns::CLIENT, "message")
        .with_attr("from", from)
        .with_attr("to", to)
        .with_attr("type", "headline")
        .with_child(Element::new(EVENT, "event").with_child(event))
}
