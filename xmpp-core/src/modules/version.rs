//! XEP-0092 Software Version of the server.

use super::{ModuleCtx, ServerModule};
use crate::ns;
use crate::stanza::iq_result;
use crate::xml::Element;

/// XEP-0092.
#[derive(Debug)]
pub struct Version;

impl ServerModule for Version {
    fn name(&self) -> &'static str {
        "version"
    }
    fn features(&self) -> &'static [&'static str] {
        &[ns::VERSION]
    }
    fn handle_iq(&mut self, ctx: &ModuleCtx<'_>, iq: &Element) -> Option<Element> {
        let child = iq.first_element()?;
        if iq.attr("type") != Some("get") || !child.is(ns::VERSION, "query") {
            return None;
        }
        let query = Element::new(ns::VERSION, "query")
            .with_child(Element::new(ns::VERSION, "name").with_text(ctx.software.0))
            .with_child(Element::new(ns::VERSION, "version").with_text(ctx.software.1));
        Some(iq_result(iq).with_child(query))
    }
}
