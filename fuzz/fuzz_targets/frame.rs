//! Fuzz target `frame`: see `flowscope_fuzz::frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::frame::run(data));
