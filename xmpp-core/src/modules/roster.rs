//! RFC 6121 §2 roster items on the wire: rendering and validating `<item/>`.

use crate::jid::Jid;
use crate::ns;
use crate::stanza::StanzaError;
use crate::storage::RosterItem;
use crate::xml::Element;

/// Longest accepted handle or group name, in bytes.
const MAX_NAME: usize = 1023;

/// The `<item/>` for a roster result or push.
pub fn item_element(item: &RosterItem) -> Element {
    let mut e = Element::new(ns::ROSTER, "item")
        .with_attr("jid", item.jid.clone())
        .with_attr("subscription", item.subscription.as_attr());
    if let Some(name) = &item.name {
        e.set_attr("name", name.clone());
    }
    if item.subscription.pending_out {
        e.set_attr("ask", "subscribe");
    }
    for g in &item.groups {
        e = e.with_child(Element::new(ns::ROSTER, "group").with_text(g.clone()));
    }
    e
}

/// A roster set request, validated (RFC 6121 §2.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterSet {
    /// Add or update the item's name and groups.
    Update {
        jid: Jid,
        name: Option<String>,
        groups: Vec<String>,
    },
    /// `subscription='remove'`.
    Remove(Jid),
}

/// Parse the `<query/>` of a roster set.
pub fn parse_set(query: &Element) -> Result<RosterSet, StanzaError> {
    let mut items = query.elements().filter(|e| e.is(ns::ROSTER, "item"));
    let item = items.next().ok_or(StanzaError::BadRequest)?;
    if items.next().is_some() {
        return Err(StanzaError::BadRequest);
    }
    let jid = item
        .attr("jid")
        .ok_or(StanzaError::BadRequest)
        .and_then(|j| Jid::parse(j).map_err(|_| StanzaError::JidMalformed))?;
    if jid.resource().is_some() {
        return Err(StanzaError::BadRequest);
    }
    if item.attr("subscription") == Some("remove") {
        return Ok(RosterSet::Remove(jid));
    }
    let name = item
        .attr("name")
        .map(str::to_owned)
        .filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.len() > MAX_NAME) {
        return Err(StanzaError::NotAcceptable);
    }
    let mut groups: Vec<String> = Vec::new();
    for g in item.elements().filter(|e| e.is(ns::ROSTER, "group")) {
        let text = g.text();
        if text.is_empty() || text.len() > MAX_NAME {
            return Err(StanzaError::NotAcceptable);
        }
        if groups.contains(&text) {
            return Err(StanzaError::BadRequest);
        }
        groups.push(text);
    }
    Ok(RosterSet::Update { jid, name, groups })
}
