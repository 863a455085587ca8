//! The rule of the receiving s2s stream (issue 13): no stanza from an
//! unverified domain pair, or with a `from` outside a verified pair, is
//! ever routed.
//!
//! Random sequences of what a peer and the driver can do — dialback
//! requests for pairs of three sender domains (one of them hostile) and
//! three target domains (one not ours), verdicts (valid, invalid, failed,
//! also for pairs never asked), stanzas with every combination of
//! addresses, malformed chunks, the peer closing, time passing — are run
//! against `IncomingStream` and a model of what the peer has proven: a
//! pair is proven only by a valid verdict for a request the stream made
//! and has not answered yet. Every routed stanza must come from a proven
//! pair (or be our own error answer to one), and once the stream is
//! closed nothing more comes out.

use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;
use xmpp_core::entropy::Entropy;
use xmpp_core::jid::Jid;
use xmpp_core::s2s::dialback::DialbackSecret;
use xmpp_core::s2s::{IncomingConfig, IncomingOutput, IncomingStream};

const SENDERS: [&str; 3] = ["a.example", "x.example", "evil.example"];
const TARGETS: [&str; 3] = ["b.example", "c.example", "z.example"];
const OPEN: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' from='a.example' to='b.example' version='1.0'>";

#[derive(Debug, Clone)]
enum Op {
    Ask(usize, usize),
    Verdict(usize, usize, bool),
    Fail(usize, usize),
    Stanza(usize, usize, &'static str),
    NoFrom(usize),
    Raw(&'static str),
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let i = || 0..3usize;
    prop_oneof![
        3 => (i(), i()).prop_map(|(s, t)| Op::Ask(s, t)),
        3 => (i(), i(), any::<bool>()).prop_map(|(s, t, v)| Op::Verdict(s, t, v)),
        1 => (i(), i()).prop_map(|(s, t)| Op::Fail(s, t)),
        6 => (i(), i(), prop::sample::select(vec!["message", "presence", "iq"]))
            .prop_map(|(s, t, k)| Op::Stanza(s, t, k)),
        1 => i().prop_map(Op::NoFrom),
        1 => prop::sample::select(vec![
            "<db:result from='a.example' to='b.example' type='valid'/>",
            "<db:verify from='a.example' to='b.example' id='x'>00</db:verify>",
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
            "<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' from='a.example' to='b.example' version='1.0'>",
            "<message xmlns='jabber:client' from='u@a.example' to='v@b.example'/>",
            "<db:result from='a.example' to='b.example'></db:result>",
            "</stream:stream>",
            "<unclosed",
        ])
        .prop_map(Op::Raw),
        1 => (0..120_000u64).prop_map(Op::Tick),
    ]
}

fn stanza(kind: &str, from: &str, to: &str) -> String {
    match kind {
        "iq" => format!(
            "<iq type='get' id='q' from='u@{from}/r' to='{to}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ),
        k => format!("<{k} from='u@{from}/r' to='v@{to}'/>"),
    }
}

fn domain(jid: Option<&str>) -> Option<String> {
    Jid::parse(jid?).ok().map(|j| j.domain().to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn nothing_is_routed_from_an_unproven_pair(ops in prop::collection::vec(op(), 1..60)) {
        let cfg = IncomingConfig {
            domains: vec!["b.example".into(), "c.example".into()],
            secret: DialbackSecret::new(b"s"),
            max_pending: 4,
            max_pairs: 5,
            verify_timeout_ms: 30_000,
            auth_timeout_ms: 60_000,
            require_tls: false,
            ..IncomingConfig::default()
        };
        let mut s = IncomingStream::new(Arc::new(cfg), Entropy::from_u64(7), 0);
        let mut now = 0u64;
        s.handle_input(now, OPEN.as_bytes());
        // Requests the stream made (Verify outputs) not yet answered, and
        // pairs proven by a valid verdict for one of them.
        let mut asked: HashSet<(String, String)> = HashSet::new();
        let mut proven: HashSet<(String, String)> = HashSet::new();
        let mut closed = false;
        for op in ops {
            match op {
                Op::Ask(si, ti) => s.handle_input(now, format!(
                    "<db:result from='{}' to='{}'>0a0b</db:result>", SENDERS[si], TARGETS[ti]).as_bytes()),
                Op::Verdict(si, ti, valid) => {
                    let pair = (SENDERS[si].to_owned(), TARGETS[ti].to_owned());
                    if valid && asked.remove(&pair) && !s.is_closed() {
                        proven.insert(pair.clone());
                    }
                    asked.remove(&pair);
                    s.verified(SENDERS[si], TARGETS[ti], valid);
                }
                Op::Fail(si, ti) => {
                    asked.remove(&(SENDERS[si].to_owned(), TARGETS[ti].to_owned()));
                    s.verification_failed(SENDERS[si], TARGETS[ti],
                        xmpp_core::s2s::dialback::DialbackCondition::RemoteConnectionFailed);
                }
                Op::Stanza(si, ti, kind) =>
                    s.handle_input(now, stanza(kind, SENDERS[si], TARGETS[ti]).as_bytes()),
                Op::NoFrom(ti) => s.handle_input(now, format!("<message to='v@{}'/>", TARGETS[ti]).as_bytes()),
                Op::Raw(raw) => s.handle_input(now, raw.as_bytes()),
                Op::Tick(ms) => {
                    now += ms;
                    // Requests the stream gives up on are no longer asked.
                    s.handle_timeout(now);
                }
            }
            while let Some(out) = s.poll_output() {
                match out {
                    IncomingOutput::Write(_) => {}
                    IncomingOutput::StartTls => s.tls_established(),
                    IncomingOutput::Close => {
                        prop_assert!(!closed, "closed twice");
                        closed = true;
                    }
                    IncomingOutput::Verify { sender, target, .. } => {
                        prop_assert!(!closed, "a request after the close");
                        prop_assert!(target.as_str() != "z.example", "a request for a domain not ours");
                        asked.insert((sender.as_str().to_owned(), target.as_str().to_owned()));
                    }
                    IncomingOutput::Bidi { local, remote } => {
                        prop_assert!(!closed, "a bidi pair after the close");
                        prop_assert!(proven.contains(&(remote.clone(), local.clone())),
                            "bidi for the unproven pair ({}, {})", remote, local);
                    }
                    IncomingOutput::Stanza(st) => {
                        prop_assert!(!closed, "a stanza after the close: {:?}", st);
                        let from = domain(st.attr("from"));
                        let to = domain(st.attr("to"));
                        let (Some(from), Some(to)) = (from, to) else {
                            return Err(TestCaseError::fail(format!("unaddressed: {st:?}")));
                        };
                        let ours = st.attr("type") == Some("error")
                            && proven.contains(&(to.clone(), from.clone()));
                        prop_assert!(
                            proven.contains(&(from.clone(), to.clone())) || ours,
                            "routed from the unproven pair ({}, {}): {:?}; proven {:?}",
                            from, to, st, proven
                        );
                    }
                }
            }
            // A request the stream timed out is answered by it, not the driver.
            if s.is_closed() {
                asked.clear();
            }
        }
    }
}
