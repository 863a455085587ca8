//! The server's component stream machine (XEP-0114) never panics on peer
//! input, and never lets a stanza out before the handshake is accepted or
//! with a `from` outside the component's domain.
//!
//! Inputs are byte strings assembled from XML-ish fragments (headers for
//! known and unknown names, right and wrong handshakes, stanzas with good,
//! spoofed, missing and malformed addresses, forbidden constructs, random
//! text) and raw bytes, fed in random chunk sizes. The placeholder
//! `HANDSHAKE` becomes the right digest for the stream id the machine sent.

use proptest::prelude::*;
use vireo_proptests::harness::component::drive;
use xmpp_core::stream::component::NS;

const DOMAIN: &str = "echo.localhost";

// The checks on every output (no stanza before the handshake is accepted,
// none from outside the component's domain or without `to`, no account or
// stream-management output, no endless outputs) are the fuzz harness's:
// `vireo_proptests::harness::component::drive`. `HANDSHAKE` in a fragment
// becomes the right digest there.

/// The driver does reach the accepted state: the properties below are not
/// only about refused streams.
#[test]
fn the_driver_gets_stanzas_through() {
    let header = format!(
        "<stream:stream xmlns='{NS}' xmlns:stream='http://etherx.jabber.org/streams' to='{DOMAIN}'>"
    );
    let chunks: Vec<Vec<u8>> = [
        header.as_str(),
        "<handshake>HANDSHAKE</handshake>",
        "<message from='bot@echo.localhost/r' to='alice@localhost'><body>hi</body></message>",
    ]
    .iter()
    .map(|c| c.as_bytes().to_vec())
    .collect();
    assert_eq!(drive(chunks.iter().map(Vec::as_slice), true), 1);
    assert_eq!(drive(chunks.iter().map(Vec::as_slice), false), 0);
}

fn fragment() -> impl Strategy<Value = String> {
    let header = format!(
        "<stream:stream xmlns='{NS}' xmlns:stream='http://etherx.jabber.org/streams' to='{DOMAIN}'>"
    );
    let fixed = prop::sample::select(vec![
        header.clone(),
        header.clone(),
        header.replace(DOMAIN, "other.localhost"),
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='echo.localhost'>".into(),
        "<handshake>HANDSHAKE</handshake>".into(),
        "<handshake>HANDSHAKE</handshake>".into(),
        "<handshake>0000000000000000000000000000000000000000</handshake>".into(),
        "<handshake/>".into(),
        "<handshake xmlns='jabber:client'>HANDSHAKE</handshake>".into(),
        "<message to='alice@localhost'><body>hi</body></message>".into(),
        "<message from='bot@echo.localhost/r' to='alice@localhost'><body>hi</body></message>".into(),
        "<message from='admin@localhost' to='alice@localhost'/>".into(),
        "<message from='echo.localhost.evil' to='alice@localhost'/>".into(),
        "<message from='@@' to='alice@localhost'/>".into(),
        "<message to='not a jid@@'/>".into(),
        "<message/>".into(),
        "<iq type='get' id='1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>".into(),
        "<iq type='get' to='localhost'/>".into(),
        "<iq type='result' id='2' to='localhost'/>".into(),
        "<presence to='alice@localhost' from='echo.localhost'/>".into(),
        "<message xmlns='jabber:client' to='alice@localhost'/>".into(),
        "<foo xmlns='urn:unknown'/>".into(),
        "</stream:stream>".into(),
        "<!DOCTYPE x>".into(),
        "<!-- c -->".into(),
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
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fragments_never_panic(parts in prop::collection::vec(fragment(), 0..16), grant in any::<bool>()) {
        let chunks: Vec<Vec<u8>> = parts.into_iter().map(String::into_bytes).collect();
        drive(chunks.iter().map(Vec::as_slice), grant);
    }

    #[test]
    fn raw_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        drive(chunks.iter().map(Vec::as_slice), true);
    }
}
