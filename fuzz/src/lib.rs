//! The bodies of flowscope's fuzz targets, one module per target.
//!
//! Each target feeds arbitrary bytes to public entry points of the
//! `flowscope` library and asserts the invariants those entry points
//! promise; a panic is a finding. The libFuzzer binaries in `fuzz_targets/`
//! call [`TARGETS`]' functions, and `flowscope-user/tests/fuzz_corpus.rs`
//! replays every committed corpus and regression file through the same
//! functions on stable, so a fixed crash stays fixed.
//!
//! Structured targets (reassemblers, L7 streams, the tracker) decode a
//! small operation language from the input with [`input::Input`]; their
//! modules also hold the encoders the seed generator
//! (`examples/seed.rs`) uses to write seeds in that language.

pub mod decap;
pub mod filter;
pub mod frame;
pub mod input;
pub mod ipfrag;
pub mod l7;
pub mod pcap;
pub mod tcp_reassembly;
pub mod tracker;

/// A fuzz target: its name (the `fuzz_targets/` binary, the `corpus/` and
/// `regressions/` directory) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 12] = [
    ("frame", frame::run),
    ("decap", decap::run),
    ("pcap", pcap::run),
    ("tcp_reassembly", tcp_reassembly::run),
    ("ipfrag", ipfrag::run),
    ("l7_http", l7::http),
    ("l7_tls", l7::tls),
    ("l7_dns", l7::dns),
    ("l7_quic", l7::quic),
    ("l7_ssh", l7::ssh),
    ("tracker", tracker::run),
    ("filter", filter::run),
];
