//! The receiving s2s stream machine (XEP-0220 dialback) never panics on
//! peer input and never lets a stanza out from a domain pair that is not
//! verified on the stream (the checks are the fuzz harness's:
//! `vireo_proptests::harness::s2s_incoming::drive`).
//!
//! Inputs are byte strings assembled from XML-ish fragments (headers for
//! our domains and others, dialback requests, verdicts and `db:verify` for
//! good, foreign and malformed domains, stanzas with good, spoofed,
//! missing and malformed addresses, forbidden constructs, random text) and
//! raw bytes, fed in random chunk sizes, with the driver answering every
//! verification valid, invalid or failed.

use proptest::prelude::*;
use vireo_proptests::harness::s2s_incoming::{drive, drive_with};

const OPEN: &str = "<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' from='a.example' to='b.example' version='1.0'>";

/// The driver does get stanzas through: the properties are not only about
/// refused streams.
#[test]
fn the_driver_gets_stanzas_through() {
    let chunks = [
        OPEN,
        "<db:result from='a.example' to='b.example'>0a0b</db:result>",
        "<message from='u@a.example/r' to='v@b.example'><body>hi</body></message>",
        "<message from='u@evil.example' to='v@b.example'/>",
    ];
    let chunks: Vec<&[u8]> = chunks.iter().map(|c| c.as_bytes()).collect();
    assert_eq!(drive(chunks.iter().copied(), Some(true)), 1);
    assert_eq!(drive(chunks.iter().copied(), Some(false)), 0);
    assert_eq!(drive(chunks.iter().copied(), None), 0);
    // Over TLS with a certificate, SASL EXTERNAL gets the same stanza
    // through with every verification failing.
    let secure = [
        OPEN,
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        OPEN,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>",
        OPEN,
        "<message from='u@a.example/r' to='v@b.example'><body>hi</body></message>",
        "<message from='u@evil.example' to='v@b.example'/>",
    ];
    let secure: Vec<&[u8]> = secure.iter().map(|c| c.as_bytes()).collect();
    assert_eq!(drive_with(secure.iter().copied(), None, true), 1);
    assert_eq!(drive_with(secure.iter().copied(), None, false), 0);
}

fn fragment() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        OPEN.to_owned(),
        OPEN.to_owned(),
        OPEN.replace("to='b.example'", "to='z.example'"),
        OPEN.replace("jabber:server'", "jabber:client'"),
        OPEN.replace(" xmlns:db='jabber:server:dialback'", ""),
        "<db:result from='a.example' to='b.example'>0a0b</db:result>".into(),
        "<db:result from='a.example' to='c.example'>0a0b</db:result>".into(),
        "<db:result from='evil.example' to='b.example'>0a0b</db:result>".into(),
        "<db:result from='a.example' to='z.example'>0a0b</db:result>".into(),
        "<db:result from='a.example' to='b.example' type='valid'/>".into(),
        "<db:result from='@@' to='b.example'>00</db:result>".into(),
        "<db:result to='b.example'>00</db:result>".into(),
        "<db:verify from='a.example' to='b.example' id='x'>00</db:verify>".into(),
        "<db:verify from='a.example' to='b.example'>00</db:verify>".into(),
        "<message from='u@a.example/r' to='v@b.example'><body>hi</body></message>".into(),
        "<message from='u@a.example/r' to='v@c.example'/>".into(),
        "<message from='u@evil.example' to='v@b.example'/>".into(),
        "<message from='a.example.evil' to='v@b.example'/>".into(),
        "<message to='v@b.example'/>".into(),
        "<message from='@@' to='v@b.example'/>".into(),
        "<iq type='get' id='1' from='u@a.example/r' to='b.example'><ping xmlns='urn:xmpp:ping'/></iq>".into(),
        "<iq type='get' from='u@a.example/r' to='b.example'/>".into(),
        "<presence from='u@a.example' to='v@b.example'/>".into(),
        "<message xmlns='jabber:client' from='u@a.example' to='v@b.example'/>".into(),
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".into(),
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".into(),
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>".into(),
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>YS5leGFtcGxl</auth>".into(),
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>".into(),
        "<foo xmlns='urn:unknown'/>".into(),
        "</stream:stream>".into(),
        "<!DOCTYPE x>".into(),
        "&unknown;".into(),
        "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>".into(),
        "\u{0}".into(),
    ]);
    prop_oneof![
        8 => fixed,
        2 => "[ -~]{0,24}",
        1 => "<[a-z:]{1,8}( [a-z:]{1,6}='[^']{0,8}')*/?>",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fragments_in_random_chunks(
        parts in prop::collection::vec(fragment(), 1..24),
        cut in 1usize..64,
        verdict in prop::option::of(any::<bool>()),
        cert in any::<bool>(),
    ) {
        let bytes: Vec<u8> = parts.concat().into_bytes();
        let chunks: Vec<&[u8]> = bytes.chunks(cut).collect();
        drive_with(chunks, verdict, cert);
    }

    #[test]
    fn raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        vireo_proptests::harness::s2s_incoming::run(&bytes);
    }
}
