//! XML documents the server keeps for an account: XEP-0049 private XML
//! storage and XEP-0054 vcard-temp. Both are "store this element, give it
//! back later"; this module names the storage keys and builds the replies.

use super::{Addressed, Context, Event, Flow, Module, ModuleId};
use crate::spare::ReleaseSpare;
use crate::stanza::{iq_result, StanzaError};
use crate::storage::{KeyLimit, RequestId, StorageRequest, StorageResult};
use crate::xml::Element;
use std::collections::HashMap;

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

/// Identity of XEP-0049 private XML storage.
pub const PRIVATE_ID: ModuleId = ModuleId::new("private");
/// Identity of XEP-0054 vcard-temp.
pub const VCARD_ID: ModuleId = ModuleId::new("vcard");

/// One of the two stored-XML modules (each can be switched off alone):
/// a storage round trip per request, the iq answered once storage is.
#[derive(Debug, Clone)]
pub struct StoredXml {
    id: ModuleId,
    /// Requests waiting for storage: the iq and what it asked.
    waiting: HashMap<RequestId, (Element, StoredXmlRequest)>,
}

impl StoredXml {
    /// XEP-0049, with at most `Quotas::max_private_documents` documents
    /// per account.
    pub fn private() -> Self {
        StoredXml {
            id: PRIVATE_ID,
            waiting: HashMap::new(),
        }
    }

    /// XEP-0054.
    pub fn vcard() -> Self {
        StoredXml {
            id: VCARD_ID,
            waiting: HashMap::new(),
        }
    }
}

impl Module for StoredXml {
    fn id(&self) -> ModuleId {
        self.id
    }

    fn server_features(&self) -> &'static [&'static str] {
        if self.id == VCARD_ID {
            &[VCARD]
        } else {
            &[PRIVATE]
        }
    }

    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let Addressed::Account { account, own } = to else {
            return Flow::Pass;
        };
        let Some(req) = StoredXmlRequest::parse(iq) else {
            return Flow::Pass;
        };
        // Malformed requests are private XML's to refuse.
        let owner = match &req {
            Ok(r) if r.key() == VCARD_KEY => VCARD_ID,
            _ => PRIVATE_ID,
        };
        if owner != self.id {
            return Flow::Pass;
        }
        let req = match req {
            Ok(req) if req.allowed(own) => req,
            Ok(_) => {
                cx.bounce(iq, StanzaError::Forbidden);
                return Flow::Handled;
            }
            Err(e) => {
                cx.bounce(iq, e);
                return Flow::Handled;
            }
        };
        let key = req.key();
        let limit = matches!(req, StoredXmlRequest::PrivateSet { .. }).then(|| KeyLimit {
            prefix: PRIVATE_KEY_PREFIX.to_owned(),
            max: cx.quotas().max_private_documents,
        });
        let request = match req.value() {
            Some(v) => StorageRequest::StoreBlob {
                account: account.to_owned(),
                key,
                value: Some(v.to_owned()),
                limit,
            },
            None => StorageRequest::LoadBlob {
                account: account.to_owned(),
                key,
            },
        };
        let id = cx.request(request);
        self.waiting.insert(id, (iq.clone(), req));
        Flow::Handled
    }

    fn storage_answer(&mut self, cx: &mut Context<'_>, id: RequestId, result: StorageResult) {
        let Some((iq, req)) = self.waiting.remove(&id) else {
            return;
        };
        self.waiting.release_spare();
        let mut reply = match result {
            StorageResult::Blob(stored) => req.reply(&iq, stored.as_deref()),
            StorageResult::Done => req.reply(&iq, None),
            StorageResult::Full => {
                tracing::info!(
                    from = iq.attr("from").unwrap_or_default(),
                    "private XML document refused: max_private_documents reached"
                );
                return cx.bounce(&iq, StanzaError::ResourceConstraint);
            }
            other => {
                tracing::error!(?other, "stored XML request failed");
                return cx.bounce(&iq, StanzaError::InternalServerError);
            }
        };
        // The reply comes from the account the request was addressed to (or
        // from nobody, for the account's own no-`to` requests).
        if iq.attr("to").is_none() {
            reply.remove_attr("from");
        }
        cx.route(reply);
        // Only the account itself may write: `from` is one of its JIDs.
        let account = iq
            .attr("from")
            .and_then(|f| crate::jid::Jid::parse(f).ok())
            .map(|j| j.bare_str());
        match (&req, account) {
            (StoredXmlRequest::VcardSet { xml }, Some(account)) => {
                cx.announce(Event::VcardStored {
                    account: &account,
                    vcard: xml,
                });
            }
            (StoredXmlRequest::PrivateSet { xml, .. }, Some(account)) => {
                cx.announce(Event::PrivateStored {
                    account: &account,
                    xml,
                });
            }
            _ => {}
        }
    }
}

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
