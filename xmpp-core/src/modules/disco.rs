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
            // The plain query, or the XEP-0115 node#ver our caps announce.
            let node = child.attr("node");
            if node.is_some_and(|n| !n.starts_with(super::caps::NODE)) {
                return None;
            }
            let mut q = info_query(ctx);
            if let Some(n) = node {
                q.set_attr("node", n);
            }
            return Some(iq_result(iq).with_child(q));
        }
        if child.is(ns::DISCO_ITEMS, "query") && child.attr("node").is_none() {
            // Components named under the domain are its services, as
            // Prosody lists them (conference.example.org under example.org).
            let suffix = format!(".{}", ctx.domain);
            let mut q = Element::new(ns::DISCO_ITEMS, "query");
            for c in ctx.components.iter().filter(|c| c.ends_with(&suffix)) {
                q = q.with_child(Element::new(ns::DISCO_ITEMS, "item").with_attr("jid", c.clone()));
            }
            return Some(iq_result(iq).with_child(q));
        }
        None
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
pub fn info_query(ctx: &ModuleCtx<'_>) -> Element {
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
    if !ctx.contact.is_empty() {
        q = q.with_child(server_info(ctx.contact));
    }
    q
}
