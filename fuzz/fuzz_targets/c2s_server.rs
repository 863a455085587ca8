//! Arbitrary bytes into the server c2s stream machine.
//!
//! The first input byte shapes the run: its high bit logs in as "alice"
//! first (STARTTLS, PLAIN, bind — each its own read), its low six bits seed
//! the chunk sizes the rest is fed in. Credential lookups are answered with
//! alice's credentials (password "secret", derived once), STARTTLS completes
//! at once, stanzas are echoed back through the writer, and every output is
//! drained. The machine must never panic nor produce outputs without end.
//! `proptests/tests/c2s_no_panic.rs` runs the same driver on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use xmpp_core::sasl::StoredCredentials;
use xmpp_core::storage::{StorageRequest, StorageResult};
use xmpp_core::stream::{ConnOutput, ServerStream, ServerStreamConfig};
use xmpp_core::Entropy;

fn alice() -> &'static StoredCredentials {
    static CREDS: OnceLock<StoredCredentials> = OnceLock::new();
    CREDS.get_or_init(|| {
        StoredCredentials::derive("secret", b"vireo-test-salt", 4096).expect("valid credentials")
    })
}

fn config() -> Arc<ServerStreamConfig> {
    static CFG: OnceLock<Arc<ServerStreamConfig>> = OnceLock::new();
    CFG.get_or_init(|| {
        Arc::new(ServerStreamConfig {
            require_encryption: false,
            ..Default::default()
        })
    })
    .clone()
}

const MAX_OUTPUTS: usize = 100_000;

const HEADER: &str = "<stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

const LOGIN: [&str; 6] = [
    HEADER,
    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    HEADER,
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
    HEADER,
    "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>home</resource></bind></iq>",
];

fn drain(stream: &mut ServerStream, now: u64) {
    let mut n = 0;
    while let Some(out) = stream.poll_output() {
        n += 1;
        assert!(n < MAX_OUTPUTS, "the stream produces outputs without end");
        match out {
            ConnOutput::StartTls => stream.tls_established(now, vec![]),
            ConnOutput::Storage { id, request } => {
                let result = match request {
                    StorageRequest::LoadCredentials { account } => StorageResult::Credentials(
                        account.starts_with("alice@").then(|| alice().clone()),
                    ),
                    _ => StorageResult::Done,
                };
                stream.handle_storage(now, id, result);
            }
            ConnOutput::Stanza(el) => stream.send_stanza(&el),
            ConnOutput::Write(_)
            | ConnOutput::Bound(_)
            | ConnOutput::Failed(_)
            | ConnOutput::Close => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut stream = ServerStream::new(config(), Entropy::from_u64(1), 0, None);
    drain(&mut stream, 0);
    let mut now = 0;
    if first & 0x80 != 0 {
        for part in LOGIN {
            now += 1;
            stream.handle_input(now, part.as_bytes());
            drain(&mut stream, now);
        }
    }
    // Chunk sizes 1..=64 from a small generator seeded by the input.
    let mut seed = u32::from(first & 0x3f) | 0x100;
    let mut rest = rest;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = ((seed % 64) as usize + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        now += 1;
        stream.handle_input(now, chunk);
        drain(&mut stream, now);
    }
    if let Some(deadline) = stream.poll_timeout() {
        let at = deadline.max(now);
        stream.handle_timeout(at);
        drain(&mut stream, at);
    }
});
