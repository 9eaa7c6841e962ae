//! Offline mode end to end: a capture through the runtime (one worker,
//! flow records only) into EVE JSON lines, whole and truncated.

mod common;

use std::collections::HashSet;

use flowscope::extract::FiveTuple;
use flowscope::pcap::{PcapError, PcapReader};
use flowscope::pipeline::PipelineConfig;
use flowscope::runtime::RunConfig;
use flowscope::tracker::FlowTracker;
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
    let ids: HashSet<u64> = recs
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
    assert_eq!(r["flow"]["start"], "2012-12-01T02:27:50.172701Z");
    assert_eq!(r["flow"]["end"], "2012-12-01T02:27:54.235114Z");
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
    // ICMP records carry no ports (ws__dns+icmp.pcapng has 22 ICMP frames).
    let (recs, result, _) = eve_of(&read("ws__dns+icmp.pcapng"));
    result.expect("complete file");
    let icmp: Vec<_> = recs.iter().filter(|r| r["proto"] == "ICMP").collect();
    assert!(!icmp.is_empty());
    assert!(
        icmp.iter()
            .all(|r| r.get("src_port").is_none() && r.get("tcp").is_none())
    );
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
    assert!(recs.iter().any(|r| r["flow"]["reason"] == "force_closed"));
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
    // Flow ID of each frame, from a tracker of our own: one worker numbers
    // flows as it does.
    let mut reader = PcapReader::new(&bytes[..]).expect("header");
    let mut tracker = FlowTracker::new(FiveTuple::bidirectional());
    let mut frame_flow: Vec<Option<u64>> = Vec::new();
    while let Some(view) = reader.next_packet().expect("reads") {
        let mut flow_of_frame = None;
        tracker.track(view, &mut |e: flowscope::tracker::FlowEvent<'_, _>| {
            if let flowscope::tracker::FlowEvent::Packet { flow, .. } = e {
                flow_of_frame = Some(flow.flow_id);
            }
        });
        frame_flow.push(flow_of_frame);
    }
    // The records' Community IDs, by flow ID.
    let mut ids = std::collections::HashMap::new();
    let (records, result, _) = eve_of(&bytes);
    result.expect("complete file");
    let mut icmp_flows = HashSet::new();
    for v in records {
        let id = v["flow_id"].as_u64().unwrap();
        ids.insert(id, v["community_id"].as_str().unwrap().to_owned());
        if v["proto"] == "ICMP" || v["proto"] == "IPv6-ICMP" {
            icmp_flows.insert(id);
        }
    }
    assert_eq!(frame_flow.len(), expected.len());
    let (mut compared, mut icmp_later) = (0, 0);
    let mut seen = HashSet::new();
    for (i, (flow, want)) in frame_flow.iter().zip(&expected).enumerate() {
        match flow {
            // Known difference: an ICMP flow is keyed by its address pair and
            // gets the ID of its first packet; tshark gives each ICMP packet
            // the ID of its own type/code, so a neighbour solicitation sent
            // the other way in the same flow has another ID. Only the first
            // packet of an ICMP flow is compared.
            Some(id) if icmp_flows.contains(id) && !seen.insert(*id) => icmp_later += 1,
            Some(id) => {
                seen.insert(*id);
                assert_eq!(&ids[id], want, "frame {}", i + 1);
                compared += 1;
            }
            None => assert!(
                want.is_empty(),
                "frame {} has an ID but is in no flow",
                i + 1
            ),
        }
    }
    // 99 frames have an ID; every one is compared unless it is a later ICMP packet.
    assert_eq!(compared + icmp_later, 99);
    assert!(compared > 40, "compared {compared}");
}
