//! The XEP-0060 elements PEP speaks: requests parsed from iqs, results,
//! event notifications and errors with their pubsub#errors conditions.

use super::access::Affiliation;
use super::config::{parse_form, Fields, DATA, PUBLISH_OPTIONS};
use crate::jid::Jid;
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

/// A refusal: the stanza error and its pubsub#errors condition.
pub type Refusal = (StanzaError, Option<&'static str>);

fn name(e: &Element, attr: &str) -> Result<String, Refusal> {
    match e.attr(attr) {
        Some(n) if !n.is_empty() && n.len() <= MAX_NAME_BYTES => Ok(n.to_owned()),
        Some(n) if !n.is_empty() => Err((StanzaError::NotAcceptable, None)),
        _ => Err((StanzaError::BadRequest, Some("nodeid-required"))),
    }
}

fn item_ids(e: &Element, ns: &str) -> Result<Vec<String>, Refusal> {
    e.elements()
        .filter(|i| i.is(ns, "item"))
        .map(|i| match i.attr("id") {
            Some(id) if !id.is_empty() && id.len() <= MAX_NAME_BYTES => Ok(id.to_owned()),
            _ => Err((StanzaError::BadRequest, Some("item-required"))),
        })
        .collect()
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
        let unsupported = (StanzaError::FeatureNotImplemented, Some("unsupported"));
        let first = pubsub.elements().next().ok_or(unsupported)?;
        match (first.name.as_str(), set) {
            ("publish", true) => {
                let node = name(first, "node")?;
                let mut items = first.elements().filter(|e| e.is(NS, "item"));
                let item = items
                    .next()
                    .ok_or((StanzaError::BadRequest, Some("item-required")))?;
                if items.next().is_some() {
                    return Err((StanzaError::BadRequest, Some("invalid-payload")));
                }
                let id = match item.attr("id") {
                    Some(id) if id.len() > MAX_NAME_BYTES => {
                        return Err((StanzaError::NotAcceptable, None))
                    }
                    Some(id) if !id.is_empty() => Some(id.to_owned()),
                    _ => None,
                };
                let mut payloads = item.elements();
                let payload = payloads
                    .next()
                    .ok_or((StanzaError::BadRequest, Some("payload-required")))?;
                if payloads.next().is_some() {
                    return Err((StanzaError::BadRequest, Some("invalid-payload")));
                }
                let options = match pubsub.child(NS, "publish-options") {
                    Some(o) => match o.child(DATA, "x") {
                        Some(x) => {
                            let form_type = x
                                .elements()
                                .find(|f| f.attr("var") == Some("FORM_TYPE"))
                                .and_then(|f| f.child_text(DATA, "value"));
                            if form_type.as_deref() != Some(PUBLISH_OPTIONS) {
                                return Err((StanzaError::BadRequest, Some("invalid-options")));
                            }
                            Some(parse_form(x).map_err(|e| (e, Some("invalid-options")))?)
                        }
                        None => None,
                    },
                    None => None,
                };
                Ok(Request::Publish {
                    node,
                    id,
                    payload: payload.clone(),
                    options,
                })
            }
            ("create", true) => {
                // PEP nodes are named; instant nodes (§8.1.2) are not.
                let node = name(first, "node")?;
                let config = match pubsub
                    .child(NS, "configure")
                    .and_then(|c| c.child(DATA, "x"))
                {
                    Some(x) => Some(parse_form(x).map_err(|e| (e, None))?),
                    None => None,
                };
                Ok(Request::Create { node, config })
            }
            ("items", false) => Ok(Request::Items {
                node: name(first, "node")?,
                max: match first.attr("max_items") {
                    Some(m) => Some(
                        m.trim()
                            .parse()
                            .map_err(|_| (StanzaError::BadRequest, None))?,
                    ),
                    None => None,
                },
                ids: item_ids(first, NS)?,
            }),
            ("retract", true) => {
                let ids = item_ids(first, NS)?;
                if ids.is_empty() {
                    return Err((StanzaError::BadRequest, Some("item-required")));
                }
                Ok(Request::Retract {
                    node: name(first, "node")?,
                    ids,
                    notify: matches!(first.attr("notify"), Some("1" | "true")),
                })
            }
            ("subscribe", true) => Ok(Request::Subscribe {
                node: name(first, "node")?,
                jid: jid(first)?,
            }),
            ("unsubscribe", true) => Ok(Request::Unsubscribe {
                node: name(first, "node")?,
                jid: jid(first)?,
            }),
            _ => Err(unsupported),
        }
    }

    fn parse_owner(pubsub: &Element, set: bool) -> Result<Self, Refusal> {
        let unsupported = (StanzaError::FeatureNotImplemented, Some("unsupported"));
        let first = pubsub.elements().next().ok_or(unsupported)?;
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
                    fields: parse_form(x).map_err(|e| (e, None))?,
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
            _ => Err(unsupported),
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

/// The error answering `iq`, from `account`, with an optional
/// pubsub#errors condition (XEP-0060 §7.1.3 and following).
pub fn error(iq: &Element, account: &str, domain: &str, refusal: Refusal) -> Element {
    let (condition, specific) = refusal;
    let mut e = error_reply(iq, condition, domain);
    e.set_attr("from", account);
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

/// The headline message notifying `to` of `event` (an `<items/>` or
/// `<delete/>` in the event namespace), from the owner's bare JID.
pub fn notification(account: &str, to: &str, event: Element) -> Element {
    Element::new(crate::ns::CLIENT, "message")
        .with_attr("from", account)
        .with_attr("to", to)
        .with_attr("type", "headline")
        .with_child(Element::new(EVENT, "event").with_child(event))
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
