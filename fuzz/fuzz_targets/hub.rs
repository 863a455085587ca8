//! The hub fed stanza scripts from several sessions through the simulated
//! world: see `vireo_proptests::harness::hub` for the input format and the
//! properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::hub::run(data));
