//! Messages through the room: to everyone (§7.4) with the room's stanza
//! id (XEP-0359) and the sender's occupant id (XEP-0421), subject changes
//! (§8.1), private messages (§7.5), mediated invitations and declines
//! (§7.8) and voice requests (§7.13).

use super::config::AllowPm;
use super::permissions::{may_set_subject, may_speak, Role};
use super::protocol::{REQUEST, USER};
use super::room::{Env, Out, Room};
use crate::modules::data_form::field;
use crate::modules::data_form::{parse_form, DATA};
use crate::ns;
use crate::stanza::StanzaError;
use crate::xml::Element;

/// XEP-0359's namespace.
pub const SID: &str = "urn:xmpp:sid:0";

impl Room {
    /// A `groupchat` message from the session `full`; `id` is the room's
    /// stanza id for it.
    pub fn groupchat(
        &mut self,
        env: &Env<'_>,
        full: &str,
        message: &Element,
        id: &str,
    ) -> Result<Out, StanzaError> {
        let o = self.occupant_of(full).ok_or(StanzaError::NotAcceptable)?;
        let (nick, id_of, role) = (o.nick.clone(), o.id.clone(), o.role);
        let subject = message.child(ns::CLIENT, "subject");
        let body = message.child(ns::CLIENT, "body");
        if let (Some(s), None) = (subject, body) {
            if !may_set_subject(role, self.config.change_subject) {
                return Err(StanzaError::Forbidden);
            }
            if s.text().len() > env.settings.subject_bytes_max {
                return Err(StanzaError::NotAcceptable);
            }
        } else if !may_speak(role) {
            return Err(StanzaError::Forbidden);
        }
        let mut m = message.clone();
        m.remove_attr("to");
        m.set_attr("from", self.occupant_jid(&nick));
        // What only the room may say about the message.
        let room = self.jid.clone();
        m.children.retain(|n| match n {
            crate::xml::Node::Element(e) => {
                !(e.is(super::occupant_id::NS, "occupant-id")
                    || (e.is(SID, "stanza-id") && e.attr("by") == Some(room.as_str())))
            }
            _ => true,
        });
        let m = m
            .with_child(Element::new(super::occupant_id::NS, "occupant-id").with_attr("id", id_of))
            .with_child(
                Element::new(SID, "stanza-id")
                    .with_attr("id", id)
                    .with_attr("by", room),
            );
        let out = self.to_all(&m);
        if subject.is_some() && body.is_none() {
            self.subject = Some(m);
        } else if body.is_some() {
            self.history.push(
                env.now,
                m,
                env.settings.max_history_messages,
                env.settings.history_bytes_max,
            );
        }
        Ok(out)
    }

    /// A private message from the session `full` to the occupant `nick`.
    pub fn private(&self, full: &str, nick: &str, message: &Element) -> Result<Out, StanzaError> {
        let o = self.occupant_of(full).ok_or(StanzaError::NotAcceptable)?;
        if message.attr("type") == Some("groupchat") {
            return Err(StanzaError::BadRequest);
        }
        let allowed = match self.config.allow_pm {
            AllowPm::Anyone => true,
            AllowPm::Participants => o.role >= Role::Participant,
            AllowPm::Moderators => o.role == Role::Moderator,
            AllowPm::Nobody => false,
        };
        if !allowed {
            return Err(StanzaError::Forbidden);
        }
        let target = self.occupants.get(nick).ok_or(StanzaError::ItemNotFound)?;
        let mut m = message.clone();
        m.set_attr("from", self.occupant_jid(&o.nick));
        m.remove_children(USER, "x");
        m.remove_children(super::occupant_id::NS, "occupant-id");
        let m = m.with_child(Element::new(USER, "x")).with_child(
            Element::new(super::occupant_id::NS, "occupant-id")
                .with_attr("id", self.secret.derive(&self.jid, &o.bare)),
        );
        Ok(target
            .jids()
            .map(|to| {
                let mut m = m.clone();
                m.set_attr("to", to);
                m
            })
            .collect())
    }

    /// Invitations and declines (§7.8.2, §7.8.3) in a message from
    /// `full` to the room; `None` when it has none.
    pub fn mediate(&self, full: &str, message: &Element) -> Option<Result<Out, StanzaError>> {
        let x = message.child(USER, "x")?;
        let invites: Vec<&Element> = x.elements().filter(|e| e.is(USER, "invite")).collect();
        if let Some(decline) = x.child(USER, "decline") {
            let to = decline.attr("to")?;
            let mut d = Element::new(USER, "decline").with_attr("from", full);
            if let Some(r) = decline.child_text(USER, "reason") {
                d = d.with_child(Element::new(USER, "reason").with_text(r));
            }
            return Some(Ok(vec![Element::new(ns::CLIENT, "message")
                .with_attr("from", self.jid.clone())
                .with_attr("to", to)
                .with_child(Element::new(USER, "x").with_child(d))]));
        }
        if invites.is_empty() {
            return None;
        }
        let Some(o) = self.occupant_of(full) else {
            return Some(Err(StanzaError::NotAcceptable));
        };
        let may = o.role == Role::Moderator
            || (self.config.allow_invites && o.role >= Role::Visitor)
            || (!self.config.members_only && o.role >= Role::Participant);
        if !may {
            return Some(Err(StanzaError::Forbidden));
        }
        let out = invites
            .iter()
            .take(16)
            .filter_map(|i| {
                let to = i.attr("to")?;
                let mut inv = Element::new(USER, "invite").with_attr("from", full);
                if let Some(r) = i.child_text(USER, "reason") {
                    inv = inv.with_child(Element::new(USER, "reason").with_text(r));
                }
                let mut x = Element::new(USER, "x").with_child(inv);
                if let Some(p) = &self.config.password {
                    x = x.with_child(Element::new(USER, "password").with_text(p.clone()));
                }
                Some(
                    Element::new(ns::CLIENT, "message")
                        .with_attr("from", self.jid.clone())
                        .with_attr("to", to)
                        .with_child(x),
                )
            })
            .collect();
        Some(Ok(out))
    }

    /// A visitor's voice request (§7.13) from `full`: the approval form
    /// to every moderator; `None` when the message is no request.
    pub fn voice_request(
        &mut self,
        env: &Env<'_>,
        full: &str,
        message: &Element,
    ) -> Option<Result<Out, StanzaError>> {
        let x = message.child(DATA, "x")?;
        let form_type = x
            .elements()
            .find(|f| f.attr("var") == Some("FORM_TYPE"))
            .and_then(|f| f.child_text(DATA, "value"))?;
        if form_type != REQUEST {
            return None;
        }
        let fields = match parse_form(x) {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        let value = |k: &str| {
            fields
                .iter()
                .find(|(v, _)| v == k)
                .and_then(|(_, v)| v.first().cloned())
        };
        let Some(o) = self.occupant_of(full).cloned() else {
            return Some(Err(StanzaError::NotAcceptable));
        };
        if o.role == Role::Moderator && value("muc#roomnick").is_some() {
            // A moderator's answer to a request.
            let allow = matches!(value("muc#request_allow").as_deref(), Some("1" | "true"));
            let nick = value("muc#roomnick")?;
            self.voice_requests.remove(&nick);
            if !allow {
                return Some(Ok(Vec::new()));
            }
            let target = self.occupants.get_mut(&nick)?;
            if target.role != Role::Visitor {
                return Some(Ok(Vec::new()));
            }
            target.role = Role::Participant;
            let t = target.clone();
            return Some(Ok(self.broadcast(
                env,
                &t,
                None,
                super::protocol::Item::default(),
                &[],
            )));
        }
        if o.role != Role::Visitor {
            return Some(Ok(Vec::new()));
        }
        if !self.voice_requests.contains(&o.nick)
            && self.voice_requests.len() >= env.settings.voice_requests_max
        {
            return Some(Err(StanzaError::ResourceConstraint));
        }
        self.voice_requests.insert(o.nick.clone());
        let form = Element::new(DATA, "x")
            .with_attr("type", "form")
            .with_child(Element::new(DATA, "title").with_text("Voice request"))
            .with_child(field("FORM_TYPE", "hidden", REQUEST))
            .with_child(field("muc#role", "list-single", "participant"))
            .with_child(field("muc#jid", "jid-single", full))
            .with_child(field("muc#roomnick", "text-single", &o.nick))
            .with_child(field("muc#request_allow", "boolean", "0"));
        let m = Element::new(ns::CLIENT, "message")
            .with_attr("from", self.jid.clone())
            .with_child(form);
        let out = self
            .occupants
            .values()
            .filter(|v| v.role == Role::Moderator)
            .flat_map(|v| v.jids())
            .map(|to| {
                let mut m = m.clone();
                m.set_attr("to", to);
                m
            })
            .collect();
        Some(Ok(out))
    }
}
