//! Arbitrary bytes into the server c2s stream machine.
//!
//! The first input byte shapes the run: its high bit logs in as "alice"
//! first (STARTTLS, PLAIN, bind — each its own read), the next bit drops the
//! transport at the end (XEP-0198 hibernation), its low six bits seed the
//! chunk sizes the rest is fed in. Credential lookups are answered with
//! alice's credentials (password "secret", derived once), STARTTLS completes
//! at once, stanzas are echoed back through the writer, and every output is
//! drained. The machine must never panic nor produce outputs without end.
//! `proptests/tests/c2s_no_panic.rs` runs the same driver on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_core::sim::driver::C2sDriver;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut driver = C2sDriver::new();
    if first & 0x80 != 0 {
        driver.login();
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
        driver.feed(chunk);
    }
    driver.fire_timer();
    if first & 0x40 != 0 {
        driver.lose_transport();
        driver.fire_timer();
    }
});
