//! Fuzz target `l7_ssh`: see `flowscope_fuzz::l7::ssh`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowscope_fuzz::l7::ssh(data));
