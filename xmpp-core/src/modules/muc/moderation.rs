//! Moderator, admin and owner requests (§8–§10): role changes (kick,
//! voice, moderator), affiliation changes (ban, member, admin, owner)
//! with item lists, the lists themselves, the configuration form and
//! destruction. Every change is checked against [`super::permissions`]
//! as a whole before any is applied.

use super::permissions::{
    default_role, may_own, may_read_list, may_set_affiliation, may_set_role, Affiliation, Role,
};
use super::protocol::{status, Item, ADMIN, OWNER, USER};
use super::room::{Env, Out, Room};
use crate::ns;
use crate::stanza::StanzaError;
use crate::xml::Element;

/// Most items of one request.
const ITEMS_MAX: usize = 256;

/// What a request did.
#[derive(Debug, Default)]
pub struct Done {
    /// The result's payload.
    pub payload: Option<Element>,
    /// Stanzas to send after the result.
    pub then: Out,
    /// The room's configuration or affiliations changed: store them.
    pub changed: bool,
    /// The room is gone.
    pub destroyed: bool,
    /// Where its occupants were sent, when destroyed.
    pub venue: Option<String>,
}

/// One change of an admin request.
enum Change {
    Role {
        nick: String,
        role: Role,
    },
    Affiliation {
        jid: String,
        affiliation: Affiliation,
    },
}

impl Room {
    /// A `muc#admin` request from `full` (of `bare`).
    pub fn admin(
        &mut self,
        env: &Env<'_>,
        full: &str,
        bare: &str,
        iq: &Element,
    ) -> Result<Done, StanzaError> {
        let q = iq.child(ADMIN, "query").ok_or(StanzaError::BadRequest)?;
        let items: Vec<&Element> = q.elements().filter(|e| e.is(ADMIN, "item")).collect();
        if items.is_empty() || items.len() > ITEMS_MAX {
            return Err(StanzaError::BadRequest);
        }
        let aff = self.affiliation(env.settings, bare);
        let role = self.occupant_of(full).map_or(Role::None, |o| o.role);
        if iq.attr("type") == Some("get") {
            let [item] = items.as_slice() else {
                return Err(StanzaError::BadRequest);
            };
            return self.list(env, aff, role, item);
        }
        let mut changes = Vec::new();
        for item in &items {
            let change = match (item.attr("nick"), item.attr("role"), item.attr("jid")) {
                (Some(nick), Some(r), _) => Change::Role {
                    nick: nick.to_owned(),
                    role: Role::parse(r).ok_or(StanzaError::BadRequest)?,
                },
                (_, None, Some(jid)) => Change::Affiliation {
                    jid: crate::jid::Jid::parse(jid)
                        .map_err(|_| StanzaError::JidMalformed)?
                        .bare_str(),
                    affiliation: item
                        .attr("affiliation")
                        .and_then(Affiliation::parse)
                        .ok_or(StanzaError::BadRequest)?,
                },
                _ => return Err(StanzaError::BadRequest),
            };
            match &change {
                Change::Role { nick, role: new } => {
                    let t = self.occupants.get(nick).ok_or(StanzaError::ItemNotFound)?;
                    let t_aff = self.affiliation(env.settings, &t.bare);
                    may_set_role(role, aff, t.role, t_aff, *new)?;
                }
                Change::Affiliation {
                    jid,
                    affiliation: new,
                } => {
                    let current = self.affiliation(env.settings, jid);
                    may_set_affiliation(aff, current, *new)?;
                    if current == Affiliation::Owner
                        && *new != Affiliation::Owner
                        && self.owners() <= 1
                    {
                        // The last owner stays (§10.6).
                        return Err(StanzaError::Conflict);
                    }
                    if !self.affiliations.contains_key(jid)
                        && self.affiliations.len() >= env.settings.affiliations_max
                    {
                        return Err(StanzaError::ResourceConstraint);
                    }
                }
            }
            changes.push((change, item.child_text(ADMIN, "reason")));
        }
        let actor = self.occupant_of(full).map(|o| o.nick.clone());
        let mut done = Done::default();
        for (change, reason) in changes {
            match change {
                Change::Role { nick, role: new } => {
                    done.then.extend(self.set_role(
                        env,
                        &nick,
                        new,
                        actor.as_deref(),
                        reason.as_deref(),
                    ));
                }
                Change::Affiliation {
                    jid,
                    affiliation: new,
                } => {
                    done.changed = true;
                    done.then.extend(self.set_affiliation(
                        env,
                        &jid,
                        new,
                        actor.as_deref(),
                        reason.as_deref(),
                    ));
                }
            }
        }
        Ok(done)
    }

    fn owners(&self) -> usize {
        self.affiliations
            .values()
            .filter(|a| **a == Affiliation::Owner)
            .count()
    }

    /// A list by role or affiliation (§8.5, §9.5, §10.5, §10.8).
    fn list(
        &self,
        env: &Env<'_>,
        aff: Affiliation,
        role: Role,
        item: &Element,
    ) -> Result<Done, StanzaError> {
        let mut q = Element::new(ADMIN, "query");
        if let Some(r) = item.attr("role") {
            let r = Role::parse(r).ok_or(StanzaError::BadRequest)?;
            if role != Role::Moderator {
                return Err(StanzaError::Forbidden);
            }
            for o in self.occupants.values().filter(|o| o.role == r) {
                q = q.with_child(
                    Item {
                        affiliation: Some(self.affiliation(env.settings, &o.bare)),
                        role: Some(o.role),
                        jid: o.jids().next(),
                        nick: Some(&o.nick),
                        ..Item::default()
                    }
                    .element(ADMIN),
                );
            }
        } else {
            let a = item
                .attr("affiliation")
                .and_then(Affiliation::parse)
                .filter(|a| *a != Affiliation::None)
                .ok_or(StanzaError::BadRequest)?;
            if !may_read_list(aff, a) {
                return Err(StanzaError::Forbidden);
            }
            for (jid, _) in self.affiliations.iter().filter(|(_, x)| **x == a) {
                let nick = self
                    .nicks
                    .iter()
                    .find(|(_, b)| *b == jid)
                    .map(|(n, _)| n.as_str());
                q = q.with_child(
                    Item {
                        affiliation: Some(a),
                        jid: Some(jid),
                        nick,
                        ..Item::default()
                    }
                    .element(ADMIN),
                );
            }
        }
        Ok(Done {
            payload: Some(q),
            ..Done::default()
        })
    }

    /// Apply a checked role change.
    fn set_role(
        &mut self,
        env: &Env<'_>,
        nick: &str,
        new: Role,
        actor: Option<&str>,
        reason: Option<&str>,
    ) -> Out {
        let item = Item {
            actor,
            reason,
            ..Item::default()
        };
        if new == Role::None {
            return self.remove(env, nick, item, &[status::KICKED]);
        }
        let Some(o) = self.occupants.get_mut(nick) else {
            return Vec::new();
        };
        o.role = new;
        let o = o.clone();
        self.voice_requests.remove(nick);
        self.broadcast(env, &o, None, item, &[])
    }

    /// Apply a checked affiliation change of `jid`, and its consequences
    /// for the user's occupants (§9.1–9.8).
    pub fn set_affiliation(
        &mut self,
        env: &Env<'_>,
        jid: &str,
        new: Affiliation,
        actor: Option<&str>,
        reason: Option<&str>,
    ) -> Out {
        if new == Affiliation::None {
            self.affiliations.remove(jid);
            self.nicks.retain(|_, b| b != jid);
        } else {
            self.affiliations.insert(jid.to_owned(), new);
        }
        let nicks: Vec<String> = self
            .occupants
            .values()
            .filter(|o| o.bare == jid)
            .map(|o| o.nick.clone())
            .collect();
        let item = Item {
            actor,
            reason,
            ..Item::default()
        };
        let mut out = Vec::new();
        for nick in nicks {
            if new == Affiliation::Outcast {
                out.extend(self.remove(env, &nick, item.clone(), &[status::BANNED]));
            } else if new == Affiliation::None && self.config.members_only {
                out.extend(self.remove(env, &nick, item.clone(), &[status::AFFILIATION_REMOVED]));
            } else if let Some(o) = self.occupants.get_mut(&nick) {
                o.role = default_role(new, self.config.moderated);
                let o = o.clone();
                out.extend(self.broadcast(env, &o, None, item.clone(), &[]));
            }
        }
        out
    }

    /// A `muc#owner` request from `bare` (§10).
    pub fn owner(&mut self, env: &Env<'_>, bare: &str, iq: &Element) -> Result<Done, StanzaError> {
        let q = iq.child(OWNER, "query").ok_or(StanzaError::BadRequest)?;
        if !may_own(self.affiliation(env.settings, bare)) {
            return Err(StanzaError::Forbidden);
        }
        let cap = env.settings.occupants_max;
        if iq.attr("type") == Some("get") {
            return Ok(Done {
                payload: Some(Element::new(OWNER, "query").with_child(self.config.form(cap))),
                ..Done::default()
            });
        }
        if let Some(d) = q.child(OWNER, "destroy") {
            let out = self.destroy(d.attr("jid"), d.child_text(OWNER, "reason").as_deref());
            return Ok(Done {
                then: out,
                destroyed: true,
                changed: true,
                venue: d.attr("jid").map(str::to_owned),
                ..Done::default()
            });
        }
        let x = q
            .child(crate::modules::data_form::DATA, "x")
            .ok_or(StanzaError::BadRequest)?;
        match x.attr("type") {
            Some("cancel") if self.locked => {
                let out = self.destroy(None, None);
                Ok(Done {
                    then: out,
                    destroyed: true,
                    ..Done::default()
                })
            }
            Some("cancel") => Ok(Done::default()),
            Some("submit") => {
                let was_members_only = self.config.members_only;
                self.config.apply(x, cap)?;
                self.config.logging |= env.settings.log_all_rooms;
                let unlocked = std::mem::replace(&mut self.locked, false);
                let mut then = Vec::new();
                if self.config.members_only && !was_members_only {
                    let gone: Vec<String> = self
                        .occupants
                        .values()
                        .filter(|o| self.affiliation(env.settings, &o.bare) < Affiliation::Member)
                        .map(|o| o.nick.clone())
                        .collect();
                    for nick in gone {
                        then.extend(self.remove(
                            env,
                            &nick,
                            Item::default(),
                            &[status::MEMBERS_ONLY],
                        ));
                    }
                }
                if !unlocked {
                    let notice = Element::new(ns::CLIENT, "message")
                        .with_attr("from", self.jid.clone())
                        .with_attr("type", "groupchat")
                        .with_child(
                            Element::new(USER, "x").with_child(
                                Element::new(USER, "status")
                                    .with_attr("code", status::CONFIG_CHANGED.to_string()),
                            ),
                        );
                    then.extend(self.to_all(&notice));
                }
                Ok(Done {
                    then,
                    changed: true,
                    ..Done::default()
                })
            }
            _ => Err(StanzaError::BadRequest),
        }
    }

    /// Everyone leaves a destroyed room (§10.9), told where to go.
    pub fn destroy(&mut self, venue: Option<&str>, reason: Option<&str>) -> Out {
        let mut d = Element::new(USER, "destroy");
        if let Some(v) = venue {
            d.set_attr("jid", v);
        }
        if let Some(r) = reason {
            d = d.with_child(Element::new(USER, "reason").with_text(r));
        }
        let x = Element::new(USER, "x")
            .with_child(
                Item {
                    affiliation: Some(Affiliation::None),
                    role: Some(Role::None),
                    ..Item::default()
                }
                .element(USER),
            )
            .with_child(d);
        let mut out = Vec::new();
        for o in self.occupants.values() {
            for to in o.jids() {
                out.push(
                    Element::new(ns::CLIENT, "presence")
                        .with_attr("from", self.occupant_jid(&o.nick))
                        .with_attr("to", to)
                        .with_attr("type", "unavailable")
                        .with_child(x.clone()),
                );
            }
        }
        self.occupants.clear();
        self.by_jid.clear();
        out
    }
}
