//! Arbitrary bytes into the server c2s stream machine.
//!
//! The first input byte shapes the run: its high bit logs in as "alice"
//! first (STARTTLS, PLAIN, bind — each its own read), the next bit drops the
//! transport at the end (XEP-0198 hibernation), its low six bits seed the
//! chunk sizes the rest is fed in. Credential lookups are answered with
//! alice's credentials (password "secret", derived once), STARTTLS completes
//! at once, stanzas are echoed back through the writer, and every output is
//! drained. The machine must never panic nor produce outputs without end.

use xmpp_core::sim::driver::C2sDriver;

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut driver = C2sDriver::new();
    if first & 0x80 != 0 {
        driver.login();
    }
    for chunk in super::chunks(first, rest) {
        driver.feed(chunk);
    }
    driver.fire_timer();
    if first & 0x40 != 0 {
        driver.lose_transport();
        driver.fire_timer();
    }
}
