//! JID parsing and normalization as a fixed point: see
//! `vireo_proptests::harness::jid` for the input format and the properties
//! checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::jid::run(data));
