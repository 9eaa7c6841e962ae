//! Fuzz target `filter`: see `flowscope_fuzz::filter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::filter::run(data));
