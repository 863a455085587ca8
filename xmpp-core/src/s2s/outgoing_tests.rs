//! The initiating stream against a peer written out byte by byte, and
//! dialback end to end between two in-memory servers: each one's outgoing
//! stream talking to the other's incoming stream, verification carried
//! over the reverse pair.

use super::*;
use crate::entropy::Entropy;
use crate::s2s::incoming::{IncomingConfig, IncomingOutput, IncomingStream};

const US: &str = "a.example";
const PEER: &str = "b.example";
const PEER_OPEN: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' from='b.example' id='S1' version='1.0'>";
const FEATURES: &str =
    "<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>";

fn domain(d: &str) -> DialbackDomain {
    DialbackDomain::parse(d).expect("a domain")
}

fn cfg(secret: &[u8]) -> Arc<OutgoingConfig> {
    Arc::new(OutgoingConfig {
        secret: DialbackSecret::new(secret),
        auth_timeout_ms: 1_000,
        max_waiting_verifies: 1,
        // Dialback over plain TCP here; TLS has its own tests.
        require_tls: false,
        ..OutgoingConfig::default()
    })
}

fn stream() -> OutgoingStream {
    OutgoingStream::new(cfg(b"a secret"), domain(US), domain(PEER), 0)
}

fn drain(s: &mut OutgoingStream) -> (String, Vec<OutgoingOutput>) {
    let mut written = Vec::new();
    let mut other = Vec::new();
    while let Some(o) = s.poll_output() {
        match o {
            OutgoingOutput::Write(b) => written.extend_from_slice(&b),
            o => other.push(o),
        }
    }
    (String::from_utf8_lossy(&written).into_owned(), other)
}

/// A stream whose key is out.
fn keyed() -> OutgoingStream {
    let mut s = stream();
    s.handle_input(1, PEER_OPEN.as_bytes());
    s.handle_input(1, FEATURES.as_bytes());
    drain(&mut s);
    s
}

#[test]
fn our_header_then_our_key_for_their_stream_id() {
    let mut s = stream();
    let (written, _) = drain(&mut s);
    assert!(
        written.contains("from='a.example' to='b.example'"),
        "{written}"
    );
    assert!(
        written.contains("xmlns:db='jabber:server:dialback'"),
        "{written}"
    );
    s.handle_input(1, PEER_OPEN.as_bytes());
    assert_eq!(drain(&mut s).0, "", "nothing before the features");
    s.handle_input(1, FEATURES.as_bytes());
    let (written, _) = drain(&mut s);
    let key = DialbackSecret::new(b"a secret").key(PEER, US, "S1");
    assert_eq!(
        written,
        format!(
            "<db:result from='a.example' to='b.example'>{}</db:result>",
            key.as_str()
        )
    );
}

#[test]
fn a_pre_1_0_peer_gets_the_key_without_features() {
    let mut s = stream();
    drain(&mut s);
    s.handle_input(
        1,
        PEER_OPEN
            .replace("id='S1' version='1.0'", "id='S1'")
            .as_bytes(),
    );
    let (written, _) = drain(&mut s);
    assert!(written.starts_with("<db:result"), "{written}");
}

#[test]
fn valid_makes_it_ready_and_stanzas_go_in_the_server_namespace() {
    let mut s = keyed();
    let m = Element::new(ns::CLIENT, "message")
        .with_attr("from", "juliet@a.example/r")
        .with_attr("to", "romeo@b.example")
        .with_child(Element::new(ns::CLIENT, "body").with_text("hi"));
    assert!(!s.send_stanza(&m), "not before the verdict");
    s.handle_input(
        2,
        b"<db:result from='b.example' to='a.example' type='valid'/>",
    );
    let (_, other) = drain(&mut s);
    assert_eq!(other, vec![OutgoingOutput::Ready]);
    assert!(s.send_stanza(&m));
    let (written, _) = drain(&mut s);
    assert_eq!(
        written,
        "<message from='juliet@a.example/r' to='romeo@b.example'><body>hi</body></message>"
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn invalid_or_error_refuses_the_pair_and_closes() {
    let mut s = keyed();
    s.handle_input(
        2,
        b"<db:result from='b.example' to='a.example' type='invalid'/>",
    );
    let (written, other) = drain(&mut s);
    assert_eq!(
        other,
        vec![OutgoingOutput::Refused(None), OutgoingOutput::Close]
    );
    assert!(written.ends_with("</stream:stream>"));

    let mut s = keyed();
    s.handle_input(
        2,
        b"<db:result from='b.example' to='a.example' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>",
    );
    let (_, other) = drain(&mut s);
    assert_eq!(
        other,
        vec![
            OutgoingOutput::Refused(Some(DialbackCondition::ItemNotFound)),
            OutgoingOutput::Close
        ]
    );
}

#[test]
fn a_stream_error_from_the_peer_refuses_and_closes_without_one_back() {
    // Prosody answering the header for a domain it does not serve.
    let mut s = stream();
    drain(&mut s);
    s.handle_input(1, PEER_OPEN.as_bytes());
    s.handle_input(
        1,
        b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    );
    let (written, other) = drain(&mut s);
    assert_eq!(written, "</stream:stream>");
    assert_eq!(
        other,
        vec![
            OutgoingOutput::Refused(Some(DialbackCondition::RemoteConnectionFailed)),
            OutgoingOutput::Close
        ]
    );

    // Once ready (a peer shutting down): closed, nothing refused.
    let mut s = keyed();
    s.handle_input(
        2,
        b"<db:result from='b.example' to='a.example' type='valid'/>",
    );
    drain(&mut s);
    s.handle_input(
        3,
        b"<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    );
    let (written, other) = drain(&mut s);
    assert_eq!(written, "</stream:stream>");
    assert_eq!(other, vec![OutgoingOutput::Close]);
}

#[test]
fn a_verdict_for_another_pair_is_ignored() {
    let mut s = keyed();
    s.handle_input(
        2,
        b"<db:result from='c.example' to='a.example' type='valid'/>",
    );
    assert!(drain(&mut s).1.is_empty());
    assert!(!s.is_ready());
}

#[test]
fn a_peer_requiring_tls_refuses_with_policy_violation_when_we_may_not() {
    let mut s = OutgoingStream::new(
        Arc::new(OutgoingConfig {
            starttls: false,
            ..OutgoingConfig::clone(&cfg(b"a secret"))
        }),
        domain(US),
        domain(PEER),
        0,
    );
    s.handle_input(1, PEER_OPEN.as_bytes());
    s.handle_input(
        1,
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
    );
    let (_, other) = drain(&mut s);
    assert_eq!(
        other,
        vec![
            OutgoingOutput::Refused(Some(DialbackCondition::PolicyViolation)),
            OutgoingOutput::Close
        ]
    );
}

#[test]
fn no_verdict_in_time_refuses_and_closes() {
    let mut s = keyed();
    assert_eq!(s.poll_timeout(), Some(1_000));
    s.handle_timeout(1_000);
    let (written, other) = drain(&mut s);
    assert!(written.contains("<connection-timeout"), "{written}");
    assert_eq!(
        other,
        vec![
            OutgoingOutput::Refused(Some(DialbackCondition::RemoteServerTimeout)),
            OutgoingOutput::Close
        ]
    );
}

#[test]
fn a_header_without_id_is_invalid_id() {
    let mut s = stream();
    s.handle_input(1, PEER_OPEN.replace(" id='S1'", "").as_bytes());
    let (written, other) = drain(&mut s);
    assert!(written.contains("<invalid-id"), "{written}");
    assert_eq!(
        other,
        vec![
            OutgoingOutput::Refused(Some(DialbackCondition::RemoteConnectionFailed)),
            OutgoingOutput::Close
        ]
    );
}

#[test]
fn verify_requests_wait_for_the_stream_and_come_back_answered() {
    let mut s = stream();
    drain(&mut s);
    let key = DialbackKey::parse("0a0b").expect("key");
    s.verify(
        domain(PEER),
        domain(US),
        StreamId::parse("IN1").expect("id"),
        key.clone(),
    );
    // max_waiting_verifies = 1: the second gets no answer at once.
    s.verify(
        domain(PEER),
        domain(US),
        StreamId::parse("IN2").expect("id"),
        key,
    );
    let (written, other) = drain(&mut s);
    assert!(!written.contains("db:verify"), "{written}");
    assert_eq!(
        other,
        vec![OutgoingOutput::VerifyAnswer {
            sender: PEER.into(),
            target: US.into(),
            stream_id: "IN2".into(),
            valid: None
        }]
    );
    s.handle_input(1, PEER_OPEN.as_bytes());
    s.handle_input(1, FEATURES.as_bytes());
    let (written, _) = drain(&mut s);
    assert!(
        written.ends_with("<db:verify from='a.example' to='b.example' id='IN1'>0a0b</db:verify>"),
        "{written}"
    );
    s.handle_input(
        2,
        b"<db:verify from='b.example' to='a.example' id='IN1' type='valid'/>",
    );
    let (_, other) = drain(&mut s);
    assert_eq!(
        other,
        vec![OutgoingOutput::VerifyAnswer {
            sender: PEER.into(),
            target: US.into(),
            stream_id: "IN1".into(),
            valid: Some(true)
        }]
    );
}

/// One server's two machines for the other: the stream it opened and the
/// stream it accepted, and what happened on them.
struct Server {
    /// The other server's domain: what its client certificate proves.
    peer: &'static str,
    /// Certificates are presented (and SASL EXTERNAL used).
    external: bool,
    /// Dialback verifications asked.
    verifies: usize,
    out: OutgoingStream,
    inc: IncomingStream,
    ready: bool,
    refused: bool,
    routed: Vec<Element>,
    /// Pairs (local, remote) the accepted stream may carry back (XEP-0288).
    bidi: Vec<(String, String)>,
}

/// `me`'s machines toward `peer`: its outgoing stream keys with `key_secret`,
/// its incoming side answers `db:verify` with `verify_secret` (the same on
/// an honest server).
fn server(
    me: &'static str,
    peer: &'static str,
    key_secret: &[u8],
    verify_secret: &[u8],
    seed: u64,
) -> Server {
    server_with(me, peer, key_secret, verify_secret, seed, false, false)
}

/// [`server`], using SASL EXTERNAL when `external` (both sides then
/// present certificates proving their domains).
fn server_with(
    me: &'static str,
    peer: &'static str,
    key_secret: &[u8],
    verify_secret: &[u8],
    seed: u64,
    external: bool,
    bidi: bool,
) -> Server {
    let inc_cfg = Arc::new(IncomingConfig {
        domains: vec![me.into()],
        secret: DialbackSecret::new(verify_secret),
        bidi,
        ..IncomingConfig::default()
    });
    let out_cfg = Arc::new(OutgoingConfig {
        secret: DialbackSecret::new(key_secret),
        sasl_external: external,
        bidi,
        ..OutgoingConfig::default()
    });
    Server {
        peer,
        external,
        verifies: 0,
        out: OutgoingStream::new(out_cfg, domain(me), domain(peer), 0),
        inc: IncomingStream::new(inc_cfg, Entropy::from_u64(seed), 0),
        ready: false,
        refused: false,
        routed: Vec::new(),
        bidi: Vec::new(),
    }
}

/// Carry out what `me`'s machines asked: bytes to the peer's machines,
/// verification requests over `me`'s own outgoing stream, answers back to
/// `me`'s incoming stream. Whether anything moved.
fn pump(me: &mut Server, peer: &mut Server) -> bool {
    let mut moved = false;
    while let Some(o) = me.out.poll_output() {
        moved = true;
        match o {
            OutgoingOutput::Write(bytes) => peer.inc.handle_input(1, &bytes),
            OutgoingOutput::VerifyAnswer {
                sender,
                target,
                valid,
                ..
            } => match valid {
                Some(v) => me.inc.verified(&sender, &target, v),
                None => me.inc.verification_failed(
                    &sender,
                    &target,
                    DialbackCondition::RemoteConnectionFailed,
                ),
            },
            OutgoingOutput::StartTls => me.out.tls_established(),
            OutgoingOutput::Ready => me.ready = true,
            OutgoingOutput::Refused(_) => me.refused = true,
            OutgoingOutput::Stanza(s) => me.routed.push(s),
            OutgoingOutput::Close => {}
        }
    }
    while let Some(o) = me.inc.poll_output() {
        moved = true;
        match o {
            IncomingOutput::Write(bytes) => peer.out.handle_input(1, &bytes),
            // The handshake "succeeds" at once on both ends; with
            // certificates, the peer's proves its domain.
            IncomingOutput::StartTls => {
                let cert: Option<Arc<dyn crate::s2s::incoming::PeerCertificate>> =
                    me.external.then(|| Arc::new(Proves(me.peer)) as _);
                me.inc.tls_established_with(cert)
            }
            IncomingOutput::Verify {
                sender,
                target,
                stream_id,
                key,
            } => {
                me.verifies += 1;
                me.out.verify(sender, target, stream_id, key)
            }
            IncomingOutput::Stanza(s) => me.routed.push(s),
            IncomingOutput::Bidi { local, remote } => me.bidi.push((local, remote)),
            IncomingOutput::Close => {}
        }
    }
    moved
}

/// A certificate proving one domain.
#[derive(Debug)]
struct Proves(&'static str);

impl crate::s2s::incoming::PeerCertificate for Proves {
    fn proves(&self, domain: &str) -> bool {
        domain == self.0
    }
}

fn settle(a: &mut Server, b: &mut Server) {
    for _ in 0..100 {
        let moved_a = pump(a, b);
        let moved_b = pump(b, a);
        if !moved_a && !moved_b {
            return;
        }
    }
    panic!("the two servers never settle");
}

fn chat(from: &str, to: &str) -> Element {
    Element::new(ns::CLIENT, "message")
        .with_attr("from", from)
        .with_attr("to", to)
        .with_child(Element::new(ns::CLIENT, "body").with_text("hello"))
}

/// Two honest servers: each proves its domain to the other through the
/// other's `db:verify` over the reverse stream, then messages flow both
/// ways and arrive as sent.
#[test]
fn two_servers_verify_each_other_and_exchange_messages() {
    let mut a = server(US, PEER, b"secret of a", b"secret of a", 1);
    let mut b = server(PEER, US, b"secret of b", b"secret of b", 2);
    settle(&mut a, &mut b);
    assert!(a.ready && b.ready, "both pairs verified");
    assert!(
        a.out.is_secure() && b.inc.is_secure(),
        "over TLS, as both require"
    );
    assert!(a.inc.is_verified(PEER, US) && b.inc.is_verified(US, PEER));
    assert!(a
        .out
        .send_stanza(&chat("juliet@a.example/r", "romeo@b.example")));
    assert!(b
        .out
        .send_stanza(&chat("romeo@b.example/p", "juliet@a.example")));
    settle(&mut a, &mut b);
    assert_eq!(
        b.routed,
        vec![chat("juliet@a.example/r", "romeo@b.example")]
    );
    assert_eq!(
        a.routed,
        vec![chat("romeo@b.example/p", "juliet@a.example")]
    );
}

/// A server claiming a.example without a.example's secret (its keys do not
/// verify with the real a.example) is refused, and nothing it sends is
/// routed.
#[test]
fn a_spoofed_domain_is_refused_and_routes_nothing() {
    let mut a = server(US, PEER, b"a forger's secret", b"secret of a", 1);
    let mut b = server(PEER, US, b"secret of b", b"secret of b", 2);
    settle(&mut a, &mut b);
    assert!(a.refused && !a.ready);
    assert!(!b.inc.is_verified(US, PEER));
    assert!(!a
        .out
        .send_stanza(&chat("juliet@a.example/r", "romeo@b.example")));
    settle(&mut a, &mut b);
    assert!(b.routed.is_empty());
    // b's own stream to the real a.example is unaffected.
    assert!(b.ready);
}

#[test]
fn starttls_when_offered_then_the_key_on_the_new_stream() {
    let mut s = OutgoingStream::new(
        Arc::new(OutgoingConfig {
            secret: DialbackSecret::new(b"a secret"),
            ..OutgoingConfig::default()
        }),
        domain(US),
        domain(PEER),
        0,
    );
    drain(&mut s);
    s.handle_input(1, PEER_OPEN.as_bytes());
    s.handle_input(
        1,
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>",
    );
    let (written, _) = drain(&mut s);
    assert_eq!(
        written,
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    );
    s.handle_input(2, b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(drain(&mut s).1, vec![OutgoingOutput::StartTls]);
    s.tls_established();
    let (written, _) = drain(&mut s);
    assert!(
        written.contains("<stream:stream"),
        "a new header: {written}"
    );
    s.handle_input(3, PEER_OPEN.replace("id='S1'", "id='S2'").as_bytes());
    s.handle_input(3, FEATURES.as_bytes());
    let (written, _) = drain(&mut s);
    let key = DialbackSecret::new(b"a secret").key(PEER, US, "S2");
    assert!(
        written.contains(key.as_str()),
        "the key binds to the TLS stream's id: {written}"
    );
}

#[test]
fn a_peer_without_tls_is_refused_when_we_require_it() {
    let mut s = OutgoingStream::new(
        Arc::new(OutgoingConfig::default()),
        domain(US),
        domain(PEER),
        0,
    );
    s.handle_input(1, PEER_OPEN.as_bytes());
    s.handle_input(1, FEATURES.as_bytes());
    let (written, other) = drain(&mut s);
    assert!(
        !written.contains("db:result"),
        "no key over plain TCP: {written}"
    );
    assert_eq!(
        other,
        vec![
            OutgoingOutput::Refused(Some(DialbackCondition::PolicyViolation)),
            OutgoingOutput::Close
        ]
    );
}

#[test]
fn a_refused_starttls_refuses_the_pair() {
    let mut s = OutgoingStream::new(
        Arc::new(OutgoingConfig::default()),
        domain(US),
        domain(PEER),
        0,
    );
    s.handle_input(1, PEER_OPEN.as_bytes());
    s.handle_input(
        1,
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
    );
    drain(&mut s);
    s.handle_input(2, b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(
        drain(&mut s).1,
        vec![
            OutgoingOutput::Refused(Some(DialbackCondition::RemoteConnectionFailed)),
            OutgoingOutput::Close
        ]
    );
}

/// Our stream over TLS up to the features after it, configured for SASL
/// EXTERNAL; the features offered there are `features`.
fn secure_external(features: &str) -> OutgoingStream {
    let mut s = OutgoingStream::new(
        Arc::new(OutgoingConfig {
            secret: DialbackSecret::new(b"a secret"),
            sasl_external: true,
            ..OutgoingConfig::default()
        }),
        domain(US),
        domain(PEER),
        0,
    );
    s.handle_input(1, PEER_OPEN.as_bytes());
    s.handle_input(
        1,
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
    );
    s.handle_input(2, b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    s.tls_established();
    s.handle_input(3, PEER_OPEN.replace("id='S1'", "id='S2'").as_bytes());
    drain(&mut s);
    s.handle_input(3, features.as_bytes());
    s
}

const EXTERNAL: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>";

#[test]
fn sasl_external_instead_of_dialback_when_offered() {
    let mut s = secure_external(EXTERNAL);
    let (written, _) = drain(&mut s);
    assert_eq!(
        written,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>YS5leGFtcGxl</auth>"
    );
    s.handle_input(4, b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    let (written, _) = drain(&mut s);
    assert!(
        written.contains("<stream:stream"),
        "the stream restarts: {written}"
    );
    s.handle_input(5, PEER_OPEN.replace("id='S1'", "id='S3'").as_bytes());
    s.handle_input(5, FEATURES.as_bytes());
    let (written, other) = drain(&mut s);
    assert_eq!(written, "", "no dialback key: {written}");
    assert_eq!(other, vec![OutgoingOutput::Ready]);
}

#[test]
fn a_refused_external_falls_back_to_dialback() {
    let mut s = secure_external(EXTERNAL);
    drain(&mut s);
    s.handle_input(
        4,
        b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>",
    );
    let (written, _) = drain(&mut s);
    let key = DialbackSecret::new(b"a secret").key(PEER, US, "S2");
    assert_eq!(
        written,
        format!(
            "<db:result from='a.example' to='b.example'>{}</db:result>",
            key.as_str()
        )
    );
}

/// Two servers with certificates: SASL EXTERNAL verifies both pairs, no
/// dialback round trip is made, and messages flow.
#[test]
fn two_servers_with_certificates_use_sasl_external() {
    let mut a = server_with(US, PEER, b"secret of a", b"secret of a", 1, true, false);
    let mut b = server_with(PEER, US, b"secret of b", b"secret of b", 2, true, false);
    settle(&mut a, &mut b);
    assert!(a.ready && b.ready);
    assert_eq!((a.verifies, b.verifies), (0, 0), "no dialback");
    assert!(a
        .out
        .send_stanza(&chat("juliet@a.example/r", "romeo@b.example")));
    settle(&mut a, &mut b);
    assert_eq!(
        b.routed,
        vec![chat("juliet@a.example/r", "romeo@b.example")]
    );
}

/// XEP-0288 with dialback: the stream a opened carries b's stanzas back
/// once a's domain is verified on it; b's answer needs no connection of
/// its own, and b may not send for a pair that was not verified.
#[test]
fn a_bidirectional_stream_carries_stanzas_back() {
    let mut a = server_with(US, PEER, b"secret of a", b"secret of a", 1, false, true);
    let mut b = server_with(PEER, US, b"secret of b", b"secret of b", 2, false, true);
    settle(&mut a, &mut b);
    assert!(a.out.is_bidi() && b.inc.is_bidi());
    assert_eq!(b.bidi, vec![(PEER.to_owned(), US.to_owned())]);
    let back = chat("romeo@b.example/p", "juliet@a.example");
    assert!(b.inc.send_stanza(&back), "the inverse of the verified pair");
    assert!(
        !b.inc
            .send_stanza(&chat("romeo@conference.b.example", "juliet@a.example")),
        "a pair nobody verified"
    );
    settle(&mut a, &mut b);
    assert_eq!(a.routed, vec![back]);
}

/// Over a bidirectional stream, the peer may send only from its domain to
/// ours: anything else ends the stream with invalid-from.
#[test]
fn a_bidirectional_stream_refuses_foreign_senders() {
    let mut a = server_with(US, PEER, b"secret of a", b"secret of a", 1, false, true);
    let mut b = server_with(PEER, US, b"secret of b", b"secret of b", 2, false, true);
    settle(&mut a, &mut b);
    a.out.handle_input(
        2,
        b"<message from='mallory@evil.example' to='juliet@a.example'><body>x</body></message>",
    );
    let (written, _) = drain(&mut a.out);
    assert!(written.contains("<invalid-from"), "{written}");
    assert!(a.out.is_closed());
    assert!(a.routed.is_empty());
}

/// Without bidi on both sides, nothing goes back over an opened stream.
#[test]
fn no_bidi_unless_both_sides_want_it() {
    let mut a = server_with(US, PEER, b"secret of a", b"secret of a", 1, false, true);
    let mut b = server_with(PEER, US, b"secret of b", b"secret of b", 2, false, false);
    settle(&mut a, &mut b);
    assert!(a.ready && !a.out.is_bidi() && !b.inc.is_bidi());
    assert!(!b
        .inc
        .send_stanza(&chat("romeo@b.example/p", "juliet@a.example")));
}
