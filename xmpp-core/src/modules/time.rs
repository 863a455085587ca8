//! XEP-0202 Entity Time: the server's UTC time (it keeps no time zone).

use super::{Addressed, Context, Flow, Module, ModuleId};
use crate::stanza::iq_result;
use crate::time::format_datetime;
use crate::xml::Element;

/// XEP-0202 namespace.
const NS: &str = "urn:xmpp:time";

/// XEP-0202.
#[derive(Debug, Clone)]
pub struct EntityTime;

/// Its identity.
pub const ID: ModuleId = ModuleId::new("time");

impl Module for EntityTime {
    fn id(&self) -> ModuleId {
        ID
    }
    fn server_features(&self) -> &'static [&'static str] {
        &[NS]
    }
    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let asks =
            iq.attr("type") == Some("get") && iq.first_element().is_some_and(|c| c.is(NS, "time"));
        if !asks || !matches!(to, Addressed::Server { .. }) {
            return Flow::Pass;
        }
        let time = Element::new(NS, "time")
            .with_child(Element::new(NS, "tzo").with_text("+00:00"))
            .with_child(Element::new(NS, "utc").with_text(format_datetime(cx.now())));
        cx.route(iq_result(iq).with_child(time));
        Flow::Handled
    }
}
