//! See `vireo_proptests::harness::portable_reader` for the properties
//! checked on arbitrary XEP-0227 files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vireo_proptests::harness::portable_reader::run(data));
