//! The XEP-0060 requests PEP answers, parsed from iqs with the shared
//! wire layer ([`crate::modules::xep0060`]): named nodes only, no
//! subscription options, no paging.

use super::access::Affiliation;
use crate::jid::Jid;
use crate::modules::xep0060::form::{Fields, DATA};
use crate::modules::xep0060::parse::{self, name, UNSUPPORTED};
use crate::stanza::StanzaError;
use crate::xml::Element;

pub use crate::modules::xep0060::{
    error, item, notification, Refusal, ERRORS, EVENT, MAX_NAME_BYTES, NS, OWNER,
};

/// A PEP request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// §7.1: publish `payload` (as item `id`, or a generated one), with
    /// XEP-0223 publish-options.
    Publish {
        node: String,
        id: Option<String>,
        payload: Element,
        options: Option<Fields>,
    },
    /// §6.5: the node's items, at most `max` (newest), or those `ids`.
    Items {
        node: String,
        max: Option<usize>,
        ids: Vec<String>,
    },
    /// §7.2: delete items, telling subscribers when `notify`.
    Retract {
        node: String,
        ids: Vec<String>,
        notify: bool,
    },
    /// §8.1: create the node, configured as `config` says (§8.1.3) or
    /// with the defaults.
    Create {
        node: String,
        config: Option<Fields>,
    },
    /// §8.4: delete the node.
    Delete { node: String },
    /// §8.5: delete every item of the node.
    Purge { node: String },
    /// §8.2: the configuration form.
    ConfigureGet { node: String },
    /// §8.2.5: a new configuration.
    ConfigureSet { node: String, fields: Fields },
    /// §6.1: subscribe `jid` (the requester's bare or full JID).
    Subscribe { node: String, jid: String },
    /// §6.2: cancel `jid`'s subscription.
    Unsubscribe { node: String, jid: String },
    /// §8.8.1: the node's subscriptions.
    SubscriptionsGet { node: String },
    /// §8.8.2: subscribe (`true`) or unsubscribe JIDs.
    SubscriptionsSet {
        node: String,
        changes: Vec<(String, bool)>,
    },
    /// §8.9.1: the node's affiliations.
    AffiliationsGet { node: String },
    /// §8.9.2: new affiliations of bare JIDs (`none` removes one).
    AffiliationsSet {
        node: String,
        changes: Vec<(String, Affiliation)>,
    },
    /// §5.4: the node's disco#info, with its meta-data form.
    Info { node: String },
}

/// The `jid` of a subscribe or unsubscribe, normalized: `bad-request` +
/// `jid-required` without one, `invalid-jid` when it is not a JID.
fn jid(e: &Element) -> Result<String, Refusal> {
    let j = e
        .attr("jid")
        .ok_or((StanzaError::BadRequest, Some("jid-required")))?;
    Jid::parse(j)
        .map(|j| j.to_string())
        .map_err(|_| (StanzaError::BadRequest, Some("invalid-jid")))
}

/// The `<name jid='…'/>` children of an owner's set, each with its value;
/// affiliations are of bare JIDs.
fn entries<T>(
    e: &Element,
    name: &str,
    value: impl Fn(&Element) -> Result<T, Refusal>,
) -> Result<Vec<(String, T)>, Refusal> {
    e.elements()
        .filter(|c| c.is(OWNER, name))
        .map(|c| {
            let jid = c
                .attr("jid")
                .and_then(|j| Jid::parse(j).ok())
                .ok_or((StanzaError::BadRequest, Some("invalid-jid")))?;
            let jid = if name == "affiliation" {
                jid.bare_str().to_string()
            } else {
                jid.to_string()
            };
            Ok((jid, value(c)?))
        })
        .collect()
}

impl Request {
    /// Parse an iq's payload; `None` when it is not pubsub.
    pub fn parse(iq: &Element) -> Option<Result<Self, Refusal>> {
        let pubsub = iq.first_element()?;
        let set = iq.attr("type") == Some("set");
        if pubsub.is(crate::ns::DISCO_INFO, "query") && !set {
            let node = pubsub.attr("node")?;
            return Some(name(pubsub, "node").map(|_| Request::Info {
                node: node.to_owned(),
            }));
        }
        if pubsub.is(NS, "pubsub") {
            Some(Self::parse_pubsub(pubsub, set))
        } else if pubsub.is(OWNER, "pubsub") {
            Some(Self::parse_owner(pubsub, set))
        } else {
            None
        }
    }

    fn parse_pubsub(pubsub: &Element, set: bool) -> Result<Self, Refusal> {
        let first = pubsub.elements().next().ok_or(UNSUPPORTED)?;
        match (first.name.as_str(), set) {
            ("publish", true) => {
                let p = parse::publish(pubsub, first)?;
                Ok(Request::Publish {
                    node: p.node,
                    id: p.id,
                    payload: p.payload,
                    options: p.options,
                })
            }
            ("create", true) => {
                // PEP nodes are named; instant nodes (§8.1.2) are not.
                let node = name(first, "node")?;
                let config = parse::form(
                    pubsub
                        .child(NS, "configure")
                        .and_then(|c| c.child(DATA, "x")),
                )?;
                Ok(Request::Create { node, config })
            }
            ("items", false) => {
                let (node, max, ids) = parse::items(first, None)?;
                Ok(Request::Items { node, max, ids })
            }
            ("retract", true) => {
                let (node, ids, notify) = parse::retract(first, None)?;
                Ok(Request::Retract { node, ids, notify })
            }
            ("subscribe", true) => Ok(Request::Subscribe {
                node: name(first, "node")?,
                jid: jid(first)?,
            }),
            ("unsubscribe", true) => Ok(Request::Unsubscribe {
                node: name(first, "node")?,
                jid: jid(first)?,
            }),
            _ => Err(UNSUPPORTED),
        }
    }

    fn parse_owner(pubsub: &Element, set: bool) -> Result<Self, Refusal> {
        let first = pubsub.elements().next().ok_or(UNSUPPORTED)?;
        match (first.name.as_str(), set) {
            ("delete", true) => Ok(Request::Delete {
                node: name(first, "node")?,
            }),
            ("purge", true) => Ok(Request::Purge {
                node: name(first, "node")?,
            }),
            ("configure", false) => Ok(Request::ConfigureGet {
                node: name(first, "node")?,
            }),
            ("configure", true) => {
                let x = first
                    .child(DATA, "x")
                    .ok_or((StanzaError::BadRequest, None))?;
                Ok(Request::ConfigureSet {
                    node: name(first, "node")?,
                    fields: parse::submitted(x)?,
                })
            }
            ("subscriptions", false) => Ok(Request::SubscriptionsGet {
                node: name(first, "node")?,
            }),
            ("subscriptions", true) => Ok(Request::SubscriptionsSet {
                node: name(first, "node")?,
                changes: entries(first, "subscription", |e| match e.attr("subscription") {
                    Some("subscribed") => Ok(true),
                    Some("none") => Ok(false),
                    _ => Err((StanzaError::NotAcceptable, None)),
                })?,
            }),
            ("affiliations", false) => Ok(Request::AffiliationsGet {
                node: name(first, "node")?,
            }),
            ("affiliations", true) => Ok(Request::AffiliationsSet {
                node: name(first, "node")?,
                changes: entries(first, "affiliation", |e| {
                    e.attr("affiliation")
                        .and_then(Affiliation::parse)
                        .ok_or((StanzaError::NotAcceptable, None))
                })?,
            }),
            _ => Err(UNSUPPORTED),
        }
    }

    /// The node the request is about.
    pub fn node(&self) -> &str {
        match self {
            Request::Publish { node, .. }
            | Request::Items { node, .. }
            | Request::Retract { node, .. }
            | Request::Create { node, .. }
            | Request::Delete { node }
            | Request::Purge { node }
            | Request::ConfigureGet { node }
            | Request::ConfigureSet { node, .. }
            | Request::Subscribe { node, .. }
            | Request::Unsubscribe { node, .. }
            | Request::SubscriptionsGet { node }
            | Request::SubscriptionsSet { node, .. }
            | Request::AffiliationsGet { node }
            | Request::AffiliationsSet { node, .. }
            | Request::Info { node } => node,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iq(xml: &str) -> Element {
        Element::parse(xml.as_bytes()).expect("XML")
    }

    #[test]
    fn parses_requests_and_refuses_malformed_ones() {
        let publish = iq("<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <publish node='n'><item><x xmlns='urn:x'/></item></publish></pubsub></iq>");
        assert!(matches!(
            Request::parse(&publish),
            Some(Ok(Request::Publish {
                id: None,
                options: None,
                ..
            }))
        ));
        let no_node = iq("<iq xmlns='jabber:client' type='get'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <items/></pubsub></iq>");
        assert_eq!(
            Request::parse(&no_node),
            Some(Err((StanzaError::BadRequest, Some("nodeid-required"))))
        );
        let subscribe = iq("<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <subscribe node='n' jid='a@b/r'/></pubsub></iq>");
        assert_eq!(
            Request::parse(&subscribe),
            Some(Ok(Request::Subscribe {
                node: "n".into(),
                jid: "a@b/r".into()
            }))
        );
        let no_jid = iq("<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <subscribe node='n'/></pubsub></iq>");
        assert_eq!(
            Request::parse(&no_jid),
            Some(Err((StanzaError::BadRequest, Some("jid-required"))))
        );
        let affiliations = iq("<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
             <affiliations node='n'><affiliation jid='b@x/r' affiliation='member'/></affiliations></pubsub></iq>");
        assert_eq!(
            Request::parse(&affiliations),
            Some(Ok(Request::AffiliationsSet {
                node: "n".into(),
                changes: vec![("b@x".into(), Affiliation::Member)]
            }))
        );
        let publisher = iq("<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
             <affiliations node='n'><affiliation jid='b@x' affiliation='publisher'/></affiliations></pubsub></iq>");
        assert_eq!(
            Request::parse(&publisher),
            Some(Err((StanzaError::NotAcceptable, None)))
        );
        let options = iq("<iq xmlns='jabber:client' type='get'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <options node='n' jid='a@b'/></pubsub></iq>");
        assert_eq!(
            Request::parse(&options),
            Some(Err((
                StanzaError::FeatureNotImplemented,
                Some("unsupported")
            )))
        );
        let other =
            iq("<iq xmlns='jabber:client' type='get'><query xmlns='jabber:iq:version'/></iq>");
        assert_eq!(Request::parse(&other), None);
    }
}
