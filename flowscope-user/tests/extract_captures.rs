//! Extractors and decapsulation combinators on real captures: the distinct
//! inner flows and their packet counts equal tshark's (which decodes tunnels),
//! see ../shared/pcaps/expected/oracles/<pcap>/tshark.flows.csv.

use flowscope::extract::{
    AutoDetectEncap, FiveTuple, FiveTupleKey, InnerGeneve, InnerGre, InnerIpInIp, InnerVxlan,
    IpPair, MacPair, StripMpls, StripVlan,
};
use flowscope::pcap::PcapReader;
use flowscope::wire::IcmpMessage;
use flowscope::{FlowExtractor, Orientation, Unmatched};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

type Flows = BTreeMap<FiveTupleKey, u64>;

/// tshark's flows: canonical key → packets in both directions.
fn tshark_flows(pcap: &str) -> Flows {
    let text = std::fs::read_to_string(format!("{PCAPS}/expected/oracles/{pcap}/tshark.flows.csv"))
        .unwrap();
    let mut out = Flows::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = SocketAddr::new(ip(c[1]), c[2].parse().unwrap());
        let b = SocketAddr::new(ip(c[3]), c[4].parse().unwrap());
        let key = FiveTupleKey::new(a, b, c[0].parse().unwrap())
            .unwrap()
            .canonical()
            .0;
        let pkts: u64 = c[7].parse::<u64>().unwrap() + c[9].parse::<u64>().unwrap();
        *out.entry(key).or_default() += pkts;
    }
    out
}

/// `key` with ICMP and ICMPv6 ports zeroed: tshark's conversations key
/// those by address pair only.
fn as_tshark(key: FiveTupleKey) -> FiveTupleKey {
    if !matches!(key.protocol(), 1 | 58) {
        return key;
    }
    FiveTupleKey::new(
        SocketAddr::new(key.src_ip(), 0),
        SocketAddr::new(key.dst_ip(), 0),
        key.protocol(),
    )
    .unwrap()
    .canonical()
    .0
}

/// Runs `ex` over every packet: flows with packet counts, and unmatched
/// reasons. ICMP keys hold the message's type and counterpart or code
/// (checked here against the message) and are counted by address pair, as
/// tshark's conversations count them.
fn run<E: FlowExtractor<Key = FiveTupleKey>>(
    pcap: &str,
    ex: &E,
) -> (Flows, BTreeMap<&'static str, u64>) {
    let mut r = PcapReader::open(format!("{PCAPS}/{pcap}")).unwrap();
    let mut flows = Flows::new();
    let mut unmatched = BTreeMap::new();
    while let Some(p) = r.next_packet().unwrap() {
        match ex.extract(p) {
            Ok(e) => {
                // The key is canonical and the orientation gives the packet's direction back.
                assert_eq!(e.key.canonical(), (e.key, Orientation::Forward));
                assert!(e.payload_offset as usize + e.payload_len as usize <= p.frame.len());
                if matches!(e.key.protocol(), 1 | 58) {
                    let m =
                        IcmpMessage::new_checked(&p.frame[e.payload_offset as usize..]).unwrap();
                    let k = e.key.oriented(e.orientation);
                    assert_eq!(
                        (k.src_port(), k.dst_port()),
                        m.flow_ports(e.key.protocol() == 58)
                    );
                }
                *flows.entry(as_tshark(e.key)).or_default() += 1;
            }
            Err(u) => *unmatched.entry(u.label()).or_default() += 1,
        }
    }
    (flows, unmatched)
}

fn auto() -> AutoDetectEncap<FiveTuple> {
    AutoDetectEncap::new(FiveTuple::bidirectional())
}

#[test]
fn qinq_dhcp() {
    let pcap = "tcpdump__QinQpacket.pcap";
    let (flows, unmatched) = run(pcap, &FiveTuple::bidirectional());
    assert_eq!(flows, tshark_flows(pcap));
    // 105 ARP frames (SOURCES.md protocol column).
    assert_eq!(unmatched, BTreeMap::from([("not_ip", 105)]));
    assert_eq!(run(pcap, &auto()).0, flows);
    let (stripped, _) = run(pcap, &StripVlan::new(FiveTuple::bidirectional()));
    assert_eq!(stripped, flows);
}

#[test]
fn qinq_zeek_vlan_ids() {
    let pcap = "zeek__q-in-q.pcap";
    let (flows, unmatched) = run(pcap, &auto());
    assert_eq!(flows, tshark_flows(pcap));
    assert_eq!(unmatched, BTreeMap::from([("not_ip", 1)]), "one ARP frame");
    // Every frame is double-tagged: both IDs are reported, outer first.
    let mut r = PcapReader::open(format!("{PCAPS}/{pcap}")).unwrap();
    while let Some(p) = r.next_packet().unwrap() {
        if let Ok(e) = FiveTuple::bidirectional().extract(p) {
            assert!(e.vlan[0] != 0 && e.vlan[1] != 0, "{:?}", e.vlan);
        }
    }
}

#[test]
fn mixed_vlan_and_mpls() {
    let pcap = "zeek__mixed-vlan-mpls.pcap";
    let (flows, unmatched) = run(pcap, &auto());
    assert_eq!(flows, tshark_flows(pcap));
    assert!(unmatched.is_empty(), "{unmatched:?}");
    // StripMpls keeps only the 11 MPLS frames (SOURCES.md: mpls:11).
    let (mpls, rest) = run(pcap, &StripMpls::new(FiveTuple::bidirectional()));
    assert_eq!(mpls.values().sum::<u64>(), 11);
    assert_eq!(rest, BTreeMap::from([("bad_encap", 36)]));
}

#[test]
fn vxlan_icmp_and_arp() {
    let pcap = "tcpdump__vxlan.pcap";
    let (flows, unmatched) = run(pcap, &auto());
    // tshark keys the two VXLAN frames carrying ARP by their outer UDP header
    // (the innermost transport header); AutoDetectEncap falls back to the
    // outer flow when the inner packet is not IP, so both agree.
    assert_eq!(flows, tshark_flows(pcap));
    assert!(unmatched.is_empty());
    let (inner, rest) = run(pcap, &InnerVxlan::new(FiveTuple::bidirectional()));
    assert_eq!(inner.values().sum::<u64>(), 8, "the 8 inner ICMP frames");
    assert_eq!(rest, BTreeMap::from([("not_ip", 2)]), "inner ARP");
}

#[test]
fn vxlan_http() {
    let pcap = "zeek__tunnels_vxlan-encapsulated-http.pcap";
    let want = tshark_flows(pcap);
    assert_eq!(run(pcap, &auto()).0, want);
    assert_eq!(
        run(pcap, &InnerVxlan::new(FiveTuple::bidirectional())).0,
        want
    );
}

#[test]
fn geneve() {
    let pcap = "tcpdump__geneve.pcap";
    let want = tshark_flows(pcap);
    assert_eq!(run(pcap, &auto()).0, want);
    assert_eq!(
        run(pcap, &InnerGeneve::new(FiveTuple::bidirectional())).0,
        want
    );
}

#[test]
fn gre() {
    let pcap = "zeek__tunnels_gre-sample.pcap";
    let want = tshark_flows(pcap);
    assert_eq!(run(pcap, &auto()).0, want);
    assert_eq!(
        run(pcap, &InnerGre::new(FiveTuple::bidirectional())).0,
        want
    );
}

#[test]
fn six_in_four() {
    let pcap = "ndpi__6in4tunnel.pcap";
    let want = tshark_flows(pcap);
    assert_eq!(want.len(), 10, "SOURCES.md: 10 inner flows");
    assert_eq!(run(pcap, &auto()).0, want);
    assert_eq!(
        run(pcap, &InnerIpInIp::new(FiveTuple::bidirectional())).0,
        want
    );
    // Without decapsulation: one outer flow, IPv4 protocol 41.
    let (outer, _) = run(pcap, &FiveTuple::bidirectional());
    assert_eq!(outer.len(), 1);
    assert_eq!(outer.keys().next().unwrap().protocol(), 41);
}

#[test]
fn plain_captures_need_no_decapsulation() {
    // All six oracles agree on this capture (expected/oracles/README.md).
    let pcap = "ndpi__android.pcap";
    let want = tshark_flows(pcap);
    let (flows, unmatched) = run(pcap, &FiveTuple::bidirectional());
    assert_eq!(flows, want);
    assert_eq!(run(pcap, &auto()).0, want);
    // SOURCES.md: 500 frames, of which ip:466 + ipv6:9 are IP; the other 25
    // (19 ARP and 6 other non-IP frames) belong to no 5-tuple.
    assert_eq!(unmatched, BTreeMap::from([("not_ip", 500 - 466 - 9)]));
}

#[test]
fn raw_ip_and_loopback_link_types() {
    for pcap in [
        "ws__tcp-badsegments.pcap",
        "ws__tls-fragmented-handshakes.pcap",
    ] {
        assert_eq!(
            run(pcap, &FiveTuple::bidirectional()).0,
            tshark_flows(pcap),
            "{pcap}"
        );
    }
    // Ethernet and BSD-loopback interfaces in one pcapng file.
    let pcap = "ws__many_interfaces.1.pcapng";
    assert_eq!(run(pcap, &FiveTuple::bidirectional()).0, tshark_flows(pcap));
}

#[test]
fn fragments() {
    // 93 first fragments (MF=1, offset 0) of DNS datagrams: keyed with their
    // ports, fragment info filled.
    let mut r = PcapReader::open(format!("{PCAPS}/ndpi__badpackets.pcap")).unwrap();
    let mut n = 0;
    while let Some(p) = r.next_packet().unwrap() {
        let e = FiveTuple::bidirectional().extract(p).unwrap();
        let f = e.fragment.expect("first fragment");
        assert!(f.more && f.offset == 0);
        assert!(e.key.either_port(53));
        n += 1;
    }
    assert_eq!(n, 93);
    // zeek's ipv4_fragmented-3: 5 fragments; the non-first ones are left to
    // reassembly, IpPair takes them all.
    let mut r = PcapReader::open(format!("{PCAPS}/zeek__ipv4_fragmented-3.pcap")).unwrap();
    let (mut first, mut nonfirst, mut pairs) = (0, 0, 0);
    while let Some(p) = r.next_packet().unwrap() {
        match FiveTuple::bidirectional().extract(p) {
            Ok(e) => {
                assert_eq!(e.fragment.unwrap().offset, 0);
                first += 1;
            }
            Err(Unmatched::Fragment) => nonfirst += 1,
            Err(other) => panic!("{other:?}"),
        }
        let e = IpPair.extract(p).unwrap();
        assert!(e.fragment.is_some());
        pairs += 1;
    }
    assert_eq!((first + nonfirst, pairs), (5, 5));
    assert!(first >= 1 && nonfirst >= 1);
}

#[test]
fn mac_pair_counts_arp_too() {
    let mut r = PcapReader::open(format!("{PCAPS}/tcpdump__QinQpacket.pcap")).unwrap();
    let mut n = 0;
    while let Some(p) = r.next_packet().unwrap() {
        MacPair.extract(p).unwrap();
        n += 1;
    }
    assert_eq!(n, 249);
}
