//! The XEP-0060 requests, parsed from iqs once for both services. A
//! [`Dialect`] says what a service serves beyond the requests every
//! service answers, its affiliations, and how it reads JIDs and owners'
//! change lists; a request it does not serve is refused `unsupported`,
//! as before the services shared this parser.

use super::form::{Fields, DATA};
use super::parse::{self, form, name, UNSUPPORTED};
use super::{Refusal, MAX_NAME_BYTES, NS, OWNER};
use crate::modules::mam::rsm;
use crate::stanza::StanzaError;
use crate::xml::Element;

/// One service's reading of the protocol.
pub trait Dialect {
    /// An owner-set affiliation.
    type Affiliation: std::fmt::Debug + Clone + PartialEq;
    /// Nodes created without a name (§8.1.2).
    const INSTANT_NODES: bool;
    /// Subscription options (§6.3) and the requester's subscriptions
    /// (§5.6).
    const SUBSCRIBERS: bool;
    /// XEP-0059 paging of items, delete redirects (§8.4.1) and the
    /// default configuration (§8.3).
    const SERVICE_EXTRAS: bool;
    /// A node's disco#info is a request too (§5.4).
    const NODE_INFO: bool;
    /// The request element must be in the pubsub namespace.
    const STRICT_NAMESPACE: bool;
    /// Most item ids or owner's changes in one request, if capped.
    const LIST_CAP: Option<usize>;
    /// The `jid` of a subscribe, unsubscribe or options request.
    fn jid(e: &Element) -> Result<String, Refusal>;
    /// An owner's subscription changes (§8.8.2): (jid, subscribed).
    fn subscription_changes(list: &Element) -> Result<Vec<(String, bool)>, Refusal>;
    /// An owner's affiliation changes (§8.9.2).
    fn affiliation_changes(list: &Element) -> Result<Vec<(String, Self::Affiliation)>, Refusal>;
}

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

/// A request, as dialect `D` reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Request<D: Dialect> {
    /// §7.1: publish `payload` (as item `id`, or a generated one), with
    /// XEP-0223 publish-options.
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
    /// §7.2: delete items, telling subscribers when `notify`.
    Retract {
        node: String,
        ids: Vec<String>,
        notify: bool,
    },
    /// §8.1: named, or instant (§8.1.2) without a name; configured as
    /// `config` says (§8.1.3) or with the defaults.
    Create {
        node: Option<String>,
        config: Option<Fields>,
    },
    /// §6.1: subscribe `jid`, with options (§6.3.7).
    Subscribe {
        node: String,
        jid: String,
        options: Option<Fields>,
    },
    /// §6.2: cancel `jid`'s subscription.
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
    /// §8.4: delete the node, with an optional redirect URI.
    Delete {
        node: String,
        redirect: Option<String>,
    },
    /// §8.5: delete every item of the node.
    Purge { node: String },
    /// §8.2: the configuration form.
    ConfigureGet { node: String },
    /// §8.2.5: a new configuration.
    ConfigureSet { node: String, fields: Fields },
    /// §8.3: the default configuration.
    Default,
    /// §8.8.1: the node's subscriptions.
    SubscriptionsGet { node: String },
    /// §8.8.2: (jid, subscribed or removed).
    SubscriptionsSet {
        node: String,
        changes: Vec<(String, bool)>,
    },
    /// §8.9.1: the node's affiliations.
    AffiliationsGet { node: String },
    /// §8.9.2: new affiliations.
    AffiliationsSet {
        node: String,
        changes: Vec<(String, D::Affiliation)>,
    },
    /// §5.4: the node's disco#info, with its meta-data form.
    Info { node: String },
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

impl<D: Dialect> Request<D> {
    /// Parse an iq's payload; `None` when it is not pubsub.
    pub fn parse(iq: &Element) -> Option<Result<Self, Refusal>> {
        let pubsub = iq.first_element()?;
        let set = iq.attr("type") == Some("set");
        if D::NODE_INFO && pubsub.is(crate::ns::DISCO_INFO, "query") && !set {
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
        if D::STRICT_NAMESPACE && !first.is(NS, &first.name) {
            return Err(UNSUPPORTED);
        }
        let options = |e: &Element| match D::SUBSCRIBERS {
            true => form(e.child(NS, "options").and_then(|o| o.child(DATA, "x"))),
            false => Ok(None),
        };
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
                node: match D::INSTANT_NODES {
                    true => first
                        .attr("node")
                        .is_some_and(|n| !n.is_empty())
                        .then(|| name(first, "node"))
                        .transpose()?,
                    false => Some(name(first, "node")?),
                },
                config: form(
                    pubsub
                        .child(NS, "configure")
                        .and_then(|c| c.child(DATA, "x")),
                )?,
            }),
            ("subscribe", true) => Ok(Request::Subscribe {
                node: name(first, "node")?,
                jid: D::jid(first)?,
                options: options(pubsub)?,
            }),
            ("unsubscribe", true) => Ok(Request::Unsubscribe {
                node: name(first, "node")?,
                jid: D::jid(first)?,
            }),
            ("options", false) if D::SUBSCRIBERS => Ok(Request::OptionsGet {
                node: name(first, "node")?,
                jid: D::jid(first)?,
            }),
            ("options", true) if D::SUBSCRIBERS => Ok(Request::OptionsSet {
                node: name(first, "node")?,
                jid: D::jid(first)?,
                fields: form(first.child(DATA, "x"))?
                    .ok_or((StanzaError::BadRequest, Some("invalid-options")))?,
            }),
            ("subscriptions", false) if D::SUBSCRIBERS => Ok(Request::MySubscriptions {
                node: first.attr("node").map(str::to_owned),
            }),
            ("items", false) => {
                let (node, max, ids) = parse::items(first, D::LIST_CAP)?;
                let page = match D::SERVICE_EXTRAS {
                    true => pubsub.child(rsm::NS, "set").map(page).transpose()?,
                    false => None,
                };
                Ok(Request::Items {
                    node,
                    max,
                    ids,
                    page,
                })
            }
            ("retract", true) => {
                let (node, ids, notify) = parse::retract(first, D::LIST_CAP)?;
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
                    .filter(|_| D::SERVICE_EXTRAS)
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
            ("configure", true) => {
                let x = first
                    .child(DATA, "x")
                    .ok_or((StanzaError::BadRequest, None))?;
                Ok(Request::ConfigureSet {
                    node: name(first, "node")?,
                    fields: parse::submitted(x)?,
                })
            }
            ("default", false) if D::SERVICE_EXTRAS => Ok(Request::Default),
            ("subscriptions", false) => Ok(Request::SubscriptionsGet {
                node: name(first, "node")?,
            }),
            ("subscriptions", true) => {
                let changes = D::subscription_changes(first)?;
                Ok(Request::SubscriptionsSet {
                    node: name(first, "node")?,
                    changes,
                })
            }
            ("affiliations", false) => Ok(Request::AffiliationsGet {
                node: name(first, "node")?,
            }),
            ("affiliations", true) => {
                let changes = D::affiliation_changes(first)?;
                Ok(Request::AffiliationsSet {
                    node: name(first, "node")?,
                    changes,
                })
            }
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
            | Request::AffiliationsSet { node, .. }
            | Request::Info { node } => Some(node),
            Request::Create { node, .. } | Request::MySubscriptions { node } => node.as_deref(),
            Request::Default => None,
        }
    }
}
