use super::*;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
     xmlns:stream='http://etherx.jabber.org/streams' to='push.localhost'>";

fn cfg() -> Arc<ComponentStreamConfig> {
    Arc::new(ComponentStreamConfig {
        components: vec![ComponentSecret {
            domain: "push.localhost".into(),
            secret: "s3cret".into(),
        }],
        ..ComponentStreamConfig::default()
    })
}

/// Everything the machine wants done, writes concatenated as text.
fn drain(s: &mut ComponentStream) -> (String, Vec<AcceptOutput>) {
    let mut text = String::new();
    let mut other = Vec::new();
    while let Some(o) = s.poll_output() {
        match o {
            AcceptOutput::Write(b) => text.push_str(&String::from_utf8_lossy(&b)),
            o => other.push(o),
        }
    }
    (text, other)
}

fn stream_id(header: &str) -> String {
    let start = header.find(" id='").map(|i| i + 5).unwrap_or_default();
    header[start..]
        .split('\'')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A stream past the handshake, claimed by the driver.
fn accepted() -> ComponentStream {
    let mut s = ComponentStream::new(cfg(), Entropy::from_u64(1), 0);
    s.handle_input(0, HEADER.as_bytes());
    let (text, _) = drain(&mut s);
    let digest = handshake_digest(&stream_id(&text), "s3cret");
    s.handle_input(1, format!("<handshake>{digest}</handshake>").as_bytes());
    let (_, out) = drain(&mut s);
    assert!(matches!(&out[..], [AcceptOutput::Claim(j)] if j.as_str() == "push.localhost"));
    s.claimed(2);
    let (text, _) = drain(&mut s);
    assert_eq!(text, "<handshake/>");
    s
}

#[test]
fn digest_is_lowercase_hex_sha1_of_id_and_secret() {
    // The stream id of XEP-0114 Example 2; the value computed independently
    // (Python: hashlib.sha1(b"3BF96D32sc3r3t").hexdigest()).
    assert_eq!(
        handshake_digest("3BF96D32", "sc3r3t"),
        "2a52c94b90aed7fc3a0c153a57c783f45f96a98f"
    );
}

#[test]
fn header_is_answered_without_version() {
    let mut s = ComponentStream::new(cfg(), Entropy::from_u64(1), 0);
    s.handle_input(0, HEADER.as_bytes());
    let (text, out) = drain(&mut s);
    assert!(out.is_empty(), "{out:?}");
    assert!(text.contains("xmlns='jabber:component:accept'"), "{text}");
    assert!(text.contains("from='push.localhost'"), "{text}");
    let header = text.split("?>").nth(1).unwrap_or_default();
    assert!(!header.contains("version"), "{text}");
    assert_eq!(stream_id(&text).len(), 32);
}

#[test]
fn uppercase_digest_is_accepted_and_stanzas_flow() {
    let mut s = ComponentStream::new(cfg(), Entropy::from_u64(2), 0);
    s.handle_input(0, HEADER.as_bytes());
    let (text, _) = drain(&mut s);
    let digest = handshake_digest(&stream_id(&text), "s3cret").to_uppercase();
    s.handle_input(1, format!("<handshake> {digest} </handshake>").as_bytes());
    // Pipelined stanzas wait for the claim.
    s.handle_input(
        1,
        b"<message to='alice@localhost'><body>hi</body></message>",
    );
    let (_, out) = drain(&mut s);
    assert_eq!(out.len(), 1, "{out:?}");
    s.claimed(2);
    let (text, out) = drain(&mut s);
    assert_eq!(text, "<handshake/>");
    let [AcceptOutput::Stanza(m)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(m.ns, ns::CLIENT);
    assert_eq!(m.attr("from"), Some("push.localhost"));
    assert_eq!(m.child_text(ns::CLIENT, "body").as_deref(), Some("hi"));
    assert_eq!(s.domain(), Some("push.localhost"));
}

#[test]
fn wrong_secret_is_not_authorized() {
    let mut s = ComponentStream::new(cfg(), Entropy::from_u64(1), 0);
    s.handle_input(0, HEADER.as_bytes());
    let (text, _) = drain(&mut s);
    let digest = handshake_digest(&stream_id(&text), "wrong");
    s.handle_input(1, format!("<handshake>{digest}</handshake>").as_bytes());
    let (text, out) = drain(&mut s);
    assert!(text.contains("<not-authorized"), "{text}");
    assert!(text.ends_with("</stream:stream>"), "{text}");
    assert_eq!(out, vec![AcceptOutput::Close]);
    assert!(s.is_closed());
}

#[test]
fn unknown_name_is_host_unknown() {
    let mut s = ComponentStream::new(cfg(), Entropy::from_u64(1), 0);
    s.handle_input(
        0,
        HEADER
            .replace("push.localhost", "other.localhost")
            .as_bytes(),
    );
    let (text, out) = drain(&mut s);
    assert!(text.contains("<host-unknown"), "{text}");
    assert_eq!(out, vec![AcceptOutput::Close]);
}

#[test]
fn stanza_before_handshake_is_not_authorized() {
    let mut s = ComponentStream::new(cfg(), Entropy::from_u64(1), 0);
    s.handle_input(0, HEADER.as_bytes());
    s.handle_input(0, b"<message to='alice@localhost'/>");
    let (text, _) = drain(&mut s);
    assert!(text.contains("<not-authorized"), "{text}");
    assert!(s.is_closed());
}

#[test]
fn conflict_closes_instead_of_accepting() {
    let mut s = ComponentStream::new(cfg(), Entropy::from_u64(1), 0);
    s.handle_input(0, HEADER.as_bytes());
    let (text, _) = drain(&mut s);
    let digest = handshake_digest(&stream_id(&text), "s3cret");
    s.handle_input(1, format!("<handshake>{digest}</handshake>").as_bytes());
    drain(&mut s);
    s.close(Some(StreamErrorCondition::Conflict));
    let (text, _) = drain(&mut s);
    assert!(text.contains("<conflict"), "{text}");
    assert!(!text.contains("<handshake"), "{text}");
}

#[test]
fn from_inside_the_domain_passes_outside_is_invalid_from() {
    let mut s = accepted();
    s.handle_input(
        3,
        b"<message from='bot@push.localhost/x' to='alice@localhost'/>",
    );
    let (_, out) = drain(&mut s);
    assert!(
        matches!(&out[..], [AcceptOutput::Stanza(m)] if m.attr("from") == Some("bot@push.localhost/x")),
        "{out:?}"
    );
    s.handle_input(4, b"<message from='admin@localhost' to='alice@localhost'/>");
    let (text, out) = drain(&mut s);
    assert!(text.contains("<invalid-from"), "{text}");
    assert_eq!(out, vec![AcceptOutput::Close]);
}

#[test]
fn missing_or_malformed_to_is_a_stanza_error() {
    let mut s = accepted();
    s.handle_input(
        3,
        b"<iq type='get' id='a'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    let (text, out) = drain(&mut s);
    assert!(out.is_empty(), "{out:?}");
    assert!(text.starts_with("<iq "), "{text}");
    assert!(text.contains("<bad-request"), "{text}");
    s.handle_input(3, b"<message to='@@'/>");
    let (text, _) = drain(&mut s);
    assert!(text.contains("<jid-malformed"), "{text}");
    assert!(!s.is_closed());
}

#[test]
fn outgoing_stanzas_take_the_component_namespace() {
    let mut s = accepted();
    let m = Element::new(ns::CLIENT, "message")
        .with_attr("to", "push.localhost")
        .with_child(Element::new(ns::CLIENT, "body").with_text("x"));
    s.send_stanza_at(5, &m);
    let (text, _) = drain(&mut s);
    assert_eq!(
        text,
        "<message to='push.localhost'><body>x</body></message>"
    );
}

#[test]
fn handshake_timeout_fires() {
    let mut s = ComponentStream::new(cfg(), Entropy::from_u64(1), 0);
    assert_eq!(s.poll_timeout(), Some(30_000));
    s.handle_timeout(30_000);
    let (text, _) = drain(&mut s);
    assert!(text.contains("<connection-timeout"), "{text}");
}

#[test]
fn a_client_stream_on_the_component_port_is_invalid_namespace() {
    let mut s = ComponentStream::new(cfg(), Entropy::from_u64(1), 0);
    s.handle_input(0, HEADER.replace(NS, "jabber:client").as_bytes());
    s.handle_input(0, b"<handshake>00</handshake>");
    let (text, _) = drain(&mut s);
    assert!(text.contains("<invalid-namespace"), "{text}");
}
