//! IP fragment reassembly: crafted IPv4/IPv6 fragments, and real captures
//! compared with tshark.

use std::time::Duration;

use flowscope::Timestamp;
use flowscope::pcap::PcapReader;
use flowscope::reassembly::ipfrag::{FragConfig, FragDrop, FragOutcome, FragmentReassembler};
use proptest::prelude::*;

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// An IPv4 fragment, byte by byte: 20-byte header, protocol UDP.
fn v4_fragment(id: u16, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let total = (20 + data.len()) as u16;
    let frag = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    p.extend_from_slice(data);
    p
}

/// An IPv6 fragment: fixed header, a Destination Options header (8 bytes),
/// then the Fragment header (next header UDP).
fn v6_fragment(id: u32, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let plen = (8 + 8 + data.len()) as u16;
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&plen.to_be_bytes());
    p.extend_from_slice(&[60, 64]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    // Destination options: next = Fragment (44), length 0 (8 bytes), PadN.
    p.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    let field = ((offset / 8) as u16) << 3 | u16::from(more);
    p.extend_from_slice(&[17, 0]);
    p.extend_from_slice(&field.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(data);
    p
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// Splits `data` into fragments at multiples of 8 (`cuts` in 8-byte units).
fn split(data: &[u8], cuts: &[usize]) -> Vec<(usize, bool, Vec<u8>)> {
    let mut bounds: Vec<usize> = cuts
        .iter()
        .map(|c| (c * 8).min(data.len()))
        .filter(|&b| b > 0 && b < data.len())
        .collect();
    bounds.extend([0, data.len()]);
    bounds.sort_unstable();
    bounds.dedup();
    bounds
        .windows(2)
        .map(|w| (w[0], w[1] < data.len(), data[w[0]..w[1]].to_vec()))
        .collect()
}

fn checksum_ok(header: &[u8]) -> bool {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

proptest! {
    /// Fragments in any order rebuild the datagram: header fields cleared,
    /// lengths set, checksum valid, payload intact.
    #[test]
    fn v4_any_order(len in 1usize..3000, cuts in prop::collection::vec(0usize..400, 0..12), order in any::<u64>()) {
        let data = payload(len);
        let mut frags = split(&data, &cuts);
        let n = frags.len();
        frags.rotate_left((order % n as u64) as usize);
        if order & 1 == 1 {
            frags.reverse();
        }
        let mut r = FragmentReassembler::new(FragConfig::default());
        let mut done = None;
        for (i, (off, more, d)) in frags.iter().enumerate() {
            match r.push(&v4_fragment(77, *off, *more, d), Timestamp(0)) {
                FragOutcome::Complete(p) => {
                    prop_assert_eq!(i, n - 1);
                    done = Some(p.to_vec());
                }
                FragOutcome::Held => prop_assert!(i < n - 1),
                other => prop_assert!(n == 1 && other == FragOutcome::NotFragment, "{:?}", other),
            }
        }
        if let Some(p) = done {
            prop_assert_eq!(p.len(), 20 + len);
            prop_assert_eq!(u16::from_be_bytes([p[2], p[3]]) as usize, 20 + len);
            prop_assert_eq!(&p[6..8], &[0, 0]);
            prop_assert!(checksum_ok(&p[..20]));
            prop_assert_eq!(&p[20..], &data[..]);
            prop_assert_eq!(r.counters().completed, 1);
        }
        prop_assert_eq!(r.in_progress(), 0);
        prop_assert_eq!(r.memory_bytes(), 0);
    }

    #[test]
    fn v6_any_order(len in 1usize..3000, cuts in prop::collection::vec(0usize..400, 1..12), order in any::<u64>()) {
        let data = payload(len);
        let mut frags = split(&data, &cuts);
        let n = frags.len();
        frags.rotate_left((order % n as u64) as usize);
        let mut r = FragmentReassembler::new(FragConfig::default());
        let mut done = None;
        for (off, more, d) in &frags {
            if let FragOutcome::Complete(p) = r.push(&v6_fragment(0xdead_beef, *off, *more, d), Timestamp(0)) {
                done = Some(p.to_vec());
            }
        }
        if n > 1 {
            let p = done.expect("complete");
            // Fixed header + destination options, Fragment header removed.
            prop_assert_eq!(p.len(), 48 + len);
            prop_assert_eq!(u16::from_be_bytes([p[4], p[5]]) as usize, 8 + len);
            prop_assert_eq!(p[6], 60);
            prop_assert_eq!(p[40], 17);
            prop_assert_eq!(&p[48..], &data[..]);
        }
    }

    /// Arbitrary bytes as IPv4 or IPv6 packets: no panic, memory cap held.
    #[test]
    fn no_panic_on_arbitrary_packets(packets in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..200)), 0..50)) {
        let config = FragConfig { max_memory_bytes: 2000, max_datagrams: 4, ..FragConfig::default() };
        let mut r = FragmentReassembler::new(config);
        for (v6, mut p) in packets {
            if let Some(b) = p.first_mut() {
                *b = (*b & 0x0f) | if v6 { 0x60 } else { 0x40 };
            }
            let _ = r.push(&p, Timestamp(0));
            prop_assert!(r.memory_bytes() <= 2000 + 200);
            prop_assert!(r.in_progress() <= 4);
        }
    }
}

#[test]
fn overlapping_fragments_drop_the_datagram() {
    let data = payload(64);
    let mut r = FragmentReassembler::new(FragConfig::default());
    assert_eq!(
        r.push(&v4_fragment(1, 0, true, &data[..32]), Timestamp(0)),
        FragOutcome::Held
    );
    // Exact duplicate: ignored.
    assert_eq!(
        r.push(&v4_fragment(1, 0, true, &data[..32]), Timestamp(0)),
        FragOutcome::Held
    );
    assert_eq!(r.counters().duplicates, 1);
    // Overlaps bytes 24..32.
    assert_eq!(
        r.push(&v4_fragment(1, 24, false, &data[24..64]), Timestamp(0)),
        FragOutcome::Dropped(FragDrop::Overlap)
    );
    assert_eq!(r.counters().dropped(FragDrop::Overlap), 1);
    assert_eq!(r.in_progress(), 0);
    assert_eq!(r.memory_bytes(), 0);
    // The same on IPv6.
    r.push(&v6_fragment(9, 8, false, &data[8..64]), Timestamp(0));
    assert_eq!(
        r.push(&v6_fragment(9, 0, true, &data[..16]), Timestamp(0)),
        FragOutcome::Dropped(FragDrop::Overlap)
    );
    assert_eq!(r.counters().dropped(FragDrop::Overlap), 2);
    assert_eq!(r.counters().completed, 0);
}

#[test]
fn incomplete_datagrams_time_out_in_packet_time() {
    let data = payload(64);
    let mut r = FragmentReassembler::new(FragConfig::default());
    let t0 = Timestamp::new(100, 0);
    r.push(&v4_fragment(5, 0, true, &data[..32]), t0);
    r.expire(t0.saturating_add(Duration::from_secs(29)));
    assert_eq!(r.in_progress(), 1);
    // The rest arrives 30 s after the first fragment: too late.
    let late = r.push(
        &v4_fragment(5, 32, false, &data[32..]),
        t0.saturating_add(Duration::from_secs(30)),
    );
    assert_eq!(late, FragOutcome::Held);
    assert_eq!(r.counters().dropped(FragDrop::Timeout), 1);
    r.expire_all();
    assert_eq!(r.counters().dropped(FragDrop::Timeout), 2);
    assert_eq!(r.memory_bytes(), 0);
}

#[test]
fn limits_are_counted() {
    let data = payload(64);
    let config = FragConfig {
        max_datagrams: 1,
        ..FragConfig::default()
    };
    let mut r = FragmentReassembler::new(config);
    r.push(&v4_fragment(1, 0, true, &data[..32]), Timestamp(0));
    assert_eq!(
        r.push(&v4_fragment(2, 0, true, &data[..32]), Timestamp(0)),
        FragOutcome::Dropped(FragDrop::TableFull)
    );
    // Past 65 535 bytes.
    assert_eq!(
        r.push(&v4_fragment(1, 65_528, false, &data[..16]), Timestamp(0)),
        FragOutcome::Dropped(FragDrop::TooLarge)
    );
    // A non-final fragment whose length is not a multiple of 8.
    assert_eq!(
        r.push(&v4_fragment(3, 0, true, &data[..13]), Timestamp(0)),
        FragOutcome::Dropped(FragDrop::Malformed)
    );
    let config = FragConfig {
        max_memory_bytes: 100,
        ..FragConfig::default()
    };
    let mut r = FragmentReassembler::new(config);
    assert_eq!(
        r.push(&v4_fragment(1, 0, true, &payload(256)), Timestamp(0)),
        FragOutcome::Dropped(FragDrop::MemoryFull)
    );
}

/// The IP packet inside an Ethernet frame (VLAN tags skipped).
fn ip_of(frame: &[u8]) -> Option<&[u8]> {
    let mut at = 12;
    loop {
        let ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
        match ethertype {
            0x8100 | 0x88a8 => at += 4,
            0x0800 | 0x86dd => return frame.get(at + 2..),
            _ => return None,
        }
    }
}

/// Reassembles every fragment of a capture; returns each completed
/// datagram's IP payload length (IPv4: total length minus header; IPv6:
/// payload length minus extension headers before the Fragment header).
fn reassemble(file: &str) -> (Vec<usize>, FragmentReassembler) {
    let mut reader = PcapReader::open(format!("{PCAPS}/{file}")).expect("open capture");
    let mut r = FragmentReassembler::new(FragConfig::default());
    let mut lengths = Vec::new();
    while let Some(view) = reader.next_packet().expect("read packet") {
        let Some(ip) = ip_of(view.frame) else {
            continue;
        };
        if let FragOutcome::Complete(p) = r.push(ip, view.timestamp) {
            let len = if p[0] >> 4 == 4 {
                usize::from(u16::from_be_bytes([p[2], p[3]])) - usize::from(p[0] & 0x0f) * 4
            } else {
                usize::from(u16::from_be_bytes([p[4], p[5]]))
            };
            assert_eq!(
                p.len(),
                len + if p[0] >> 4 == 4 {
                    usize::from(p[0] & 0x0f) * 4
                } else {
                    40
                }
            );
            lengths.push(len);
        }
    }
    r.expire_all();
    (lengths, r)
}

#[test]
fn zeek_ipv4_fragmented_never_completes() {
    // tshark -r zeek__ipv4_fragmented-3.pcap -T fields -e frame.number -e ip.len
    //   -e ip.flags.mf -e ip.frag_offset -e ip.reassembled.length -e ip.id
    // → 5 frames, all ip.len 1500, MF=1, offsets 0,185,370,555,740 (×8),
    //   id 0x4bc5, no ip.reassembled.length: 0 datagrams reassembled.
    let (lengths, r) = reassemble("zeek__ipv4_fragmented-3.pcap");
    assert!(lengths.is_empty());
    assert_eq!(r.counters().fragments, 5);
    assert_eq!(r.counters().dropped(FragDrop::Timeout), 1);
}

#[test]
fn sanders_ipv6_fragments_match_tshark() {
    // tshark -r sanders__ipv6_fragments.pcapng -T fields -e frame.number
    //   -e ipv6.plen -e ipv6.fraghdr.offset -e ipv6.fraghdr.more
    //   -e ipv6.reassembled.length -e ipv6.fraghdr.ident
    // → 10 datagrams (idents 0xcde00817..1b and 0x03cfed14..18), each in 2
    //   fragments (plen 1456+68 or 1296+228), ipv6.reassembled.length 1508
    //   for every one; frames 21 and 22 are not fragments.
    let (lengths, r) = reassemble("sanders__ipv6_fragments.pcapng");
    assert_eq!(lengths, vec![1508; 10]);
    assert_eq!(r.counters().fragments, 20);
    assert_eq!(r.counters().dropped, [0; 7]);
}

#[test]
fn zeek_ipv6_fragmented_dns_matches_tshark() {
    // tshark -r zeek__ipv6-fragmented-dns.pcap -T fields -e frame.number
    //   -e ipv6.plen -e ipv6.fraghdr.offset -e ipv6.fraghdr.more
    //   -e ipv6.reassembled.length -e ipv6.fraghdr.ident
    // → frame 4: a lone final fragment (ident 1, offset 362, M=0), never
    //   reassembled; frames 6-8 (ident 2, plen 1440, 1440, 382; offsets 0,
    //   179, 358): one datagram, ipv6.reassembled.length 3238.
    let (lengths, r) = reassemble("zeek__ipv6-fragmented-dns.pcap");
    assert_eq!(lengths, vec![3238]);
    assert_eq!(r.counters().fragments, 4);
    assert_eq!(r.counters().dropped(FragDrop::Timeout), 1);
}
