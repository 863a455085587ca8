//! A room in memory: its configuration, affiliations, occupants (by nick,
//! and by the full JIDs of their sessions), history and subject, and the
//! presence each viewer sees of an occupant (real JIDs only where the
//! room's anonymity allows, §7.2.3–7.2.4).

use super::config::RoomConfig;
use super::history::History;
use super::occupant::Occupant;
use super::occupant_id::Secret;
use super::permissions::{Affiliation, Role};
use super::protocol::{user_x, Item};
use super::settings::Settings;
use crate::ns;
use crate::time::Millis;
use crate::xml::Element;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Stanzas to route.
pub type Out = Vec<Element>;

/// What a room operation needs from its surroundings.
pub struct Env<'a> {
    /// The time.
    pub now: Millis,
    /// The service's settings.
    pub settings: &'a Settings,
}

/// A room.
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    /// Its bare JID.
    pub jid: String,
    /// Its configuration.
    pub config: RoomConfig,
    /// Affiliations other than `none`, by bare JID.
    pub affiliations: BTreeMap<String, Affiliation>,
    /// Registered nicknames (§7.10): nick → bare JID.
    pub nicks: BTreeMap<String, String>,
    /// Occupants by nick.
    pub occupants: BTreeMap<String, Occupant>,
    /// Nick of each session in the room, by full JID.
    pub by_jid: HashMap<String, String>,
    /// Discussion history.
    pub history: History,
    /// The subject message (without `to`), once set.
    pub subject: Option<Element>,
    /// Created and not configured yet (§10.1.1): only its owner enters.
    pub locked: bool,
    /// The bare JID that created it.
    pub creator: String,
    /// Nicks of occupants whose voice request waits (§7.13).
    pub voice_requests: BTreeSet<String>,
    /// The key of its occupant ids (XEP-0421), stored with it so they
    /// outlive a restart.
    pub secret: Secret,
}

impl Room {
    /// A new room `jid`, created by `creator` (its owner), locked, its
    /// occupant ids keyed by `secret`.
    pub fn new(jid: &str, creator: &str, config: RoomConfig, secret: Secret) -> Self {
        Room {
            jid: jid.to_owned(),
            config,
            affiliations: BTreeMap::from([(creator.to_owned(), Affiliation::Owner)]),
            nicks: BTreeMap::new(),
            occupants: BTreeMap::new(),
            by_jid: HashMap::new(),
            history: History::default(),
            subject: None,
            locked: true,
            creator: creator.to_owned(),
            voice_requests: BTreeSet::new(),
            secret,
        }
    }

    /// The affiliation of `bare` (the service's administrators own every
    /// room).
    pub fn affiliation(&self, settings: &Settings, bare: &str) -> Affiliation {
        if settings.is_admin(bare) {
            return Affiliation::Owner;
        }
        self.affiliations
            .get(bare)
            .copied()
            .unwrap_or(Affiliation::None)
    }

    /// The occupant JID of `nick`.
    pub fn occupant_jid(&self, nick: &str) -> String {
        format!("{}/{}", self.jid, nick)
    }

    /// The occupant whose session is `full`.
    pub fn occupant_of(&self, full: &str) -> Option<&Occupant> {
        self.occupants.get(self.by_jid.get(full)?)
    }

    /// The session `full` spoke to the room: it is its occupant's active
    /// session now (where iqs to the occupant go).
    pub fn touch(&mut self, full: &str) {
        if let Some(nick) = self.by_jid.get(full) {
            if let Some(o) = self.occupants.get_mut(nick) {
                o.touch(full);
            }
        }
    }

    /// Whether `viewer` sees real JIDs.
    pub fn sees_jids(&self, viewer: &Occupant) -> bool {
        self.config.whois_anyone || viewer.role == Role::Moderator
    }

    /// Occupants in presence order (§7.2.3: moderators first, then by
    /// affiliation, then nick).
    pub fn in_order(&self, settings: &Settings) -> Vec<&Occupant> {
        let mut v: Vec<&Occupant> = self.occupants.values().collect();
        v.sort_by(|a, b| {
            (b.role, self.affiliation(settings, &b.bare))
                .cmp(&(a.role, self.affiliation(settings, &a.bare)))
                .then_with(|| a.nick.cmp(&b.nick))
        });
        v
    }

    /// The presence of `o` for the session `to` (of `viewer`), with
    /// `codes`; `base` replaces its own presence (an unavailable one).
    #[allow(clippy::too_many_arguments)]
    pub fn presence_of(
        &self,
        env: &Env<'_>,
        o: &Occupant,
        to: &str,
        viewer: &Occupant,
        base: Option<&Element>,
        item: Item<'_>,
        codes: &[u16],
    ) -> Element {
        let mut p = base
            .or_else(|| o.presence())
            .cloned()
            .unwrap_or_else(|| Element::new(ns::CLIENT, "presence"));
        p.set_attr("from", self.occupant_jid(&o.nick));
        p.set_attr("to", to);
        let jid = self.sees_jids(viewer).then(|| o.active_jid()).flatten();
        let item = Item {
            affiliation: Some(self.affiliation(env.settings, &o.bare)),
            role: Some(if base.is_some() { Role::None } else { o.role }),
            jid,
            ..item
        };
        p.with_child(user_x(&item, codes)).with_child(
            Element::new(super::occupant_id::NS, "occupant-id").with_attr("id", o.id.clone()),
        )
    }

    /// `o`'s presence (or `base`) to every session in the room; the
    /// sessions of `o` itself get status 110 too.
    pub fn broadcast(
        &self,
        env: &Env<'_>,
        o: &Occupant,
        base: Option<&Element>,
        item: Item<'_>,
        codes: &[u16],
    ) -> Out {
        let mut own: Vec<u16> = codes.to_vec();
        own.push(super::protocol::status::SELF);
        own.sort_unstable();
        let mut out = Vec::with_capacity(self.by_jid.len() + o.sessions.len());
        for viewer in self.occupants.values().filter(|v| v.nick != o.nick) {
            for to in viewer.jids() {
                out.push(self.presence_of(env, o, to, viewer, base, item.clone(), codes));
            }
        }
        for to in o.jids() {
            out.push(self.presence_of(env, o, to, o, base, item.clone(), &own));
        }
        out
    }

    /// `message` (already from its occupant JID) to every session.
    pub fn to_all(&self, message: &Element) -> Out {
        let mut out = Vec::with_capacity(self.by_jid.len());
        for to in self.by_jid.keys() {
            let mut m = message.clone();
            m.set_attr("to", to.clone());
            out.push(m);
        }
        out
    }

    /// Remove the occupant `nick` with `codes` (kick, ban, ...), telling
    /// everyone, itself included.
    pub fn remove(&mut self, env: &Env<'_>, nick: &str, item: Item<'_>, codes: &[u16]) -> Out {
        let Some(o) = self.occupants.get(nick).cloned() else {
            return Vec::new();
        };
        let unavailable = Element::new(ns::CLIENT, "presence").with_attr("type", "unavailable");
        let out = self.broadcast(env, &o, Some(&unavailable), item, codes);
        self.drop_occupant(nick);
        out
    }

    /// Forget the occupant `nick` without telling anyone.
    pub fn drop_occupant(&mut self, nick: &str) {
        if let Some(o) = self.occupants.remove(nick) {
            for j in o.jids() {
                self.by_jid.remove(j);
            }
        }
        self.voice_requests.remove(nick);
    }

    /// Nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.occupants.is_empty()
    }

    /// The room should go: temporary and empty.
    pub fn vanishes(&self) -> bool {
        self.is_empty() && !self.config.persistent
    }

    /// The real JID of `nick`'s first session.
    pub fn real_jid(&self, nick: &str) -> Option<&str> {
        self.occupants.get(nick)?.jids().next()
    }
}
