//! The receiving stream against a peer written out byte by byte: dialback
//! requests become verification requests, verdicts become `db:result`
//! answers, `db:verify` is answered with our secret, and stanzas pass only
//! from verified domain pairs.

use super::*;
use crate::s2s::dialback::DialbackSecret;
use crate::s2s::incoming::PeerCertificate;

const US: &str = "b.example";
const PEER: &str = "a.example";
const OPEN: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' from='a.example' to='b.example' version='1.0'>";

fn config() -> IncomingConfig {
    IncomingConfig {
        domains: vec![US.into(), "c.example".into()],
        secret: DialbackSecret::new(b"our secret"),
        max_pending: 2,
        max_pairs: 3,
        // Dialback over plain TCP here; TLS has its own tests below.
        require_tls: false,
        ..IncomingConfig::default()
    }
}

fn stream_with(cfg: IncomingConfig) -> IncomingStream {
    IncomingStream::new(Arc::new(cfg), Entropy::from_u64(1), 0)
}

/// Everything written and every other output since the last call.
fn drain(s: &mut IncomingStream) -> (String, Vec<IncomingOutput>) {
    let mut written = Vec::new();
    let mut other = Vec::new();
    while let Some(o) = s.poll_output() {
        match o {
            IncomingOutput::Write(b) => written.extend_from_slice(&b),
            o => other.push(o),
        }
    }
    (String::from_utf8_lossy(&written).into_owned(), other)
}

/// A stream whose header is answered.
fn opened() -> (IncomingStream, String) {
    let mut s = stream_with(config());
    s.handle_input(0, OPEN.as_bytes());
    let (_, other) = drain(&mut s);
    assert!(other.is_empty(), "{other:?}");
    let id = s.stream_id().expect("open").as_str().to_owned();
    (s, id)
}

fn db_result(from: &str, to: &str, key: &str) -> String {
    format!("<db:result from='{from}' to='{to}'>{key}</db:result>")
}

/// A stream with `PEER` → `US` verified.
fn verified() -> IncomingStream {
    let (mut s, _) = opened();
    s.handle_input(1, db_result(PEER, US, "abcd").as_bytes());
    drain(&mut s);
    s.verified(PEER, US, true);
    drain(&mut s);
    s
}

#[test]
fn the_header_is_answered_with_an_id_and_the_dialback_feature() {
    let mut s = stream_with(config());
    s.handle_input(0, OPEN.as_bytes());
    let (written, other) = drain(&mut s);
    assert!(other.is_empty());
    assert!(written.contains("xmlns='jabber:server'"), "{written}");
    assert!(
        written.contains("xmlns:db='jabber:server:dialback'"),
        "{written}"
    );
    assert!(written.contains("from='b.example'"), "{written}");
    let id = s.stream_id().expect("an id").as_str().to_owned();
    assert!(written.contains(&format!("id='{id}'")), "{written}");
    assert!(
        written.contains("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>"),
        "{written}"
    );
}

#[test]
fn a_domain_we_do_not_serve_is_host_unknown() {
    let mut s = stream_with(config());
    s.handle_input(
        0,
        OPEN.replace("to='b.example'", "to='z.example'").as_bytes(),
    );
    let (written, other) = drain(&mut s);
    assert!(written.contains("<host-unknown"), "{written}");
    assert_eq!(other, vec![IncomingOutput::Close]);
    assert!(s.is_closed());
}

#[test]
fn a_key_becomes_a_verification_request_and_a_valid_verdict_opens_the_pair() {
    let (mut s, id) = opened();
    s.handle_input(1, db_result(PEER, US, "0f0f").as_bytes());
    let (written, other) = drain(&mut s);
    assert_eq!(written, "", "nothing is said before the verdict");
    let [IncomingOutput::Verify {
        sender,
        target,
        stream_id,
        key,
    }] = other.as_slice()
    else {
        panic!("one verification: {other:?}");
    };
    assert_eq!(
        (
            sender.as_str(),
            target.as_str(),
            stream_id.as_str(),
            key.as_str()
        ),
        (PEER, US, id.as_str(), "0f0f")
    );
    assert!(!s.is_verified(PEER, US));
    s.verified(PEER, US, true);
    let (written, _) = drain(&mut s);
    assert_eq!(
        written,
        "<db:result from='b.example' to='a.example' type='valid'/>"
    );
    assert!(s.is_verified(PEER, US));
    assert!(!s.is_verified(PEER, "c.example"), "per pair, not per peer");
}

#[test]
fn stanzas_pass_only_from_verified_pairs_in_the_client_namespace() {
    let mut s = verified();
    s.handle_input(
        2,
        b"<message from='juliet@a.example/r' to='romeo@b.example' type='chat'><body>hi</body></message>",
    );
    let (_, other) = drain(&mut s);
    let [IncomingOutput::Stanza(m)] = other.as_slice() else {
        panic!("{other:?}");
    };
    assert_eq!(m.ns, ns::CLIENT);
    assert_eq!(m.attr("from"), Some("juliet@a.example/r"));
    assert!(m.child(ns::CLIENT, "body").is_some(), "{m:?}");
}

#[test]
fn a_stanza_from_another_domain_is_invalid_from() {
    let mut s = verified();
    s.handle_input(
        2,
        b"<message from='mallory@evil.example' to='romeo@b.example'><body>spoof</body></message>",
    );
    let (written, other) = drain(&mut s);
    assert!(written.contains("<invalid-from"), "{written}");
    assert_eq!(other, vec![IncomingOutput::Close], "nothing routed");
}

#[test]
fn a_stanza_to_an_unverified_target_is_invalid_from() {
    let mut s = verified();
    s.handle_input(
        2,
        b"<message from='juliet@a.example' to='carol@c.example'><body>x</body></message>",
    );
    let (written, other) = drain(&mut s);
    assert!(written.contains("<invalid-from"), "{written}");
    assert_eq!(other, vec![IncomingOutput::Close]);
}

#[test]
fn a_stanza_before_any_verification_is_not_authorized() {
    let (mut s, _) = opened();
    s.handle_input(
        1,
        b"<message from='juliet@a.example' to='romeo@b.example'/>",
    );
    let (written, other) = drain(&mut s);
    assert!(written.contains("<not-authorized"), "{written}");
    assert_eq!(other, vec![IncomingOutput::Close]);
}

#[test]
fn a_stanza_without_from_is_improper_addressing() {
    let mut s = verified();
    s.handle_input(2, b"<message to='romeo@b.example'/>");
    let (written, other) = drain(&mut s);
    assert!(written.contains("<improper-addressing"), "{written}");
    assert_eq!(other, vec![IncomingOutput::Close]);
}

#[test]
fn client_namespace_stanzas_are_invalid_namespace() {
    let mut s = stream_with(config());
    s.handle_input(
        0,
        OPEN.replace("xmlns='jabber:server'", "xmlns='jabber:client'")
            .as_bytes(),
    );
    s.handle_input(1, b"<message from='a@a.example' to='b@b.example'/>");
    let (written, _) = drain(&mut s);
    assert!(written.contains("<invalid-namespace"), "{written}");
    assert!(s.is_closed());
}

#[test]
fn a_key_for_a_domain_we_do_not_serve_is_an_error_not_the_end() {
    let (mut s, _) = opened();
    s.handle_input(1, db_result(PEER, "z.example", "abcd").as_bytes());
    let (written, other) = drain(&mut s);
    assert!(other.is_empty(), "{other:?}");
    assert!(written.contains("type='error'"), "{written}");
    assert!(written.contains("<item-not-found"), "{written}");
    assert!(!s.is_closed(), "XEP-0220 §2.4: not a stream error");
}

#[test]
fn a_first_invalid_verdict_closes_the_stream() {
    let (mut s, _) = opened();
    s.handle_input(1, db_result(PEER, US, "abcd").as_bytes());
    drain(&mut s);
    s.verified(PEER, US, false);
    let (written, other) = drain(&mut s);
    assert!(
        written.starts_with("<db:result from='b.example' to='a.example' type='invalid'/>"),
        "{written}"
    );
    assert!(written.ends_with("</stream:stream>"), "{written}");
    assert_eq!(other, vec![IncomingOutput::Close]);
}

#[test]
fn a_later_invalid_verdict_is_forbidden_and_the_other_pairs_stay() {
    let mut s = verified();
    s.handle_input(2, db_result("x.example", US, "abcd").as_bytes());
    drain(&mut s);
    s.verified("x.example", US, false);
    let (written, other) = drain(&mut s);
    assert!(
        written.contains("type='error'") && written.contains("<forbidden"),
        "{written}"
    );
    assert!(other.is_empty());
    assert!(s.is_verified(PEER, US));
    assert!(!s.is_verified("x.example", US));
}

#[test]
fn a_verdict_for_nothing_asked_is_dropped() {
    let (mut s, _) = opened();
    s.verified(PEER, US, true);
    let (written, other) = drain(&mut s);
    assert_eq!((written.as_str(), other.len()), ("", 0));
    assert!(
        !s.is_verified(PEER, US),
        "a driver cannot verify a pair never asked"
    );
}

#[test]
fn db_verify_is_answered_with_our_secret() {
    let (mut s, _) = opened();
    let secret = DialbackSecret::new(b"our secret");
    let good = secret.key("a.example", "b.example", "S1");
    s.handle_input(
        1,
        format!(
            "<db:verify from='a.example' to='b.example' id='S1'>{}</db:verify>",
            good.as_str()
        )
        .as_bytes(),
    );
    let (written, _) = drain(&mut s);
    assert_eq!(
        written,
        "<db:verify from='b.example' to='a.example' id='S1' type='valid'/>"
    );
    s.handle_input(
        2,
        b"<db:verify from='a.example' to='b.example' id='S2'>00ff</db:verify>",
    );
    let (written, _) = drain(&mut s);
    assert_eq!(
        written,
        "<db:verify from='b.example' to='a.example' id='S2' type='invalid'/>"
    );
    s.handle_input(
        3,
        b"<db:verify from='a.example' to='z.example' id='S3'>00ff</db:verify>",
    );
    let (written, _) = drain(&mut s);
    assert!(
        written.contains("type='error'") && written.contains("<item-not-found"),
        "{written}"
    );
    assert!(!s.is_closed());
}

#[test]
fn verifications_in_flight_and_pairs_are_bounded() {
    let (mut s, _) = opened();
    // max_pending = 2
    for sender in ["p1.example", "p2.example", "p3.example"] {
        s.handle_input(1, db_result(sender, US, "ab").as_bytes());
    }
    let (written, other) = drain(&mut s);
    assert_eq!(other.len(), 2, "two verifications: {other:?}");
    assert!(
        written.contains("to='p3.example' type='error'")
            && written.contains("<resource-constraint"),
        "{written}"
    );
    s.verified("p1.example", US, true);
    s.verified("p2.example", US, true);
    drain(&mut s);
    // max_pairs = 3: one more fits, then no more.
    s.handle_input(2, db_result("p4.example", US, "ab").as_bytes());
    let (_, other) = drain(&mut s);
    assert_eq!(other.len(), 1);
    s.verified("p4.example", US, true);
    drain(&mut s);
    s.handle_input(3, db_result("p5.example", US, "ab").as_bytes());
    let (written, other) = drain(&mut s);
    assert!(other.is_empty());
    assert!(written.contains("<resource-constraint"), "{written}");
    assert!(!s.is_closed());
}

#[test]
fn unanswered_verifications_time_out_and_a_silent_stream_is_closed() {
    let cfg = IncomingConfig {
        verify_timeout_ms: 100,
        auth_timeout_ms: 1_000,
        ..config()
    };
    let mut s = stream_with(cfg);
    s.handle_input(0, OPEN.as_bytes());
    s.handle_input(10, db_result(PEER, US, "ab").as_bytes());
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(110));
    s.handle_timeout(110);
    let (written, _) = drain(&mut s);
    assert!(
        written.contains("type='error'") && written.contains("<remote-server-timeout"),
        "{written}"
    );
    assert!(!s.is_closed());
    s.verified(PEER, US, true);
    let (written, _) = drain(&mut s);
    assert_eq!(written, "", "a late verdict is dropped");
    assert_eq!(s.poll_timeout(), Some(1_000));
    s.handle_timeout(1_000);
    let (written, other) = drain(&mut s);
    assert!(written.contains("<connection-timeout"), "{written}");
    assert_eq!(other, vec![IncomingOutput::Close]);
}

#[test]
fn the_peer_closing_closes() {
    let mut s = verified();
    s.handle_input(2, b"</stream:stream>");
    let (written, other) = drain(&mut s);
    assert_eq!(written, "</stream:stream>");
    assert_eq!(other, vec![IncomingOutput::Close]);
}

#[test]
fn a_stream_error_from_the_peer_closes_without_one_back() {
    // Prosody shutting down: its error, then the end of its stream.
    let mut s = verified();
    s.handle_input(
        2,
        b"<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    );
    let (written, other) = drain(&mut s);
    assert_eq!(written, "</stream:stream>");
    assert_eq!(other, vec![IncomingOutput::Close]);
    assert!(s.is_closed());
}

#[test]
fn a_malformed_request_is_answered_bad_request_through_the_router() {
    let mut s = verified();
    // An iq get with two payloads (RFC 6120 §8.2.3 wants exactly one).
    s.handle_input(
        2,
        b"<iq type='get' id='q1' from='juliet@a.example/r' to='b.example'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    let (written, other) = drain(&mut s);
    assert_eq!(written, "");
    let [IncomingOutput::Stanza(reply)] = other.as_slice() else {
        panic!("{other:?}");
    };
    assert_eq!(reply.attr("type"), Some("error"));
    assert_eq!(reply.attr("to"), Some("juliet@a.example/r"));
    assert_eq!(reply.attr("from"), Some("b.example"));
    assert!(reply.to_xml().contains("bad-request"), "{reply:?}");
    assert!(!s.is_closed());
}

fn tls_config() -> IncomingConfig {
    IncomingConfig {
        require_tls: true,
        ..config()
    }
}

#[test]
fn tls_is_required_then_negotiated_and_the_stream_restarts_with_a_new_id() {
    let mut s = stream_with(tls_config());
    s.handle_input(0, OPEN.as_bytes());
    let (written, _) = drain(&mut s);
    assert!(
        written
            .contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"),
        "{written}"
    );
    let plain_id = s.stream_id().expect("open").as_str().to_owned();
    // Dialback before TLS: refused, the stream stays for STARTTLS.
    s.handle_input(1, db_result(PEER, US, "ab").as_bytes());
    let (written, other) = drain(&mut s);
    assert!(
        other.is_empty(),
        "no verification over plain TCP: {other:?}"
    );
    assert!(written.contains("<policy-violation"), "{written}");
    s.handle_input(2, b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    let (written, other) = drain(&mut s);
    assert_eq!(
        written,
        "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    );
    assert_eq!(other, vec![IncomingOutput::StartTls]);
    s.tls_established();
    assert!(s.is_secure());
    s.handle_input(3, OPEN.as_bytes());
    let (written, _) = drain(&mut s);
    assert!(
        !written.contains("starttls"),
        "not offered twice: {written}"
    );
    assert!(written.contains("<dialback"), "{written}");
    let id = s.stream_id().expect("open").as_str().to_owned();
    assert_ne!(id, plain_id, "keys bind to the new stream's id");
    s.handle_input(4, db_result(PEER, US, "ab").as_bytes());
    let (_, other) = drain(&mut s);
    assert!(
        matches!(other.as_slice(), [IncomingOutput::Verify { stream_id, .. }] if stream_id.as_str() == id),
        "{other:?}"
    );
}

#[test]
fn bytes_pipelined_after_starttls_are_refused() {
    let mut s = stream_with(tls_config());
    s.handle_input(0, OPEN.as_bytes());
    drain(&mut s);
    s.handle_input(
        1,
        b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message from='u@a.example' to='v@b.example'/>",
    );
    let (written, other) = drain(&mut s);
    assert!(written.contains("<policy-violation"), "{written}");
    assert_eq!(other, vec![IncomingOutput::Close]);
}

#[test]
fn starttls_without_a_certificate_fails() {
    let mut s = stream_with(IncomingConfig {
        starttls_available: false,
        ..config()
    });
    s.handle_input(0, OPEN.as_bytes());
    let (written, _) = drain(&mut s);
    assert!(!written.contains("starttls"), "{written}");
    s.handle_input(1, b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    let (written, other) = drain(&mut s);
    assert!(
        written.starts_with("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
        "{written}"
    );
    assert_eq!(other, vec![IncomingOutput::Close]);
}

/// A client certificate as the driver judged it: the domains it proves.
#[derive(Debug)]
struct Proves(Vec<&'static str>);

impl PeerCertificate for Proves {
    fn proves(&self, domain: &str) -> bool {
        self.0.contains(&domain)
    }
}

/// A stream over TLS, the peer having presented `cert`; its second header
/// answered.
fn secure_with(cert: Option<Arc<dyn PeerCertificate>>) -> (IncomingStream, String) {
    let mut s = stream_with(tls_config());
    s.handle_input(0, OPEN.as_bytes());
    s.handle_input(1, b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    drain(&mut s);
    s.tls_established_with(cert);
    s.handle_input(2, OPEN.as_bytes());
    let (written, _) = drain(&mut s);
    (s, written)
}

const AUTH: &[u8] = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>";

#[test]
fn sasl_external_verifies_the_pair_without_dialback() {
    let (mut s, written) = secure_with(Some(Arc::new(Proves(vec![PEER]))));
    assert!(
        written.contains("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>"),
        "{written}"
    );
    s.handle_input(3, AUTH);
    let (written, other) = drain(&mut s);
    assert_eq!(
        written,
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    );
    assert!(other.is_empty(), "no dialback verification: {other:?}");
    assert!(!s.is_verified(PEER, US), "not before the stream restarts");
    s.handle_input(4, OPEN.as_bytes());
    let (written, _) = drain(&mut s);
    assert!(!written.contains("mechanisms"), "{written}");
    assert!(s.is_verified(PEER, US));
    s.handle_input(
        5,
        b"<message from='juliet@a.example/r' to='romeo@b.example'/>",
    );
    let (_, other) = drain(&mut s);
    assert!(
        matches!(other.as_slice(), [IncomingOutput::Stanza(_)]),
        "{other:?}"
    );
}

#[test]
fn sasl_external_needs_the_certificate_to_prove_the_header_domain() {
    let (mut s, _) = secure_with(Some(Arc::new(Proves(vec!["x.example"]))));
    s.handle_input(3, AUTH);
    let (written, _) = drain(&mut s);
    assert_eq!(
        written,
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"
    );
    // An authorization identity other than the header's `from`.
    s.handle_input(
        4,
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>eC5leGFtcGxl</auth>",
    );
    let (written, _) = drain(&mut s);
    assert!(written.contains("<invalid-authzid/>"), "{written}");
    assert!(!s.is_verified(PEER, US) && !s.is_verified("x.example", US));
    assert!(!s.is_closed(), "dialback is still possible");
}

#[test]
fn external_is_not_offered_for_a_certificate_that_does_not_prove_the_header_domain() {
    // A self-signed certificate, say: Prosody and ejabberd would try
    // EXTERNAL, fail, and only then use dialback.
    let (mut s, written) = secure_with(Some(Arc::new(Proves(vec!["x.example"]))));
    assert!(!written.contains("mechanisms"), "{written}");
    assert!(written.contains("urn:xmpp:features:dialback"), "{written}");
    s.handle_input(3, db_result(PEER, US, "abcd").as_bytes());
    let (_, other) = drain(&mut s);
    assert!(
        matches!(other.as_slice(), [IncomingOutput::Verify { .. }]),
        "{other:?}"
    );
}

#[test]
fn without_a_certificate_external_is_not_offered() {
    let (mut s, written) = secure_with(None);
    assert!(!written.contains("mechanisms"), "{written}");
    s.handle_input(3, AUTH);
    let (written, _) = drain(&mut s);
    assert!(written.contains("<invalid-mechanism/>"), "{written}");
    assert!(!s.is_verified(PEER, US));
}

/// RFC 6120 §4.7.2: our header is addressed to the domain the peer named.
#[test]
fn our_header_is_addressed_to_the_peer() {
    let mut s = stream_with(config());
    s.handle_input(0, OPEN.as_bytes());
    let (written, _) = drain(&mut s);
    assert!(written.contains("to='a.example'"), "{written}");
}
