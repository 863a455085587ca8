//! XEP-0092 Software Version of the server.

use super::{Addressed, Context, Flow, Module, ModuleId};
use crate::ns;
use crate::stanza::iq_result;
use crate::xml::Element;

/// XEP-0092.
#[derive(Debug, Clone)]
pub struct Version;

/// Its identity.
pub const ID: ModuleId = ModuleId::new("version");

impl Module for Version {
    fn id(&self) -> ModuleId {
        ID
    }
    fn server_features(&self) -> &'static [&'static str] {
        &[ns::VERSION]
    }
    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let asks = iq.attr("type") == Some("get")
            && iq
                .first_element()
                .is_some_and(|c| c.is(ns::VERSION, "query"));
        if !asks || !matches!(to, Addressed::Server { .. }) {
            return Flow::Pass;
        }
        let (name, version) = cx.software();
        let query = Element::new(ns::VERSION, "query")
            .with_child(Element::new(ns::VERSION, "name").with_text(name))
            .with_child(Element::new(ns::VERSION, "version").with_text(version));
        cx.route(iq_result(iq).with_child(query));
        Flow::Handled
    }
}
