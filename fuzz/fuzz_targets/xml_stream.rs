//! The XML stream parser with a serialize/re-parse check: see
//! `vireo_proptests::harness::xml_stream` for the input format and the
//! properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::xml_stream::run(data));
