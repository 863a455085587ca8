//! Arbitrary bytes into the receiving s2s stream machine (XEP-0220
//! dialback, issue 13).
//!
//! The first input byte shapes the run: bit 6 makes the driver answer every
//! verification request `valid` (else `invalid`), bit 7 makes it report a
//! failed verification instead, bit 5 gives the peer a TLS client
//! certificate proving a.example (so SASL EXTERNAL is offered), bits 0-5
//! seed the chunk sizes the rest is fed in. So the fuzzer gets past verification without knowing a key.
//! The properties: nothing panics; every stanza let out comes from a
//! domain pair verified on the stream (or is our own error answer to one);
//! nothing comes out after the close; the machine stops producing outputs.

use std::sync::Arc;
use xmpp_core::jid::Jid;
use xmpp_core::s2s::dialback::{DialbackCondition, DialbackSecret};
use xmpp_core::s2s::incoming::PeerCertificate;
use xmpp_core::s2s::{IncomingConfig, IncomingOutput, IncomingStream};
use xmpp_core::Entropy;

const MAX_OUTPUTS: usize = 100_000;

/// Our domains: `b.example` and `c.example`.
fn stream() -> IncomingStream {
    let cfg = Arc::new(IncomingConfig {
        domains: vec!["b.example".into(), "c.example".into()],
        secret: DialbackSecret::new(b"fuzz"),
        // Dialback also over plain TCP, so the fuzzer reaches it either way.
        require_tls: false,
        // XEP-0288 too: its announcements must name verified pairs only.
        bidi: true,
        ..IncomingConfig::default()
    });
    IncomingStream::new(cfg, Entropy::from_u64(5), 0)
}

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let verdict = match (first & 0x80 != 0, first & 0x40 != 0) {
        (true, _) => None,
        (false, valid) => Some(valid),
    };
    drive_with(super::chunks(first, rest), verdict, first & 0x20 != 0);
}

/// A client certificate proving a.example.
#[derive(Debug)]
struct ProvesA;

impl PeerCertificate for ProvesA {
    fn proves(&self, domain: &str) -> bool {
        domain == "a.example"
    }
}

fn domain(jid: Option<&str>) -> Option<String> {
    Jid::parse(jid?).ok().map(|j| j.domain().to_owned())
}

/// Feed `chunks`, answer every verification request with `verdict`
/// (`None`: failed), then run the timers; check every output. Returns the
/// stanzas let out, so a caller can tell its inputs get through.
pub fn drive<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, verdict: Option<bool>) -> usize {
    drive_with(chunks, verdict, false)
}

/// [`drive`], the peer presenting a certificate for a.example over TLS
/// when `cert`.
pub fn drive_with<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    verdict: Option<bool>,
    cert: bool,
) -> usize {
    let mut s = stream();
    let mut stanzas = 0;
    let mut now = 0;
    let mut closed = false;
    let chunks: Vec<&[u8]> = chunks.into_iter().collect();
    for chunk in chunks.iter().map(Some).chain([None, None]) {
        now += 1;
        match chunk {
            Some(bytes) => s.handle_input(now, bytes),
            None => {
                if let Some(t) = s.poll_timeout() {
                    now = t.max(now);
                    s.handle_timeout(now);
                }
            }
        }
        let mut n = 0;
        let mut requests = Vec::new();
        loop {
            while let Some(out) = s.poll_output() {
                n += 1;
                assert!(
                    n < MAX_OUTPUTS,
                    "the s2s stream produces outputs without end"
                );
                match out {
                    IncomingOutput::Write(_) => {}
                    // The handshake "succeeds" at once.
                    IncomingOutput::StartTls => {
                        let c: Option<Arc<dyn PeerCertificate>> =
                            cert.then(|| Arc::new(ProvesA) as _);
                        s.tls_established_with(c)
                    }
                    IncomingOutput::Close => {
                        assert!(!closed, "closed twice");
                        closed = true;
                    }
                    IncomingOutput::Verify { sender, target, .. } => {
                        assert!(!closed, "a verification request after the close");
                        requests.push((sender.as_str().to_owned(), target.as_str().to_owned()));
                    }
                    IncomingOutput::Bidi { local, remote } => {
                        assert!(!closed, "a bidi pair after the close");
                        assert!(
                            s.is_verified(&remote, &local),
                            "a bidi pair ({local}, {remote}) that is not verified"
                        );
                    }
                    IncomingOutput::Stanza(el) => {
                        assert!(!closed, "a stanza after the close");
                        let (Some(from), Some(to)) =
                            (domain(el.attr("from")), domain(el.attr("to")))
                        else {
                            panic!("a stanza without a valid from or to: {el:?}");
                        };
                        let answer = el.attr("type") == Some("error") && s.is_verified(&to, &from);
                        assert!(
                            s.is_verified(&from, &to) || answer,
                            "a stanza from the unverified pair ({from}, {to}): {el:?}"
                        );
                        stanzas += 1;
                    }
                }
            }
            let Some((sender, target)) = requests.pop() else {
                break;
            };
            match verdict {
                Some(valid) => s.verified(&sender, &target, valid),
                None => s.verification_failed(
                    &sender,
                    &target,
                    DialbackCondition::RemoteConnectionFailed,
                ),
            }
        }
    }
    stanzas
}
