//! The capture reader's steering on every frame of every shared capture:
//!
//! - a frame's own steering hash (`flowscope::extract::steer_hash`) is
//!   equal to the XDP program's twin (`flowscope::wire::classify`, which
//!   the kernel tests hold to the program) on the frame as an Ethernet
//!   frame: as it is, or with the file's link header replaced by a
//!   synthetic Ethernet header built here (raw IP, Linux SLL/SLL2, BSD
//!   loopback); `kernel_anomaly_pcaps` compares the reader's steering with
//!   the program itself;
//! - the steering with the fragment table (`flowscope::extract::Steering`,
//!   fed the file in order as the reader feeds it) is the same for every
//!   packet of a flow, with and without looking through tunnels, so a flow
//!   never spans two workers.

mod common;

use std::collections::HashMap;

use flowscope::extract::{AutoDetectEncap, FiveTuple, FiveTupleKey};
use flowscope::extract::{Steering, steer_hash};
use flowscope::extractor::FlowExtractor;
use flowscope::pcap::PcapReader;
use flowscope::tracker::{FlowEvent, FlowTracker};
use flowscope::view::LinkType;
use flowscope::wire::classify;

const SEED: u32 = 0x5eed;

/// `frame` as the Ethernet frame an XDP program would see: the IP packet
/// after the file's link header, behind a 14-byte header (zero MACs,
/// EtherType of the IP version). `None` for frames with no IP packet where
/// this looks.
fn as_ethernet(frame: &[u8], link: LinkType) -> Option<Vec<u8>> {
    let (ip, ethertype) = match link {
        LinkType::Ethernet => return Some(frame.to_vec()),
        LinkType::RawIp => (frame, None),
        // Protocol at bytes 14..16 of the 16-byte header.
        LinkType::LinuxSll => (frame.get(16..)?, Some([*frame.get(14)?, *frame.get(15)?])),
        // Protocol at bytes 0..2 of the 20-byte header.
        LinkType::LinuxSll2 => (frame.get(20..)?, Some([frame[0], frame[1]])),
        LinkType::Loopback => (frame.get(4..)?, None),
    };
    let ethertype = ethertype.unwrap_or(match ip.first()? >> 4 {
        4 => [0x08, 0x00],
        6 => [0x86, 0xdd],
        _ => return None,
    });
    let mut out = vec![0; 12];
    out.extend_from_slice(&ethertype);
    out.extend_from_slice(ip);
    Some(out)
}

#[test]
fn equal_to_the_xdp_program_on_every_frame() {
    let mut compared = 0u64;
    for path in common::shared_captures() {
        let mut reader = PcapReader::open(&path).expect("open");
        let mut frame_no = 0;
        while let Some(p) = reader.next_packet().expect("read") {
            frame_no += 1;
            let ours = steer_hash(p.frame, p.link, SEED);
            match as_ethernet(p.frame, p.link) {
                Some(eth) => {
                    assert_eq!(
                        ours,
                        classify(&eth, SEED).steer_hash,
                        "{} frame {frame_no}",
                        path.display()
                    );
                    compared += 1;
                }
                None => assert_eq!(ours, 0, "{} frame {frame_no}: no IP", path.display()),
            }
        }
    }
    assert!(compared > 100_000, "{compared} frames compared");
}

/// Steering value of every packet, by flow ID, for one extractor.
fn one_value_per_flow<E: FlowExtractor<Key = FiveTupleKey>>(extractor: impl Fn() -> E, what: &str) {
    for path in common::shared_captures() {
        let mut reader = PcapReader::open(&path).expect("open");
        let mut tracker = FlowTracker::new(extractor());
        let mut by_flow: HashMap<u64, u32> = HashMap::new();
        let mut steering = Steering::new(SEED);
        while let Some(p) = reader.next_packet().expect("read") {
            let steer = steering.steer(p.frame, p.link);
            tracker.track(p, &mut |e: FlowEvent<'_, FiveTupleKey>| {
                if let FlowEvent::Packet { flow, .. } = e {
                    let first = *by_flow.entry(flow.flow_id).or_insert(steer);
                    assert_eq!(
                        first,
                        steer,
                        "{} ({what}): flow {} would span two workers",
                        path.display(),
                        flow.flow_id
                    );
                }
            });
        }
    }
}

#[test]
fn every_packet_of_a_flow_steers_alike() {
    one_value_per_flow(FiveTuple::bidirectional, "outer packets");
    one_value_per_flow(
        || AutoDetectEncap::new(FiveTuple::bidirectional()),
        "--decap",
    );
}

/// The connections of one address pair (127.0.0.1 to itself in Zeek's echo
/// capture, as in a busy host pair) spread over the workers: each of two
/// gets at least a quarter of them.
#[test]
fn the_flows_of_one_address_pair_spread_over_the_workers() {
    let path = std::path::Path::new(common::filters::PCAPS).join("zeek__echo-connections.pcap");
    let mut reader = PcapReader::open(path).expect("open");
    let mut tracker = FlowTracker::new(FiveTuple::bidirectional());
    let mut steering = Steering::new(SEED);
    let mut pairs = std::collections::HashSet::new();
    let mut per_worker: HashMap<u64, usize> = HashMap::new();
    while let Some(p) = reader.next_packet().expect("read") {
        let worker = flowscope_common::hash::xsk_slot(0, 2, steering.steer(p.frame, p.link));
        tracker.track(p, &mut |e: FlowEvent<'_, FiveTupleKey>| {
            if let FlowEvent::Started { flow, .. } = e {
                pairs.insert((flow.key.src_ip(), flow.key.dst_ip()));
                *per_worker.entry(u64::from(worker)).or_default() += 1;
            }
        });
    }
    let flows: usize = per_worker.values().sum();
    assert_eq!(pairs.len(), 1, "one address pair: {pairs:?}");
    assert!(flows >= 20, "{flows} flows");
    for w in 0..2 {
        let n = per_worker.get(&w).copied().unwrap_or(0);
        assert!(n * 4 >= flows, "worker {w}: {n} of {flows} flows");
    }
}

/// Later fragments steered without their first, counted by the reader's
/// table, against tshark's reading of every fragmented capture: the
/// non-first fragments (IPv4 and IPv6, defragmentation off) whose
/// datagram (addresses, identification) showed no first fragment before
/// them. The table holds 1024 datagrams, more than these files keep open.
#[test]
fn fragments_without_their_first_are_counted() {
    let no_defrag = ["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"];
    let mut total = 0;
    for path in common::shared_captures() {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let rows = common::tshark_fields(
            &name,
            &no_defrag,
            "ip.flags.mf == 1 || ip.frag_offset > 0 || ipv6.fraghdr",
            &[
                "ip.src",
                "ip.dst",
                "ip.id",
                "ip.frag_offset",
                "ipv6.src",
                "ipv6.dst",
                "ipv6.fraghdr.ident",
                "ipv6.fraghdr.offset",
            ],
        );
        let mut firsts = std::collections::HashSet::new();
        let mut want = 0u64;
        for r in &rows {
            // The outer header's fields come first in each column.
            let first = |i: usize| r[i].split(',').next().unwrap_or("").to_owned();
            let (key, offset) = if !first(0).is_empty() {
                ((first(0), first(1), first(2)), first(3))
            } else {
                ((first(4), first(5), first(6)), first(7))
            };
            if offset.parse::<u64>().unwrap_or(0) == 0 {
                firsts.insert(key);
            } else if !firsts.contains(&key) {
                want += 1;
            }
        }
        let mut reader = PcapReader::open(&path).expect("open");
        let mut steering = Steering::new(SEED);
        while let Some(p) = reader.next_packet().expect("read") {
            steering.steer(p.frame, p.link);
        }
        assert_eq!(steering.unsteered(), want, "{name}");
        total += want;
    }
    assert!(total > 0, "some capture has a fragment before its first");
}
