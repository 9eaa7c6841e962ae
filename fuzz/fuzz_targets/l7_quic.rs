//! Fuzz target `l7_quic`: see `flowscope_fuzz::l7::quic`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::l7::quic(data));
