//! A made-up protocol, `urn:example:fortune:0`, served by a hub module
//! written outside Vireo: the embedder implements
//! [`xmpp_core::modules::Module`] and adds it to the
//! [`xmpp_core::modules::ModuleSet`], no fork needed.
//!
//! - `<iq type='get' to='DOMAIN'><fortune xmlns='urn:example:fortune:0'/></iq>`
//!   is answered with `<fortune>` holding a saying;
//! - `<iq type='set' to='DOMAIN'><subscribe xmlns='urn:example:fortune:0'/></iq>`
//!   is answered with an empty result, then the server pushes a saying in
//!   a headline `<message>` from `DOMAIN` to the requesting resource;
//! - the namespace is listed in the server's disco#info.

use xmpp_core::jid::Jid;
use xmpp_core::modules::{Addressed, Context, Flow, Module, ModuleId};
use xmpp_core::stanza::{iq_result, StanzaError};
use xmpp_core::{ns, Element};

/// The protocol's namespace, also its disco feature.
pub const NS: &str = "urn:example:fortune:0";

/// Its identity among the hub's modules (configuration, logs).
pub const ID: ModuleId = ModuleId::new("fortune");

/// The module. `Clone + Sync` because a `ModuleSet` keeps it as a
/// prototype and gives each hub partition its own copy: the rotation below
/// is per partition, the sayings are the settings.
#[derive(Debug, Clone)]
pub struct Fortune {
    sayings: Vec<String>,
    /// Index of the next saying, modulo their number.
    next: usize,
}

impl Default for Fortune {
    fn default() -> Self {
        Fortune::new([
            "A module a day keeps the fork away.",
            "You will receive a message from the server.",
            "Trust only the certificate you were given.",
        ])
    }
}

impl Fortune {
    /// A module telling `sayings` in turn.
    pub fn new<S: Into<String>>(sayings: impl IntoIterator<Item = S>) -> Self {
        Fortune {
            sayings: sayings.into_iter().map(Into::into).collect(),
            next: 0,
        }
    }

    /// The next saying; `None` when there are none.
    fn draw(&mut self) -> Option<&str> {
        let i = self.next.checked_rem(self.sayings.len())?;
        self.next = self.next.wrapping_add(1);
        self.sayings.get(i).map(String::as_str)
    }

    /// `<fortune/>` get: the saying in the result.
    fn answer(&mut self, cx: &mut Context<'_>, iq: &Element) {
        match self.draw() {
            Some(saying) => {
                let fortune = Element::new(NS, "fortune").with_text(saying);
                cx.route(iq_result(iq).with_child(fortune));
            }
            None => cx.bounce(iq, StanzaError::ItemNotFound),
        }
    }

    /// `<subscribe/>` set: the result, then a message from the server to
    /// the resource that asked (its full JID, stamped by its stream).
    fn push(&mut self, cx: &mut Context<'_>, domain: &str, iq: &Element) {
        let Some(user) = iq
            .attr("from")
            .and_then(|f| Jid::parse(f).ok())
            .filter(|j| j.resource().is_some())
        else {
            return cx.bounce(iq, StanzaError::BadRequest);
        };
        let Some(saying) = self.draw() else {
            return cx.bounce(iq, StanzaError::ItemNotFound);
        };
        let message = Element::new(ns::CLIENT, "message")
            .with_attr("from", domain)
            .with_attr("to", user.to_string())
            .with_attr("type", "headline")
            .with_child(Element::new(NS, "fortune").with_text(saying))
            .with_child(Element::new(ns::CLIENT, "body").with_text(saying));
        cx.route(iq_result(iq));
        cx.route(message);
        tracing::debug!(to = %user, "pushed a fortune");
    }
}

impl Module for Fortune {
    fn id(&self) -> ModuleId {
        ID
    }

    fn server_features(&self) -> &'static [&'static str] {
        &[NS]
    }

    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        // Only requests to the server itself, in our namespace.
        let Addressed::Server { domain } = to else {
            return Flow::Pass;
        };
        let Some(payload) = iq.first_element().filter(|p| p.ns.as_ref() == NS) else {
            return Flow::Pass;
        };
        match (iq.attr("type"), payload.name.as_str()) {
            (Some("get"), "fortune") => self.answer(cx, iq),
            (Some("set"), "subscribe") => self.push(cx, domain, iq),
            _ => cx.bounce(iq, StanzaError::BadRequest),
        }
        Flow::Handled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sayings_rotate_and_none_is_none() {
        let mut f = Fortune::new(["a", "b"]);
        assert_eq!(f.draw(), Some("a"));
        assert_eq!(f.draw(), Some("b"));
        assert_eq!(f.draw(), Some("a"));
        assert_eq!(Fortune::new(Vec::<String>::new()).draw(), None);
    }
}
