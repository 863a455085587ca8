//! XEP-0045's namespaces and the elements every flow shares: the
//! `muc#user` extension with its item and status codes, errors from the
//! room.

use super::permissions::{Affiliation, Role};
use crate::ns;
use crate::stanza::{error_reply, StanzaError};
use crate::xml::Element;

/// The join extension (`<x xmlns=muc>`).
pub const MUC: &str = "http://jabber.org/protocol/muc";
/// What the room adds to presence and messages.
pub const USER: &str = "http://jabber.org/protocol/muc#user";
/// Moderator and admin requests.
pub const ADMIN: &str = "http://jabber.org/protocol/muc#admin";
/// Owner requests.
pub const OWNER: &str = "http://jabber.org/protocol/muc#owner";
/// Voice requests (§7.13).
pub const REQUEST: &str = "http://jabber.org/protocol/muc#request";

/// Status codes (§15.6).
pub mod status {
    /// Real JIDs are visible to anyone.
    pub const NON_ANONYMOUS: u16 = 100;
    /// The presence is the recipient's own.
    pub const SELF: u16 = 110;
    /// The room is logged.
    pub const LOGGED: u16 = 170;
    /// A room was created.
    pub const CREATED: u16 = 201;
    /// The service changed the nick.
    pub const NICK_ASSIGNED: u16 = 210;
    /// Banned.
    pub const BANNED: u16 = 301;
    /// A nick change.
    pub const NICK_CHANGED: u16 = 303;
    /// Kicked.
    pub const KICKED: u16 = 307;
    /// Removed by an affiliation change.
    pub const AFFILIATION_REMOVED: u16 = 321;
    /// Removed: the room became members-only.
    pub const MEMBERS_ONLY: u16 = 322;
    /// A configuration change that is not about privacy.
    pub const CONFIG_CHANGED: u16 = 104;
}

/// An `<item/>` of `muc#user`.
#[derive(Debug, Clone, Default)]
pub struct Item<'a> {
    /// The affiliation.
    pub affiliation: Option<Affiliation>,
    /// The role.
    pub role: Option<Role>,
    /// The real JID, where the viewer may see it.
    pub jid: Option<&'a str>,
    /// The new nick (status 303).
    pub nick: Option<&'a str>,
    /// The nick of who acted (kick, ban).
    pub actor: Option<&'a str>,
    /// Why.
    pub reason: Option<&'a str>,
}

impl Item<'_> {
    /// As an element of `namespace`.
    pub fn element(&self, namespace: &'static str) -> Element {
        let mut e = Element::new(namespace, "item");
        if let Some(a) = self.affiliation {
            e.set_attr("affiliation", a.name());
        }
        if let Some(j) = self.jid {
            e.set_attr("jid", j);
        }
        if let Some(n) = self.nick {
            e.set_attr("nick", n);
        }
        if let Some(r) = self.role {
            e.set_attr("role", r.name());
        }
        if let Some(a) = self.actor {
            e = e.with_child(Element::new(namespace, "actor").with_attr("nick", a));
        }
        if let Some(r) = self.reason.filter(|r| !r.is_empty()) {
            e = e.with_child(Element::new(namespace, "reason").with_text(r));
        }
        e
    }
}

/// `<x xmlns=muc#user>` with `item` and status `codes`.
pub fn user_x(item: &Item<'_>, codes: &[u16]) -> Element {
    codes.iter().fold(
        Element::new(USER, "x").with_child(item.element(USER)),
        |x, c| x.with_child(Element::new(USER, "status").with_attr("code", c.to_string())),
    )
}

/// The error answer to `stanza`, from `by` (the room or the service).
pub fn refuse(stanza: &Element, cond: StanzaError, by: &str) -> Element {
    error_reply(stanza, cond, by)
}

/// A presence with the sender's payload but none of the MUC extensions
/// (the room adds its own `muc#user`).
pub fn cleaned(presence: &Element) -> Element {
    let mut p = Element::new(ns::CLIENT, "presence");
    for a in &presence.attrs {
        if a.name == "type" && a.value == "unavailable" {
            p.set_attr("type", "unavailable");
        }
    }
    p.children = presence
        .elements()
        .filter(|e| {
            !(e.is(MUC, "x") || e.is(USER, "x") || e.is(super::occupant_id::NS, "occupant-id"))
        })
        .cloned()
        .map(crate::xml::Node::Element)
        .collect();
    p
}
