//! Transcripts of the c2s machine over a WebSocket (RFC 7395): the same
//! machine as on TCP, with `<open/>`/`<close/>` for the stream's ends, one
//! element per text message each way, and the WebSocket's own control
//! frames and failures.

use super::sm::SmConfig;
use super::test_support::drain;
use super::{ConnOutput, ServerStream, ServerStreamConfig};
use crate::entropy::Entropy;
use crate::websocket::test_client::frame;
use std::sync::Arc;

const OPEN: &str =
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
const CLOSE: &str = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
/// The server's spelling (Strophe.js matches it as a string).
const SERVER_CLOSE: &str = "<close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" />";
const AUTH: &str =
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>";
const BIND: &str = "<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>";
const MASK: [u8; 4] = [1, 2, 3, 4];

/// A frame the server wrote: opcode and payload.
#[derive(Debug, PartialEq)]
enum Out {
    Text(String),
    Close(Option<u16>),
    Ping,
    Pong(Vec<u8>),
}

/// Split server output (unmasked frames) into frames; panics on anything
/// else, which is the bug these tests look for.
fn frames(out: &[ConnOutput]) -> Vec<Out> {
    let mut bytes = Vec::new();
    for o in out {
        if let ConnOutput::Write(b) = o {
            bytes.extend_from_slice(b);
        }
    }
    let mut frames = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        assert_eq!(rest[0] & 0xf0, 0x80, "final, no reserved bits: {rest:?}");
        let opcode = rest[0] & 0x0f;
        assert_eq!(rest[1] & 0x80, 0, "a server never masks");
        let (len, header) = match rest[1] & 0x7f {
            126 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(rest[2..10].try_into().expect("8 bytes")) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let payload = &rest[header..header + len];
        frames.push(match opcode {
            1 => Out::Text(String::from_utf8(payload.to_vec()).expect("text is UTF-8")),
            8 => Out::Close(
                (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
            ),
            9 => Out::Ping,
            10 => Out::Pong(payload.to_vec()),
            other => panic!("unexpected opcode {other}"),
        });
        rest = &rest[header + len..];
    }
    frames
}

fn texts(out: &[ConnOutput]) -> Vec<String> {
    frames(out)
        .into_iter()
        .filter_map(|f| match f {
            Out::Text(t) => Some(t),
            _ => None,
        })
        .collect()
}

fn config() -> ServerStreamConfig {
    ServerStreamConfig {
        sm: Some(SmConfig::default()),
        ..ServerStreamConfig::default()
    }
}

/// A stream over HTTPS (secure, no channel bindings known).
fn websocket(cfg: ServerStreamConfig) -> ServerStream {
    ServerStream::new_websocket(Arc::new(cfg), Entropy::from_u64(5), 0, Some(vec![]))
}

fn send(s: &mut ServerStream, text: &str) -> Vec<ConnOutput> {
    s.handle_input(0, &frame(true, 1, text.as_bytes(), MASK));
    drain(s)
}

fn bound() -> ServerStream {
    let mut s = websocket(config());
    for text in [OPEN, AUTH, OPEN, BIND] {
        send(&mut s, text);
    }
    assert!(s.jid().is_some(), "bound");
    s
}

#[test]
fn a_client_opens_authenticates_binds_and_sends_over_websocket() {
    let mut s = websocket(config());
    let out = texts(&send(&mut s, OPEN));
    assert_eq!(
        out.len(),
        2,
        "<open/> then features, one message each: {out:?}"
    );
    assert!(
        out[0]
            .starts_with("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='")
            && out[0].ends_with(" version='1.0' xml:lang='en'/>"),
        "{}",
        out[0]
    );
    assert!(
        out[1].starts_with("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"),
        "{}",
        out[1]
    );
    assert!(
        out[1].contains("<mechanism>PLAIN</mechanism>"),
        "secure: PLAIN is offered"
    );
    assert!(
        !out[1].contains("starttls"),
        "never STARTTLS inside a WebSocket"
    );

    let out = texts(&send(&mut s, AUTH));
    assert_eq!(out, ["<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"]);
    let out = texts(&send(&mut s, OPEN));
    assert!(
        out[1].contains("urn:ietf:params:xml:ns:xmpp-bind"),
        "{out:?}"
    );
    let out = texts(&send(&mut s, BIND));
    assert_eq!(out.len(), 1);
    assert!(
        out[0].starts_with("<iq xmlns='jabber:client'") && out[0].contains("alice@localhost/web"),
        "stanzas declare jabber:client: {}",
        out[0]
    );

    // A stanza without xmlns inherits jabber:client, as on TCP.
    let out = send(
        &mut s,
        "<message to='bob@localhost' id='m1'><body>hi</body></message>",
    );
    let stanza = out.iter().find_map(|o| match o {
        ConnOutput::Stanza(el) => Some(el.clone()),
        _ => None,
    });
    let stanza = stanza.expect("the message goes to the hub");
    assert_eq!(stanza.ns, crate::ns::CLIENT);
    assert_eq!(stanza.attr("from"), Some("alice@localhost/web"));

    // Delivered stanzas are one message each.
    let msg = crate::Element::parse(
        b"<message xmlns='jabber:client' from='bob@localhost/x' to='alice@localhost/web'><body>1</body></message>",
    )
    .expect("parses");
    s.send_stanza(&msg);
    s.send_stanza(&msg);
    let out = texts(&drain(&mut s));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out
        .iter()
        .all(|t| t.starts_with("<message xmlns='jabber:client'")));
}

#[test]
fn close_is_answered_with_close_then_the_websocket_close() {
    let mut s = bound();
    let out = send(&mut s, CLOSE);
    assert_eq!(
        frames(&out),
        [Out::Text(SERVER_CLOSE.into()), Out::Close(Some(1000))],
        "RFC 7395 §3.6"
    );
    assert!(matches!(out.last(), Some(ConnOutput::Close)));
    assert!(s.is_closed());
}

#[test]
fn the_server_closing_sends_close_and_a_stream_error_first_when_there_is_one() {
    let mut s = bound();
    s.close(Some(super::StreamErrorCondition::SystemShutdown));
    let out = drain(&mut s);
    let f = frames(&out);
    assert_eq!(f.len(), 3, "{f:?}");
    assert!(
        matches!(&f[0], Out::Text(t) if t.starts_with("<stream:error xmlns:stream='http://etherx.jabber.org/streams'><system-shutdown"))
    );
    assert_eq!(f[1], Out::Text(SERVER_CLOSE.into()));
    assert_eq!(f[2], Out::Close(Some(1000)));
}

#[test]
fn pings_are_answered_and_keepalives_are_pings() {
    let mut s = bound();
    s.handle_input(0, &frame(true, 9, b"are you there", MASK));
    assert_eq!(
        frames(&drain(&mut s)),
        [Out::Pong(b"are you there".to_vec())]
    );
    let at = s.poll_timeout().expect("a bound session has a keepalive");
    s.handle_timeout(at);
    assert_eq!(
        frames(&drain(&mut s)),
        [Out::Ping],
        "no whitespace between messages"
    );
}

#[test]
fn a_websocket_close_without_close_element_hibernates_a_resumable_session() {
    let mut s = bound();
    send(&mut s, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    assert!(s.sm_id().is_some());
    s.handle_input(0, &frame(true, 8, &1001u16.to_be_bytes(), MASK));
    let out = drain(&mut s);
    assert_eq!(frames(&out), [Out::Close(Some(1000))]);
    assert!(matches!(out.last(), Some(ConnOutput::DropTransport)));
    assert!(
        !s.is_closed(),
        "the driver decides, as for a broken TCP connection"
    );
    assert!(s.transport_lost(0), "a resumable session hibernates");
}

#[test]
fn binary_messages_end_the_stream_with_1003() {
    let mut s = bound();
    s.handle_input(0, &frame(true, 2, b"<message/>", MASK));
    let f = frames(&drain(&mut s));
    assert!(
        matches!(&f[0], Out::Text(t) if t.contains("<unsupported-encoding")),
        "{f:?}"
    );
    assert_eq!(f.last(), Some(&Out::Close(Some(1003))));
    assert!(s.is_closed());
}

#[test]
fn a_message_over_the_limit_is_a_policy_violation_and_1009() {
    // Before authentication a message gets the small stanza budget.
    let mut s = websocket(ServerStreamConfig {
        unauthenticated_stanza_bytes: 1024,
        ..config()
    });
    send(&mut s, OPEN);
    let big = format!("<message><body>{}</body></message>", "x".repeat(2000));
    let f = frames(&send(&mut s, &big));
    assert!(
        matches!(&f[0], Out::Text(t) if t.contains("<policy-violation")),
        "{f:?}"
    );
    assert_eq!(f.last(), Some(&Out::Close(Some(1009))));
    assert!(s.is_closed());
}

#[test]
fn authentication_raises_the_message_budget_to_the_stanza_budget() {
    let mut s = bound();
    let big = format!(
        "<message to='bob@localhost'><body>{}</body></message>",
        "x".repeat(100_000)
    );
    let out = send(&mut s, &big);
    assert!(
        out.iter().any(|o| matches!(o, ConnOutput::Stanza(_))),
        "{:?}",
        frames(&out)
    );
    assert!(!s.is_closed());
}

#[test]
fn open_in_the_wrong_namespace_is_invalid_namespace() {
    let mut s = websocket(config());
    let f = frames(&send(
        &mut s,
        "<open xmlns='jabber:client' to='localhost' version='1.0'/>",
    ));
    assert!(
        f.iter()
            .any(|x| matches!(x, Out::Text(t) if t.contains("<invalid-namespace"))),
        "{f:?}"
    );
    assert!(s.is_closed());
}

#[test]
fn an_unknown_host_gets_our_open_then_host_unknown() {
    let mut s = websocket(config());
    let open =
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='elsewhere.example' version='1.0'/>";
    let out = texts(&send(&mut s, open));
    assert!(out[0].starts_with("<open "), "{out:?}");
    assert!(out[1].contains("<host-unknown"), "{out:?}");
    assert_eq!(out[2], SERVER_CLOSE);
}

#[test]
fn a_stanza_before_open_is_bad_format() {
    let mut s = websocket(config());
    let out = texts(&send(&mut s, "<message to='bob@localhost'/>"));
    assert!(out.iter().any(|t| t.contains("<bad-format")), "{out:?}");
    assert!(s.is_closed());
}

#[test]
fn frames_split_anywhere_give_the_same_transcript() {
    let whole = {
        let mut s = websocket(config());
        let mut all = Vec::new();
        for text in [OPEN, AUTH, OPEN, BIND] {
            all.extend(texts(&send(&mut s, text)));
        }
        all
    };
    for split in [1, 2, 3, 7, 64] {
        let mut s = websocket(config());
        let mut all = Vec::new();
        let mut bytes = Vec::new();
        for text in [OPEN, AUTH, OPEN, BIND] {
            bytes.extend(frame(true, 1, text.as_bytes(), MASK));
        }
        for chunk in bytes.chunks(split) {
            s.handle_input(0, chunk);
            all.extend(texts(&drain(&mut s)));
        }
        // Stream ids come from the same seeded entropy, so they match.
        assert_eq!(all, whole, "split every {split} bytes");
    }
}

#[test]
fn an_open_out_of_place_ends_the_stream_instead_of_swallowing_it() {
    let mut s = bound();
    let out = texts(&send(&mut s, OPEN));
    assert!(out.iter().any(|t| t.contains("<bad-format")), "{out:?}");
    assert!(s.is_closed());
    // Before authentication, a second <open/> too.
    let mut s = websocket(config());
    send(&mut s, OPEN);
    let out = texts(&send(&mut s, OPEN));
    assert!(out.iter().any(|t| t.contains("<bad-format")), "{out:?}");
}

#[test]
fn tcp_stream_framing_is_refused_inside_a_websocket() {
    let mut s = bound();
    let header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
    let out = texts(&send(&mut s, header));
    assert!(out.iter().any(|t| t.contains("<bad-format")), "{out:?}");
    assert!(s.is_closed());
}

#[test]
fn clients_can_be_sent_elsewhere() {
    let mut s = websocket(config());
    s.see_other_uri("wss://new.example/xmpp-websocket".into());
    let out = send(&mut s, OPEN);
    assert_eq!(
        frames(&out),
        [
            Out::Text(
                "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://new.example/xmpp-websocket'/>"
                    .into()
            ),
            Out::Close(Some(1000))
        ],
        "RFC 7395 §3.6.1: no <open/>, a <close/> naming where"
    );
    assert!(s.is_closed());
}
