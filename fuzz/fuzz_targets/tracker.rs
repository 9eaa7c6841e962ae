//! Fuzz target `tracker`: see `flowscope_fuzz::tracker`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::tracker::run(data));
