//! The request pieces both services read alike (XEP-0060 §6.5, §7.1,
//! §7.2): node names, item ids, publish with its publish-options, items
//! and retract; each service's parser builds its own requests from them.

use super::form::{parse_form, Fields, DATA, PUBLISH_OPTIONS};
use super::{Refusal, MAX_NAME_BYTES, NS};
use crate::stanza::StanzaError;
use crate::xml::Element;

/// A request neither service serves (§7.1.3.6 and alike).
pub const UNSUPPORTED: Refusal = (StanzaError::FeatureNotImplemented, Some("unsupported"));

/// The node name in `attr`: `nodeid-required` without one, too long is
/// `not-acceptable`.
pub fn name(e: &Element, attr: &str) -> Result<String, Refusal> {
    match e.attr(attr) {
        Some(n) if !n.is_empty() && n.len() <= MAX_NAME_BYTES => Ok(n.to_owned()),
        Some(n) if !n.is_empty() => Err((StanzaError::NotAcceptable, None)),
        _ => Err((StanzaError::BadRequest, Some("nodeid-required"))),
    }
}

/// The ids of `e`'s `<item/>`s; more than `cap` (when the service has
/// one) is a `policy-violation`.
pub fn item_ids(e: &Element, cap: Option<usize>) -> Result<Vec<String>, Refusal> {
    let ids = e
        .elements()
        .filter(|i| i.is(NS, "item"))
        .take(cap.map_or(usize::MAX, |c| c.saturating_add(1)))
        .map(|i| match i.attr("id") {
            Some(id) if !id.is_empty() && id.len() <= MAX_NAME_BYTES => Ok(id.to_owned()),
            _ => Err((StanzaError::BadRequest, Some("item-required"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    match cap {
        Some(cap) if ids.len() > cap => Err((StanzaError::PolicyViolation, None)),
        _ => Ok(ids),
    }
}

/// A submitted form's fields.
pub fn submitted(x: &Element) -> Result<Fields, Refusal> {
    parse_form(x).map_err(|e| (e, None))
}

/// A submitted form, when there is one.
pub fn form(x: Option<&Element>) -> Result<Option<Fields>, Refusal> {
    x.map(submitted).transpose()
}

/// A publish (§7.1) with its XEP-0223 publish-options.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    /// The node.
    pub node: String,
    /// The item id, when the publisher chose one.
    pub id: Option<String>,
    /// The item's one payload.
    pub payload: Element,
    /// The preconditions.
    pub options: Option<Fields>,
}

/// Read `<publish/>` (`first`) of `pubsub`: one item with one payload.
pub fn publish(pubsub: &Element, first: &Element) -> Result<Publish, Refusal> {
    let node = name(first, "node")?;
    let mut items = first.elements().filter(|e| e.is(NS, "item"));
    let item = items
        .next()
        .ok_or((StanzaError::BadRequest, Some("item-required")))?;
    if items.next().is_some() {
        return Err((StanzaError::BadRequest, Some("invalid-payload")));
    }
    let id = match item.attr("id") {
        Some(id) if id.len() > MAX_NAME_BYTES => return Err((StanzaError::NotAcceptable, None)),
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
    let options = match pubsub
        .child(NS, "publish-options")
        .and_then(|o| o.child(DATA, "x"))
    {
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
    };
    Ok(Publish {
        node,
        id,
        payload: payload.clone(),
        options,
    })
}

/// Read `<items/>` (§6.5): the node, `max_items` and the ids asked for.
pub fn items(
    first: &Element,
    cap: Option<usize>,
) -> Result<(String, Option<usize>, Vec<String>), Refusal> {
    let node = name(first, "node")?;
    let max = match first.attr("max_items") {
        Some(m) => Some(
            m.trim()
                .parse()
                .map_err(|_| (StanzaError::BadRequest, None))?,
        ),
        None => None,
    };
    Ok((node, max, item_ids(first, cap)?))
}

/// Read `<retract/>` (§7.2): the node, at least one id, and whether
/// subscribers are told.
pub fn retract(
    first: &Element,
    cap: Option<usize>,
) -> Result<(String, Vec<String>, bool), Refusal> {
    let ids = item_ids(first, cap)?;
    if ids.is_empty() {
        return Err((StanzaError::BadRequest, Some("item-required")));
    }
    Ok((
        name(first, "node")?,
        ids,
        matches!(first.attr("notify"), Some("1" | "true")),
    ))
}
