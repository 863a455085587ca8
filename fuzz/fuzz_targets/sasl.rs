//! SASL server exchanges (SCRAM with channel binding, PLAIN), structured
//! input: see `vireo_proptests::harness::sasl` for the input format and the
//! properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::sasl::run(data));
