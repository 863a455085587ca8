//! XEP-0199 XMPP Ping: answer pings to the server.

use super::{ModuleCtx, ServerModule};
use crate::ns;
use crate::stanza::iq_result;
use crate::xml::Element;

/// XEP-0199.
#[derive(Debug)]
pub struct Ping;

impl ServerModule for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }
    fn features(&self) -> &'static [&'static str] {
        &[ns::PING]
    }
    fn handle_iq(&mut self, _ctx: &ModuleCtx<'_>, iq: &Element) -> Option<Element> {
        let child = iq.first_element()?;
        (iq.attr("type") == Some("get") && child.is(ns::PING, "ping")).then(|| iq_result(iq))
    }
}
