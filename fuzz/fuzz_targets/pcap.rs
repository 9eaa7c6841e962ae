//! Fuzz target `pcap`: see `flowscope_fuzz::pcap`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::pcap::run(data));
