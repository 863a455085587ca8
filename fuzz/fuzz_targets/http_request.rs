//! See `vireo_proptests::harness::http_request` for the input format and the
//! properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::http_request::run(data));
