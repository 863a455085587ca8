//! XML documents the server keeps for an account: XEP-0049 private XML
//! storage and XEP-0054 vcard-temp. Both are "store this element, give it
//! back later"; this module names the storage keys and builds the replies.

use crate::stanza::{iq_result, StanzaError};
use crate::xml::Element;

/// XEP-0049 namespace.
pub const PRIVATE: &str = "jabber:iq:private";
/// XEP-0054 namespace.
pub const VCARD: &str = "vcard-temp";

/// What every private XML document's storage key starts with, so that
/// they can be counted (`Quotas::max_private_documents`).
pub const PRIVATE_KEY_PREFIX: &str = "private ";

/// Storage key of the account's vCard.
pub const VCARD_KEY: &str = "vcard";

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredXmlRequest {
    /// Read a private element (namespace, name).
    PrivateGet { ns: String, name: String },
    /// Store a private element.
    PrivateSet {
        ns: String,
        name: String,
        xml: String,
    },
    /// Read the vCard.
    VcardGet,
    /// Store the vCard.
    VcardSet { xml: String },
}

impl StoredXmlRequest {
    /// Parse an iq's payload; `None` when it is not one of ours.
    pub fn parse(iq: &Element) -> Option<Result<Self, StanzaError>> {
        let child = iq.first_element()?;
        let set = iq.attr("type") == Some("set");
        if child.is(PRIVATE, "query") {
            let mut inner = child.elements();
            let (Some(e), None) = (inner.next(), inner.next()) else {
                return Some(Err(StanzaError::BadRequest));
            };
            // XEP-0049 §2.3: jabber:* namespaces are reserved.
            if e.ns.starts_with("jabber:") || e.ns.is_empty() {
                return Some(Err(StanzaError::NotAcceptable));
            }
            let (ns, name) = (e.ns.to_string(), e.name.clone());
            return Some(Ok(if set {
                StoredXmlRequest::PrivateSet {
                    ns,
                    name,
                    xml: e.to_xml(),
                }
            } else {
                StoredXmlRequest::PrivateGet { ns, name }
            }));
        }
        if child.is(VCARD, "vCard") {
            return Some(Ok(if set {
                StoredXmlRequest::VcardSet {
                    xml: child.to_xml(),
                }
            } else {
                StoredXmlRequest::VcardGet
            }));
        }
        None
    }

    /// The storage key.
    pub fn key(&self) -> String {
        match self {
            StoredXmlRequest::PrivateGet { ns, name }
            | StoredXmlRequest::PrivateSet { ns, name, .. } => {
                format!("{PRIVATE_KEY_PREFIX}{ns} {name}")
            }
            StoredXmlRequest::VcardGet | StoredXmlRequest::VcardSet { .. } => VCARD_KEY.to_owned(),
        }
    }

    /// Only the account itself may write, and only it may read private data
    /// (anyone may read a vCard).
    pub fn allowed(&self, own: bool) -> bool {
        own || matches!(self, StoredXmlRequest::VcardGet)
    }

    /// The value to store, for writes.
    pub fn value(&self) -> Option<&str> {
        match self {
            StoredXmlRequest::PrivateSet { xml, .. } | StoredXmlRequest::VcardSet { xml } => {
                Some(xml)
            }
            _ => None,
        }
    }

    /// The result iq for `iq`, given what storage returned for a read.
    pub fn reply(&self, iq: &Element, stored: Option<&str>) -> Element {
        let stored = stored.and_then(|s| Element::parse(s.as_bytes()).ok());
        let payload = match self {
            StoredXmlRequest::PrivateGet { ns, name } => Some(
                Element::new(PRIVATE, "query")
                    .with_child(stored.unwrap_or_else(|| Element::new(ns.clone(), name.clone()))),
            ),
            StoredXmlRequest::VcardGet => {
                Some(stored.unwrap_or_else(|| Element::new(VCARD, "vCard")))
            }
            _ => None,
        };
        let mut r = iq_result(iq);
        if let Some(p) = payload {
            r = r.with_child(p);
        }
        r
    }
}

/// Features these modules add to the server's disco#info.
pub const FEATURES: &[&str] = &[PRIVATE, VCARD];

#[cfg(test)]
mod tests {
    use super::*;

    fn iq(xml: &str) -> Element {
        Element::parse(xml.as_bytes()).expect("test XML")
    }

    #[test]
    fn parses_private_and_vcard_requests() {
        let get = iq("<iq xmlns='jabber:client' type='get' id='1'><query xmlns='jabber:iq:private'><prefs xmlns='x:p'/></query></iq>");
        let req = StoredXmlRequest::parse(&get).expect("ours").expect("valid");
        assert_eq!(req.key(), "private x:p prefs");
        let reply = req.reply(&get, None);
        assert!(reply
            .child(PRIVATE, "query")
            .and_then(|q| q.child("x:p", "prefs"))
            .is_some());
        let bad = iq("<iq xmlns='jabber:client' type='set' id='2'><query xmlns='jabber:iq:private'><x xmlns='jabber:iq:roster'/></query></iq>");
        assert_eq!(
            StoredXmlRequest::parse(&bad),
            Some(Err(StanzaError::NotAcceptable))
        );
        let v = iq("<iq xmlns='jabber:client' type='get' id='3'><vCard xmlns='vcard-temp'/></iq>");
        let req = StoredXmlRequest::parse(&v).expect("ours").expect("valid");
        assert!(req.allowed(false));
        assert!(!StoredXmlRequest::VcardSet { xml: String::new() }.allowed(false));
    }
}
