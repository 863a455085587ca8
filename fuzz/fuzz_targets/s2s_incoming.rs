//! The receiving s2s stream (XEP-0220 dialback) fed arbitrary bytes: see
//! `vireo_proptests::harness::s2s_incoming` for the input format and the
//! properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::s2s_incoming::run(data));
