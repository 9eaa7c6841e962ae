//! No allocation per packet in the capture-file path: the reader (records
//! parsed in place, steering, batches), and with one worker the worker and
//! the writer stage too (tracker, EVE encoding), all on the test thread,
//! counted by a global allocator; and with L7 on an HTTP and a DNS capture,
//! none per flow or record either (parsers and every record's storage are
//! reused).
//!
//! A capture and the same capture followed by a time-shifted copy of its
//! records (twice the packets, twice the flows) must cost the same
//! allocations, give or take a few buffers.
//!
//! Captures of a single flow or two are held to an exact count per copy
//! instead (a few buffers of slack would hide a flow's allocations): SSH,
//! IETF and Google QUIC flows make none; TLS flows only those of
//! x509-parser, which reads the certificate, so that any new one shows.
//!
//! Allocations are counted per thread; with one worker the whole run is on
//! the test's thread.

mod alloc_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use flowscope::output::OutputSpec;
use flowscope::pcap::PcapReader;
use flowscope::pipeline::PipelineConfig;
use flowscope::runtime::RunConfig;
use flowscope::runtime::offline::{self, OfflineConfig};

/// Flows only: TCP connections without a payload worth parsing.
const FLOWS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/pcaps/zeek__echo-connections.pcap"
);

/// With L7: 661 flows, 1 778 HTTP exchanges.
const HTTP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/pcaps/ndpi__WebattackXSS.pcap"
);

/// With L7: 3 UDP flows, 382 DNS messages (a DNS tunnel's long names).
const DNS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/pcaps/ndpi__bad-dns-traffic.pcap"
);

/// Captures of one or two flows, whether they are read through tunnels,
/// and the allocations one copy's flows make.
const PER_COPY: [(&str, bool, u64); 6] = [
    // x509-parser's own vectors and the serial's big integer.
    (
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/pcaps/ndpi__tls_long_cert.pcap"
        ),
        false,
        9,
    ),
    (
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/pcaps/zeek__tls_tls-conn-with-extensions.pcap"
        ),
        false,
        19,
    ),
    // IETF QUIC: the hello decrypted, reassembled and read in place.
    (
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/pcaps/ndpi__quic-29.pcap"
        ),
        false,
        0,
    ),
    (
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/pcaps/ndpi__quic_t51.pcap"
        ),
        false,
        0,
    ),
    // Google QUIC Q046, its CHLO in clear.
    (
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/pcaps/ndpi__quic_q46.pcap"
        ),
        false,
        0,
    ),
    // SSH (both identification lines and KEXINITs), DNS and NTP inside GRE.
    (
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/pcaps/zeek__tunnels_gre-sample.pcap"
        ),
        true,
        1,
    ),
];

/// Allocations tolerated beyond the single copy's: buffers sized once
/// (read chunks in flight, ring slots touched for the first time).
const SLACK: u64 = 16;

/// `pcap` (classic, little-endian, microseconds) with its records repeated
/// `copies` times, each copy `shift_secs` later than the one before.
fn repeated(pcap: &[u8], copies: u32, shift_secs: u32) -> Vec<u8> {
    assert_eq!(pcap[..4], [0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut out = pcap[..24].to_vec();
    for c in 0..copies {
        let mut at = 24;
        while at + 16 <= pcap.len() {
            let incl = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
            let sec = u32::from_le_bytes(pcap[at..at + 4].try_into().unwrap()) + c * shift_secs;
            out.extend_from_slice(&sec.to_le_bytes());
            out.extend_from_slice(&pcap[at + 4..at + 16 + incl]);
            at += 16 + incl;
        }
    }
    out
}

/// Allocations of the test thread while `bytes` goes through `workers`
/// workers (with L7 or flow records only, tunnels decapsulated or not, EVE
/// to a file); the packets read.
fn allocations(bytes: &[u8], workers: usize, l7: bool, decap: bool) -> (u64, u64) {
    // One directory per run: the tests of this binary run at once.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "fs-offline-alloc-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = OfflineConfig {
        run: RunConfig {
            pipeline: Some(PipelineConfig {
                l7: l7.then(Default::default),
                ..PipelineConfig::default()
            }),
            outputs: vec![OutputSpec::Eve(Some(dir.join("eve.json")))],
            decap,
            ..RunConfig::default()
        },
        workers,
        filter: None,
    };
    let reader = PcapReader::new(bytes).expect("header");
    let before = alloc_support::allocations();
    let report = offline::run(reader, &cfg, &AtomicBool::new(false), || {}).expect("runs");
    let allocs = alloc_support::allocations() - before;
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(report.error.is_none());
    assert_eq!(report.counters.tracker.packets, report.reader.packets);
    (allocs, report.reader.packets)
}

#[test]
fn twice_the_packets_cost_no_more_allocations() {
    for (capture, l7, workers) in [
        (FLOWS, false, 1),
        (FLOWS, false, 2),
        (HTTP, true, 1),
        (DNS, true, 1),
    ] {
        let pcap = std::fs::read(capture).expect("shared capture");
        let once = repeated(&pcap, 1, 0);
        let twice = repeated(&pcap, 2, 3600);
        let (a1, p1) = allocations(&once, workers, l7, false);
        let (a2, p2) = allocations(&twice, workers, l7, false);
        assert_eq!(p2, 2 * p1);
        let name = capture.rsplit('/').next().unwrap_or(capture);
        let what = format!("{name} with {workers} worker(s), L7 {l7}");
        assert!(
            a2 <= a1 + SLACK,
            "{what}: {a1} allocations for {p1} packets, {a2} for {p2}"
        );
        eprintln!("{what}: {a1} allocations for {p1} packets, {a2} for {p2}");
    }
}

#[test]
fn each_copys_flows_make_the_allocations_counted() {
    for (capture, decap, per_copy) in PER_COPY {
        let pcap = std::fs::read(capture).expect("shared capture");
        let (a1, p1) = allocations(&repeated(&pcap, 1, 0), 1, true, decap);
        let (a2, p2) = allocations(&repeated(&pcap, 2, 3600), 1, true, decap);
        assert_eq!(p2, 2 * p1);
        let name = capture.rsplit('/').next().unwrap_or(capture);
        eprintln!("{name}: {a1} allocations for {p1} packets, {a2} for {p2}");
        assert!(
            a2 <= a1 + per_copy,
            "{name}: a copy's flows made {} allocations, {per_copy} expected",
            a2.saturating_sub(a1)
        );
    }
}
