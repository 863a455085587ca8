//! Stream management (XEP-0198) sequences: enable, acknowledgements,
//! transport losses, resumption (with right, stale and forged ids and
//! counts), from structured input, while bob sends alice numbered messages.
//!
//! Alice is a raw connection the harness plays as a client would: it counts
//! the stanzas it receives, answers `<r/>` with that count unless told to
//! lie, and resumes with the id from `<enabled/>`. The properties: nothing
//! panics; the server writes well-formed XML; no message is lost — every
//! message bob sent reached one of alice's connections, alice's offline
//! store, or came back to bob as an error; and once everything disconnects
//! and the timeouts pass, the hub holds no session.

use super::login::{self, OutputCheck};
use arbitrary::{Arbitrary, Unstructured};
use std::collections::BTreeSet;
use xmpp_core::hub::ConnId;
use xmpp_core::sim::World;
use xmpp_core::xml::Element;

const ALICE: &str = "alice@localhost";
const BOB: &str = "bob@localhost";
const SM: &str = "urn:xmpp:sm:3";

/// One step of the sequence.
#[derive(Arbitrary, Debug)]
pub enum Op {
    /// `<enable/>`, optionally resumable, optionally with `max`.
    Enable {
        /// `resume='true'`.
        resume: bool,
        /// `max='…'`.
        max: Option<u32>,
    },
    /// `<r/>` from alice.
    Request,
    /// `<a h=…/>` from alice.
    Ack(Count),
    /// Bob sends alice this many messages (to her bare or full JID).
    BobSends {
        /// How many (modulo 16).
        count: u8,
        /// To `alice@localhost/phone` instead of the bare JID.
        full_jid: bool,
    },
    /// Alice sends a message and a ping (her outbound count moves).
    AliceSends,
    /// Initial presence from alice (bare-JID messages then reach her).
    AlicePresence,
    /// Alice's transport breaks.
    Drop,
    /// Alice closes her stream.
    Close,
    /// A new connection authenticates and sends `<resume/>`.
    Resume {
        /// Which id.
        previd: PrevId,
        /// The `h` sent.
        h: Count,
    },
    /// A new connection authenticates and binds (a fresh session).
    Rebind,
    /// Seconds of simulated time pass.
    Advance(u16),
    /// Any bytes on alice's connection.
    Raw(Vec<u8>),
}

/// An `h` value alice sends.
#[derive(Arbitrary, Debug)]
pub enum Count {
    /// What alice really received.
    Honest,
    /// More than she received.
    Over(u8),
    /// Less than she received.
    Under(u8),
    /// Any value.
    Value(u32),
}

/// The id alice resumes.
#[derive(Arbitrary, Debug)]
pub enum PrevId {
    /// The id of the last `<enabled/>`.
    Last,
    /// The id of the first `<enabled/>` of this run.
    First,
    /// Any text.
    Forged(String),
}

struct Alice {
    conn: ConnId,
    check: OutputCheck,
    /// Stanzas received since SM was enabled or resumed (alice's `h`).
    received: u32,
    counting: bool,
}

struct Run {
    world: World,
    alice: Option<Alice>,
    /// Alice's earlier connections, still open until the server closes
    /// them (a replaced resource, a resumed session): still read.
    earlier: Vec<(ConnId, OutputCheck)>,
    bob: ConnId,
    bob_check: OutputCheck,
    first_id: Option<String>,
    last_id: Option<String>,
    next_msg: u32,
    sent: BTreeSet<u32>,
    seen: BTreeSet<u32>,
    resumed: usize,
}

/// What a sequence reached, for tests that the harness goes deep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Messages bob sent.
    pub sent: usize,
    /// Distinct messages seen on alice's connections or bounced to bob.
    pub seen: usize,
    /// `<resumed/>` answers alice got.
    pub resumed: usize,
}

/// Message numbers in `<body>mN</body>` of the stanzas.
fn numbers(stanzas: &[Element], into: &mut BTreeSet<u32>) {
    for el in stanzas {
        let xml = el.to_xml();
        into.extend(numbers_in(&xml));
    }
}

fn numbers_in(text: &str) -> Vec<u32> {
    text.split("<body>m")
        .skip(1)
        .filter_map(|rest| rest.split('<').next()?.parse().ok())
        .collect()
}

impl Run {
    fn new() -> Option<Self> {
        let mut world = login::world();
        let bob = login::login(&mut world, BOB, Some("laptop"))?;
        let mut run = Run {
            world,
            alice: None,
            earlier: Vec::new(),
            bob,
            bob_check: OutputCheck::new("jabber:client"),
            first_id: None,
            last_id: None,
            next_msg: 0,
            sent: BTreeSet::new(),
            seen: BTreeSet::new(),
            resumed: 0,
        };
        run.connect_alice(true, None);
        Some(run)
    }

    fn connect_alice(&mut self, bind: bool, resume: Option<(String, u32)>) {
        let resource = bind.then_some("phone");
        let Some(conn) = login::login(&mut self.world, ALICE, resource) else {
            return;
        };
        if let Some(old) = self.alice.take() {
            self.earlier.push((old.conn, old.check));
        }
        let mut alice = Alice {
            conn,
            check: OutputCheck::new("jabber:client"),
            received: 0,
            counting: false,
        };
        if let Some((previd, h)) = resume {
            let xml = format!(
                "<resume xmlns='{SM}' previd='{}' h='{h}'/>",
                escape(&previd)
            );
            self.world.client_sends(conn, xml.as_bytes());
            alice.received = h;
        }
        self.alice = Some(alice);
        self.drain();
    }

    fn alice_sends(&mut self, bytes: &[u8]) {
        if let Some(a) = &self.alice {
            self.world.client_sends(a.conn, bytes);
        }
    }

    fn count(&self, c: &Count) -> u32 {
        let h = self.alice.as_ref().map_or(0, |a| a.received);
        match *c {
            Count::Honest => h,
            Count::Over(n) => h.wrapping_add(u32::from(n) + 1),
            Count::Under(n) => h.wrapping_sub(u32::from(n) + 1),
            Count::Value(v) => v,
        }
    }

    fn op(&mut self, op: Op) {
        match op {
            Op::Enable { resume, max } => {
                let mut xml = format!("<enable xmlns='{SM}'");
                if resume {
                    xml.push_str(" resume='true'");
                }
                if let Some(max) = max {
                    xml.push_str(&format!(" max='{max}'"));
                }
                xml.push_str("/>");
                self.alice_sends(xml.as_bytes());
            }
            Op::Request => self.alice_sends(format!("<r xmlns='{SM}'/>").as_bytes()),
            Op::Ack(c) => {
                let h = self.count(&c);
                self.alice_sends(format!("<a xmlns='{SM}' h='{h}'/>").as_bytes());
            }
            Op::BobSends { count, full_jid } => {
                let to = if full_jid {
                    "alice@localhost/phone"
                } else {
                    ALICE
                };
                for _ in 0..count % 16 {
                    let n = self.next_msg;
                    self.next_msg += 1;
                    self.sent.insert(n);
                    let xml = format!(
                        "<message to='{to}' type='chat' id='m{n}'><body>m{n}</body></message>"
                    );
                    self.world.client_sends(self.bob, xml.as_bytes());
                }
            }
            Op::AliceSends => self.alice_sends(
                b"<message to='bob@localhost' type='chat'><body>from alice</body></message>\
                  <iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
            ),
            Op::AlicePresence => self.alice_sends(b"<presence/>"),
            Op::Drop => {
                if let Some(a) = self.alice.take() {
                    self.world.disconnect(a.conn);
                }
            }
            Op::Close => self.alice_sends(b"</stream:stream>"),
            Op::Resume { previd, h } => {
                let h = self.count(&h);
                let previd = match previd {
                    PrevId::Last => self.last_id.clone().unwrap_or_default(),
                    PrevId::First => self.first_id.clone().unwrap_or_default(),
                    PrevId::Forged(s) => s,
                };
                self.connect_alice(false, Some((previd, h)));
            }
            Op::Rebind => self.connect_alice(true, None),
            Op::Advance(s) => self.world.advance(u64::from(s) * 1000),
            Op::Raw(bytes) => self.alice_sends(&bytes),
        }
        self.drain();
    }

    /// Read what the server wrote: alice counts stanzas, answers `<r/>`
    /// honestly, remembers SM ids; message numbers are collected.
    fn drain(&mut self) {
        let out = self.world.take_server_output(self.bob);
        let stanzas = self.bob_check.feed(&out);
        numbers(&stanzas, &mut self.seen);
        for (conn, check) in &mut self.earlier {
            let out = self.world.take_server_output(*conn);
            numbers(&check.feed(&out), &mut self.seen);
        }
        let Some(mut alice) = self.alice.take() else {
            return;
        };
        let out = self.world.take_server_output(alice.conn);
        let stanzas = alice.check.feed(&out);
        let mut answer = Vec::new();
        for el in &stanzas {
            if el.is(SM, "enabled") {
                alice.counting = true;
                alice.received = 0;
                if let Some(id) = el.attr("id") {
                    self.first_id.get_or_insert_with(|| id.to_owned());
                    self.last_id = Some(id.to_owned());
                }
            } else if el.is(SM, "resumed") {
                alice.counting = true;
                self.resumed += 1;
            } else if el.is(SM, "r") {
                answer.push(alice.received);
            } else if alice.counting && !is_nonza(el) {
                alice.received = alice.received.wrapping_add(1);
            }
        }
        numbers(&stanzas, &mut self.seen);
        let conn = alice.conn;
        self.alice = Some(alice);
        for h in answer {
            self.world
                .client_sends(conn, format!("<a xmlns='{SM}' h='{h}'/>").as_bytes());
        }
        if self.world.is_closed(conn) {
            self.alice = None;
        }
    }

    fn finish(mut self) -> Outcome {
        if let Some(a) = self.alice.take() {
            self.earlier.push((a.conn, a.check));
        }
        self.drain();
        for (conn, _) in &self.earlier {
            self.world.disconnect(*conn);
        }
        self.world.disconnect(self.bob);
        self.world.advance(24 * 3600 * 1000);
        assert_eq!(self.world.hub().session_count(), 0, "sessions left");
        let offline: BTreeSet<u32> = self
            .world
            .store()
            .offline(ALICE)
            .iter()
            .flat_map(|s| numbers_in(s))
            .collect();
        let lost: Vec<u32> = self
            .sent
            .iter()
            .filter(|n| !self.seen.contains(n) && !offline.contains(n))
            .copied()
            .collect();
        assert!(lost.is_empty(), "messages lost: {lost:?}");
        Outcome {
            sent: self.sent.len(),
            seen: self.seen.len(),
            resumed: self.resumed,
        }
    }
}

/// Stanzas count for XEP-0198; stream-level elements do not.
fn is_nonza(el: &Element) -> bool {
    !["message", "presence", "iq"]
        .iter()
        .any(|name| el.is("jabber:client", name))
}

fn escape(s: &str) -> String {
    let mut out = Vec::new();
    xmpp_core::xml::escape_attr(s, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Run one input.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while let Ok(op) = Op::arbitrary(&mut u) {
        if u.is_empty() {
            break;
        }
        ops.push(op);
    }
    run_ops(ops);
}

/// Run a sequence and check the properties.
pub fn run_ops(ops: impl IntoIterator<Item = Op>) -> Outcome {
    let Some(mut run) = Run::new() else {
        panic!("bob or alice could not log in");
    };
    for op in ops {
        run.op(op);
    }
    run.finish()
}
