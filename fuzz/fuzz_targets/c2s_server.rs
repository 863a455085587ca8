//! The server c2s stream machine fed arbitrary bytes: see
//! `vireo_proptests::harness::c2s_server` for the input format and the
//! properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::c2s_server::run(data));
