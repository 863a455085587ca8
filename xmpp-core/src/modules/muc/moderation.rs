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
use crate::modules::data_form::field_values;
use crate::ns;
use crate::stanza::StanzaError;
use crate::xml::Element;
use std::collections::BTreeSet;

/// The configuration form's full list of owners (§10.2).
pub const ROOMOWNERS: &str = "muc#roomconfig_roomowners";
/// The configuration form's full list of admins (§10.2).
pub const ROOMADMINS: &str = "muc#roomconfig_roomadmins";

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
        let mut affiliations = Vec::new();
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
                } => affiliations.push((jid.clone(), *new)),
            }
            changes.push((change, item.child_text(ADMIN, "reason")));
        }
        self.check_affiliations(env, aff, &affiliations)?;
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

    /// Check affiliation changes by an actor with `aff` as a whole, before
    /// any is applied (§9, §10.3–§10.7): each against §5.2.2's chart, the
    /// room keeps an owner (§10.6: the last one may not leave the list,
    /// however many items the request has), and the affiliation budget.
    pub(super) fn check_affiliations(
        &self,
        env: &Env<'_>,
        aff: Affiliation,
        changes: &[(String, Affiliation)],
    ) -> Result<(), StanzaError> {
        let mut owners: BTreeSet<&str> = self
            .affiliations
            .iter()
            .filter(|(_, a)| **a == Affiliation::Owner)
            .map(|(j, _)| j.as_str())
            .collect();
        let mut demoted = false;
        let mut added = BTreeSet::new();
        for (jid, new) in changes {
            may_set_affiliation(aff, self.affiliation(env.settings, jid), *new)?;
            if *new == Affiliation::Owner {
                owners.insert(jid);
            } else if owners.remove(jid.as_str()) {
                demoted = true;
            }
            if *new != Affiliation::None && !self.affiliations.contains_key(jid) {
                added.insert(jid.as_str());
            }
        }
        if demoted && owners.is_empty() {
            return Err(StanzaError::Conflict);
        }
        if self.affiliations.len().saturating_add(added.len()) > env.settings.affiliations_max {
            return Err(StanzaError::ResourceConstraint);
        }
        Ok(())
    }

    /// The stored users with affiliation `a`.
    fn with_affiliation(&self, a: Affiliation) -> impl Iterator<Item = &str> {
        self.affiliations
            .iter()
            .filter(move |(_, x)| **x == a)
            .map(|(j, _)| j.as_str())
    }

    /// The affiliation changes that make the owner and admin lists of a
    /// submitted configuration form (§10.2's `muc#roomconfig_roomowners`
    /// and `muc#roomconfig_roomadmins`, full lists) the room's: those
    /// listed get the list's affiliation, those who left a list (and are
    /// on neither) become `none`, as if removed through §10.4 and §10.6.
    /// A form without a list leaves it alone; a JID on both lists, or one
    /// that does not parse, refuses the form (`not-acceptable`); a list
    /// longer than the room's affiliation budget, `resource-constraint`.
    fn list_changes(
        &self,
        env: &Env<'_>,
        x: &Element,
    ) -> Result<Vec<(String, Affiliation)>, StanzaError> {
        let fields = crate::modules::data_form::parse_form(x)?;
        let list = |var: &str| -> Result<Option<BTreeSet<String>>, StanzaError> {
            let Some((_, values)) = fields.iter().find(|(v, _)| v == var) else {
                return Ok(None);
            };
            if values.len() > env.settings.affiliations_max {
                return Err(StanzaError::ResourceConstraint);
            }
            values
                .iter()
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| {
                    crate::jid::Jid::parse(v)
                        .map(|j| j.bare_str())
                        .map_err(|_| StanzaError::NotAcceptable)
                })
                .collect::<Result<BTreeSet<_>, _>>()
                .map(Some)
        };
        let owners = list(ROOMOWNERS)?;
        let admins = list(ROOMADMINS)?;
        let on = |l: &Option<BTreeSet<String>>, j: &str| l.as_ref().is_some_and(|l| l.contains(j));
        if let (Some(o), Some(a)) = (&owners, &admins) {
            if !o.is_disjoint(a) {
                return Err(StanzaError::NotAcceptable);
            }
        }
        let mut changes = Vec::new();
        for (wanted, a) in [(&owners, Affiliation::Owner), (&admins, Affiliation::Admin)] {
            let Some(wanted) = wanted else {
                continue;
            };
            for j in wanted {
                if self.affiliations.get(j) != Some(&a) {
                    changes.push((j.clone(), a));
                }
            }
            for j in self.with_affiliation(a) {
                if !on(&owners, j) && !on(&admins, j) {
                    changes.push((j.to_owned(), Affiliation::None));
                }
            }
        }
        Ok(changes)
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

    /// A `muc#owner` request from `full` (of `bare`) (§10).
    pub fn owner(
        &mut self,
        env: &Env<'_>,
        full: &str,
        bare: &str,
        iq: &Element,
    ) -> Result<Done, StanzaError> {
        let q = iq.child(OWNER, "query").ok_or(StanzaError::BadRequest)?;
        let aff = self.affiliation(env.settings, bare);
        if !may_own(aff) {
            return Err(StanzaError::Forbidden);
        }
        let cap = env.settings.occupants_max;
        if iq.attr("type") == Some("get") {
            let jids = |a| {
                self.with_affiliation(a)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            let form = self
                .config
                .form(cap)
                .with_child(field_values(
                    ROOMOWNERS,
                    Some("jid-multi"),
                    jids(Affiliation::Owner),
                ))
                .with_child(field_values(
                    ROOMADMINS,
                    Some("jid-multi"),
                    jids(Affiliation::Admin),
                ));
            return Ok(Done {
                payload: Some(Element::new(OWNER, "query").with_child(form)),
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
                // All or nothing: the whole form is checked before
                // anything changes.
                let mut config = self.config.clone();
                config.apply(x, cap)?;
                config.logging |= env.settings.log_all_rooms;
                let lists = self.list_changes(env, x)?;
                self.check_affiliations(env, aff, &lists)?;
                let actor = self.occupant_of(full).map(|o| o.nick.clone());
                let mut then = Vec::new();
                for (jid, new) in lists {
                    then.extend(self.set_affiliation(env, &jid, new, actor.as_deref(), None));
                }
                let was_members_only = self.config.members_only;
                self.config = config;
                let unlocked = std::mem::replace(&mut self.locked, false);
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
