//! XEP-0012 Last Activity addressed to the server: its uptime in seconds
//! (§6 of the XEP).

use super::{ModuleCtx, ServerModule};
use crate::stanza::iq_result;
use crate::xml::Element;

/// XEP-0012 namespace.
const NS: &str = "jabber:iq:last";

/// XEP-0012 for the server.
#[derive(Debug)]
pub struct LastActivity;

impl ServerModule for LastActivity {
    fn name(&self) -> &'static str {
        "last"
    }
    fn features(&self) -> &'static [&'static str] {
        &[NS]
    }
    fn handle_iq(&mut self, ctx: &ModuleCtx<'_>, iq: &Element) -> Option<Element> {
        let child = iq.first_element()?;
        if iq.attr("type") != Some("get") || !child.is(NS, "query") {
            return None;
        }
        let uptime = ctx.now.saturating_sub(ctx.started) / 1000;
        let query = Element::new(NS, "query").with_attr("seconds", uptime.to_string());
        Some(iq_result(iq).with_child(query))
    }
}
