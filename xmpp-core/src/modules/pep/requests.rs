//! The XEP-0060 requests PEP answers, each from the request to an
//! [`Answer`]: the result's payload and what to send once it is answered.
//! [`super::Pep::process`] has read what they need and sends the answer.

use super::access::{Access, Affiliation};
use super::config::{self, NodeConfig};
use super::notify::Audience;
use super::protocol::{self, item, Refusal, Request, NS, OWNER};
use super::store::{Entry, Node};
use super::{
    access_for, access_of, fits, members, requester, state, store, PepState, ITEM_BYTES_MAX,
    NODES_MAX,
};
use crate::modules::{Context, Event};
use crate::ns;
use crate::stanza::StanzaError;
use crate::xml::Element;

/// A successful request: the result's payload, a notification to send
/// once it is answered (who may get it, the event's content), and the
/// last item of a node to send to a new subscriber: (its JID, the node).
pub(super) struct Answer {
    pub(super) payload: Option<Element>,
    pub(super) event: Option<(Audience, Element)>,
    pub(super) last: Option<(String, String)>,
}

impl Answer {
    /// An empty result.
    pub(super) fn empty() -> Self {
        Answer {
            payload: None,
            event: None,
            last: None,
        }
    }

    /// A result with `payload`.
    pub(super) fn payload(payload: Element) -> Self {
        Answer {
            payload: Some(payload),
            ..Answer::empty()
        }
    }

    /// An empty result, then `event` to those `node` reaches.
    pub(super) fn event(node: &Node, event: Element) -> Self {
        Answer {
            event: Some((Audience::of(node), event)),
            ..Answer::empty()
        }
    }
}

/// What others than the owner may ask: items, their own subscriptions,
/// a node's disco#info.
pub(super) fn others(
    cx: &mut Context<'_>,
    account: &str,
    iq: &Element,
    from: &str,
    request: Option<Request>,
) -> Result<Answer, Refusal> {
    let owner = from == account;
    match request {
        Some(Request::Items { node, max, ids }) => items(cx, account, owner, iq, node, max, &ids),
        Some(Request::Subscribe { node, jid }) => members::subscribe(cx, account, from, node, jid),
        Some(Request::Unsubscribe { node, jid }) => {
            members::unsubscribe(cx, account, from, &node, &jid)
        }
        Some(Request::Info { node }) => info(cx, account, from, &node),
        _ => Err((StanzaError::Forbidden, None)),
    }
}

/// §5.4: a node's identity and meta-data, for whoever may read it; to
/// others the node does not exist.
pub(super) fn info(
    cx: &mut Context<'_>,
    account: &str,
    from: &str,
    name: &str,
) -> Result<Answer, Refusal> {
    let n = state(cx, account)?
        .nodes
        .get(name)
        .ok_or((StanzaError::ItemNotFound, None))?;
    let (model, groups, affiliation) = (
        n.config.access_model,
        n.config.roster_groups.clone(),
        n.affiliation(from),
    );
    let form = n.config.meta_data(account);
    if access_for(cx, account, from, model, &groups, affiliation) != Access::Granted {
        return Err((StanzaError::ItemNotFound, None));
    }
    let q = Element::new(ns::DISCO_INFO, "query")
        .with_attr("node", name)
        .with_child(
            Element::new(ns::DISCO_INFO, "identity")
                .with_attr("category", "pubsub")
                .with_attr("type", "leaf"),
        )
        .with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", NS))
        .with_child(form);
    Ok(Answer::payload(q))
}

/// §7.1.3.6: a payload over [`ITEM_BYTES_MAX`] serialized is refused.
pub(super) fn check_payload(payload: &Element) -> Result<(), Refusal> {
    if payload.to_xml().len() > ITEM_BYTES_MAX {
        return Err((StanzaError::NotAcceptable, Some("payload-too-big")));
    }
    Ok(())
}

/// Tell the other modules what a publish `event` (an `<items/>` with one
/// `<item/>`) published.
pub(super) fn published(cx: &mut Context<'_>, account: &str, event: &Element) {
    let Some(item) = event.child(protocol::EVENT, "item") else {
        return;
    };
    let (Some(node), Some(id), Some(payload)) =
        (event.attr("node"), item.attr("id"), item.first_element())
    else {
        return;
    };
    cx.announce(Event::PepPublished {
        account,
        node,
        id,
        payload,
    });
}

/// §7.1 with XEP-0163 §3's auto-create and XEP-0223's publish-options:
/// preconditions on an existing node when `preconditions`, else only the
/// configuration of a node the publish creates.
pub(super) fn publish(
    cx: &mut Context<'_>,
    account: &str,
    name: String,
    id: Option<String>,
    payload: Element,
    options: Option<&config::Fields>,
    preconditions: bool,
) -> Result<Answer, Refusal> {
    check_payload(&payload)?;
    let id = id.unwrap_or_else(|| cx.entropy().hex_id(8));
    let state = state(cx, account)?;
    let index = state
        .index
        .as_ref()
        .ok_or((StanzaError::InternalServerError, None))?;
    let mut node = match state.nodes.get(&name) {
        Some(node) => {
            if preconditions && options.is_some_and(|o| !node.config.meets(o)) {
                return Err((StanzaError::Conflict, Some("precondition-not-met")));
            }
            node.clone()
        }
        None => {
            if index.0.len() >= NODES_MAX {
                return Err((StanzaError::PolicyViolation, None));
            }
            let mut config = NodeConfig::default();
            if let Some(o) = options {
                config
                    .apply(o)
                    .map_err(|_| (StanzaError::Conflict, Some("precondition-not-met")))?;
            }
            Node::new(config)
        }
    };
    node.publish(id.clone(), payload.clone());
    fits(index, &name, &node)?;
    let audience = Audience::of(&node);
    state.nodes.insert(name.clone(), node);
    store(cx, account, &name)?;
    let result = Element::new(NS, "pubsub").with_child(
        Element::new(NS, "publish")
            .with_attr("node", name.clone())
            .with_child(Element::new(NS, "item").with_attr("id", id.clone())),
    );
    let event = Element::new(protocol::EVENT, "items")
        .with_attr("node", name)
        .with_child(item(protocol::EVENT, &id, &payload));
    Ok(Answer {
        payload: Some(result),
        event: Some((audience, event)),
        last: None,
    })
}

/// §6.5: items, for whoever the access model lets read them.
pub(super) fn items(
    cx: &mut Context<'_>,
    account: &str,
    owner: bool,
    iq: &Element,
    name: String,
    max: Option<usize>,
    ids: &[String],
) -> Result<Answer, Refusal> {
    let node = cx
        .account_state_ref::<PepState>(account)
        .and_then(|s| s.nodes.get(&name))
        .ok_or((StanzaError::ItemNotFound, None))?;
    if let Some(refusal) = access_of(cx, account, owner, iq, node).refusal() {
        return Err(refusal);
    }
    let node = state(cx, account)?
        .nodes
        .get(&name)
        .ok_or((StanzaError::ItemNotFound, None))?;
    let chosen: Vec<&(String, Element)> = if ids.is_empty() {
        let skip = node.items.len().saturating_sub(max.unwrap_or(usize::MAX));
        node.items.iter().skip(skip).collect()
    } else {
        node.items.iter().filter(|(i, _)| ids.contains(i)).collect()
    };
    if !ids.is_empty() && chosen.is_empty() {
        return Err((StanzaError::ItemNotFound, None));
    }
    let list = chosen.into_iter().fold(
        Element::new(NS, "items").with_attr("node", name.clone()),
        |l, (id, payload)| l.with_child(item(NS, id, payload)),
    );
    Ok(Answer::payload(Element::new(NS, "pubsub").with_child(list)))
}

/// §7.2: delete items, notifying when asked.
pub(super) fn retract(
    cx: &mut Context<'_>,
    account: &str,
    name: String,
    ids: &[String],
    notify: bool,
) -> Result<Answer, Refusal> {
    let node = state(cx, account)?
        .nodes
        .get_mut(&name)
        .ok_or((StanzaError::ItemNotFound, None))?;
    let before = node.items.len();
    node.items.retain(|(i, _)| !ids.contains(i));
    if node.items.len() == before {
        return Err((StanzaError::ItemNotFound, None));
    }
    let audience = Audience::of(node);
    store(cx, account, &name)?;
    let event = notify.then(|| {
        let retracts = ids.iter().fold(
            Element::new(protocol::EVENT, "items").with_attr("node", name),
            |e, id| {
                e.with_child(Element::new(protocol::EVENT, "retract").with_attr("id", id.clone()))
            },
        );
        (audience, retracts)
    });
    Ok(Answer {
        event,
        ..Answer::empty()
    })
}

/// §8.4: delete a node; those who could read it are told.
pub(super) fn delete(cx: &mut Context<'_>, account: &str, name: String) -> Result<Answer, Refusal> {
    let node = state(cx, account)?
        .nodes
        .remove(&name)
        .ok_or((StanzaError::ItemNotFound, None))?;
    store(cx, account, &name)?;
    let event = Element::new(protocol::EVENT, "delete").with_attr("node", name);
    Ok(Answer::event(&node, event))
}

/// §8.1: a new node, configured as asked (§8.1.3) or with the defaults.
pub(super) fn create(
    cx: &mut Context<'_>,
    account: &str,
    name: String,
    config: Option<&config::Fields>,
) -> Result<Answer, Refusal> {
    let mut node_config = NodeConfig::default();
    if let Some(fields) = config {
        node_config.apply(fields).map_err(|e| (e, None))?;
    }
    let state = state(cx, account)?;
    let index = state
        .index
        .as_ref()
        .ok_or((StanzaError::InternalServerError, None))?;
    if index.0.contains_key(&name) {
        return Err((StanzaError::Conflict, None));
    }
    if index.0.len() >= NODES_MAX {
        return Err((StanzaError::PolicyViolation, None));
    }
    state.nodes.insert(name.clone(), Node::new(node_config));
    store(cx, account, &name)?;
    Ok(Answer::empty())
}

/// §8.5: delete every item; those who could read them are told.
pub(super) fn purge(cx: &mut Context<'_>, account: &str, name: String) -> Result<Answer, Refusal> {
    let node = state(cx, account)?
        .nodes
        .get_mut(&name)
        .ok_or((StanzaError::ItemNotFound, None))?;
    node.items.clear();
    let audience = Audience::of(node);
    store(cx, account, &name)?;
    let event = Element::new(protocol::EVENT, "purge").with_attr("node", name);
    Ok(Answer {
        event: Some((audience, event)),
        ..Answer::empty()
    })
}

/// §8.2.1: the configuration form.
pub(super) fn configuration(
    cx: &mut Context<'_>,
    account: &str,
    name: &str,
) -> Result<Answer, Refusal> {
    let node = state(cx, account)?
        .nodes
        .get(name)
        .ok_or((StanzaError::ItemNotFound, None))?;
    let configure = Element::new(OWNER, "configure")
        .with_attr("node", name)
        .with_child(node.config.form());
    Ok(Answer::payload(
        Element::new(OWNER, "pubsub").with_child(configure),
    ))
}

/// §8.2.5: a new configuration.
pub(super) fn configure(
    cx: &mut Context<'_>,
    account: &str,
    name: &str,
    fields: &config::Fields,
) -> Result<Answer, Refusal> {
    let node = state(cx, account)?
        .nodes
        .get_mut(name)
        .ok_or((StanzaError::ItemNotFound, None))?;
    node.config.apply(fields).map_err(|e| (e, None))?;
    node.trim();
    store(cx, account, name)?;
    Ok(Answer::empty())
}

/// XEP-0030 items of the account: the nodes the requester may read.
pub(super) fn disco_items(
    cx: &mut Context<'_>,
    account: &str,
    owner: bool,
    iq: &Element,
) -> Answer {
    let entries: Vec<(String, Entry)> = cx
        .account_state_ref::<PepState>(account)
        .and_then(|s| s.index.as_ref())
        .map(|i| i.0.iter().map(|(n, e)| (n.clone(), e.clone())).collect())
        .unwrap_or_default();
    let mut q = Element::new(ns::DISCO_ITEMS, "query");
    let bare = requester(iq).unwrap_or_default();
    for (name, entry) in entries {
        // An affiliated node is decided by its affiliations
        // ([`Pep::process`] read it); unread, it is not listed.
        let affiliation = match cx
            .account_state_ref::<PepState>(account)
            .and_then(|s| s.nodes.get(&name))
        {
            Some(n) => Some(n.affiliation(&bare)),
            None if entry.affiliated => None,
            None => Some(Affiliation::None),
        };
        let granted = owner
            || affiliation.is_some_and(|a| {
                access_for(cx, account, &bare, entry.access, &entry.groups, a) == Access::Granted
            });
        if granted {
            q = q.with_child(
                Element::new(ns::DISCO_ITEMS, "item")
                    .with_attr("jid", account)
                    .with_attr("node", name),
            );
        }
    }
    Answer::payload(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_a_budget() {
        let small = Element::new("urn:x", "data").with_text("x".repeat(1000));
        assert_eq!(check_payload(&small), Ok(()));
        let big = Element::new("urn:x", "data").with_text("x".repeat(ITEM_BYTES_MAX));
        assert_eq!(
            check_payload(&big),
            Err((StanzaError::NotAcceptable, Some("payload-too-big")))
        );
    }
}
