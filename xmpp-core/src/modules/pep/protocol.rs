//! The XEP-0060 requests PEP answers, parsed from iqs with the shared
//! wire layer ([`crate::modules::xep0060`]): named nodes only, no
//! subscription options, no paging.

use super::access::Affiliation;
use crate::jid::Jid;
use crate::modules::xep0060::{self, request::Dialect};
use crate::stanza::StanzaError;
use crate::xml::Element;

pub use crate::modules::xep0060::{
    error, item, notification, Refusal, ERRORS, EVENT, MAX_NAME_BYTES, NS, OWNER,
};

/// A PEP request.
pub type Request = xep0060::request::Request<Pep>;

/// How PEP reads XEP-0060: named nodes only, no subscription options, no
/// paging; JIDs and owners' lists refused with PEP's conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Pep;

impl Dialect for Pep {
    type Affiliation = Affiliation;
    const INSTANT_NODES: bool = false;
    const SUBSCRIBERS: bool = false;
    const SERVICE_EXTRAS: bool = false;
    const NODE_INFO: bool = true;
    const STRICT_NAMESPACE: bool = false;
    const LIST_CAP: Option<usize> = None;

    fn jid(e: &Element) -> Result<String, Refusal> {
        jid(e)
    }

    fn subscription_changes(list: &Element) -> Result<Vec<(String, bool)>, Refusal> {
        entries(list, "subscription", |e| match e.attr("subscription") {
            Some("subscribed") => Ok(true),
            Some("none") => Ok(false),
            _ => Err((StanzaError::NotAcceptable, None)),
        })
    }

    fn affiliation_changes(list: &Element) -> Result<Vec<(String, Affiliation)>, Refusal> {
        entries(list, "affiliation", |e| {
            e.attr("affiliation")
                .and_then(Affiliation::parse)
                .ok_or((StanzaError::NotAcceptable, None))
        })
    }
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
                jid: "a@b/r".into(),
                options: None
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
        // What only the service at pubsub.<domain> serves, PEP refuses
        // as it did before the parser was shared.
        for service_only in [
            "<iq xmlns='jabber:client' type='get'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions/></pubsub></iq>",
            "<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'><options node='n' jid='a@b'/></pubsub></iq>",
            "<iq xmlns='jabber:client' type='get'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><default/></pubsub></iq>",
        ] {
            assert_eq!(
                Request::parse(&iq(service_only)),
                Some(Err((
                    StanzaError::FeatureNotImplemented,
                    Some("unsupported")
                )))
            );
        }
        let instant = iq("<iq xmlns='jabber:client' type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create/></pubsub></iq>");
        assert_eq!(
            Request::parse(&instant),
            Some(Err((StanzaError::BadRequest, Some("nodeid-required"))))
        );
        let paged = iq("<iq xmlns='jabber:client' type='get'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/>\
             <set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set></pubsub></iq>");
        assert!(matches!(
            Request::parse(&paged),
            Some(Ok(Request::Items { page: None, .. }))
        ));
        let other =
            iq("<iq xmlns='jabber:client' type='get'><query xmlns='jabber:iq:version'/></iq>");
        assert_eq!(Request::parse(&other), None);
    }
}
