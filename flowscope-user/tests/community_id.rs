//! Community ID of every packet of ws__communityid.pcap against tshark 4.0.17's
//! (expected/wireshark-4.0.17/ws__communityid.communityid.txt: one line per
//! packet, empty when tshark computed none).

use flowscope::community_id::CommunityId;
use flowscope::extract::FiveTuple;
use flowscope::pcap::PcapReader;
use flowscope::{FlowExtractor, L4Proto, Unmatched};

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

#[test]
fn equals_tshark_for_every_packet() {
    let expected = std::fs::read_to_string(format!(
        "{PCAPS}/expected/wireshark-4.0.17/ws__communityid.communityid.txt"
    ))
    .unwrap();
    let expected: Vec<&str> = expected.lines().collect();
    let mut r = PcapReader::open(format!("{PCAPS}/ws__communityid.pcap")).unwrap();
    let ids = CommunityId::default();
    let (mut i, mut checked) = (0, 0);
    while let Some(p) = r.next_packet().unwrap() {
        let want = expected[i];
        match FiveTuple::bidirectional().extract(p) {
            Ok(e) => {
                let icmp = matches!(e.l4, L4Proto::Icmp | L4Proto::IcmpV6).then(|| {
                    let at = e.payload_offset as usize;
                    (p.frame[at], p.frame[at + 1])
                });
                // From the key and orientation (ICMP keys hold the type and
                // counterpart or code), and from the packet's own fields.
                let by_key = ids.for_key(&e.key, e.orientation);
                let k = e.key.oriented(e.orientation);
                let (sp, dp) =
                    icmp.map_or((k.src_port(), k.dst_port()), |(t, c)| (t.into(), c.into()));
                let direct = ids
                    .compute(k.src_ip(), k.dst_ip(), k.protocol(), sp, dp)
                    .unwrap();
                assert_eq!(by_key.as_str(), want, "packet {}", i + 1);
                assert_eq!(direct, by_key);
                checked += 1;
            }
            Err(reason) => {
                assert_eq!(reason, Unmatched::NotIp, "packet {}", i + 1);
                assert_eq!(want, "", "packet {}: tshark has an ID", i + 1);
            }
        }
        i += 1;
    }
    assert_eq!(i, expected.len());
    assert_eq!(checked, 99, "every IP packet (105 minus 6 ARP)");
}
