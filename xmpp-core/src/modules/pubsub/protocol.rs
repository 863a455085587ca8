//! The XEP-0060 requests a service answers: the shared parser
//! ([`crate::modules::xep0060::request`]) read as a service reads it,
//! with instant nodes, subscription options, paging and redirects, and
//! owners' lists of at most [`MAX_CHANGES`] entries.

use super::affiliations::Affiliation;
use crate::modules::xep0060::request::Dialect;
use crate::modules::xep0060::{self, Refusal, OWNER};
use crate::stanza::StanzaError;
use crate::xml::Element;

/// Most entries one owner request may change (§8.8.2, §8.9.2).
pub const MAX_CHANGES: usize = 256;

/// A service request.
pub type Request = xep0060::request::Request<PubsubService>;

/// How the service reads XEP-0060: everything PEP reads, and instant
/// nodes, subscription options, paging, redirects and the default
/// configuration; lists capped at [`MAX_CHANGES`].
#[derive(Debug, Clone, PartialEq)]
pub struct PubsubService;

impl Dialect for PubsubService {
    type Affiliation = Affiliation;
    const INSTANT_NODES: bool = true;
    const SUBSCRIBERS: bool = true;
    const SERVICE_EXTRAS: bool = true;
    const NODE_INFO: bool = false;
    const STRICT_NAMESPACE: bool = true;
    const LIST_CAP: Option<usize> = Some(MAX_CHANGES);

    fn jid(e: &Element) -> Result<String, Refusal> {
        jid(e)
    }

    fn subscription_changes(list: &Element) -> Result<Vec<(String, bool)>, Refusal> {
        entries(list, "subscription", |s| match s {
            "subscribed" => Some(true),
            "none" => Some(false),
            _ => None,
        })
    }

    fn affiliation_changes(list: &Element) -> Result<Vec<(String, Affiliation)>, Refusal> {
        entries(list, "affiliation", Affiliation::parse)
    }
}

fn jid(e: &Element) -> Result<String, Refusal> {
    match e.attr("jid").map(crate::jid::Jid::parse) {
        Some(Ok(j)) => Ok(j.to_string()),
        _ => Err((StanzaError::BadRequest, Some("jid-required"))),
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
    use crate::modules::xep0060::request::Page;

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
