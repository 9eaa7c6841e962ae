//! Flow records of real captures against the established tools' results
//! (`../shared/pcaps/expected`): tshark's conversations where all six
//! oracles agree, and Zeek's conn.log baselines (history, conn_state).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use flowscope::FlowExtractor;
use flowscope::extract::{AutoDetectEncap, FiveTuple, FiveTupleKey};
use flowscope::obs::TrackerCounters;
use flowscope::pcap::PcapReader;
use flowscope::tracker::{EndReason, FlowEvent, FlowTracker, TrackerConfig};

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// One ended record, source = initiator.
#[derive(Debug, Clone)]
struct Rec {
    proto: u8,
    src: SocketAddr,
    dst: SocketAddr,
    /// Packets and bytes, initiator → responder then responder → initiator.
    pkts: [u64; 2],
    bytes: [u64; 2],
    history: String,
    conn_state: &'static str,
    reason: EndReason,
}

fn run<E: FlowExtractor<Key = FiveTupleKey>>(
    name: &str,
    extractor: E,
    config: TrackerConfig,
) -> (Vec<Rec>, TrackerCounters) {
    let mut reader = PcapReader::open(format!("{PCAPS}/{name}")).expect("capture opens");
    let mut tracker = FlowTracker::with_config(extractor, config);
    let mut recs = Vec::new();
    let mut sink = |e: FlowEvent<'_, FiveTupleKey>| {
        if let FlowEvent::Ended { flow, reason, .. } = e {
            let k = flow.key.oriented(flow.initiator);
            recs.push(Rec {
                proto: flow.l4.number(),
                src: SocketAddr::new(k.src_ip(), k.src_port()),
                dst: SocketAddr::new(k.dst_ip(), k.dst_port()),
                pkts: [flow.sides[0].packets, flow.sides[1].packets],
                bytes: [flow.sides[0].bytes, flow.sides[1].bytes],
                history: flow.history.as_str().to_owned(),
                conn_state: flow.conn_state(),
                reason,
            });
        }
    };
    while let Some(view) = reader.next_packet().expect("capture reads to the end") {
        tracker.track(view, &mut sink);
    }
    tracker.finish(&mut sink);
    (recs, tracker.counters().clone())
}

/// A flow with its endpoints in canonical order: (proto, lo, hi, [pkts lo→hi,
/// bytes lo→hi, pkts hi→lo, bytes hi→lo]).
type Canon = (u8, SocketAddr, SocketAddr, [u64; 4]);

fn canon(proto: u8, a: SocketAddr, b: SocketAddr, pkts: [u64; 2], bytes: [u64; 2]) -> Canon {
    if a <= b {
        (proto, a, b, [pkts[0], bytes[0], pkts[1], bytes[1]])
    } else {
        (proto, b, a, [pkts[1], bytes[1], pkts[0], bytes[0]])
    }
}

/// tshark's conversations (`tshark.flows.csv`, l2 bytes = frame lengths).
fn tshark(name: &str) -> Vec<Canon> {
    let path = format!("{PCAPS}/expected/oracles/{name}/tshark.flows.csv");
    let text = std::fs::read_to_string(&path).expect("oracle csv");
    let mut v: Vec<Canon> = text
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f[11], "l2", "{path}: tshark bytes are frame lengths");
            let num = |i: usize| f[i].parse::<u64>().expect("number");
            let addr = |ip: usize, port: usize| {
                SocketAddr::new(f[ip].parse::<IpAddr>().expect("ip"), num(port) as u16)
            };
            canon(
                num(0) as u8,
                addr(1, 2),
                addr(3, 4),
                [num(7), num(9)],
                [num(8), num(10)],
            )
        })
        .collect();
    v.sort();
    v
}

/// Our flows at tshark's granularity: ICMP and ICMPv6 flows (keyed by
/// type and code, as Zeek keys them) summed per address pair, as tshark's
/// conversations count them.
fn ours(recs: &[Rec]) -> Vec<Canon> {
    let mut merged: BTreeMap<(u8, SocketAddr, SocketAddr), [u64; 4]> = BTreeMap::new();
    for r in recs {
        let portless = |a: SocketAddr| SocketAddr::new(a.ip(), 0);
        let (src, dst) = match r.proto {
            1 | 58 => (portless(r.src), portless(r.dst)),
            _ => (r.src, r.dst),
        };
        let (p, a, b, n) = canon(r.proto, src, dst, r.pkts, r.bytes);
        let sum = merged.entry((p, a, b)).or_default();
        for (s, x) in sum.iter_mut().zip(n) {
            *s += x;
        }
    }
    merged
        .into_iter()
        .map(|((p, a, b), n)| (p, a, b, n))
        .collect()
}

/// Captures on which all six oracles agree: every flow, its packets and
/// bytes per direction must equal tshark's exactly.
fn assert_exact(name: &str) -> (Vec<Rec>, TrackerCounters) {
    let (recs, c) = run(name, FiveTuple::bidirectional(), TrackerConfig::default());
    let expected = tshark(name);
    let got = ours(&recs);
    let missing: Vec<_> = expected.iter().filter(|e| !got.contains(e)).collect();
    let extra: Vec<_> = got.iter().filter(|g| !expected.contains(g)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: missing {missing:#?}\nextra {extra:#?}"
    );
    assert_eq!(got.len(), expected.len());
    // Every packet counted once; the ones in flows are exactly tshark's IP frames.
    assert_eq!(c.packets, c.packets_matched + c.unmatched_total());
    let tshark_pkts: u64 = expected.iter().map(|e| e.3[0] + e.3[2]).sum();
    assert_eq!(c.packets_matched, tshark_pkts);
    (recs, c)
}

#[test]
fn ndpi_android_equals_oracles() {
    let (_, c) = assert_exact("ndpi__android.pcap");
    // 500 frames, 25 not IP (19 ARP and 6 other link-layer frames, summary.json nonip_frames).
    assert_eq!(c.packets, 500);
    assert_eq!(c.unmatched_total(), 25);
}

#[test]
fn ndpi_webattack_xss_equals_oracles() {
    let (recs, c) = assert_exact("ndpi__WebattackXSS.pcap");
    assert_eq!(c.packets, 9374);
    assert_eq!(c.unmatched_total(), 0);
    // Every one of these HTTP connections is a normal handshake and close.
    assert!(
        recs.iter().all(|r| r.history.starts_with("Sh")),
        "all start with a handshake"
    );
}

#[test]
fn ndpi_reddit_equals_oracles() {
    let (_, c) = assert_exact("ndpi__reddit.pcap");
    assert_eq!(c.packets, 11682);
}

#[test]
fn zeek_http_methods_equals_oracles() {
    let (recs, _) = assert_exact("zeek__http_methods.pcap");
    assert_eq!(recs.len(), 49);
}

/// Zeek conn.log rows: (orig, resp, proto, history, conn_state, orig_pkts, resp_pkts).
fn zeek_conn(
    name: &str,
    log: &str,
) -> Vec<(SocketAddr, SocketAddr, String, String, String, u64, u64)> {
    let path = format!("{PCAPS}/expected/zeek/{name}/{log}");
    let text = std::fs::read_to_string(&path).expect("zeek log");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let addr = |i: usize| {
                SocketAddr::new(f[i].parse().expect("ip"), f[i + 1].parse().expect("port"))
            };
            // Columns: ts uid orig_h orig_p resp_h resp_p proto service duration
            // orig_bytes resp_bytes conn_state local_orig local_resp missed_bytes
            // history orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes ...
            (
                addr(2),
                addr(4),
                f[6].to_owned(),
                // Zeek writes an empty history as unset.
                if f[15] == "-" { "" } else { f[15] }.to_owned(),
                f[11].to_owned(),
                f[16].parse().expect("orig_pkts"),
                f[18].parse().expect("resp_pkts"),
            )
        })
        .collect()
}

/// Each Zeek TCP/UDP connection has a record with the same originator,
/// history, conn_state and packets per direction.
fn assert_zeek(name: &str, log: &str, recs: &[Rec], protos: &[&str]) {
    let by_pair: BTreeMap<(SocketAddr, SocketAddr), &Rec> =
        recs.iter().map(|r| ((r.src, r.dst), r)).collect();
    let rows = zeek_conn(name, log);
    let mut checked = 0;
    for (orig, resp, proto, history, state, op, rp) in rows {
        if !protos.contains(&proto.as_str()) {
            continue;
        }
        let r = by_pair
            .get(&(orig, resp))
            .unwrap_or_else(|| panic!("{name}: no record {orig} -> {resp}"));
        assert_eq!(r.history, history, "{name} {orig}->{resp} history");
        assert_eq!(r.conn_state, state, "{name} {orig}->{resp} conn_state");
        assert_eq!(r.pkts, [op, rp], "{name} {orig}->{resp} packets");
        if state == "SF" && proto == "tcp" {
            assert_eq!(
                r.reason,
                EndReason::Fin,
                "{name} {orig}->{resp}: closed by FINs"
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "{name}: nothing compared");
}

#[test]
fn zeek_missing_syn_flips_initiator() {
    // The capture starts with the server's SYN-ACK: Zeek flips (`^`).
    let (recs, _) = run(
        "zeek__tcp_missing-syn.pcap",
        FiveTuple::bidirectional(),
        TrackerConfig::default(),
    );
    assert_zeek(
        "zeek__tcp_missing-syn.pcap",
        "core.tcp.missing-syn.conn.log",
        &recs,
        &["tcp"],
    );
}

#[test]
fn zeek_vlan_mpls_histories() {
    let (recs, _) = run(
        "zeek__mixed-vlan-mpls.pcap",
        FiveTuple::bidirectional(),
        TrackerConfig::default(),
    );
    assert_zeek(
        "zeek__mixed-vlan-mpls.pcap",
        "core.vlan-mpls.conn.log",
        &recs,
        &["tcp"],
    );
}

#[test]
fn zeek_q_in_q_udp() {
    let (recs, _) = run(
        "zeek__q-in-q.pcap",
        FiveTuple::bidirectional(),
        TrackerConfig::default(),
    );
    assert_zeek("zeek__q-in-q.pcap", "core.q-in-q.conn.log", &recs, &["udp"]);
}

#[test]
fn zeek_gre_inner_flows() {
    // Zeek decapsulates GRE; so does AutoDetectEncap. ICMP is keyed by
    // type and code in both (Zeek puts them in the port fields).
    let (recs, _) = run(
        "zeek__tunnels_gre-sample.pcap",
        AutoDetectEncap::new(FiveTuple::bidirectional()),
        TrackerConfig::default(),
    );
    assert_zeek(
        "zeek__tunnels_gre-sample.pcap",
        "core.tunnels.gre.conn.log",
        &recs,
        &["tcp", "udp", "icmp"],
    );
}

#[test]
fn zeek_vxlan_inner_http() {
    // Zeek logs the outer VXLAN UDP flow too; with decapsulation we key on
    // the inner flow only, so only the TCP row is compared.
    let (recs, _) = run(
        "zeek__tunnels_vxlan-encapsulated-http.pcap",
        AutoDetectEncap::new(FiveTuple::bidirectional()),
        TrackerConfig::default(),
    );
    assert_zeek(
        "zeek__tunnels_vxlan-encapsulated-http.pcap",
        "core.tunnels.analyzer-confirmation.conn.log",
        &recs,
        &["tcp"],
    );
}
