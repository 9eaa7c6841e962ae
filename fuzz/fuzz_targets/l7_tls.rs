//! Fuzz target `l7_tls`: see `flowscope_fuzz::l7::tls`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::l7::tls(data));
