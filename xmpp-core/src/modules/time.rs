//! XEP-0202 Entity Time: the server's UTC time (it keeps no time zone).

use super::{ModuleCtx, ServerModule};
use crate::stanza::iq_result;
use crate::time::format_datetime;
use crate::xml::Element;

/// XEP-0202 namespace.
const NS: &str = "urn:xmpp:time";

/// XEP-0202.
#[derive(Debug)]
pub struct EntityTime;

impl ServerModule for EntityTime {
    fn name(&self) -> &'static str {
        "time"
    }
    fn features(&self) -> &'static [&'static str] {
        &[NS]
    }
    fn handle_iq(&mut self, ctx: &ModuleCtx<'_>, iq: &Element) -> Option<Element> {
        let child = iq.first_element()?;
        if iq.attr("type") != Some("get") || !child.is(NS, "time") {
            return None;
        }
        let time = Element::new(NS, "time")
            .with_child(Element::new(NS, "tzo").with_text("+00:00"))
            .with_child(Element::new(NS, "utc").with_text(format_datetime(ctx.now)));
        Some(iq_result(iq).with_child(time))
    }
}
