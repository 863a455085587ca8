//! XEP-0198 enable/ack/resume sequences, structured input: see
//! `vireo_proptests::harness::sm` for the input format and the properties
//! checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::sm::run(data));
