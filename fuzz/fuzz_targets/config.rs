//! TOML text into the configuration loader: see
//! `vireo_proptests::harness::config` for the input format and the properties
//! checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::config::run(data));
