//! Room registration (§7.10) and reserved nicknames (§7.12): an
//! unaffiliated user of an open room registers a nick with the
//! `muc#register` form and becomes a member whose nick nobody else may
//! take; the user may ask which nick is reserved for them.

use super::moderation::Done;
use super::permissions::Affiliation;
use super::room::{Env, Room};
use crate::modules::data_form::field;
use crate::modules::data_form::{parse_form, DATA};
use crate::ns;
use crate::stanza::StanzaError;
use crate::xml::Element;

/// The registration namespace (XEP-0077).
pub const REGISTER: &str = "jabber:iq:register";
/// `FORM_TYPE` of the registration form.
pub const FORM: &str = "http://jabber.org/protocol/muc#register";
/// The disco node asking for one's reserved nick (§7.12).
pub const ROOMUSER_NODE: &str = "x-roomuser-item";

impl Room {
    /// The nick `bare` registered, if any.
    pub fn reserved_nick(&self, bare: &str) -> Option<&str> {
        self.nicks
            .iter()
            .find(|(_, b)| *b == bare)
            .map(|(n, _)| n.as_str())
    }

    /// A registration request from `bare` (§7.10).
    pub fn register(
        &mut self,
        env: &Env<'_>,
        bare: &str,
        iq: &Element,
    ) -> Result<Done, StanzaError> {
        let aff = self.affiliation(env.settings, bare);
        if aff == Affiliation::Outcast {
            return Err(StanzaError::Forbidden);
        }
        if iq.attr("type") == Some("get") {
            let q = Element::new(REGISTER, "query");
            let q = match self.reserved_nick(bare) {
                Some(nick) => q
                    .with_child(Element::new(REGISTER, "registered"))
                    .with_child(Element::new(REGISTER, "username").with_text(nick)),
                None => q.with_child(
                    Element::new(DATA, "x")
                        .with_attr("type", "form")
                        .with_child(field("FORM_TYPE", "hidden", FORM))
                        .with_child(field("muc#register_roomnick", "text-single", "")),
                ),
            };
            return Ok(Done {
                payload: Some(q),
                ..Done::default()
            });
        }
        let x = iq
            .child(REGISTER, "query")
            .and_then(|q| q.child(DATA, "x"))
            .ok_or(StanzaError::BadRequest)?;
        let fields = parse_form(x)?;
        let nick = fields
            .iter()
            .find(|(k, _)| k == "muc#register_roomnick")
            .and_then(|(_, v)| v.first())
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .ok_or(StanzaError::NotAcceptable)?;
        if nick.len() > env.settings.nick_bytes_max || nick.contains('/') {
            return Err(StanzaError::NotAcceptable);
        }
        if self.config.members_only && aff < Affiliation::Member {
            // Admission to a members-only room is the admins' (§9.3).
            return Err(StanzaError::NotAllowed);
        }
        if self.nicks.get(&nick).is_some_and(|b| b != bare)
            || self.occupants.get(&nick).is_some_and(|o| o.bare != bare)
        {
            return Err(StanzaError::Conflict);
        }
        if !self.affiliations.contains_key(bare)
            && self.affiliations.len() >= env.settings.affiliations_max
        {
            return Err(StanzaError::ResourceConstraint);
        }
        self.nicks.retain(|_, b| b != bare);
        self.nicks.insert(nick, bare.to_owned());
        let then = if aff < Affiliation::Member {
            self.set_affiliation(env, bare, Affiliation::Member, None, None)
        } else {
            Vec::new()
        };
        Ok(Done {
            then,
            changed: true,
            ..Done::default()
        })
    }

    /// The answer to a §7.12 query: the reserved nick as an identity.
    pub fn roomuser_item(&self, bare: &str) -> Element {
        let q = Element::new(ns::DISCO_INFO, "query").with_attr("node", ROOMUSER_NODE);
        match self.reserved_nick(bare) {
            Some(nick) => q.with_child(
                Element::new(ns::DISCO_INFO, "identity")
                    .with_attr("category", "conference")
                    .with_attr("type", "text")
                    .with_attr("name", nick),
            ),
            None => q,
        }
    }
}
