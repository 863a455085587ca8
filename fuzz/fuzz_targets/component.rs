//! The XEP-0114 component stream fed arbitrary bytes: see
//! `vireo_proptests::harness::component` for the input format and the
//! properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::component::run(data));
