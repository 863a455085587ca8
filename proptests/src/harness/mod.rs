//! Fuzz harnesses: each takes arbitrary bytes and drives one entry point of
//! the server, checking the properties that must hold for every input.
//!
//! The cargo-fuzz targets in `fuzz/` are one-line calls to these functions,
//! and `tests/fuzz_regressions.rs` replays every file under
//! `fuzz/regressions/<target>/` through the same function on every
//! `cargo test`: an input that crashed once stays a test on stable Rust.

pub mod bosh_session;
pub mod c2s_server;
pub mod component;
pub mod config;
pub mod http_request;
pub mod hub;
pub mod jid;
pub mod login;
pub mod portable_reader;
pub mod s2s_incoming;
pub mod sasl;
pub mod sm;
pub mod websocket_c2s;
pub mod xml_stream;

/// A harness: panics when a property fails.
pub type Harness = fn(&[u8]);

/// Every fuzz target by name (the `fuzz/fuzz_targets/<name>.rs` file and its
/// regression directory).
pub const TARGETS: &[(&str, Harness)] = &[
    ("xml_stream", xml_stream::run),
    ("c2s_server", c2s_server::run),
    ("jid", jid::run),
    ("sasl", sasl::run),
    ("hub", hub::run),
    ("sm", sm::run),
    ("component", component::run),
    ("config", config::run),
    ("s2s_incoming", s2s_incoming::run),
    ("http_request", http_request::run),
    ("bosh_session", bosh_session::run),
    ("websocket_c2s", websocket_c2s::run),
    ("portable_reader", portable_reader::run),
];

/// The harness of a target.
pub fn harness(name: &str) -> Option<Harness> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}

/// Chunk sizes 1..=64 from a small xorshift generator, so one input byte
/// decides how the rest is split into reads.
pub(crate) fn chunks(seed: u8, mut data: &[u8]) -> Vec<&[u8]> {
    let mut state = u32::from(seed & 0x3f) | 0x100;
    let mut out = Vec::new();
    while !data.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = ((state % 64) as usize + 1).min(data.len());
        let (chunk, tail) = data.split_at(n);
        out.push(chunk);
        data = tail;
    }
    out
}
