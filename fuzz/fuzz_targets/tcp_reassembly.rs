//! Fuzz target `tcp_reassembly`: see `flowscope_fuzz::tcp_reassembly`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::tcp_reassembly::run(data));
