//! XEP-0045 Multi-User Chat as a service at `conference.<domain>` for
//! every hosted domain: rooms created on first entry (locked until their
//! owner configures them, §10.1), occupants with nicks, roles and
//! affiliations under §5's permission table ([`permissions`]), messages,
//! private messages, subjects, history, moderation, the configuration
//! form, mediated invitations, voice requests, XEP-0410 self-ping, iqs
//! relayed between occupants ([`relay`]), XEP-0421 occupant ids and
//! XEP-0359 stanza ids.
//!
//! Rooms are partitioned like accounts: a stanza to `room@conference.d`
//! reaches the partition owning that bare JID, whose instance of this
//! module holds the room; the service's own JID reaches the domain's
//! partition, which lists the public rooms (disco#items, in XEP-0059
//! pages) from storage and from notices the rooms' partitions send it
//! ([`Context::forward`]).
//!
//! An occupant whose client disappears leaves: the hub sends every
//! directed-presence target (the occupant JID) an unavailable presence
//! when a session ends, by stream end or hibernation timeout (RFC 6121
//! §4.6).
//!
//! Files by concept: [`permissions`] (§5 as pure functions), [`config`]
//! (the forms), [`room`] and [`occupant`] (state), `join`, `message`,
//! `moderation` (what each flow does to a room), [`history`] (refilled
//! from the archive when a stored room is read: [`recall`]), `disco`,
//! [`listing`] (the service's paged room listing), [`relay`] (iqs
//! between occupants, with their timeout), `residency` (which rooms are
//! in memory: read on demand, stored, let go), [`settings`] (the budgets).

pub mod archive;
pub mod config;
mod disco;
pub mod history;
mod join;
pub mod listing;
pub mod message;
mod moderation;
pub mod occupant;
pub mod occupant_id;
pub mod permissions;
pub mod protocol;
pub mod recall;
mod register;
pub mod relay;
mod residency;
mod retract;
pub mod room;
pub mod settings;
pub mod store;
pub mod unique;

use self::protocol::{refuse, ADMIN, OWNER};
use self::room::{Env, Out, Room};
use self::settings::Settings;
use super::{Addressed, Context, Flow, Module, ModuleId};
use crate::jid::Jid;
use crate::ns;
use crate::stanza::{iq_result, StanzaError};
use crate::storage::{RequestId, StorageRequest, StorageResult};
use crate::xml::Element;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Its identity.
pub const ID: ModuleId = ModuleId::new("muc");

/// The namespace of the module's notices and stored documents.
pub const NS: &str = "urn:vireo:muc:0";

/// Moderation requests waiting for the archive at once; beyond it they
/// are refused (`resource-constraint`).
const MODERATIONS_MAX: usize = 256;

/// A read stanzas wait for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Load {
    /// A room's document.
    Room(String),
}

/// The XEP-0045 service.
#[derive(Debug, Clone)]
pub struct Muc {
    settings: Arc<Settings>,
    /// Rooms this partition owns, by bare JID.
    rooms: HashMap<String, Room>,
    /// Public rooms in memory of the service domains this partition
    /// owns (from every partition's notices).
    listed: listing::Listed,
    /// Listing requests reading stored rooms.
    listings: HashMap<RequestId, listing::Reading>,
    /// What this partition last told about its rooms' listing.
    told: HashMap<String, String>,
    /// Reads in flight.
    loading: HashMap<RequestId, Load>,
    /// Stanzas waiting for them, with their service domain.
    parked: HashMap<Load, Vec<(String, Element)>>,
    /// Moderation requests (XEP-0425) waiting for the archived message
    /// they name, with their service domain.
    moderations: HashMap<RequestId, (String, Element)>,
    /// Rooms read whose history is being read from their archive
    /// ([`recall`]), by that read; stanzas to them stay parked meanwhile.
    recalling: HashMap<RequestId, Room>,
    /// Room JIDs known not to be stored.
    absent: HashSet<String>,
    /// Destroyed persistent rooms whose names stay taken: until when,
    /// and where their occupants went.
    tombstones: HashMap<String, (u64, Option<String>)>,
    /// Archive queries waiting for storage.
    archive_queries: HashMap<RequestId, archive::Waiting>,
    /// Archive ids in order (XEP-0313, XEP-0359).
    ids: crate::archive::IdSequence,
    /// Iqs relayed between occupants, by room.
    relays: HashMap<String, relay::Relay>,
    /// The last relayed iq's number.
    relayed: u64,
}

impl Default for Muc {
    fn default() -> Self {
        Muc::new(Settings::default())
    }
}

impl Muc {
    /// The service with `settings`.
    pub fn new(settings: Settings) -> Self {
        Muc {
            settings: Arc::new(settings),
            rooms: HashMap::new(),
            listed: BTreeMap::new(),
            listings: HashMap::new(),
            told: HashMap::new(),
            loading: HashMap::new(),
            parked: HashMap::new(),
            moderations: HashMap::new(),
            recalling: HashMap::new(),
            absent: HashSet::new(),
            tombstones: HashMap::new(),
            archive_queries: HashMap::new(),
            ids: crate::archive::IdSequence::default(),
            relays: HashMap::new(),
            relayed: 0,
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The rooms this instance holds.
    pub fn rooms(&self) -> &HashMap<String, Room> {
        &self.rooms
    }
}

/// The sender's full and bare JID.
fn sender(stanza: &Element) -> Option<(String, String)> {
    let j = Jid::parse(stanza.attr("from")?).ok()?;
    Some((j.as_str().to_owned(), j.bare_str()))
}

fn send_all(cx: &mut Context<'_>, out: Out) {
    for s in out {
        cx.route(s);
    }
}

impl Module for Muc {
    fn id(&self) -> ModuleId {
        ID
    }

    fn service_domains(&self) -> Vec<String> {
        self.settings.service_domains()
    }

    fn iq(&mut self, cx: &mut Context<'_>, to: Addressed<'_>, iq: &Element) -> Flow {
        let Addressed::Service { domain } = to else {
            return Flow::Pass;
        };
        if !self.settings.serves(domain) {
            return Flow::Pass;
        }
        let Some(to) = iq.attr("to").and_then(|t| Jid::parse(t).ok()) else {
            return Flow::Pass;
        };
        let Some((full, bare)) = sender(iq) else {
            return Flow::Pass;
        };
        let Some(q) = iq.first_element() else {
            return Flow::Pass;
        };
        let get = iq.attr("type") == Some("get");
        let answer = |cx: &mut Context<'_>, payload: Option<Element>| {
            let r = iq_result(iq);
            cx.route(match payload {
                Some(p) => r.with_child(p),
                None => r,
            });
        };
        let Some(local) = to.local() else {
            // The service itself.
            if get && q.is(ns::DISCO_INFO, "query") && q.attr("node").is_none() {
                answer(cx, Some(disco::service_info()));
                return Flow::Handled;
            }
            if get && q.is(ns::DISCO_ITEMS, "query") && q.attr("node").is_none() {
                self.list(cx, domain, iq);
                return Flow::Handled;
            }
            if unique::asks(iq) {
                let a = unique::answer(iq, cx.entropy());
                cx.route(a);
                return Flow::Handled;
            }
            return Flow::Pass;
        };
        let room_jid = format!("{local}@{domain}");
        if self.unread(&room_jid) {
            self.wait(cx, Load::Room(room_jid), domain, iq);
            return Flow::Handled;
        }
        if let Some(answer) = self.grave(cx.now(), &room_jid, iq) {
            if let Some(e) = answer {
                cx.route(e);
            }
            return Flow::Handled;
        }
        let settings = Arc::clone(&self.settings);
        let env = Env {
            now: cx.now(),
            settings: &settings,
        };
        let Some(room) = self.rooms.get_mut(&room_jid) else {
            cx.route(refuse(iq, StanzaError::ItemNotFound, &room_jid));
            return Flow::Handled;
        };
        if let Some(nick) = to.resource() {
            // XEP-0410: a ping to one's own occupant JID is the room's to
            // answer; other iqs to occupants are relayed ([`relay`]).
            let Some(own_nick) = room.by_jid.get(&full).cloned() else {
                cx.route(refuse(iq, StanzaError::NotAcceptable, &room_jid));
                return Flow::Handled;
            };
            if own_nick == nick && q.is(ns::PING, "ping") {
                answer(cx, None);
                return Flow::Handled;
            }
            let Some(target) = room.occupants.get(nick) else {
                cx.route(refuse(iq, StanzaError::ItemNotFound, &room_jid));
                return Flow::Handled;
            };
            let session = target.active_jid().unwrap_or_default().to_owned();
            let target_bare = target.bare.clone();
            let from = room.occupant_jid(&own_nick);
            let relayed = self.relays.entry(room_jid.clone()).or_default().request(
                relay::Request {
                    iq,
                    requester: &full,
                    from: &from,
                    target_nick: nick,
                    session: &session,
                    bare: &target_bare,
                },
                &mut self.relayed,
                cx.now(),
                settings.relayed_iqs_max,
            );
            match relayed {
                Ok(out) => cx.route(out),
                Err(relay::Refused::Full) => {
                    cx.route(refuse(iq, StanzaError::ResourceConstraint, &room_jid))
                }
            }
            return Flow::Handled;
        }
        let done = if get && q.is(ns::DISCO_INFO, "query") {
            Ok(moderation_done(Some(
                if q.attr("node") == Some(register::ROOMUSER_NODE) {
                    room.roomuser_item(&bare)
                } else {
                    room.info()
                },
            )))
        } else if let Some(step) = archive::request(room, &settings, &bare, iq) {
            match step {
                Ok(archive::Step::Answer(a)) => cx.route(a),
                Ok(archive::Step::Ask(request, waiting)) => {
                    let id = cx.request(*request);
                    self.archive_queries.insert(id, waiting);
                }
                Err(cond) => cx.route(refuse(iq, cond, &room_jid)),
            }
            return Flow::Handled;
        } else if let Some(req) = retract::parse(iq).filter(|_| !get) {
            if let Err(cond) = room.may_moderate(&full) {
                cx.route(refuse(iq, cond, &room_jid));
                return Flow::Handled;
            }
            // A logged message no longer in the history is read first:
            // its tombstone keeps who said it.
            let read = req
                .archive_id()
                .filter(|_| room.config.logging && !room.in_history(req.id()));
            match read {
                Some(_) if self.moderations.len() >= MODERATIONS_MAX => {
                    cx.route(refuse(iq, StanzaError::ResourceConstraint, &room_jid));
                }
                Some(id) => {
                    let rid = cx.request(retract::read(&room_jid, id));
                    self.moderations
                        .insert(rid, (domain.to_owned(), iq.clone()));
                }
                None => self.moderate(cx, &room_jid, iq, None),
            }
            return Flow::Handled;
        } else if q.is(register::REGISTER, "query") {
            room.register(&env, &bare, iq)
        } else if get && q.is(ns::DISCO_ITEMS, "query") {
            // §6.5 lets a room list its occupants or not: none, as Prosody
            // since 0.11 (its issue 1162: who is in a room is not for
            // anyone who asks; occupants see the presences anyway).
            Ok(moderation_done(Some(Element::new(
                ns::DISCO_ITEMS,
                "query",
            ))))
        } else if q.is(ADMIN, "query") {
            room.admin(&env, &full, &bare, iq)
        } else if q.is(OWNER, "query") {
            room.owner(&env, &full, &bare, iq)
        } else {
            return Flow::Pass;
        };
        match done {
            Ok(done) => {
                let was_persistent = done.destroyed
                    && self
                        .rooms
                        .get(&room_jid)
                        .is_some_and(|r| r.config.persistent && !r.locked);
                if done.destroyed {
                    self.rooms.remove(&room_jid);
                }
                // Durable before the result (and what follows it).
                match self.settings.tombstone_ms.filter(|_| was_persistent) {
                    Some(keep) => {
                        let until = cx.now().saturating_add(keep);
                        cx.commit(StorageRequest::StoreBlob {
                            account: domain.to_owned(),
                            key: store::key(&room_jid),
                            value: Some(store::tombstone_document(until, done.venue.as_deref())),
                            limit: None,
                        });
                        self.tombstones
                            .insert(room_jid.clone(), (until, done.venue.clone()));
                    }
                    None if done.changed || done.destroyed => self.persist(cx, domain, &room_jid),
                    None => {}
                }
                answer(cx, done.payload);
                send_all(cx, done.then);
                if done.changed || done.destroyed {
                    self.relist(cx, domain, &room_jid);
                }
                self.unrelay(cx, &room_jid);
                self.vanish(cx, domain, &room_jid);
            }
            Err(cond) => cx.route(refuse(iq, cond, &room_jid)),
        }
        Flow::Handled
    }

    fn service_stanza(&mut self, cx: &mut Context<'_>, domain: &str, stanza: &Element) -> Flow {
        if !self.settings.serves(domain) {
            return Flow::Pass;
        }
        let Some(to) = stanza.attr("to").and_then(|t| Jid::parse(t).ok()) else {
            return Flow::Pass;
        };
        let Some((full, bare)) = sender(stanza) else {
            return Flow::Pass;
        };
        let Some(local) = to.local() else {
            return Flow::Pass;
        };
        let room_jid = format!("{local}@{domain}");
        if self.unread(&room_jid) {
            self.wait(cx, Load::Room(room_jid), domain, stanza);
            return Flow::Handled;
        }
        if let Some(answer) = self.grave(cx.now(), &room_jid, stanza) {
            if let Some(e) = answer {
                cx.route(e);
            }
            return Flow::Handled;
        }
        let result = match stanza.name.as_str() {
            "iq" => {
                // An answer to a relayed iq, or nothing of the room's.
                if let Some(relay) = self.relays.get_mut(&room_jid) {
                    if let Some(a) = relay.answer(&room_jid, &full, stanza) {
                        cx.route(a);
                    }
                    if relay.is_empty() {
                        self.relays.remove(&room_jid);
                    }
                }
                return Flow::Handled;
            }
            "presence" => self.presence(cx, &room_jid, &full, &bare, to.resource(), stanza),
            "message" => self.message(cx, &room_jid, &full, to.resource(), stanza),
            _ => return Flow::Pass,
        };
        match result {
            Ok(out) => send_all(cx, out),
            Err(cond) if stanza.attr("type") != Some("error") => {
                cx.route(refuse(stanza, cond, &room_jid))
            }
            Err(_) => {}
        }
        self.relist(cx, domain, &room_jid);
        self.unrelay(cx, &room_jid);
        self.vanish(cx, domain, &room_jid);
        Flow::Handled
    }

    fn storage_answer(&mut self, cx: &mut Context<'_>, id: RequestId, result: StorageResult) {
        if let Some(waiting) = self.archive_queries.remove(&id) {
            return send_all(cx, archive::answer(waiting, result));
        }
        if let Some((domain, iq)) = self.moderations.remove(&id) {
            let archived = match result {
                StorageResult::ArchivePage(page) => page.items.into_iter().next().and_then(|m| {
                    Element::parse_with_limits(m.stanza.as_bytes(), &crate::xml::Limits::stored())
                        .ok()
                }),
                StorageResult::NotFound => None,
                other => {
                    tracing::error!(?other, "reading a moderated message failed");
                    return cx.route(refuse(&iq, StanzaError::InternalServerError, &domain));
                }
            };
            let room_jid = iq
                .attr("to")
                .and_then(|t| Jid::parse(t).ok())
                .map(|j| j.bare_str());
            if let Some(room_jid) = room_jid {
                self.moderate(cx, &room_jid, &iq, archived.as_ref());
            }
            return;
        }
        if let Some(mut room) = self.recalling.remove(&id) {
            match result {
                StorageResult::ArchivePage(page) => recall::fill(&mut room, &self.settings, &page),
                // The room works without its history.
                other => tracing::error!(room = room.jid, ?other, "reading the history failed"),
            }
            let jid = room.jid.clone();
            self.rooms.insert(jid.clone(), room);
            let waiting = self.parked.remove(&Load::Room(jid)).unwrap_or_default();
            return self.resume(cx, waiting);
        }
        if let Some(reading) = self.listings.remove(&id) {
            return self.listed_page(cx, reading, result);
        }
        let Some(load) = self.loading.remove(&id) else {
            return;
        };
        let waiting = self.parked.remove(&load).unwrap_or_default();
        match (load, result) {
            (Load::Room(jid), StorageResult::Blob(doc)) => {
                let grave = doc.as_deref().and_then(store::tombstone);
                let defaults = &self.settings.defaults;
                match doc.and_then(|d| store::room(&d, defaults, cx.entropy())) {
                    Some((room, drawn)) => {
                        if drawn {
                            // Durable before any occupant id is seen.
                            cx.commit(StorageRequest::StoreBlob {
                                account: jid.split_once('@').map_or("", |(_, d)| d).to_owned(),
                                key: store::key(&jid),
                                value: Some(store::document(&room)),
                                limit: None,
                            });
                        }
                        if let Some(read) = recall::request(&room, &self.settings) {
                            // The stanzas wait for the history too.
                            let id = cx.request(read);
                            self.recalling.insert(id, room);
                            self.parked.insert(Load::Room(jid), waiting);
                            return;
                        }
                        self.rooms.insert(jid, room);
                    }
                    None => match grave.filter(|(until, _)| *until > cx.now()) {
                        Some(t) => {
                            self.tombstones.insert(jid, t);
                        }
                        None => self.note_absent(&jid),
                    },
                }
                self.resume(cx, waiting);
            }
            (load, other) => {
                tracing::error!(?load, ?other, "reading rooms failed");
                for (domain, s) in waiting {
                    if s.attr("type") != Some("error") {
                        cx.route(refuse(&s, StanzaError::InternalServerError, &domain));
                    }
                }
            }
        }
    }

    /// The oldest relayed iq's deadline (rooms without one hold no
    /// [`relay::Relay`]).
    fn poll_timeout(
        &self,
        _started: crate::time::Millis,
        _partition: usize,
    ) -> Option<crate::time::Millis> {
        let timeout = self.settings.relayed_iq_timeout_ms;
        self.relays
            .values()
            .filter_map(|r| r.deadline(timeout))
            .min()
    }

    /// Relayed iqs unanswered in time are answered by the room.
    fn timeout(&mut self, cx: &mut Context<'_>) {
        let (now, timeout) = (cx.now(), self.settings.relayed_iq_timeout_ms);
        for (room, relay) in self.relays.iter_mut() {
            send_all(cx, relay.expire(room, now, timeout));
        }
        self.relays.retain(|_, r| !r.is_empty());
    }

    fn notice(&mut self, _cx: &mut Context<'_>, account: Option<&str>, body: &Element) {
        if account.is_some() || !body.is(NS, "room") {
            return;
        }
        let Some(jid) = body.attr("jid") else {
            return;
        };
        let Some((local, domain)) = jid.split_once('@') else {
            return;
        };
        let key = (domain.to_owned(), local.to_owned());
        if body.attr("listed") == Some("1") {
            self.listed
                .insert(key, body.attr("name").unwrap_or_default().to_owned());
        } else {
            self.listed.remove(&key);
        }
    }
}

fn moderation_done(payload: Option<Element>) -> moderation::Done {
    moderation::Done {
        payload,
        ..moderation::Done::default()
    }
}

impl Muc {
    /// Carry out the moderation request `iq` to `room_jid` (XEP-0425),
    /// `archived` being the message as the room archive holds it, when
    /// read: the tombstone replaces it and the announcement is archived
    /// before the result and the announcement leave.
    fn moderate(
        &mut self,
        cx: &mut Context<'_>,
        room_jid: &str,
        iq: &Element,
        archived: Option<&Element>,
    ) {
        let (Some(req), Some((full, _))) = (retract::parse(iq), sender(iq)) else {
            return;
        };
        let settings = Arc::clone(&self.settings);
        let env = Env {
            now: cx.now(),
            settings: &settings,
        };
        let Some(room) = self.rooms.get_mut(room_jid) else {
            return cx.route(refuse(iq, StanzaError::ItemNotFound, room_jid));
        };
        let logged = room.config.logging;
        let archive_id = logged.then(|| self.ids.next(env.now, cx.entropy()));
        let sid = match archive_id {
            Some(a) => a.to_string(),
            None => cx.entropy().hex_id(12),
        };
        match room.retract(&env, &full, &req, &sid, archived) {
            Ok(done) => {
                if let Some(id) = req.archive_id().filter(|_| logged) {
                    cx.commit(StorageRequest::ReplaceArchived {
                        account: archive::owner(room_jid),
                        id,
                        stanza: done.tombstone.to_xml(),
                    });
                }
                if let (Some(a), Some(sent)) = (archive_id, done.out.first()) {
                    cx.commit(archive::append(room_jid, a, sent));
                }
                cx.route(iq_result(iq));
                send_all(cx, done.out);
            }
            Err(cond) => cx.route(refuse(iq, cond, room_jid)),
        }
    }

    /// A presence to `room_jid` (and `nick`) from the session `full`.
    fn presence(
        &mut self,
        cx: &mut Context<'_>,
        room_jid: &str,
        full: &str,
        bare: &str,
        nick: Option<&str>,
        stanza: &Element,
    ) -> Result<Out, StanzaError> {
        let settings = Arc::clone(&self.settings);
        let env = Env {
            now: cx.now(),
            settings: &settings,
        };
        match stanza.attr("type") {
            // An error bounced by the client: it is gone (§17.3.4 of the
            // XEP's implementation notes).
            Some("unavailable") | Some("error") => {
                return Ok(self
                    .rooms
                    .get_mut(room_jid)
                    .map(|r| r.leave(&env, full, stanza))
                    .unwrap_or_default());
            }
            None => {}
            Some(_) => return Ok(Vec::new()),
        }
        let Some(nick) = nick.filter(|n| !n.is_empty()) else {
            return Err(StanzaError::JidMalformed);
        };
        if nick.len() > settings.nick_bytes_max {
            return Err(StanzaError::NotAcceptable);
        }
        if let Some(room) = self.rooms.get_mut(room_jid) {
            return match room.by_jid.get(full) {
                Some(current) if current == nick => Ok(room.update(&env, full, stanza)),
                Some(_) => room.change_nick(&env, full, nick),
                None => room.enter(&env, full, bare, nick, stanza, false),
            };
        }
        if !settings.may_create(bare) {
            return Err(StanzaError::NotAllowed);
        }
        if self.rooms.len() >= settings.rooms_max
            || self.rooms.values().filter(|r| r.creator == bare).count()
                >= settings.rooms_per_creator_max
        {
            return Err(StanzaError::ResourceConstraint);
        }
        let secret = occupant_id::Secret::draw(cx.entropy());
        let mut room = Room::new(room_jid, bare, settings.defaults.clone(), secret);
        room.locked = settings.lock_new_rooms;
        let out = room.enter(&env, full, bare, nick, stanza, true)?;
        tracing::debug!(room = room_jid, creator = bare, "room created");
        self.rooms.insert(room_jid.to_owned(), room);
        self.absent.remove(room_jid);
        Ok(out)
    }

    /// A message to `room_jid` (or to `nick` in it) from the session
    /// `full`.
    fn message(
        &mut self,
        cx: &mut Context<'_>,
        room_jid: &str,
        full: &str,
        nick: Option<&str>,
        stanza: &Element,
    ) -> Result<Out, StanzaError> {
        if stanza.attr("type") == Some("error") {
            return Ok(Vec::new());
        }
        let logged = self.rooms.get(room_jid).is_some_and(|r| r.config.logging);
        let archive_id = if logged && stanza.child(ns::CLIENT, "body").is_some() {
            let now = cx.now();
            Some(self.ids.next(now, cx.entropy()))
        } else {
            None
        };
        let id = match archive_id {
            Some(a) => a.to_string(),
            None => cx.entropy().hex_id(12),
        };
        let settings = Arc::clone(&self.settings);
        let env = Env {
            now: cx.now(),
            settings: &settings,
        };
        let room = self
            .rooms
            .get_mut(room_jid)
            .ok_or(StanzaError::ItemNotFound)?;
        room.touch(full);
        if let Some(nick) = nick {
            return room.private(full, nick, stanza);
        }
        if stanza.attr("type") == Some("groupchat") {
            let out = room.groupchat(&env, full, stanza, &id)?;
            let subject = stanza.child(ns::CLIENT, "subject").is_some()
                && stanza.child(ns::CLIENT, "body").is_none();
            if subject && room.config.persistent {
                // The subject outlives a restart; stored before anyone
                // sees it.
                let domain = room_jid.split_once('@').map_or("", |(_, d)| d).to_owned();
                self.persist(cx, &domain, room_jid);
            }
            if let (Some(a), Some(sent)) = (archive_id, out.first()) {
                // Archived before anyone (the sender included) has it.
                cx.commit(archive::append(room_jid, a, sent));
            }
            return Ok(out);
        }
        if let Some(r) = room.mediate(full, stanza) {
            return r;
        }
        if let Some(r) = room.voice_request(&env, full, stanza) {
            return r;
        }
        Err(StanzaError::NotAcceptable)
    }

    /// Answer the relayed iqs of `room_jid` whose target session has left
    /// it (or the room is gone) at once, rather than at their timeout.
    fn unrelay(&mut self, cx: &mut Context<'_>, room_jid: &str) {
        let Some(relay) = self.relays.get_mut(room_jid) else {
            return;
        };
        let room = self.rooms.get(room_jid);
        let gone = relay.orphans(room_jid, |s| room.is_some_and(|r| r.by_jid.contains_key(s)));
        if relay.is_empty() {
            self.relays.remove(room_jid);
        }
        send_all(cx, gone);
    }
}

#[cfg(test)]
mod tests;
