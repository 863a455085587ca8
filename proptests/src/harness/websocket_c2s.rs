//! Arbitrary bytes into the c2s machine over a WebSocket (RFC 7395): the
//! frame decoder, the `<open/>`/`<close/>` translation and the session
//! behind them, fed in chunks whose sizes the first byte seeds. With its
//! high bit set, a well-formed login (open, PLAIN, restart, bind) in
//! masked frames comes first, so the fuzzer's bytes reach a bound session.
//! The machine must never panic nor produce outputs without end.

use std::sync::Arc;
use xmpp_core::storage::StorageResult;
use xmpp_core::stream::{ConnOutput, ServerStream, ServerStreamConfig};
use xmpp_core::Entropy;

const MAX_OUTPUTS: usize = 100_000;

/// The login, one masked text frame per element.
pub const LOGIN: [&str; 4] = [
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
    "<iq type='set' id='b' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
];

/// A masked client frame.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut s = ServerStream::new_websocket(
        Arc::new(ServerStreamConfig::default()),
        Entropy::from_u64(3),
        0,
        Some(vec![]),
    );
    if first & 0x80 != 0 {
        for text in LOGIN {
            s.handle_input(0, &frame(1, text.as_bytes()));
            drain(&mut s);
        }
    }
    for chunk in super::chunks(first, rest) {
        s.handle_input(1, chunk);
        drain(&mut s);
    }
    if let Some(t) = s.poll_timeout() {
        s.handle_timeout(t);
        drain(&mut s);
    }
}

fn drain(s: &mut ServerStream) {
    let creds = super::bosh_session::alice_credentials();
    let mut n = 0;
    while let Some(out) = s.poll_output() {
        n += 1;
        assert!(n < MAX_OUTPUTS, "the stream produces outputs without end");
        match out {
            ConnOutput::Storage { id, .. } => {
                s.handle_storage(1, id, StorageResult::Credentials(creds.clone()))
            }
            ConnOutput::CheckPassword { id, check } => s.handle_password_check(1, id, check.run()),
            ConnOutput::Fence(seq) => s.fence_done(1, seq),
            ConnOutput::DropTransport => {
                s.transport_lost(1);
            }
            _ => {}
        }
    }
}
