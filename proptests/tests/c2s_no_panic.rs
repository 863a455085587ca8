//! The server c2s stream machine never panics on peer input.
//!
//! The same driver as the `c2s_server` fuzz target (`fuzz/fuzz_targets/`),
//! over proptest-generated inputs, so CI exercises it on stable: byte strings
//! assembled from XML-ish fragments (stream headers, STARTTLS, SASL PLAIN and
//! SCRAM, bind, stanzas, forbidden constructs, random text) and raw bytes,
//! fed in random chunk sizes. Storage asks for credentials are answered with
//! those of "alice" (password "secret"), STARTTLS is completed at once, and
//! every output is drained, including the ones the answers produce.

use proptest::prelude::*;
use xmpp_core::sim::driver::{C2sDriver, HEADER, LOGIN};

/// Feed `chunks` into a fresh server stream, fire its timer, drop the
/// transport and fire the timer again.
fn drive<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> C2sDriver {
    let mut d = C2sDriver::new();
    for chunk in chunks {
        d.feed(chunk);
    }
    d.fire_timer();
    // Then the network goes away: hibernation and its timeout, too.
    d.lose_transport();
    d.fire_timer();
    d
}

fn fragment() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "<?xml version='1.0'?>",
        HEADER,
        HEADER,
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='elsewhere' version='1.0'>",
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHdyb25n</auth>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AG1hbGxvcnkAc2VjcmV0</auth>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>=</auth>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!notbase64</auth>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1hbGljZSxyPWZ5a28rZDJsYmJGZ09OUnY5cWt4ZGF3TA==</auth>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>biwsbj1hbGljZSxyPWZ5a28rZDJsYmJGZ09OUnY5cWt4ZGF3TA==</auth>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256-PLUS'>cD10bHMtZXhwb3J0ZXIsLG49YWxpY2Uscj1hYmM=</auth>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-UNKNOWN'/>",
        "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdzLHI9ZnlrbytkMmxiYkZnT05SdjlxeGtkYXdMLHA9eA==</response>",
        "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>home</resource></bind></iq>",
        "<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
        "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
        "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
        "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<iq type='result' id='x'/>",
        "<iq type='get' id='bad'/>",
        "<message to='bob@localhost' type='chat'><body>hi &amp; bye</body></message>",
        "<message to='not a jid@@' type='chat'><body>x</body></message>",
        "<message><body xml:lang='en'>\u{1F600}</body><x xmlns='urn:example'/></message>",
        "<presence/>",
        "<presence type='subscribe' to='bob@localhost'/>",
        "<presence><priority>-200</priority></presence>",
        "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
        "<enable xmlns='urn:xmpp:sm:3' resume='true' max='1'/>",
        "<enable xmlns='urn:xmpp:sm:3'/>",
        "<r xmlns='urn:xmpp:sm:3'/>",
        "<a xmlns='urn:xmpp:sm:3' h='0'/>",
        "<a xmlns='urn:xmpp:sm:3' h='4294967295'/>",
        "<a xmlns='urn:xmpp:sm:3' h='x'/>",
        "<resume xmlns='urn:xmpp:sm:3' previd='abc' h='1'/>",
        "<resume xmlns='urn:xmpp:sm:3' h='1'/>",
        "<foo xmlns='urn:unknown'/>",
        "</stream:stream>",
        "<!DOCTYPE stream>",
        "<!-- comment -->",
        "<?pi data?>",
        "<!ENTITY x 'y'>",
        "&#0;",
        "&unknown;",
        "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>",
        "</a>",
        "<x y='1' y='2'/>",
        "<p:x xmlns:p=''/>",
        "\u{0}\u{FFFE}",
        "]]>",
        "<![CDATA[x]]>",
    ]);
    prop_oneof![
        8 => fixed.prop_map(str::to_owned),
        2 => "[ -~]{0,24}",
        1 => "<[a-z:]{1,8}( [a-z:]{1,6}='[^']{0,8}')*/?>",
    ]
}

/// An input: either fragments or raw bytes, with the chunk sizes to feed it in.
/// Whether to log in first (so the bound-session paths get fuzzed too).
fn input() -> impl Strategy<Value = (bool, Vec<u8>, Vec<usize>)> {
    let xmlish = prop::collection::vec(fragment(), 0..24).prop_map(|v| v.concat().into_bytes());
    let raw = prop::collection::vec(any::<u8>(), 0..512);
    let with_header = prop::collection::vec(any::<u8>(), 0..256).prop_map(|mut b| {
        let mut v = HEADER.as_bytes().to_vec();
        v.append(&mut b);
        v
    });
    (
        prop::bool::weighted(0.4),
        prop_oneof![6 => xmlish, 2 => raw, 2 => with_header],
        prop::collection::vec(1usize..64, 1..16),
    )
}

fn chunked<'a>(data: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = data;
    let mut i = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes[i % sizes.len()].min(rest.len());
        i += 1;
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn server_stream_never_panics((login, data, sizes) in input()) {
        let prefix = LOGIN.iter().map(|p| p.as_bytes()).filter(|_| login);
        drive(prefix.chain(chunked(&data, &sizes)));
    }
}

/// The happy path through the driver: STARTTLS, PLAIN as alice, bind — so a
/// regression that breaks login (and with it the deeper paths the proptest
/// relies on) is visible here too.
#[test]
fn scripted_login_is_driven_to_a_bound_session() {
    let mut d = C2sDriver::new();
    d.login();
    assert_eq!(
        d.stream().jid().map(ToString::to_string).as_deref(),
        Some("alice@localhost/home")
    );
}
