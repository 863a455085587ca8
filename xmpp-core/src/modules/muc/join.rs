//! Entering and leaving (§7.2, §7.14), presence updates and nick changes
//! (§7.6): who may enter, in which role, what the new occupant receives
//! (the others' presence, its own with status codes, the history, the
//! subject) and what everyone else sees.

use super::history::Request;
use super::occupant::Occupant;
use super::permissions::{default_role, may_enter, Affiliation};
use super::protocol::{cleaned, status, Item, MUC};
use super::room::{Env, Out, Room};
use crate::ns;
use crate::stanza::StanzaError;
use crate::xml::Element;

impl Room {
    /// The session `full` (of `bare`) enters as `nick` with `presence`;
    /// `created` when this join created the room (status 201).
    pub fn enter(
        &mut self,
        env: &Env<'_>,
        full: &str,
        bare: &str,
        nick: &str,
        presence: &Element,
        created: bool,
    ) -> Result<Out, StanzaError> {
        let aff = self.affiliation(env.settings, bare);
        if self.locked && aff != Affiliation::Owner {
            return Err(StanzaError::ItemNotFound);
        }
        may_enter(aff, self.config.members_only)?;
        if let Some(secret) = &self.config.password {
            let given = presence
                .child(MUC, "x")
                .and_then(|x| x.child_text(MUC, "password"));
            if given.as_deref() != Some(secret.as_str()) {
                return Err(StanzaError::NotAuthorized);
            }
        }
        let existing = self.occupants.get(nick).map(|o| o.bare.as_str());
        if existing.is_some_and(|b| b != bare)
            || self.nicks.get(nick).is_some_and(|owner| owner != bare)
        {
            return Err(StanzaError::Conflict);
        }
        let own = cleaned(presence);
        if existing.is_some() {
            // Another session of the same user under the same nick
            // (§7.2.9): it sees the room; the others see nothing new.
            let Some(o) = self.occupants.get_mut(nick) else {
                return Err(StanzaError::InternalServerError);
            };
            o.set_presence(full, own);
            self.by_jid.insert(full.to_owned(), nick.to_owned());
            return Ok(self.welcome(env, nick, full, presence, false));
        }
        let cap = self.config.max_users.min(env.settings.occupants_max);
        if self.occupants.len() >= cap && !aff.is_admin() {
            return Err(StanzaError::ServiceUnavailable);
        }
        let o = Occupant::new(
            nick,
            bare,
            full,
            own,
            default_role(aff, self.config.moderated),
            self.secret.derive(&self.jid, bare),
        );
        self.occupants.insert(nick.to_owned(), o);
        self.by_jid.insert(full.to_owned(), nick.to_owned());
        Ok(self.welcome(env, nick, full, presence, created))
    }

    /// What a session that just entered as `nick` receives, and what the
    /// others see of a new occupant (nothing when it is another session
    /// of a present one).
    fn welcome(
        &self,
        env: &Env<'_>,
        nick: &str,
        full: &str,
        presence: &Element,
        created: bool,
    ) -> Out {
        let Some(me) = self.occupants.get(nick) else {
            return Vec::new();
        };
        let first = me.sessions.len() == 1;
        let mut out = Vec::new();
        for o in self.in_order(env.settings) {
            if o.nick != nick {
                out.push(self.presence_of(env, o, full, me, None, Item::default(), &[]));
            }
        }
        if first {
            for viewer in self.occupants.values().filter(|v| v.nick != nick) {
                for to in viewer.jids() {
                    out.push(self.presence_of(env, me, to, viewer, None, Item::default(), &[]));
                }
            }
        }
        let mut codes = vec![status::SELF];
        if self.config.whois_anyone {
            codes.push(status::NON_ANONYMOUS);
        }
        if self.config.logging {
            codes.push(status::LOGGED);
        }
        if created {
            codes.push(status::CREATED);
        }
        codes.sort_unstable();
        out.push(self.presence_of(env, me, full, me, None, Item::default(), &codes));
        let req = Request::parse(presence, env.now);
        out.extend(
            self.history
                .replay(req, env.settings.max_history_messages, &self.jid, full),
        );
        let mut subject = self.subject.clone().unwrap_or_else(|| {
            Element::new(ns::CLIENT, "message")
                .with_attr("from", self.jid.clone())
                .with_attr("type", "groupchat")
                .with_child(Element::new(ns::CLIENT, "subject"))
        });
        subject.set_attr("to", full);
        out.push(subject);
        out
    }

    /// The session `full` left (or its client disappeared): the others
    /// see the occupant go once its last session is gone.
    pub fn leave(&mut self, env: &Env<'_>, full: &str, presence: &Element) -> Out {
        let Some(nick) = self.by_jid.get(full).cloned() else {
            return Vec::new();
        };
        let Some(o) = self.occupants.get(&nick) else {
            return Vec::new();
        };
        let mut unavailable = cleaned(presence);
        unavailable.set_attr("type", "unavailable");
        if o.sessions.len() > 1 {
            let me = o.clone();
            let out = vec![self.presence_of(
                env,
                &me,
                full,
                &me,
                Some(&unavailable),
                Item::default(),
                &[status::SELF],
            )];
            if let Some(o) = self.occupants.get_mut(&nick) {
                o.remove_session(full);
            }
            self.by_jid.remove(full);
            return out;
        }
        let out = self.broadcast(env, &o.clone(), Some(&unavailable), Item::default(), &[]);
        self.drop_occupant(&nick);
        out
    }

    /// A present session sent new availability (§7.7): everyone sees it.
    pub fn update(&mut self, env: &Env<'_>, full: &str, presence: &Element) -> Out {
        let Some(nick) = self.by_jid.get(full).cloned() else {
            return Vec::new();
        };
        let Some(o) = self.occupants.get_mut(&nick) else {
            return Vec::new();
        };
        o.set_presence(full, cleaned(presence));
        let o = o.clone();
        self.broadcast(env, &o, None, Item::default(), &[])
    }

    /// The session `full` asks for the nick `new` (§7.6): every session
    /// of the occupant moves.
    pub fn change_nick(
        &mut self,
        env: &Env<'_>,
        full: &str,
        new: &str,
    ) -> Result<Out, StanzaError> {
        let Some(old) = self.by_jid.get(full).cloned() else {
            return Err(StanzaError::NotAcceptable);
        };
        let Some(o) = self.occupants.get(&old).cloned() else {
            return Err(StanzaError::NotAcceptable);
        };
        if self.occupants.contains_key(new)
            || self.nicks.get(new).is_some_and(|owner| *owner != o.bare)
        {
            return Err(StanzaError::Conflict);
        }
        let unavailable = Element::new(ns::CLIENT, "presence").with_attr("type", "unavailable");
        let mut out = self.broadcast(
            env,
            &o,
            Some(&unavailable),
            Item {
                nick: Some(new),
                ..Item::default()
            },
            &[status::NICK_CHANGED],
        );
        self.occupants.remove(&old);
        let moved = Occupant {
            nick: new.to_owned(),
            ..o
        };
        for j in moved.jids() {
            self.by_jid.insert(j.to_owned(), new.to_owned());
        }
        self.occupants.insert(new.to_owned(), moved.clone());
        if self.voice_requests.remove(&old) {
            self.voice_requests.insert(new.to_owned());
        }
        out.extend(self.broadcast(env, &moved, None, Item::default(), &[]));
        Ok(out)
    }
}
