//! Property tests for Vireo; the tests live in `tests/`. The fuzz
//! harnesses live here too ([`harness`]), so `cargo test` replays the fuzz
//! regressions on stable Rust.

pub mod harness;
