//! Fuzz target `decap`: see `flowscope_fuzz::decap`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::decap::run(data));
