//! Fuzz target `l7_http`: see `flowscope_fuzz::l7::http`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::l7::http(data));
