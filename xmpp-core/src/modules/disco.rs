//! XEP-0030 Service Discovery for the server: identity plus the features of
//! every registered module, never a hand-kept list.

use super::{ModuleCtx, ServerModule};
use crate::ns;
use crate::stanza::iq_result;
use crate::xml::Element;

/// XEP-0030.
#[derive(Debug)]
pub struct Disco;

impl ServerModule for Disco {
    fn name(&self) -> &'static str {
        "disco"
    }
    fn features(&self) -> &'static [&'static str] {
        &[ns::DISCO_INFO, ns::DISCO_ITEMS]
    }
    fn handle_iq(&mut self, ctx: &ModuleCtx<'_>, iq: &Element) -> Option<Element> {
        let child = iq.first_element()?;
        if iq.attr("type") != Some("get") {
            return None;
        }
        if child.is(ns::DISCO_INFO, "query") {
            if child.attr("node").is_some() {
                return None;
            }
            let mut q = Element::new(ns::DISCO_INFO, "query").with_child(
                Element::new(ns::DISCO_INFO, "identity")
                    .with_attr("category", "server")
                    .with_attr("type", "im")
                    .with_attr("name", ctx.software.0),
            );
            let mut features: Vec<&str> = ctx.features.to_vec();
            features.sort_unstable();
            features.dedup();
            for f in features {
                q = q.with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", f));
            }
            return Some(iq_result(iq).with_child(q));
        }
        if child.is(ns::DISCO_ITEMS, "query") && child.attr("node").is_none() {
            return Some(iq_result(iq).with_child(Element::new(ns::DISCO_ITEMS, "query")));
        }
        None
    }
}
