//! The web transports under random input (the checks are the fuzz
//! harnesses': `vireo_proptests::harness::{http_request, bosh_session,
//! websocket_c2s}`): HTTP requests assembled from good and hostile
//! fragments (ambiguous paths, smuggling shapes, oversized heads), BOSH
//! request sequences with rids out of order, repeated and out of the
//! window, terminates, pauses, restarts and stanzas, and WebSocket frames
//! well-formed or not around a real login.

use proptest::prelude::*;
use vireo_proptests::harness::{bosh_session, http_request, websocket_c2s};

fn http_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_owned()),
        Just("GET /xmpp-websocket HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".to_owned()),
        Just("POST /http-bind HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_owned()),
        Just("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_owned()),
        Just("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_owned()),
        Just("GET /api/%2e%2e/admin HTTP/1.1\r\n\r\n".to_owned()),
        Just("GET //x;y=z/%2F HTTP/1.0\r\n\r\n".to_owned()),
        Just("GET /a/../b HTTP/1.1\r\nConnection: close\r\n\r\n".to_owned()),
        Just("X-Long: ".to_owned() + &"a".repeat(3000)),
        Just("\r\n".to_owned()),
        "[ -~]{0,40}",
    ]
}

fn bosh_piece() -> impl Strategy<Value = Vec<u8>> {
    let ns = "xmlns='http://jabber.org/protocol/httpbind' sid='fuzz'";
    prop_oneof![
        (995u64..1010).prop_map(move |rid| format!("<body {ns} rid='{rid}'/>").into_bytes()),
        (995u64..1010).prop_map(move |rid| format!(
            "<body {ns} rid='{rid}'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth></body>"
        ).into_bytes()),
        (995u64..1010).prop_map(move |rid| format!(
            "<body {ns} rid='{rid}' xmlns:xmpp='urn:xmpp:xbosh' xmpp:restart='true'/>"
        ).into_bytes()),
        (995u64..1010).prop_map(move |rid| format!(
            "<body {ns} rid='{rid}'><iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq></body>"
        ).into_bytes()),
        (995u64..1010).prop_map(move |rid| format!(
            "<body {ns} rid='{rid}'><message to='bob@localhost'><body>x</body></message><presence/></body>"
        ).into_bytes()),
        (995u64..1010).prop_map(move |rid| format!("<body {ns} rid='{rid}' type='terminate'/>").into_bytes()),
        (995u64..1010, 0u64..500).prop_map(move |(rid, p)| format!("<body {ns} rid='{rid}' pause='{p}'/>").into_bytes()),
        Just(format!("<body {ns} rid='nope'/>").into_bytes()),
        Just(b"<nobody/>".to_vec()),
        (1u8..200).prop_map(|s| vec![1, s]),
        Just(b"\x02<message xmlns='jabber:client' from='bob@localhost/x'><body>in</body></message>".to_vec()),
        proptest::collection::vec(1u8..=255, 0..30),
    ]
}

fn ws_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(websocket_c2s::frame(
            1,
            b"<message to='bob@localhost'><body>x</body></message>"
        )),
        Just(websocket_c2s::frame(1, websocket_c2s::LOGIN[0].as_bytes())),
        Just(websocket_c2s::frame(
            1,
            b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
        )),
        Just(websocket_c2s::frame(
            1,
            b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>"
        )),
        Just(websocket_c2s::frame(1, b"<r xmlns='urn:xmpp:sm:3'/>")),
        Just(websocket_c2s::frame(9, b"ping")),
        Just(websocket_c2s::frame(8, &[0x03, 0xe8])),
        Just(websocket_c2s::frame(2, b"binary")),
        Just(websocket_c2s::frame(1, b"<a><b>")),
        Just(websocket_c2s::frame(1, &[0xff, 0xfe])),
        Just(vec![0x81, 0x05, b'h', b'e', b'l', b'l', b'o']),
        Just(vec![0x89, 0xfe, 0x00, 0x80]),
        proptest::collection::vec(any::<u8>(), 0..24),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn http_requests_never_break_the_machine(seed in any::<u8>(), parts in proptest::collection::vec(http_fragment(), 0..12)) {
        let mut input = vec![seed];
        for p in parts {
            input.extend_from_slice(p.as_bytes());
        }
        http_request::run(&input);
    }

    #[test]
    fn bosh_request_sequences_never_break_the_session(parts in proptest::collection::vec(bosh_piece(), 0..24)) {
        let mut input = b"<body xmlns='http://jabber.org/protocol/httpbind' rid='1000' to='localhost' hold='1' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>".to_vec();
        for p in parts {
            input.push(0);
            input.extend_from_slice(&p);
        }
        bosh_session::run(&input);
    }

    #[test]
    fn websocket_frames_never_break_the_stream(seed in any::<u8>(), parts in proptest::collection::vec(ws_piece(), 0..16)) {
        let mut input = vec![seed];
        for p in parts {
            input.extend_from_slice(&p);
        }
        websocket_c2s::run(&input);
    }
}
