//! Service discovery (§6): the service's identity and its public rooms,
//! a room's identity, type features and `muc#roominfo` form.

use super::config::ROOMINFO;
use super::protocol::{MUC, REQUEST};
use super::room::Room;
use crate::modules::data_form::field;
use crate::modules::data_form::DATA;
use crate::ns;
use crate::xml::Element;

fn identity(name: &str) -> Element {
    Element::new(ns::DISCO_INFO, "identity")
        .with_attr("category", "conference")
        .with_attr("type", "text")
        .with_attr("name", name)
}

fn feature(var: &str) -> Element {
    Element::new(ns::DISCO_INFO, "feature").with_attr("var", var)
}

/// The service's disco#info (§6.1); its disco#items pages with XEP-0059
/// ([`super::listing`]).
pub fn service_info() -> Element {
    [
        ns::DISCO_INFO,
        ns::DISCO_ITEMS,
        MUC,
        super::occupant_id::NS,
        crate::modules::mam::rsm::NS,
        super::unique::NS,
    ]
    .into_iter()
    .fold(
        Element::new(ns::DISCO_INFO, "query").with_child(identity("Chatrooms")),
        |q, f| q.with_child(feature(f)),
    )
}

/// The service's disco#items (§6.3): `rooms` as (JID, name).
pub fn service_items<'a>(rooms: impl Iterator<Item = (&'a str, &'a str)>) -> Element {
    rooms.fold(Element::new(ns::DISCO_ITEMS, "query"), |q, (jid, name)| {
        let mut i = Element::new(ns::DISCO_ITEMS, "item").with_attr("jid", jid);
        if !name.is_empty() {
            i.set_attr("name", name);
        }
        q.with_child(i)
    })
}

impl Room {
    /// The room's disco#info (§6.4).
    pub fn info(&self) -> Element {
        let name = if self.config.name.is_empty() {
            self.jid.split('@').next().unwrap_or_default()
        } else {
            &self.config.name
        };
        let mut q = Element::new(ns::DISCO_INFO, "query")
            .with_child(identity(name))
            .with_child(feature(MUC))
            .with_child(feature(REQUEST))
            .with_child(feature(super::register::REGISTER))
            .with_child(feature(super::message::SID))
            .with_child(feature(super::occupant_id::NS))
            .with_child(feature(super::retract::MODERATE_0))
            .with_child(feature(super::retract::MODERATE_1))
            .with_child(feature(
                "http://jabber.org/protocol/muc#self-ping-optimization",
            ));
        if self.config.logging {
            // XEP-0313 §6.1: the room's archive.
            q = q
                .with_child(feature(crate::modules::mam::NS))
                .with_child(feature(crate::modules::mam::EXTENDED));
        }
        for f in self.config.features() {
            q = q.with_child(feature(f));
        }
        let subject = self
            .subject
            .as_ref()
            .and_then(|m| m.child_text(ns::CLIENT, "subject"))
            .unwrap_or_default();
        q.with_child(
            Element::new(DATA, "x")
                .with_attr("type", "result")
                .with_child(field("FORM_TYPE", "hidden", ROOMINFO))
                .with_child(field(
                    "muc#roominfo_description",
                    "text-single",
                    &self.config.description,
                ))
                .with_child(field(
                    "muc#roominfo_occupants",
                    "text-single",
                    &self.occupants.len().to_string(),
                ))
                .with_child(field("muc#roominfo_subject", "text-single", &subject))
                .with_child(field(
                    "muc#roomconfig_changesubject",
                    "boolean",
                    if self.config.change_subject { "1" } else { "0" },
                )),
        )
    }
}
