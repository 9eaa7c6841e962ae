//! Offline mode end to end: a capture through the runtime (one worker,
//! flow records only) into EVE JSON lines, whole and truncated.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use flowscope::FlowExtractor;
use flowscope::extract::{FiveTuple, FiveTupleKey};
use flowscope::output::EveOptions;
use flowscope::pcap::{PcapError, PcapReader};
use flowscope::pipeline::PipelineConfig;
use flowscope::runtime::RunConfig;
use flowscope::wire::IcmpMessage;
use serde_json::Value;

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// The EVE records of a capture read from memory, the read error that
/// ended it early, and the packets read.
fn eve_of(bytes: &[u8]) -> (Vec<Value>, Result<(), PcapError>, u64) {
    let run = RunConfig {
        pipeline: Some(PipelineConfig {
            l7: None,
            ..PipelineConfig::default()
        }),
        // Zeek's history and conn_state are extras.
        eve: EveOptions {
            extras: true,
            in_iface: None,
        },
        ..RunConfig::default()
    };
    let (lines, report) = common::read_eve(PcapReader::new(bytes).expect("header"), run, 1);
    let result = match report.error {
        Some(e) => Err(e),
        None => Ok(()),
    };
    (lines, result, report.reader.packets)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{PCAPS}/{name}")).expect("capture")
}

#[test]
fn http_methods_records() {
    let (recs, result, packets) = eve_of(&read("zeek__http_methods.pcap"));
    result.expect("complete file");
    assert_eq!(packets, 655);
    // tshark.flows.csv of this capture: 49 TCP conversations, 655 frames, 228 325 bytes.
    assert_eq!(recs.len(), 49);
    let pkts: u64 = recs
        .iter()
        .map(|r| {
            r["flow"]["pkts_toserver"].as_u64().unwrap()
                + r["flow"]["pkts_toclient"].as_u64().unwrap()
        })
        .sum();
    let bytes: u64 = recs
        .iter()
        .map(|r| {
            r["flow"]["bytes_toserver"].as_u64().unwrap()
                + r["flow"]["bytes_toclient"].as_u64().unwrap()
        })
        .sum();
    assert_eq!((pkts, bytes), (655, 228_325));
    let ids: std::collections::HashSet<u64> = recs
        .iter()
        .map(|r| r["flow_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 49, "flow IDs are unique");
    // First row of tshark.flows.csv: 128.2.6.136:46562 -> 173.194.75.103:80,
    // 6 packets / 445 bytes to the server, 4 / 1384 back, first 1354328870.172701.
    let r = recs
        .iter()
        .find(|r| r["src_port"] == 46562)
        .expect("the first connection");
    assert_eq!(r["event_type"], "flow");
    assert_eq!(r["proto"], "TCP");
    assert_eq!(r["src_ip"], "128.2.6.136");
    assert_eq!(r["dest_ip"], "173.194.75.103");
    assert_eq!(r["dest_port"], 80);
    assert_eq!(r["flow"]["pkts_toserver"], 6);
    assert_eq!(r["flow"]["bytes_toserver"], 445);
    assert_eq!(r["flow"]["pkts_toclient"], 4);
    assert_eq!(r["flow"]["bytes_toclient"], 1384);
    assert_eq!(r["flow"]["start"], "2012-12-01T02:27:50.172701+0000");
    assert_eq!(r["flow"]["end"], "2012-12-01T02:27:54.235114+0000");
    assert_eq!(r["timestamp"], r["flow"]["end"]);
    assert_eq!(r["flow"]["age"], 4);
    // tshark's flags per direction: APSF both ways (0x1b).
    assert_eq!(r["tcp"]["tcp_flags_ts"], "1b");
    assert_eq!(r["tcp"]["tcp_flags_tc"], "1b");
    assert_eq!(r["tcp"]["syn"], true);
    assert_eq!(r["tcp"]["fin"], true);
    assert!(r["tcp"].get("rst").is_none());
    assert_eq!(r["conn_state"], "SF");
    assert!(r.get("vlan").is_none());
}

#[test]
fn vlan_and_portless_protocols() {
    // zeek__q-in-q.pcap: UDP in 802.1ad + 802.1Q.
    let (recs, result, _) = eve_of(&read("zeek__q-in-q.pcap"));
    result.expect("complete file");
    assert!(!recs.is_empty());
    for r in &recs {
        let vlan = r["vlan"].as_array().expect("tagged: vlan list");
        assert_eq!(vlan.len(), 2);
        assert_eq!(r["proto"], "UDP");
        assert_eq!(r["history"], "D");
        assert_eq!(r["conn_state"], "S0");
    }
    // ICMP records carry no ports but the type and code (ws__dns+icmp.pcapng
    // has 22 ICMP frames).
    let (recs, result, _) = eve_of(&read("ws__dns+icmp.pcapng"));
    result.expect("complete file");
    let icmp: Vec<_> = recs.iter().filter(|r| r["proto"] == "ICMP").collect();
    assert!(!icmp.is_empty());
    assert!(icmp.iter().all(|r| r.get("src_port").is_none()
        && r.get("tcp").is_none()
        && r["icmp_type"].is_u64()
        && r["icmp_code"].is_u64()));
    let icmp_pkts: u64 = icmp
        .iter()
        .map(|r| {
            r["flow"]["pkts_toserver"].as_u64().unwrap()
                + r["flow"]["pkts_toclient"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(icmp_pkts, 22);
}

#[test]
fn truncated_capture_keeps_records_and_names_offset() {
    let whole = read("zeek__http_methods.pcap");
    let cut = &whole[..100_000];
    let (recs, result, packets) = eve_of(cut);
    let err = result.expect_err("truncated file is an error");
    let msg = err.to_string();
    assert!(msg.contains("offset"), "error names the byte offset: {msg}");
    assert!(packets > 0 && packets < 655);
    // Every packet read before the cut is in exactly one record.
    let pkts: u64 = recs
        .iter()
        .map(|r| {
            r["flow"]["pkts_toserver"].as_u64().unwrap()
                + r["flow"]["pkts_toclient"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(pkts, packets);
    // Open at the end of input: Suricata's `shutdown`.
    assert!(recs.iter().any(|r| r["flow"]["reason"] == "shutdown"));
}

#[test]
fn community_ids_match_wireshark() {
    // tshark's Community ID of every frame (blank for non-IP frames).
    let expected_path =
        format!("{PCAPS}/expected/wireshark-4.0.17/ws__communityid.communityid.txt");
    let expected: Vec<String> = std::fs::read_to_string(expected_path)
        .expect("baseline")
        .lines()
        .map(str::to_owned)
        .collect();
    let bytes = read("ws__communityid.pcap");
    // The records' Community IDs, by the canonical key their endpoints
    // make (ICMP: the key ports of their type and code).
    let (records, result, _) = eve_of(&bytes);
    result.expect("complete file");
    let mut ids = HashMap::new();
    for v in &records {
        let proto: u8 = match v["proto"].as_str().unwrap() {
            "TCP" => 6,
            "UDP" => 17,
            "ICMP" => 1,
            "IPv6-ICMP" => 58,
            "RSVP" => 46,
            "SCTP" => 132,
            other => panic!("a protocol this capture does not hold: {other}"),
        };
        let ip = |f: &str| v[f].as_str().unwrap().parse::<IpAddr>().unwrap();
        let (sp, dp) = match v.get("icmp_type") {
            Some(t) => {
                let tc = [
                    t.as_u64().unwrap() as u8,
                    v["icmp_code"].as_u64().unwrap() as u8,
                ];
                IcmpMessage::new_checked(&[tc[0], tc[1], 0, 0])
                    .unwrap()
                    .flow_ports(proto == 58)
            }
            None => (
                v["src_port"].as_u64().unwrap_or(0) as u16,
                v["dest_port"].as_u64().unwrap_or(0) as u16,
            ),
        };
        let key = FiveTupleKey::new(
            SocketAddr::new(ip("src_ip"), sp),
            SocketAddr::new(ip("dest_ip"), dp),
            proto,
        )
        .unwrap()
        .canonical()
        .0;
        ids.insert(key, v["community_id"].as_str().unwrap().to_owned());
    }
    // Each frame's flow, by its key, has tshark's ID for that frame: ICMP
    // flows are keyed by type and code as the ID is, so an echo request
    // and its reply, or a neighbour solicitation and its advertisement,
    // are one flow with one ID.
    let mut reader = PcapReader::new(&bytes[..]).expect("header");
    let mut compared = 0;
    let mut i = 0;
    while let Some(view) = reader.next_packet().expect("reads") {
        let want = &expected[i];
        i += 1;
        match FiveTuple::bidirectional().extract(view) {
            Ok(e) => {
                assert_eq!(&ids[&e.key], want, "frame {i}");
                compared += 1;
            }
            Err(_) => assert!(want.is_empty(), "frame {i} has an ID but is in no flow"),
        }
    }
    assert_eq!(i, expected.len());
    // 99 frames have an ID, and every one is compared.
    assert_eq!(compared, 99);
}
