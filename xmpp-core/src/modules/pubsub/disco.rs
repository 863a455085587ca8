//! XEP-0030 for the service and its nodes (§5.1 to §5.5).

use super::affiliations::may_read;
use super::op::Op;
use super::{Answer, FEATURES};
use crate::modules::xep0060::{Refusal, NS};
use crate::ns;
use crate::stanza::StanzaError;
use crate::xml::Element;

impl Op<'_, '_> {
    /// XEP-0030 info of the service or of a node (§5.1, §5.3, §5.4).
    pub(super) fn disco_info(&self, node: Option<String>) -> Result<Answer, Refusal> {
        let mut q = Element::new(ns::DISCO_INFO, "query");
        match node {
            None => {
                q = q.with_child(
                    Element::new(ns::DISCO_INFO, "identity")
                        .with_attr("category", "pubsub")
                        .with_attr("type", "service")
                        .with_attr("name", "Publish-Subscribe"),
                );
                for f in FEATURES {
                    q = q.with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", *f));
                }
            }
            Some(name) => {
                let n = self.node(&name)?;
                q = q
                    .with_attr("node", name.clone())
                    .with_child(
                        Element::new(ns::DISCO_INFO, "identity")
                            .with_attr("category", "pubsub")
                            .with_attr("type", "leaf"),
                    )
                    .with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", NS))
                    .with_child(n.config.meta_data(&n.owners()));
            }
        }
        Answer::with(q)
    }

    /// XEP-0030 items: the nodes (§5.2), or a node's item ids (§5.5).
    pub(super) fn disco_items(&self, node: Option<String>) -> Result<Answer, Refusal> {
        let mut q = Element::new(ns::DISCO_ITEMS, "query");
        match node {
            None => {
                let index = self
                    .svc
                    .index
                    .as_ref()
                    .ok_or((StanzaError::InternalServerError, None))?;
                for name in index.keys() {
                    q = q.with_child(
                        Element::new(ns::DISCO_ITEMS, "item")
                            .with_attr("jid", self.domain)
                            .with_attr("node", name.clone()),
                    );
                }
            }
            Some(name) => {
                let n = self.node(&name)?;
                may_read(&n.config, self.affiliation(n), self.subscribed(n))?;
                q = q.with_attr("node", name);
                for i in &n.items {
                    q = q.with_child(
                        Element::new(ns::DISCO_ITEMS, "item")
                            .with_attr("jid", self.domain)
                            .with_attr("name", i.id.clone()),
                    );
                }
            }
        }
        Answer::with(q)
    }
}
