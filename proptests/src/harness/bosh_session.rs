//! Arbitrary request bodies into a BOSH session in front of a c2s stream
//! (XEP-0206), driven as the runtime does: what the session delivers goes
//! into the stream, what the stream writes into the session, flushed after
//! each burst; credential lookups answer alice's (password "secret").
//!
//! Input: pieces separated by 0x00. The first is the creation body; each
//! later piece is a request body, except that a piece starting with 0x01
//! lets time pass (its second byte, in seconds) and one starting with 0x02
//! is a stanza for the client. Properties: nothing panics, every request
//! is answered at most once, nothing is delivered to the stream after the
//! session ended, and the outputs come to rest.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use xmpp_core::bosh::{BoshConfig, BoshOutput, BoshSession};
use xmpp_core::sasl::StoredCredentials;
use xmpp_core::storage::StorageResult;
use xmpp_core::stream::{ConnOutput, ServerStream, ServerStreamConfig};
use xmpp_core::xml::Limits;
use xmpp_core::{Element, Entropy};

const MAX_ROUNDS: usize = 10_000;

/// Alice's credentials (password "secret"), derived once per process.
pub fn alice_credentials() -> Option<StoredCredentials> {
    static CREDS: OnceLock<Option<StoredCredentials>> = OnceLock::new();
    CREDS
        .get_or_init(|| StoredCredentials::derive("secret", b"fuzz-salt", 4096).ok())
        .clone()
}

fn parse(piece: &[u8]) -> Option<Element> {
    let limits = Limits {
        max_stanza_bytes: 16 * 1024,
        max_depth: 33,
        ..Limits::default()
    };
    Element::parse_with_limits(piece, &limits).ok()
}

/// Run one input.
pub fn run(data: &[u8]) {
    let mut pieces = data.split(|b| *b == 0);
    let Some(creation) = pieces.next().and_then(parse) else {
        return;
    };
    let cfg = BoshConfig {
        max_pending_bytes: 64 * 1024,
        ..BoshConfig::default()
    };
    let Ok(mut bosh) = BoshSession::create(cfg, "fuzz".into(), 0, 0, &creation) else {
        return;
    };
    let stream_cfg = Arc::new(ServerStreamConfig::default());
    let mut stream = ServerStream::new_bosh(stream_cfg, Entropy::from_u64(1), 0, Some(vec![]));
    let mut state = State::default();
    let mut now = 0;
    let mut next_req = 1;
    pump(&mut bosh, &mut stream, &mut state, now);
    for piece in pieces {
        match piece.first() {
            Some(1) => {
                now += u64::from(piece.get(1).copied().unwrap_or(1)) * 1000;
                bosh.handle_timeout(now);
                stream.handle_timeout(now);
            }
            Some(2) => {
                if let Some(stanza) = parse(&piece[1..]) {
                    stream.send_stanza_at(now, &stanza);
                }
            }
            _ => {
                if let Some(body) = parse(piece) {
                    state.asked.insert(next_req);
                    bosh.handle_request(now, next_req, body);
                    next_req += 1;
                }
            }
        }
        pump(&mut bosh, &mut stream, &mut state, now);
    }
    now += 3_600_000;
    bosh.handle_timeout(now);
    pump(&mut bosh, &mut stream, &mut state, now);
}

#[derive(Default)]
struct State {
    asked: HashSet<u64>,
    answered: HashSet<u64>,
    ended: bool,
}

fn pump(bosh: &mut BoshSession, stream: &mut ServerStream, st: &mut State, now: u64) {
    for _ in 0..MAX_ROUNDS {
        let mut progress = false;
        while let Some(out) = bosh.poll_output() {
            progress = true;
            match out {
                BoshOutput::Respond { req, .. } => {
                    assert!(
                        req == 0 || st.asked.contains(&req),
                        "answer to unknown {req}"
                    );
                    assert!(st.answered.insert(req), "request {req} answered twice");
                }
                BoshOutput::Deliver(bytes) => {
                    assert!(!st.ended, "delivered after the end");
                    stream.handle_input(now, &bytes);
                }
                BoshOutput::End { .. } => st.ended = true,
            }
        }
        while let Some(out) = stream.poll_output() {
            progress = true;
            match out {
                ConnOutput::Write(b) if bosh.has_room() => bosh.push(now, &b),
                ConnOutput::Write(_) => {}
                ConnOutput::Storage { id, .. } => {
                    stream.handle_storage(now, id, StorageResult::Credentials(alice_credentials()))
                }
                ConnOutput::CheckPassword { id, check } => {
                    stream.handle_password_check(now, id, check.run())
                }
                ConnOutput::Fence(seq) => stream.fence_done(now, seq),
                ConnOutput::Close => bosh.stream_closed(now),
                _ => {}
            }
        }
        bosh.flush(now);
        if !progress {
            return;
        }
    }
    panic!("the BOSH session and its stream produce outputs without end");
}
