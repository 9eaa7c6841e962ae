//! Fuzz target `l7_dns`: see `flowscope_fuzz::l7::dns`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::l7::dns(data));
