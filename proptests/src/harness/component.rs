//! Arbitrary bytes into the server's component stream machine (XEP-0114).
//!
//! The first input byte shapes the run: bit 6 grants the domain claim (else
//! the driver refuses it with `<conflict/>`), bits 0-5 seed the chunk sizes
//! the rest is fed in. Every `HANDSHAKE` in the input becomes the right
//! digest for the stream id the machine announces (its entropy is fixed, so
//! the id is known in advance), so the fuzzer gets past the handshake.
//! The properties: nothing panics; no stanza comes out before the handshake
//! is accepted and the claim granted, none without a `to` or with a `from`
//! outside the component's domain; no account or stream-management output;
//! the machine stops producing outputs.

use std::sync::{Arc, OnceLock};
use xmpp_core::jid::Jid;
use xmpp_core::stream::component::{handshake_digest, NS};
use xmpp_core::stream::{
    AcceptOutput, ComponentSecret, ComponentStream, ComponentStreamConfig, StreamErrorCondition,
};
use xmpp_core::Entropy;

const DOMAIN: &str = "echo.localhost";
const SECRET: &str = "s3cret-for-the-fuzzer";
const MAX_OUTPUTS: usize = 100_000;

fn stream() -> ComponentStream {
    let cfg = Arc::new(ComponentStreamConfig {
        components: vec![ComponentSecret {
            domain: DOMAIN.into(),
            secret: SECRET.into(),
        }],
        ..ComponentStreamConfig::default()
    });
    ComponentStream::new(cfg, Entropy::from_u64(3), 0)
}

/// The digest for the stream id a fresh machine announces.
fn digest() -> &'static str {
    static DIGEST: OnceLock<String> = OnceLock::new();
    DIGEST.get_or_init(|| {
        let mut s = stream();
        let header = format!(
            "<stream:stream xmlns='{NS}' xmlns:stream='http://etherx.jabber.org/streams' to='{DOMAIN}'>"
        );
        s.handle_input(0, header.as_bytes());
        let mut written = String::new();
        while let Some(out) = s.poll_output() {
            if let AcceptOutput::Write(b) = out {
                written.push_str(&String::from_utf8_lossy(&b));
            }
        }
        let id = super::login::attr_of(&written, "stream:stream", "id").unwrap_or_default();
        handshake_digest(&id, SECRET)
    })
}

/// Replace every `HANDSHAKE` with the digest.
fn with_digest(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while !rest.is_empty() {
        if rest.starts_with(b"HANDSHAKE") {
            out.extend_from_slice(digest().as_bytes());
            rest = &rest[9..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let grant = first & 0x40 != 0;
    let input = with_digest(rest);
    drive(super::chunks(first, &input), grant);
}

/// Feed `chunks` (each `HANDSHAKE` in them already replaced, or replaced
/// here when a chunk holds a whole one), grant or refuse the domain claim,
/// then run the timers; check every output. Returns the stanzas let out,
/// so a caller can tell that its inputs get past the handshake.
pub fn drive<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, grant: bool) -> usize {
    let mut s = stream();
    let mut accepted = false;
    let mut stanzas = 0;
    let mut now = 0;
    let chunks: Vec<Vec<u8>> = chunks.into_iter().map(with_digest).collect();
    for chunk in chunks.iter().map(Some).chain([None]) {
        now += 1;
        match chunk {
            Some(bytes) => s.handle_input(now, bytes),
            // After the last read, the timers (handshake timeout, keepalive).
            None => {
                if let Some(t) = s.poll_timeout() {
                    now = t.max(now);
                    s.handle_timeout(now);
                }
            }
        }
        let mut n = 0;
        while let Some(out) = s.poll_output() {
            n += 1;
            assert!(
                n < MAX_OUTPUTS,
                "the component stream produces outputs without end"
            );
            match out {
                AcceptOutput::Claim(jid) => {
                    assert_eq!(jid.as_str(), DOMAIN);
                    if grant {
                        s.claimed(now);
                        accepted = true;
                    } else {
                        s.close(Some(StreamErrorCondition::Conflict));
                    }
                }
                AcceptOutput::Stanza(el) => {
                    assert!(accepted, "a stanza before the handshake was accepted");
                    let from = el.attr("from").unwrap_or_default();
                    assert_eq!(
                        Jid::parse(from).ok().as_ref().map(Jid::domain),
                        Some(DOMAIN),
                        "from {from:?} outside the component's domain"
                    );
                    assert!(el.attr("to").is_some(), "a stanza without `to`");
                    stanzas += 1;
                }
                // Authentication, account and stream-management outputs
                // cannot come from a component stream: its output type
                // has none.
                AcceptOutput::Write(_) | AcceptOutput::Close => {}
            }
        }
    }
    stanzas
}
