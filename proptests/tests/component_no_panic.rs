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
use std::sync::Arc;
use xmpp_core::stream::component::{handshake_digest, NS};
use xmpp_core::stream::{
    ComponentSecret, ComponentStream, ComponentStreamConfig, ConnOutput, StreamErrorCondition,
};
use xmpp_core::Entropy;

const DOMAIN: &str = "echo.localhost";
const SECRET: &str = "s3cret-for-the-proptest";

/// Feed the fragments, answering claims (granted or refused), check every
/// stanza that comes out, and count them.
fn drive(chunks: &[Vec<u8>], grant: bool) -> Result<usize, TestCaseError> {
    let cfg = Arc::new(ComponentStreamConfig {
        components: vec![ComponentSecret {
            domain: DOMAIN.into(),
            secret: SECRET.into(),
        }],
        ..ComponentStreamConfig::default()
    });
    let mut s = ComponentStream::new(cfg, Entropy::from_u64(3), 0);
    let mut written = String::new();
    let mut accepted = false;
    let mut stanzas = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let now = i as u64;
        let text = String::from_utf8_lossy(chunk);
        let bytes = match stream_id(&written) {
            Some(id) if text.contains("HANDSHAKE") => text
                .replace("HANDSHAKE", &handshake_digest(&id, SECRET))
                .into_bytes(),
            _ => chunk.clone(),
        };
        s.handle_input(now, &bytes);
        while let Some(out) = s.poll_output() {
            match out {
                ConnOutput::Write(b) => written.push_str(&String::from_utf8_lossy(&b)),
                ConnOutput::Bound(jid) => {
                    prop_assert_eq!(jid.as_str(), DOMAIN);
                    if grant {
                        s.claimed(now);
                        accepted = true;
                    } else {
                        s.close(Some(StreamErrorCondition::Conflict));
                    }
                }
                ConnOutput::Stanza(el) => {
                    prop_assert!(accepted, "a stanza before the handshake was accepted");
                    let from = el.attr("from").unwrap_or_default();
                    prop_assert!(
                        from == DOMAIN
                            || from.contains(&format!("@{DOMAIN}"))
                            || from.starts_with(&format!("{DOMAIN}/")),
                        "from {from:?} outside the component's domain"
                    );
                    prop_assert!(el.attr("to").is_some(), "a stanza without `to`");
                    stanzas += 1;
                }
                ConnOutput::Account { .. }
                | ConnOutput::CheckPassword { .. }
                | ConnOutput::AuthStarted { .. }
                | ConnOutput::AuthFailed { .. }
                | ConnOutput::Authenticated { .. } => {
                    prop_assert!(false, "an account or SASL output from a component stream")
                }
                ConnOutput::SmEnabled(_)
                | ConnOutput::Resume { .. }
                | ConnOutput::Resumed(_)
                | ConnOutput::Undelivered(_)
                | ConnOutput::PageDelivered
                | ConnOutput::Fence(_) => {
                    prop_assert!(false, "a stream-management output from a component stream")
                }
                ConnOutput::Close
                | ConnOutput::StartTls
                | ConnOutput::Storage { .. }
                | ConnOutput::Failed(_) => {}
            }
        }
    }
    s.handle_timeout(u64::MAX / 2);
    while s.poll_output().is_some() {}
    Ok(stanzas)
}

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
    assert_eq!(drive(&chunks, true).ok(), Some(1));
    assert_eq!(drive(&chunks, false).ok(), Some(0));
}

/// The id of the server's stream header, once written.
fn stream_id(written: &str) -> Option<String> {
    let start = written.find(" id='")? + 5;
    Some(written[start..].split('\'').next()?.to_owned())
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
        drive(&chunks, grant)?;
    }

    #[test]
    fn raw_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        drive(&chunks, true)?;
    }
}
