//! Fuzz target `ipfrag`: see `flowscope_fuzz::ipfrag`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::ipfrag::run(data));
