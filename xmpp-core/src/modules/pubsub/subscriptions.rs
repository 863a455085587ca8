//! Subscriptions (XEP-0060 §6.1, §6.3, §8.8): one per node and JID, with
//! its id, its state and its options, stored as its own document.

use crate::modules::xep0060::form::{Fields, DATA};
use crate::stanza::StanzaError;
use crate::xml::Element;

/// The FORM_TYPE of subscription options.
pub const SUBSCRIBE_OPTIONS: &str = "http://jabber.org/protocol/pubsub#subscribe_options";
/// The FORM_TYPE of the approval form sent to owners (§8.6).
pub const SUBSCRIBE_AUTHORIZATION: &str =
    "http://jabber.org/protocol/pubsub#subscribe_authorization";

/// A subscription's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Notified.
    Subscribed,
    /// Waiting for an owner's approval (`authorize`).
    Pending,
}

impl State {
    /// The `subscription` attribute value.
    pub fn name(self) -> &'static str {
        match self {
            State::Subscribed => "subscribed",
            State::Pending => "pending",
        }
    }
}

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Its id (`subid`).
    pub subid: String,
    /// Its state.
    pub state: State,
    /// `pubsub#deliver`: notifications are sent.
    pub deliver: bool,
}

impl Subscription {
    /// The `<subscription/>` element of `jid` on `node`, in namespace `ns`.
    pub fn element(&self, ns: &'static str, node: Option<&str>, jid: &str) -> Element {
        let mut e = Element::new(ns, "subscription");
        if let Some(n) = node {
            e.set_attr("node", n);
        }
        e.with_attr("jid", jid)
            .with_attr("subscription", self.state.name())
            .with_attr("subid", self.subid.clone())
    }

    /// Apply submitted options (§6.3.5): `pubsub#deliver`; the other
    /// standard fields are accepted and ignored, unknown ones refused.
    pub fn apply(&mut self, fields: &Fields) -> Result<(), StanzaError> {
        let mut deliver = self.deliver;
        for (var, values) in fields {
            match (var.as_str(), values.as_slice()) {
                ("pubsub#deliver", [v]) => {
                    deliver = match v.as_str() {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        _ => return Err(StanzaError::NotAcceptable),
                    }
                }
                (
                    "pubsub#digest"
                    | "pubsub#digest_frequency"
                    | "pubsub#expire"
                    | "pubsub#include_body"
                    | "pubsub#show-values"
                    | "pubsub#subscription_type"
                    | "pubsub#subscription_depth",
                    _,
                ) => {}
                _ => return Err(StanzaError::NotAcceptable),
            }
        }
        self.deliver = deliver;
        Ok(())
    }

    /// The options form (§6.3.2).
    pub fn options_form(&self) -> Element {
        Element::new(DATA, "x")
            .with_attr("type", "form")
            .with_child(crate::modules::xep0060::form::field(
                "FORM_TYPE",
                "hidden",
                SUBSCRIBE_OPTIONS,
            ))
            .with_child(crate::modules::xep0060::form::field(
                "pubsub#deliver",
                "boolean",
                if self.deliver { "1" } else { "0" },
            ))
    }

    /// As stored.
    pub fn to_element(&self, ns: &'static str, jid: &str) -> Element {
        Element::new(ns, "sub")
            .with_attr("jid", jid)
            .with_attr("subid", self.subid.clone())
            .with_attr("state", self.state.name())
            .with_attr("deliver", if self.deliver { "1" } else { "0" })
    }

    /// A stored subscription with its JID; `None` when unreadable.
    pub fn from_element(e: &Element) -> Option<(String, Self)> {
        let state = match e.attr("state")? {
            "subscribed" => State::Subscribed,
            "pending" => State::Pending,
            _ => return None,
        };
        Some((
            e.attr("jid")?.to_owned(),
            Subscription {
                subid: e.attr("subid")?.to_owned(),
                state,
                deliver: e.attr("deliver") != Some("0"),
            },
        ))
    }
}

/// §8.6: the form asking an owner to approve `jid`'s subscription.
pub fn authorization_form(node: &str, jid: &str, subid: &str) -> Element {
    use crate::modules::xep0060::form::field;
    Element::new(DATA, "x")
        .with_attr("type", "form")
        .with_child(Element::new(DATA, "title").with_text("PubSub subscriber request"))
        .with_child(Element::new(DATA, "instructions").with_text(
            "To approve this entity's subscription request, click the OK button. \
             To deny the request, click the cancel button.",
        ))
        .with_child(field("FORM_TYPE", "hidden", SUBSCRIBE_AUTHORIZATION))
        .with_child(field("pubsub#subid", "hidden", subid))
        .with_child(field("pubsub#node", "text-single", node))
        .with_child(field("pubsub#subscriber_jid", "jid-single", jid))
        .with_child(field("pubsub#allow", "boolean", "false"))
}

/// An owner's answer to [`authorization_form`]: (node, subscriber,
/// allowed); `None` when the message is not one.
pub fn authorization_answer(message: &Element) -> Option<(String, String, bool)> {
    let x = message.child(DATA, "x")?;
    if x.attr("type") != Some("submit") {
        return None;
    }
    let value = |var: &str| {
        x.elements()
            .find(|f| f.is(DATA, "field") && f.attr("var") == Some(var))
            .and_then(|f| f.child_text(DATA, "value"))
    };
    if value("FORM_TYPE").as_deref() != Some(SUBSCRIBE_AUTHORIZATION) {
        return None;
    }
    let allow = matches!(value("pubsub#allow").as_deref(), Some("1" | "true"));
    Some((
        value("pubsub#node")?,
        value("pubsub#subscriber_jid")?,
        allow,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_the_approval_form() {
        let mut s = Subscription {
            subid: "s1".into(),
            state: State::Pending,
            deliver: true,
        };
        s.apply(&vec![("pubsub#deliver".into(), vec!["0".into()])])
            .expect("valid");
        assert!(!s.deliver);
        assert_eq!(
            s.apply(&vec![("pubsub#nonsense".into(), vec!["0".into()])]),
            Err(StanzaError::NotAcceptable)
        );
        let stored = s.to_element("urn:test", "bob@localhost");
        assert_eq!(
            Subscription::from_element(&stored),
            Some(("bob@localhost".into(), s))
        );
        let mut form = authorization_form("news", "bob@localhost", "s1");
        form.set_attr("type", "submit");
        for f in form.elements_mut() {
            if f.attr("var") == Some("pubsub#allow") {
                f.children.clear();
                f.children.push(crate::xml::Node::Element(
                    Element::new(DATA, "value").with_text("true"),
                ));
            }
        }
        let message = Element::new(crate::ns::CLIENT, "message").with_child(form);
        assert_eq!(
            authorization_answer(&message),
            Some(("news".into(), "bob@localhost".into(), true))
        );
    }
}
