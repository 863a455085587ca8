//! Routing invariants of the pure hub, driven without any network.
//!
//! One `Hub` (domain "localhost") owns every account; a tiny in-test store
//! knows the accounts u0..u4@localhost. Random sessions bind, close and send
//! random messages, presences and iqs through `from_session` (stamped as the
//! c2s stream would: `from` = the session's full JID, `to` normalized), and
//! every `HubOutput::Route` is fed back into `Hub::routed` until the hub is
//! quiescent. Checked at every output:
//!
//! 1. a `Deliver` goes to a live connection whose bound JID matches the
//!    stanza's `to`: the same full JID, or the same bare JID when `to` is bare.
//!    The one RFC-sanctioned exception (RFC 6121 §8.5.3.2.1) is a chat/normal
//!    message to a full JID with no such resource, which is handled as if sent
//!    to the bare JID and may reach another resource with `to` unchanged;
//! 2. a chat/normal message addressed to an existing account is never lost:
//!    some session of that account receives it, or a
//!    `StorageRequest::PushOffline` stores it for that account;
//! 3. the `from` of every delivered stanza that a session sent is that
//!    session's full JID (bare JID for subscription presences, which the
//!    server re-stamps); replies and errors come from the address the stanza
//!    was sent to or from the server; nothing carries the address of a user
//!    who had no part in the exchange.

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use xmpp_core::hub::{ConnId, Hub, HubConfig, HubOutput};
use xmpp_core::jid::Jid;
use xmpp_core::ns;
use xmpp_core::storage::{AccountData, StorageRequest, StorageResult};
use xmpp_core::xml::Element;

const DOMAIN: &str = "localhost";
/// u0..u4 exist; u5 and u6 are unknown to the store.
const KNOWN: u8 = 5;
const USERS: u8 = 7;
const RESOURCES: u8 = 4;

fn account(u: u8) -> String {
    format!("u{u}@{DOMAIN}")
}

fn is_known(bare: &str) -> bool {
    (0..KNOWN).any(|u| account(u) == bare)
}

#[derive(Debug, Clone)]
enum Target {
    None,
    Bare(u8),
    Full(u8, u8),
    Server,
    Remote,
}

impl Target {
    fn jid(&self) -> Option<Jid> {
        let s = match self {
            Target::None => return None,
            Target::Bare(u) => account(*u),
            Target::Full(u, r) => format!("{}/r{r}", account(*u)),
            Target::Server => DOMAIN.to_owned(),
            Target::Remote => "u0@example.org".to_owned(),
        };
        Some(Jid::parse(&s).expect("test JIDs are valid"))
    }
}

#[derive(Debug, Clone)]
enum Payload {
    Ping,
    RosterGet,
    RosterSet(u8),
    RosterRemove(u8),
    DiscoInfo,
    Unknown,
}

#[derive(Debug, Clone)]
enum Spec {
    Message(Option<&'static str>, Target),
    /// Broadcast presence: available with a priority, or unavailable.
    Broadcast(Option<i8>),
    /// Directed presence, probe or subscription presence.
    Presence(Option<&'static str>, Target),
    Iq(&'static str, Target, Payload),
}

#[derive(Debug, Clone)]
enum Op {
    Bind(u8, u8),
    Close(usize),
    Send(usize, Spec),
    /// Advance the clock (offline delay stamps use it).
    Tick(u16),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        1 => Just(Target::None),
        4 => (0..USERS).prop_map(Target::Bare),
        4 => (0..USERS, 0..RESOURCES).prop_map(|(u, r)| Target::Full(u, r)),
        1 => Just(Target::Server),
        1 => Just(Target::Remote),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let mtype = prop::sample::select(vec![
        None,
        Some("chat"),
        Some("normal"),
        Some("headline"),
        Some("groupchat"),
        Some("error"),
    ]);
    let ptype = prop::sample::select(vec![
        None,
        Some("unavailable"),
        Some("probe"),
        Some("subscribe"),
        Some("subscribed"),
        Some("unsubscribe"),
        Some("unsubscribed"),
    ]);
    let payload = prop_oneof![
        Just(Payload::Ping),
        Just(Payload::RosterGet),
        (0..USERS).prop_map(Payload::RosterSet),
        (0..USERS).prop_map(Payload::RosterRemove),
        Just(Payload::DiscoInfo),
        Just(Payload::Unknown),
    ];
    prop_oneof![
        6 => (mtype, target()).prop_map(|(t, to)| Spec::Message(t, to)),
        2 => prop::option::of(prop::sample::select(vec![-1i8, 0, 5]))
            .prop_map(Spec::Broadcast),
        4 => (ptype, target()).prop_map(|(t, to)| Spec::Presence(t, to)),
        2 => (prop::sample::select(vec!["get", "set"]), target(), payload)
            .prop_map(|(t, to, p)| Spec::Iq(t, to, p)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..KNOWN, 0..RESOURCES).prop_map(|(u, r)| Op::Bind(u, r)),
        1 => any::<usize>().prop_map(Op::Close),
        12 => (any::<usize>(), spec()).prop_map(|(s, sp)| Op::Send(s, sp)),
        1 => (1u16..5000).prop_map(Op::Tick),
    ]
}

/// A stanza a session sent, as the hub received it.
#[derive(Debug)]
struct Sent {
    sender: Jid,
    stanza: Element,
}

/// What one operation produced, for the no-loss check.
#[derive(Debug)]
enum Seen {
    Delivered { bare: String, stanza: Element },
    Stored { account: String, stanza: String },
}

struct World {
    hub: Hub,
    now: u64,
    next_conn: ConnId,
    next_tag: u64,
    /// Live bound connections.
    bound: BTreeMap<ConnId, Jid>,
    /// A connection being closed may still get its own unavailable presence.
    closing: Option<(ConnId, Jid)>,
    /// Every full JID ever bound.
    ever_bound: HashSet<String>,
    /// Stanzas sent by sessions, by their (unique) id.
    tags: HashMap<String, Sent>,
    /// Bare JID pairs (sender, addressee) that exchanged any stanza.
    contacts: HashSet<(String, String)>,
    /// Pairs that exchanged subscription presences or roster removals.
    subscriptions: HashSet<(String, String)>,
}

impl World {
    fn new() -> Self {
        World {
            hub: Hub::new(Arc::new(HubConfig::default())),
            now: 1_000,
            next_conn: 1,
            next_tag: 1,
            bound: BTreeMap::new(),
            closing: None,
            ever_bound: HashSet::new(),
            tags: HashMap::new(),
            contacts: HashSet::new(),
            subscriptions: HashSet::new(),
        }
    }

    fn store(request: &StorageRequest) -> StorageResult {
        match request {
            StorageRequest::LoadAccount { account, .. } => {
                StorageResult::Account(is_known(account).then(AccountData::default))
            }
            StorageRequest::TakeOffline { .. } => StorageResult::Offline(vec![]),
            StorageRequest::LoadCredentials { .. } => StorageResult::Credentials(None),
            _ => StorageResult::Done,
        }
    }

    fn related(set: &HashSet<(String, String)>, a: &str, b: &str) -> bool {
        set.contains(&(a.to_owned(), b.to_owned())) || set.contains(&(b.to_owned(), a.to_owned()))
    }

    /// Invariants 1 and 3 for one delivery.
    fn check_deliver(&self, conn: ConnId, stanza: &Element) -> Result<Jid, TestCaseError> {
        let bound = match (self.bound.get(&conn), &self.closing) {
            (Some(j), _) => j.clone(),
            (None, Some((c, j))) if *c == conn => j.clone(),
            _ => {
                return Err(TestCaseError::fail(format!(
                    "delivered to conn {conn}, which has no bound session: {}",
                    stanza.to_xml()
                )))
            }
        };
        let xml = stanza.to_xml();
        let to = stanza
            .attr("to")
            .map(Jid::parse)
            .transpose()
            .map_err(|e| TestCaseError::fail(format!("bad `to` ({e:?}): {xml}")))?;
        let Some(to) = to else {
            return Err(TestCaseError::fail(format!(
                "delivered stanza without `to` to {bound}: {xml}"
            )));
        };
        let ty = stanza.attr("type");

        // 1. The addressee.
        let to_ok = if to.is_bare() {
            to == bound.bare()
        } else if to == bound {
            true
        } else {
            // RFC 6121 §8.5.3.2.1: chat/normal to an unknown resource is
            // treated as addressed to the bare JID.
            let chat = stanza.name == "message" && matches!(ty, None | Some("chat" | "normal"));
            let resource_live = self.bound.values().any(|j| *j == to);
            chat && !resource_live && to.bare() == bound.bare()
        };
        prop_assert!(
            to_ok,
            "delivered to {} but addressed to {}: {}",
            bound,
            to,
            xml
        );

        // 3. The sender.
        let from = stanza.attr("from");
        let recipient = bound.bare_str();
        let sent = stanza.attr("id").and_then(|id| self.tags.get(id));
        let is_subscription = stanza.name == "presence"
            && matches!(
                ty,
                Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed")
            );
        if let Some(sent) = sent.filter(|s| s.stanza.name == stanza.name) {
            let orig_ty = sent.stanza.attr("type");
            let is_error = ty == Some("error") && orig_ty != Some("error");
            let is_result =
                stanza.name == "iq" && ty == Some("result") && orig_ty != Some("result");
            if is_error || is_result {
                // A reply: back to the sender (its bare JID for probes, which
                // the server stamps with the bare JID, RFC 6121 §4.3.1), from
                // where the stanza was addressed or from the server.
                prop_assert!(
                    to == sent.sender || to == sent.sender.bare(),
                    "reply not addressed to the sender {}: {}",
                    sent.sender,
                    xml
                );
                let allowed = [
                    sent.stanza.attr("to").map(str::to_owned),
                    Some(sent.sender.bare_str()),
                    Some(DOMAIN.to_owned()),
                ];
                let direct = allowed.iter().flatten().any(|a| Some(a.as_str()) == from);
                // A broadcast presence (no `to`) is fanned out by the hub to
                // subscribers and directed-presence targets; their errors
                // come back from those addresses, all of which the sender
                // dealt with before.
                let fanned_out = sent.stanza.attr("to").is_none()
                    && from.and_then(|f| Jid::parse(f).ok()).is_some_and(|f| {
                        Self::related(&self.contacts, &f.bare_str(), &sent.sender.bare_str())
                    });
                prop_assert!(
                    from.is_none() || direct || fanned_out,
                    "reply from {:?}, sent as {}: {}",
                    from,
                    sent.stanza.to_xml(),
                    xml
                );
            } else {
                let sender = sent.sender.to_string();
                prop_assert_eq!(
                    from,
                    Some(sender.as_str()),
                    "forwarded stanza does not carry its sender's full JID: {}",
                    xml
                );
            }
        } else if is_subscription {
            let from = from.map(Jid::parse);
            let Some(Ok(from)) = from else {
                return Err(TestCaseError::fail(format!(
                    "subscription presence without a valid `from`: {xml}"
                )));
            };
            prop_assert!(
                from.is_bare(),
                "subscription presence from a full JID: {}",
                xml
            );
            prop_assert!(
                Self::related(&self.subscriptions, &from.bare_str(), &recipient),
                "subscription presence from {}, who never dealt with {}: {}",
                from,
                recipient,
                xml
            );
        } else if let Some(f) = from {
            let f = Jid::parse(f)
                .map_err(|e| TestCaseError::fail(format!("bad `from` ({e:?}): {xml}")))?;
            let plausible = f.local().is_none()
                || f.bare_str() == recipient
                || Self::related(&self.contacts, &f.bare_str(), &recipient);
            prop_assert!(
                plausible,
                "stanza from {}, who never dealt with {}: {}",
                f,
                recipient,
                xml
            );
            if f.is_full() && f.local().is_some() {
                prop_assert!(
                    self.ever_bound.contains(&f.to_string()),
                    "stanza from a full JID that never existed: {}",
                    xml
                );
            }
        }
        Ok(bound)
    }

    /// Process hub outputs until none are left.
    fn drain(&mut self, seen: &mut Vec<Seen>) -> Result<(), TestCaseError> {
        let mut steps = 0u32;
        while let Some(out) = self.hub.poll_output() {
            steps += 1;
            prop_assert!(steps < 100_000, "the hub does not become quiescent");
            match out {
                HubOutput::Deliver { conn, stanza } => {
                    let bound = self.check_deliver(conn, &stanza)?;
                    seen.push(Seen::Delivered {
                        bare: bound.bare_str(),
                        stanza,
                    });
                }
                HubOutput::Route(stanza) => self.hub.routed(self.now, stanza),
                HubOutput::Storage { id, request } => {
                    let result = Self::store(&request);
                    if let StorageRequest::PushOffline {
                        account, stanza, ..
                    } = request
                    {
                        seen.push(Seen::Stored { account, stanza });
                    }
                    self.hub.handle_storage(self.now, id, result);
                }
                HubOutput::Close { conn, .. } => {
                    self.bound.remove(&conn);
                    self.hub.session_closed(self.now, conn);
                }
                HubOutput::Forward { notice, .. } => self.hub.notice(self.now, notice),
                // Offline storage is always empty here: no next page.
                HubOutput::OfflinePageSent { conn } => {
                    self.hub.offline_page_delivered(self.now, conn)
                }
                // This driver gives the hub no fences, and no hibernation;
                // its sessions have no mailbox to drain at their end.
                HubOutput::Fence(_)
                | HubOutput::HibernationNoted { .. }
                | HubOutput::Released { .. } => {}
            }
        }
        Ok(())
    }

    fn session(&self, pick: usize) -> Option<(ConnId, Jid)> {
        if self.bound.is_empty() {
            return None;
        }
        self.bound
            .iter()
            .nth(pick % self.bound.len())
            .map(|(c, j)| (*c, j.clone()))
    }

    fn build(&mut self, sender: &Jid, spec: &Spec) -> Element {
        let tag = format!("vt{}", self.next_tag);
        self.next_tag += 1;
        let (name, ty, to, payload): (&str, Option<&str>, Option<Jid>, Option<Element>) = match spec
        {
            Spec::Message(t, to) => (
                "message",
                *t,
                to.jid(),
                Some(Element::new(ns::CLIENT, "body").with_text("hi")),
            ),
            Spec::Broadcast(Some(p)) => (
                "presence",
                None,
                None,
                Some(Element::new(ns::CLIENT, "priority").with_text(p.to_string())),
            ),
            Spec::Broadcast(None) => ("presence", Some("unavailable"), None, None),
            Spec::Presence(t, to) => ("presence", *t, to.jid(), None),
            Spec::Iq(t, to, p) => {
                let q = match p {
                    Payload::Ping => Element::new(ns::PING, "ping"),
                    Payload::RosterGet => Element::new(ns::ROSTER, "query"),
                    Payload::RosterSet(u) => Element::new(ns::ROSTER, "query")
                        .with_child(Element::new(ns::ROSTER, "item").with_attr("jid", account(*u))),
                    Payload::RosterRemove(u) => Element::new(ns::ROSTER, "query").with_child(
                        Element::new(ns::ROSTER, "item")
                            .with_attr("jid", account(*u))
                            .with_attr("subscription", "remove"),
                    ),
                    Payload::DiscoInfo => Element::new(ns::DISCO_INFO, "query"),
                    Payload::Unknown => Element::new("urn:example:unknown", "x"),
                };
                ("iq", Some(*t), to.jid(), Some(q))
            }
        };
        let mut el = Element::new(ns::CLIENT, name).with_attr("id", tag);
        if let Some(t) = ty {
            el.set_attr("type", t);
        }
        if let Some(to) = &to {
            el.set_attr("to", to.to_string());
        }
        // Stamped by the c2s stream.
        el.set_attr("from", sender.to_string());
        if let Some(p) = payload {
            el = el.with_child(p);
        }
        el
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let mut seen = Vec::new();
        match op {
            Op::Tick(ms) => self.now += u64::from(*ms),
            Op::Bind(u, r) => {
                let jid = Jid::parse(&format!("{}/r{r}", account(*u))).expect("valid");
                let conn = self.next_conn;
                self.next_conn += 1;
                self.ever_bound.insert(jid.to_string());
                self.bound.insert(conn, jid.clone());
                self.hub.session_bound(self.now, conn, jid);
                self.drain(&mut seen)?;
            }
            Op::Close(pick) => {
                let Some((conn, jid)) = self.session(*pick) else {
                    return Ok(());
                };
                self.bound.remove(&conn);
                self.closing = Some((conn, jid));
                self.hub.session_closed(self.now, conn);
                let r = self.drain(&mut seen);
                self.closing = None;
                r?;
            }
            Op::Send(pick, spec) => {
                let Some((conn, sender)) = self.session(*pick) else {
                    return Ok(());
                };
                let stanza = self.build(&sender, spec);
                let id = stanza.attr("id").unwrap_or_default().to_owned();
                let sender_bare = sender.bare_str();
                // The address the hub treats the stanza as sent to.
                let addressee = stanza
                    .attr("to")
                    .and_then(|t| Jid::parse(t).ok())
                    .or_else(|| (stanza.name == "message").then(|| sender.bare()));
                if let Some(a) = addressee.as_ref().filter(|a| a.local().is_some()) {
                    self.contacts.insert((sender_bare.clone(), a.bare_str()));
                    let is_sub = stanza.name == "presence"
                        && matches!(
                            stanza.attr("type"),
                            Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed")
                        );
                    if is_sub {
                        self.subscriptions
                            .insert((sender_bare.clone(), a.bare_str()));
                    }
                }
                if let Spec::Iq(_, _, Payload::RosterRemove(u) | Payload::RosterSet(u)) = spec {
                    self.subscriptions
                        .insert((sender_bare.clone(), account(*u)));
                    self.contacts.insert((sender_bare.clone(), account(*u)));
                }
                let must_arrive = stanza.name == "message"
                    && matches!(stanza.attr("type"), None | Some("chat" | "normal"))
                    && addressee.as_ref().is_some_and(|a| is_known(&a.bare_str()));
                self.tags.insert(
                    id.clone(),
                    Sent {
                        sender,
                        stanza: stanza.clone(),
                    },
                );
                self.hub.from_session(self.now, conn, stanza);
                self.drain(&mut seen)?;

                // 2. No loss.
                if let Some(a) = addressee.filter(|_| must_arrive) {
                    let account = a.bare_str();
                    let arrived = seen.iter().any(|s| match s {
                        Seen::Delivered { bare, stanza } => {
                            *bare == account
                                && stanza.name == "message"
                                && stanza.attr("id") == Some(id.as_str())
                                && stanza.attr("type") != Some("error")
                        }
                        Seen::Stored {
                            account: acc,
                            stanza,
                        } => {
                            *acc == account
                                && Element::parse(stanza.as_bytes())
                                    .is_ok_and(|e| e.attr("id") == Some(id.as_str()))
                        }
                    });
                    prop_assert!(
                        arrived,
                        "message {} to {} was neither delivered nor stored: {:?}",
                        id,
                        account,
                        seen
                    );
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deliveries_respect_addressing_and_nothing_is_lost(
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut world = World::new();
        for op in &ops {
            world.apply(op)?;
        }
        // Every session leaves; the hub must stay consistent to the end.
        let conns: Vec<ConnId> = world.bound.keys().copied().collect();
        for _ in conns {
            world.apply(&Op::Close(0))?;
        }
        prop_assert_eq!(world.hub.session_count(), 0);
    }
}

/// A fixed scenario: two resources of u0, u1 online, messages every way.
#[test]
fn scripted_exchange() {
    let mut w = World::new();
    let avail = Spec::Broadcast(Some(0));
    let ops = [
        Op::Bind(0, 0),
        Op::Bind(0, 1),
        Op::Bind(1, 0),
        Op::Send(0, avail.clone()),
        Op::Send(1, avail.clone()),
        Op::Send(2, avail),
        Op::Send(2, Spec::Message(Some("chat"), Target::Bare(0))),
        Op::Send(2, Spec::Message(Some("chat"), Target::Full(0, 1))),
        Op::Send(2, Spec::Message(Some("chat"), Target::Full(0, 3))),
        Op::Send(0, Spec::Message(None, Target::Bare(2))),
        Op::Send(0, Spec::Message(Some("normal"), Target::Full(3, 0))),
        Op::Send(0, Spec::Message(Some("chat"), Target::Bare(6))),
        Op::Send(0, Spec::Presence(Some("subscribe"), Target::Bare(1))),
        Op::Send(2, Spec::Presence(Some("subscribed"), Target::Bare(0))),
        Op::Send(2, Spec::Iq("get", Target::Full(0, 0), Payload::Ping)),
        Op::Send(2, Spec::Iq("get", Target::Bare(0), Payload::RosterGet)),
        Op::Close(0),
        Op::Close(0),
        Op::Close(0),
    ];
    for op in &ops {
        w.apply(op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
    assert_eq!(w.hub.session_count(), 0);
}
