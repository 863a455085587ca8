//! The hub side of stored XML (XEP-0049, XEP-0054): a storage round-trip
//! per request, the iq answered when storage is.

use super::{Hub, Pending};
use crate::modules::stored_xml::{StoredXmlRequest, PRIVATE_KEY_PREFIX};
use crate::stanza::StanzaError;
use crate::storage::{KeyLimit, StorageRequest, StorageResult};
use crate::xml::Element;

impl Hub {
    pub(super) fn stored_xml(
        &mut self,
        account: &str,
        iq: Element,
        req: StoredXmlRequest,
        own: bool,
    ) {
        if !req.allowed(own) {
            return self.bounce(&iq, StanzaError::Forbidden);
        }
        let key = req.key();
        let limit = matches!(req, StoredXmlRequest::PrivateSet { .. }).then(|| KeyLimit {
            prefix: PRIVATE_KEY_PREFIX.to_owned(),
            max: self.cfg.quotas.max_private_documents,
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
        self.request(request, Pending::StoredXml(Box::new((iq, req))));
    }

    pub(super) fn stored_xml_done(
        &mut self,
        iq: &Element,
        req: &StoredXmlRequest,
        result: StorageResult,
    ) {
        let mut reply = match result {
            StorageResult::Blob(stored) => req.reply(iq, stored.as_deref()),
            StorageResult::Done => req.reply(iq, None),
            StorageResult::Full => {
                tracing::info!(
                    from = iq.attr("from").unwrap_or_default(),
                    "private XML document refused: max_private_documents reached"
                );
                return self.bounce(iq, StanzaError::ResourceConstraint);
            }
            other => {
                tracing::error!(?other, "stored XML request failed");
                return self.bounce(iq, StanzaError::InternalServerError);
            }
        };
        // The reply comes from the account the request was addressed to (or
        // from nobody, for the account's own no-`to` requests).
        if iq.attr("to").is_none() {
            reply.remove_attr("from");
        }
        self.route(reply);
        if let StoredXmlRequest::VcardSet { xml } = req {
            // Only the account itself may set it: `from` is one of its JIDs.
            if let Some(account) = iq
                .attr("from")
                .and_then(|f| crate::jid::Jid::parse(f).ok())
                .map(|j| j.bare_str())
            {
                self.vcard_stored(&account, xml);
            }
        }
    }
}
