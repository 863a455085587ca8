//! The XEP-0060 requests a service answers, parsed from iqs: PEP's
//! (publish, items, retract, create, delete, purge, configure) with what
//! only a service has (instant nodes, subscriptions and their options,
//! RSM paging of items, redirects, owners' subscription and affiliation
//! lists). What both services read alike is the shared wire layer's
//! ([`crate::modules::xep0060`]).

use super::affiliations::Affiliation;
use crate::modules::mam::rsm;
use crate::modules::xep0060::form::{Fields, DATA};
use crate::modules::xep0060::parse::{self, form, name, UNSUPPORTED};
use crate::modules::xep0060::{Refusal, MAX_NAME_BYTES, NS, OWNER};
use crate::stanza::StanzaError;
use crate::xml::Element;

/// Most entries one owner request may change (§8.8.2, §8.9.2).
pub const MAX_CHANGES: usize = 256;

/// XEP-0059 paging of items: at most `max` after item `after`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// `<max/>`.
    pub max: Option<usize>,
    /// `<after/>`: an item id.
    pub after: Option<String>,
    /// `<before/>` (an item id; empty: the last page).
    pub before: Option<String>,
}

/// A service request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// §7.1, with XEP-0223 publish-options.
    Publish {
        node: String,
        id: Option<String>,
        payload: Element,
        options: Option<Fields>,
    },
    /// §6.5: items, at most `max` (newest), those `ids`, or a page.
    Items {
        node: String,
        max: Option<usize>,
        ids: Vec<String>,
        page: Option<Page>,
    },
    /// §7.2.
    Retract {
        node: String,
        ids: Vec<String>,
        notify: bool,
    },
    /// §8.1: named, or instant (§8.1.2) without a name.
    Create {
        node: Option<String>,
        config: Option<Fields>,
    },
    /// §6.1, with options (§6.3.7).
    Subscribe {
        node: String,
        jid: String,
        options: Option<Fields>,
    },
    /// §6.2.
    Unsubscribe { node: String, jid: String },
    /// §6.3.2: the subscription options form.
    OptionsGet { node: String, jid: String },
    /// §6.3.5.
    OptionsSet {
        node: String,
        jid: String,
        fields: Fields,
    },
    /// §5.6: the requester's subscriptions (of one node).
    MySubscriptions { node: Option<String> },
    /// §8.4, with an optional redirect URI.
    Delete {
        node: String,
        redirect: Option<String>,
    },
    /// §8.5.
    Purge { node: String },
    /// §8.2.
    ConfigureGet { node: String },
    /// §8.2.5.
    ConfigureSet { node: String, fields: Fields },
    /// §8.3: the default configuration.
    Default,
    /// §8.8.1.
    SubscriptionsGet { node: String },
    /// §8.8.2: (jid, subscribed or removed).
    SubscriptionsSet {
        node: String,
        changes: Vec<(String, bool)>,
    },
    /// §8.9.1.
    AffiliationsGet { node: String },
    /// §8.9.2.
    AffiliationsSet {
        node: String,
        changes: Vec<(String, Affiliation)>,
    },
}

fn jid(e: &Element) -> Result<String, Refusal> {
    match e.attr("jid").map(crate::jid::Jid::parse) {
        Some(Ok(j)) => Ok(j.to_string()),
        _ => Err((StanzaError::BadRequest, Some("jid-required"))),
    }
}

fn page(set: &Element) -> Result<Page, Refusal> {
    let bad = (StanzaError::BadRequest, None);
    let max = match set.child_text(rsm::NS, "max") {
        Some(m) => Some(m.trim().parse().map_err(|_| bad)?),
        None => None,
    };
    Ok(Page {
        max,
        after: set.child_text(rsm::NS, "after"),
        before: set.child_text(rsm::NS, "before"),
    })
}

impl Request {
    /// Parse an iq's payload; `None` when it is not pubsub.
    pub fn parse(iq: &Element) -> Option<Result<Self, Refusal>> {
        let pubsub = iq.first_element()?;
        let set = iq.attr("type") == Some("set");
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
        if !first.is(NS, &first.name) {
            return Err(UNSUPPORTED);
        }
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
            ("create", true) => Ok(Request::Create {
                node: first
                    .attr("node")
                    .is_some_and(|n| !n.is_empty())
                    .then(|| name(first, "node"))
                    .transpose()?,
                config: form(
                    pubsub
                        .child(NS, "configure")
                        .and_then(|c| c.child(DATA, "x")),
                )?,
            }),
            ("subscribe", true) => Ok(Request::Subscribe {
                node: name(first, "node")?,
                jid: jid(first)?,
                options: form(pubsub.child(NS, "options").and_then(|o| o.child(DATA, "x")))?,
            }),
            ("unsubscribe", true) => Ok(Request::Unsubscribe {
                node: name(first, "node")?,
                jid: jid(first)?,
            }),
            ("options", false) => Ok(Request::OptionsGet {
                node: name(first, "node")?,
                jid: jid(first)?,
            }),
            ("options", true) => Ok(Request::OptionsSet {
                node: name(first, "node")?,
                jid: jid(first)?,
                fields: form(first.child(DATA, "x"))?
                    .ok_or((StanzaError::BadRequest, Some("invalid-options")))?,
            }),
            ("subscriptions", false) => Ok(Request::MySubscriptions {
                node: first.attr("node").map(str::to_owned),
            }),
            ("items", false) => {
                let (node, max, ids) = parse::items(first, Some(MAX_CHANGES))?;
                Ok(Request::Items {
                    node,
                    max,
                    ids,
                    page: pubsub.child(rsm::NS, "set").map(page).transpose()?,
                })
            }
            ("retract", true) => {
                let (node, ids, notify) = parse::retract(first, Some(MAX_CHANGES))?;
                Ok(Request::Retract { node, ids, notify })
            }
            _ => Err(UNSUPPORTED),
        }
    }

    fn parse_owner(pubsub: &Element, set: bool) -> Result<Self, Refusal> {
        let first = pubsub.elements().next().ok_or(UNSUPPORTED)?;
        match (first.name.as_str(), set) {
            ("delete", true) => Ok(Request::Delete {
                node: name(first, "node")?,
                redirect: first
                    .child(OWNER, "redirect")
                    .and_then(|r| r.attr("uri"))
                    .filter(|u| u.len() <= 2 * MAX_NAME_BYTES)
                    .map(str::to_owned),
            }),
            ("purge", true) => Ok(Request::Purge {
                node: name(first, "node")?,
            }),
            ("configure", false) => Ok(Request::ConfigureGet {
                node: name(first, "node")?,
            }),
            ("configure", true) => Ok(Request::ConfigureSet {
                node: name(first, "node")?,
                fields: form(first.child(DATA, "x"))?.ok_or((StanzaError::BadRequest, None))?,
            }),
            ("default", false) => Ok(Request::Default),
            ("subscriptions", false) => Ok(Request::SubscriptionsGet {
                node: name(first, "node")?,
            }),
            ("subscriptions", true) => {
                let changes = entries(first, "subscription", |s| match s {
                    "subscribed" => Some(true),
                    "none" => Some(false),
                    _ => None,
                })?;
                Ok(Request::SubscriptionsSet {
                    node: name(first, "node")?,
                    changes,
                })
            }
            ("affiliations", false) => Ok(Request::AffiliationsGet {
                node: name(first, "node")?,
            }),
            ("affiliations", true) => Ok(Request::AffiliationsSet {
                node: name(first, "node")?,
                changes: entries(first, "affiliation", Affiliation::parse)?,
            }),
            _ => Err(UNSUPPORTED),
        }
    }

    /// The node the request names, if any.
    pub fn node(&self) -> Option<&str> {
        match self {
            Request::Publish { node, .. }
            | Request::Items { node, .. }
            | Request::Retract { node, .. }
            | Request::Subscribe { node, .. }
            | Request::Unsubscribe { node, .. }
            | Request::OptionsGet { node, .. }
            | Request::OptionsSet { node, .. }
            | Request::Delete { node, .. }
            | Request::Purge { node }
            | Request::ConfigureGet { node }
            | Request::ConfigureSet { node, .. }
            | Request::SubscriptionsGet { node }
            | Request::SubscriptionsSet { node, .. }
            | Request::AffiliationsGet { node }
            | Request::AffiliationsSet { node, .. } => Some(node),
            Request::Create { node, .. } => node.as_deref(),
            Request::MySubscriptions { node } => node.as_deref(),
            Request::Default => None,
        }
    }
}

/// The `<name jid=… name=…/>` entries of an owner's change list.
fn entries<T>(
    list: &Element,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<(String, T)>, Refusal> {
    let bad = (StanzaError::BadRequest, None);
    let changes: Vec<(String, T)> = list
        .elements()
        .filter(|e| e.is(OWNER, name))
        .take(MAX_CHANGES + 1)
        .map(|e| {
            let value = e.attr(name).and_then(&parse).ok_or(bad)?;
            let j = crate::jid::Jid::parse(e.attr("jid").ok_or(bad)?)
                .map_err(|_| (StanzaError::JidMalformed, None))?;
            Ok((j.to_string(), value))
        })
        .collect::<Result<_, Refusal>>()?;
    if changes.len() > MAX_CHANGES {
        return Err((StanzaError::PolicyViolation, None));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iq(xml: &str) -> Element {
        Element::parse(xml.as_bytes()).expect("XML")
    }

    #[test]
    fn parses_service_requests() {
        let instant = iq("<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create/></pubsub></iq>");
        assert_eq!(
            Request::parse(&instant),
            Some(Ok(Request::Create {
                node: None,
                config: None
            }))
        );
        let paged = iq("<iq xmlns='jabber:client' type='get'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/>\
             <set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>x</after></set></pubsub></iq>");
        assert!(matches!(
            Request::parse(&paged),
            Some(Ok(Request::Items {
                page: Some(Page { max: Some(2), .. }),
                ..
            }))
        ));
        let affs = iq("<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
             <affiliations node='n'><affiliation jid='eve@localhost' affiliation='outcast'/></affiliations></pubsub></iq>");
        assert_eq!(
            Request::parse(&affs),
            Some(Ok(Request::AffiliationsSet {
                node: "n".into(),
                changes: vec![("eve@localhost".into(), Affiliation::Outcast)]
            }))
        );
        let delete = iq("<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
             <delete node='n'><redirect uri='xmpp:pubsub.localhost?;node=m'/></delete></pubsub></iq>");
        assert!(matches!(
            Request::parse(&delete),
            Some(Ok(Request::Delete {
                redirect: Some(_),
                ..
            }))
        ));
        let no_jid = iq("<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n'/></pubsub></iq>");
        assert_eq!(
            Request::parse(&no_jid),
            Some(Err((StanzaError::BadRequest, Some("jid-required"))))
        );
        let many = format!(
            "<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='n'>{}</retract></pubsub></iq>",
            "<item id='x'/>".repeat(MAX_CHANGES + 1)
        );
        assert_eq!(
            Request::parse(&iq(&many)),
            Some(Err((StanzaError::PolicyViolation, None)))
        );
    }
}
