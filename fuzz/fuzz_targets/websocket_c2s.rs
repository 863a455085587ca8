//! See `vireo_proptests::harness::websocket_c2s` for the input format and the
//! properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::websocket_c2s::run(data));
