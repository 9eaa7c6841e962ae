//! `flowscope read`'s runtime on every shared capture:
//!
//! - any number of workers gives the records one worker gives (flows with
//!   their counts, history and end reason; L7 and anomaly records), each
//!   flow's records in the same order. Flow IDs differ (each worker numbers
//!   its own flows, `worker << 48` onwards), so every record's `flow_id` is
//!   replaced by its flow's identity: the five-tuple and the start of the
//!   flow's first record;
//! - `--l7` and `--no-l7` report the same flows, packet for packet: the
//!   flow records differ only by what reassembly and parsing add
//!   (`app_proto`, `reassembly`, `bounds`);
//! - every packet read is counted once, in a flow or unmatched.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use flowscope::pcap::PcapReader;
use flowscope::pipeline::PipelineConfig;
use flowscope::runtime::RunConfig;
use flowscope::runtime::offline::OfflineReport;
use serde_json::Value;

/// A run's EVE records, in output order, and its report.
fn run(capture: &Path, workers: usize, l7: bool, decap: bool) -> (Vec<Value>, OfflineReport) {
    let mut pipeline = PipelineConfig::default();
    if !l7 {
        pipeline.l7 = None;
    }
    let run = RunConfig {
        pipeline: Some(pipeline),
        decap,
        ..RunConfig::default()
    };
    common::read_eve(
        PcapReader::open(capture).expect("open capture"),
        run,
        workers,
    )
}

/// The identity of each flow ID: `proto src:port dst:port first-start`.
fn flow_identities(records: &[Value]) -> HashMap<u64, String> {
    let mut first: HashMap<u64, (String, String)> = HashMap::new();
    for r in records.iter().filter(|r| r["event_type"] == "flow") {
        let id = r["flow_id"].as_u64().unwrap();
        let tuple = format!(
            "{} {}:{} {}:{}",
            r["proto"], r["src_ip"], r["src_port"], r["dest_ip"], r["dest_port"]
        );
        let start = r["flow"]["start"].as_str().unwrap().to_owned();
        let e = first.entry(id).or_insert((tuple, start.clone()));
        if start < e.1 {
            e.1 = start;
        }
    }
    first
        .into_iter()
        .map(|(id, (tuple, start))| (id, format!("{tuple} {start}")))
        .collect()
}

/// Each flow's records, in output order, with the flow ID replaced by the
/// flow's identity; records of no flow (none here) under "".
fn by_flow(records: &[Value]) -> BTreeMap<String, Vec<String>> {
    let ids = flow_identities(records);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records {
        let mut r = r.clone();
        let flow = r["flow_id"]
            .as_u64()
            .map(|id| {
                ids.get(&id)
                    .cloned()
                    .expect("every record's flow has a flow record")
            })
            .unwrap_or_default();
        if let Some(o) = r.as_object_mut() {
            o.remove("flow_id");
        }
        out.entry(flow).or_default().push(r.to_string());
    }
    out
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn any_worker_count_gives_the_records_of_one_worker() {
    for capture in common::shared_captures() {
        let (one, r1) = run(&capture, 1, true, false);
        let want = by_flow(&one);
        for workers in [2, 3] {
            let (many, rn) = run(&capture, workers, true, false);
            assert_eq!(rn.workers, workers);
            assert_eq!(
                rn.counters.tracker,
                r1.counters.tracker,
                "{}: {workers} workers count otherwise",
                name(&capture)
            );
            let got = by_flow(&many);
            assert_eq!(
                got.len(),
                want.len(),
                "{}: flows with {workers} workers",
                name(&capture)
            );
            for (flow, records) in &want {
                assert_eq!(
                    got.get(flow),
                    Some(records),
                    "{}: the records of flow {flow} with {workers} workers",
                    name(&capture)
                );
            }
        }
    }
}

#[test]
fn tunnels_looked_through_split_alike_too() {
    for capture in common::shared_captures().iter().filter(|p| {
        let n = name(p);
        n.contains("tunnel") || n.contains("vxlan") || n.contains("geneve") || n.contains("gre")
    }) {
        let (one, _) = run(capture, 1, true, true);
        let (two, _) = run(capture, 2, true, true);
        assert_eq!(by_flow(&one), by_flow(&two), "{}", name(capture));
    }
}

/// The flow records of `records`, without what reassembly and parsing add,
/// by flow identity.
fn flows_only(records: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut flows = BTreeMap::new();
    for (flow, recs) in by_flow(records) {
        let kept: Vec<String> = recs
            .iter()
            .map(|r| serde_json::from_str::<Value>(r).unwrap())
            .filter(|r| r["event_type"] == "flow")
            .map(|mut r| {
                if let Some(o) = r.as_object_mut() {
                    for k in ["app_proto", "reassembly", "bounds"] {
                        o.remove(k);
                    }
                }
                r.to_string()
            })
            .collect();
        flows.insert(flow, kept);
    }
    flows
}

#[test]
fn l7_and_flows_only_report_the_same_flows_and_count_every_packet() {
    for capture in common::shared_captures() {
        let (l7, with) = run(&capture, 1, true, false);
        let (flows, without) = run(&capture, 1, false, false);
        let n = name(&capture);
        assert_eq!(flows_only(&l7), flows_only(&flows), "{n}: flow records");
        for r in [&with, &without] {
            let t = &r.counters.tracker;
            assert_eq!(
                t.packets, r.reader.packets,
                "{n}: every packet read is tracked"
            );
            assert_eq!(
                t.packets_matched + t.unmatched_total(),
                t.packets,
                "{n}: in a flow or unmatched"
            );
            assert_eq!(t.created_total(), t.ended_total(), "{n}: every flow ended");
        }
        let books = |r: &OfflineReport| {
            let t = &r.counters.tracker;
            (
                t.packets,
                t.packets_matched,
                t.packets_unmatched,
                t.flows_created,
                t.flows_ended,
                t.bytes,
            )
        };
        assert_eq!(books(&with), books(&without), "{n}");
        let in_records: u64 = flows
            .iter()
            .filter(|r| r["event_type"] == "flow")
            .map(|r| {
                r["flow"]["pkts_toserver"].as_u64().unwrap()
                    + r["flow"]["pkts_toclient"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(
            in_records, without.counters.tracker.packets_matched,
            "{n}: packets in flows = packets in the records"
        );
    }
}

/// The worker the XDP program's steering (the offline reader's too) sends
/// a flow record's packets to, out of `workers`: by its five-tuple, or by
/// its address pair for other protocols and for UDP on a tunnel port.
fn steered_worker(r: &Value, workers: u32) -> usize {
    use flowscope_common::hash;
    let words = |ip: &str| {
        let mut w = [0u32; 4];
        match ip.parse::<std::net::IpAddr>().unwrap() {
            std::net::IpAddr::V4(a) => w[0] = u32::from_le_bytes(a.octets()),
            std::net::IpAddr::V6(a) => {
                for (w, b) in w.iter_mut().zip(a.octets().chunks_exact(4)) {
                    *w = u32::from_le_bytes(b.try_into().unwrap());
                }
            }
        }
        w
    };
    let seed = flowscope::runtime::offline::STEER_SEED;
    let a = hash::address_hash(seed, &words(r["src_ip"].as_str().unwrap()));
    let b = hash::address_hash(seed, &words(r["dest_ip"].as_str().unwrap()));
    let port = |k: &str| r[k].as_u64().map_or(0, |p| p as u16);
    let proto = match r["proto"].as_str().unwrap() {
        "TCP" => 6,
        "UDP" => 17,
        "ICMP" => 1,
        "IPv6-ICMP" => 58,
        "GRE" => 47,
        "IP-in-IP" => 4,
        "IPv6" => 41,
        "SCTP" => 132,
        other => other.parse().unwrap_or_else(|_| panic!("protocol {other}")),
    };
    let (sport, dport) = if proto == 6 || proto == 17 {
        (port("src_port"), port("dest_port"))
    } else {
        (0, 0)
    };
    let steer = hash::flow_and_steer(a, sport, b, dport, proto, false).1;
    hash::xsk_slot(0, workers, steer) as usize
}

#[test]
fn each_workers_packets_are_those_of_its_flows() {
    const WORKERS: usize = 3;
    let mut checked = 0;
    for capture in common::shared_captures() {
        let (records, report) = run(&capture, WORKERS, false, false);
        let c = &report.counters.tracker;
        assert_eq!(report.worker_packets.len(), WORKERS, "{}", name(&capture));
        assert_eq!(
            report.worker_packets.iter().sum::<u64>(),
            c.packets,
            "{}: the workers' packets add up to the packets read",
            name(&capture)
        );
        // Unmatched packets are counted by the worker they reached but are
        // in no flow record; fragments are steered by the fragment table.
        if c.unmatched_total() > 0 || report.counters.fragments.fragments > 0 {
            continue;
        }
        let mut of_flows = [0u64; WORKERS];
        for r in records.iter().filter(|r| r["event_type"] == "flow") {
            of_flows[steered_worker(r, WORKERS as u32)] +=
                r["flow"]["pkts_toserver"].as_u64().unwrap()
                    + r["flow"]["pkts_toclient"].as_u64().unwrap();
        }
        assert_eq!(
            report.worker_packets,
            of_flows,
            "{}: each worker tracked the packets of the flows steered to it",
            name(&capture)
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} captures checked");
}
