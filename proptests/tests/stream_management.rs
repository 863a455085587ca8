//! XEP-0198 properties.
//!
//! 1. Counter arithmetic: with counters starting anywhere (also just below
//!    2^32), `sent` is the number pushed modulo 2^32, an ack drops exactly
//!    the acknowledged prefix, an `h` beyond `sent` is refused and one behind
//!    the last acknowledgement changes nothing.
//! 2. Resumption replays exactly the unacknowledged suffix: in a simulated
//!    world, bob sends numbered messages to alice while alice reads some,
//!    acknowledges lagging counts, loses her connection (and every byte in
//!    flight with it) and resumes with the count she handled, any number of
//!    times. At the end alice has seen every message exactly once, in order.

use proptest::prelude::*;
use std::collections::VecDeque;
use xmpp_core::hub::{ConnId, HubConfig};
use xmpp_core::sim::World;
use xmpp_core::stream::sm::Unacked;
use xmpp_core::stream::ServerStreamConfig;
use xmpp_core::xml::{Limits, StreamEvent, StreamParser};
use xmpp_core::Element;

const SM: &str = "urn:xmpp:sm:3";
const HEADER: &str = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

#[derive(Debug, Clone)]
enum CounterOp {
    Push,
    /// Acknowledge this far into the window of unacknowledged stanzas
    /// (0..=len valid; larger values are out of range on purpose).
    Ack(u8),
}

fn counter_op() -> impl Strategy<Value = CounterOp> {
    prop_oneof![3 => Just(CounterOp::Push), 2 => (0u8..12).prop_map(CounterOp::Ack)]
}

proptest! {
    #[test]
    fn counters_wrap_and_acks_drop_the_acknowledged_prefix(
        start in prop_oneof![Just(0u32), Just(u32::MAX - 3), Just(u32::MAX), any::<u32>()],
        ops in prop::collection::vec(counter_op(), 0..60),
    ) {
        let mut q = Unacked::with_acked(start);
        // The model: 64-bit counts, never wrapping.
        let mut pushed: u64 = 0;
        let mut acked: u64 = 0;
        let mut window: VecDeque<u64> = VecDeque::new();
        for op in ops {
            match op {
                CounterOp::Push => {
                    q.push(Element::new("jabber:client", "message")
                        .with_attr("id", pushed.to_string()));
                    window.push_back(pushed);
                    pushed += 1;
                }
                CounterOp::Ack(k) => {
                    let h = start.wrapping_add((acked + u64::from(k)) as u32);
                    let result = q.ack(h);
                    if usize::from(k) <= window.len() {
                        prop_assert_eq!(result, Ok(usize::from(k)));
                        window.drain(..usize::from(k));
                        acked += u64::from(k);
                    } else {
                        prop_assert!(result.is_err(), "h beyond what was sent accepted");
                    }
                }
            }
            prop_assert_eq!(q.sent(), start.wrapping_add(pushed as u32));
            prop_assert_eq!(q.acked(), start.wrapping_add(acked as u32));
            let ids: Vec<u64> = q.iter()
                .filter_map(|m| m.attr("id").and_then(|i| i.parse().ok()))
                .collect();
            prop_assert_eq!(ids, window.iter().copied().collect::<Vec<_>>());
        }
        // A count behind the last acknowledgement is stale: nothing changes.
        if acked > 0 {
            let before = q.len();
            prop_assert_eq!(q.ack(start.wrapping_add(acked as u32).wrapping_sub(1)), Ok(0));
            prop_assert_eq!(q.len(), before);
        }
    }
}

/// One raw client connection of the simulated world, past negotiation.
struct Client {
    conn: ConnId,
    parser: StreamParser,
}

impl Client {
    /// Direct TLS, SASL PLAIN, bind `resource` — or, with `resume`, send
    /// `<resume/>` instead of binding.
    fn login(w: &mut World, user: &str, resource: &str, resume: Option<(&str, u32)>) -> Client {
        let conn = w.connect(true);
        let plain = match user {
            "alice" => "AGFsaWNlAHNlY3JldA==",
            _ => "AGJvYgBzZWNyZXQ=",
        };
        w.client_sends(conn, HEADER.as_bytes());
        w.client_sends(
            conn,
            format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>"
            )
            .as_bytes(),
        );
        w.client_sends(conn, HEADER.as_bytes());
        w.take_server_output(conn);
        match resume {
            None => w.client_sends(
                conn,
                format!("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>")
                    .as_bytes(),
            ),
            Some((previd, h)) => w.client_sends(
                conn,
                format!("<resume xmlns='{SM}' previd='{previd}' h='{h}'/>").as_bytes(),
            ),
        }
        let mut parser = StreamParser::new(Limits::default());
        parser.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
        let mut c = Client { conn, parser };
        if resume.is_none() {
            let _bind_result = c.read(w);
        }
        c
    }

    /// Every element the server wrote since the last read.
    fn read(&mut self, w: &mut World) -> Vec<Element> {
        self.parser.feed(&w.take_server_output(self.conn));
        let mut out = Vec::new();
        while let Ok(Some(ev)) = self.parser.next_event() {
            if let StreamEvent::Stanza(el) = ev {
                out.push(el);
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// bob sends the next numbered message to alice's full JID.
    Send,
    /// alice reads what arrived.
    Read,
    /// alice acknowledges what she had handled `lag` reads ago (or now).
    Ack(u8),
    /// alice's connection dies, then she resumes with what she handled.
    CutAndResume,
    /// alice's connection dies; messages may arrive before she resumes.
    Cut,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Send),
        3 => Just(Op::Read),
        2 => (0u8..3).prop_map(Op::Ack),
        1 => Just(Op::CutAndResume),
        1 => Just(Op::Cut),
    ]
}

struct Alice {
    client: Client,
    smid: String,
    /// Stanzas handled (XEP-0198 'h'), and its value after each read.
    handled: u32,
    history: Vec<u32>,
    /// Message numbers seen, in order.
    seen: Vec<u64>,
    connected: bool,
}

impl Alice {
    fn absorb(&mut self, els: Vec<Element>) -> Result<(), TestCaseError> {
        for el in els {
            if el.ns == SM {
                prop_assert!(
                    matches!(el.name.as_str(), "r" | "resumed" | "enabled"),
                    "unexpected SM element {}",
                    el.to_xml()
                );
                continue;
            }
            prop_assert_eq!(el.name.as_str(), "message", "unexpected {}", el.to_xml());
            self.handled = self.handled.wrapping_add(1);
            let n: Option<u64> = el
                .child_text("jabber:client", "body")
                .and_then(|b| b.parse().ok());
            prop_assert!(n.is_some(), "message without a number: {}", el.to_xml());
            self.seen.extend(n);
        }
        self.history.push(self.handled);
        Ok(())
    }

    fn resume(&mut self, w: &mut World) -> Result<(), TestCaseError> {
        self.client = Client::login(w, "alice", "phone", Some((&self.smid, self.handled)));
        let els = self.client.read(w);
        prop_assert!(
            els.first().is_some_and(|e| e.is(SM, "resumed")),
            "resume failed: {:?}",
            els.iter().map(|e| e.to_xml()).collect::<Vec<_>>()
        );
        self.connected = true;
        self.absorb(els)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn resume_replays_exactly_the_unacknowledged_suffix(ops in prop::collection::vec(op(), 1..40)) {
        let mut w = World::new(ServerStreamConfig::default(), HubConfig::default());
        w.add_user("alice@localhost", "secret");
        w.add_user("bob@localhost", "secret");
        let mut bob = Client::login(&mut w, "bob", "laptop", None);
        let mut client = Client::login(&mut w, "alice", "phone", None);
        w.client_sends(client.conn, format!("<enable xmlns='{SM}' resume='true'/>").as_bytes());
        let enabled = client.read(&mut w);
        let smid = enabled.first()
            .filter(|e| e.is(SM, "enabled"))
            .and_then(|e| e.attr("id"))
            .map(str::to_owned);
        prop_assert!(smid.is_some(), "not enabled: {:?}", enabled);
        let mut alice = Alice {
            client,
            smid: smid.unwrap_or_default(),
            handled: 0,
            history: vec![0],
            seen: Vec::new(),
            connected: true,
        };
        let mut sent: u64 = 0;
        for op in ops {
            match op {
                Op::Send => {
                    w.client_sends(bob.conn, format!(
                        "<message to='alice@localhost/phone' type='chat'><body>{sent}</body></message>"
                    ).as_bytes());
                    sent += 1;
                    bob.read(&mut w);
                }
                Op::Read if alice.connected => {
                    let els = alice.client.read(&mut w);
                    alice.absorb(els)?;
                }
                Op::Ack(lag) if alice.connected => {
                    let i = alice.history.len().saturating_sub(1 + usize::from(lag));
                    let h = alice.history[i];
                    w.client_sends(alice.client.conn, format!("<a xmlns='{SM}' h='{h}'/>").as_bytes());
                }
                Op::Cut | Op::CutAndResume if alice.connected => {
                    // Whatever the server wrote and alice did not read is lost.
                    w.disconnect(alice.client.conn);
                    alice.connected = false;
                    prop_assert!(w.is_hibernated(alice.client.conn));
                    if matches!(op, Op::CutAndResume) {
                        alice.resume(&mut w)?;
                    }
                }
                Op::Read | Op::Ack(_) | Op::Cut | Op::CutAndResume => {
                    alice.resume(&mut w)?;
                }
            }
        }
        if !alice.connected {
            alice.resume(&mut w)?;
        }
        let els = alice.client.read(&mut w);
        alice.absorb(els)?;
        prop_assert_eq!(alice.seen, (0..sent).collect::<Vec<_>>());
    }
}
