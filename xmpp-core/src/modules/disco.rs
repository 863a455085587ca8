//! XEP-0030 Service Discovery for the server: identity plus the features of
//! every registered module, never a hand-kept list.

use super::{Addressed, Context, Flow, Module, ModuleId};
use crate::ns;
use crate::stanza::iq_result;
use crate::xml::Element;

/// Its identity (it cannot be switched off: every client needs it).
pub const ID: ModuleId = ModuleId::new("disco");

/// XEP-0030.
#[derive(Debug, Clone)]
pub struct Disco;

impl Module for Disco {
    fn id(&self) -> ModuleId {
        ID
    }
    fn server_features(&self) -> &'static [&'static str] {
        &[ns::DISCO_INFO, ns::DISCO_ITEMS]
    }
    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let (Addressed::Server { domain }, Some(child)) = (to, iq.first_element()) else {
            return Flow::Pass;
        };
        if iq.attr("type") != Some("get") {
            return Flow::Pass;
        }
        if child.is(ns::DISCO_INFO, "query") {
            // The plain query, or the XEP-0115 node#ver our caps announce.
            let node = child.attr("node");
            if node.is_some_and(|n| !n.starts_with(super::caps::NODE)) {
                return Flow::Pass;
            }
            let (name, _) = cx.software();
            let mut q = info_query(name, cx.server_features(), cx.contact());
            if let Some(n) = node {
                q.set_attr("node", n);
            }
            cx.route(iq_result(iq).with_child(q));
            return Flow::Handled;
        }
        if child.is(ns::DISCO_ITEMS, "query") && child.attr("node").is_none() {
            // Components named under the domain are its services, as
            // Prosody lists them (conference.example.org under example.org).
            let suffix = format!(".{domain}");
            let mut q = Element::new(ns::DISCO_ITEMS, "query");
            let hosted = cx.components().iter().chain(cx.services());
            for c in hosted.filter(|c| c.ends_with(&suffix)) {
                q = q.with_child(Element::new(ns::DISCO_ITEMS, "item").with_attr("jid", c.clone()));
            }
            cx.route(iq_result(iq).with_child(q));
            return Flow::Handled;
        }
        Flow::Pass
    }
}

/// XEP-0157: the serverinfo data form (XEP-0128 extension of disco#info).
fn server_info(contact: &[(String, Vec<String>)]) -> Element {
    const DATA: &str = "jabber:x:data";
    let mut form = Element::new(DATA, "x")
        .with_attr("type", "result")
        .with_child(
            Element::new(DATA, "field")
                .with_attr("var", "FORM_TYPE")
                .with_attr("type", "hidden")
                .with_child(
                    Element::new(DATA, "value").with_text("http://jabber.org/network/serverinfo"),
                ),
        );
    for (kind, uris) in contact {
        let mut field = Element::new(DATA, "field").with_attr("var", format!("{kind}-addresses"));
        for uri in uris {
            field = field.with_child(Element::new(DATA, "value").with_text(uri.clone()));
        }
        form = form.with_child(field);
    }
    form
}

/// The server's disco#info `<query/>`: identity, the registered modules'
/// features, and the XEP-0157 form when contact addresses are configured.
/// XEP-0115 hashes exactly this.
pub fn info_query(
    software: &str,
    features: &[&'static str],
    contact: &[(String, Vec<String>)],
) -> Element {
    let mut q = Element::new(ns::DISCO_INFO, "query").with_child(
        Element::new(ns::DISCO_INFO, "identity")
            .with_attr("category", "server")
            .with_attr("type", "im")
            .with_attr("name", software),
    );
    let mut features: Vec<&str> = features.to_vec();
    features.sort_unstable();
    features.dedup();
    for f in features {
        q = q.with_child(Element::new(ns::DISCO_INFO, "feature").with_attr("var", f));
    }
    if !contact.is_empty() {
        q = q.with_child(server_info(contact));
    }
    q
}
