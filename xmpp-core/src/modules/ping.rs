//! XEP-0199 XMPP Ping: answer pings to the server.

use super::{Addressed, Context, Flow, Module, ModuleId};
use crate::ns;
use crate::stanza::iq_result;
use crate::xml::Element;

/// Its identity.
pub const ID: ModuleId = ModuleId::new("ping");

/// XEP-0199.
#[derive(Debug, Clone)]
pub struct Ping;

impl Module for Ping {
    fn id(&self) -> ModuleId {
        ID
    }
    fn server_features(&self) -> &'static [&'static str] {
        &[ns::PING]
    }
    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let ping = iq.attr("type") == Some("get")
            && iq.first_element().is_some_and(|c| c.is(ns::PING, "ping"));
        if !ping || !matches!(to, Addressed::Server { .. }) {
            return Flow::Pass;
        }
        cx.route(iq_result(iq));
        Flow::Handled
    }
}
