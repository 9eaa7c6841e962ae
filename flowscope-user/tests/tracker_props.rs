//! Property tests of the tracker over frames built byte by byte (Ethernet,
//! IPv4, TCP/UDP) and over arbitrary bytes.

use flowscope::extract::FiveTuple;
use flowscope::tracker::{FlowEvent, FlowSide, FlowTracker, NoSink, TrackerConfig};
use flowscope::{LinkType, PacketView, Timestamp};
use proptest::prelude::*;

/// An Ethernet/IPv4 frame from host `a`:`ap` to host `b`:`bp` (10.0.0.x),
/// TCP (with `flags`) or UDP, carrying `payload` zero bytes.
fn frame(a: u8, ap: u16, b: u8, bp: u16, tcp: Option<u8>, payload: usize) -> Vec<u8> {
    let l4_len = if tcp.is_some() { 20 } else { 8 };
    let total = 20 + l4_len + payload;
    let mut f = vec![0u8; 14 + total];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, b]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, a]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = if tcp.is_some() { 6 } else { 17 };
    ip[12..16].copy_from_slice(&[10, 0, 0, a]);
    ip[16..20].copy_from_slice(&[10, 0, 0, b]);
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let l4 = &mut f[34..];
    l4[0..2].copy_from_slice(&ap.to_be_bytes());
    l4[2..4].copy_from_slice(&bp.to_be_bytes());
    match tcp {
        Some(flags) => {
            l4[12] = 5 << 4;
            l4[13] = flags;
            l4[14..16].copy_from_slice(&1000u16.to_be_bytes());
        }
        None => l4[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes()),
    }
    f
}

/// A packet description: endpoints drawn from few hosts and ports so flows repeat.
fn packet() -> impl Strategy<Value = (u8, u16, u8, u16, Option<u8>, usize, u64)> {
    (
        1u8..6,
        prop::sample::select(vec![80u16, 443, 5000]),
        1u8..6,
        prop::sample::select(vec![80u16, 443, 5000]),
        prop::option::of(prop::sample::select(vec![
            0x02u8, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14,
        ])),
        0usize..40,
        0u64..5_000_000_000,
    )
}

proptest! {
    #[test]
    fn both_directions_share_one_flow(
        a in 1u8..250, ap in 1u16..65535, b in 1u8..250, bp in 1u16..65535, tcp in any::<bool>(),
    ) {
        prop_assume!((a, ap) != (b, bp));
        let flags = tcp.then_some(0x18);
        let fwd = frame(a, ap, b, bp, flags, 10);
        let rev = frame(b, bp, a, ap, flags, 20);
        let mut t = FlowTracker::new(FiveTuple::bidirectional());
        let mut sides = Vec::new();
        let mut sink = |e: FlowEvent<'_, _>| {
            if let FlowEvent::Packet { side, .. } = e {
                sides.push(side);
            }
        };
        t.track(PacketView::new(&fwd, Timestamp(1)), &mut sink);
        t.track(PacketView::new(&rev, Timestamp(2)), &mut sink);
        prop_assert_eq!(t.len(), 1);
        prop_assert_eq!(sides, vec![FlowSide::Initiator, FlowSide::Responder]);
        let rec = t.flows().next().expect("one flow");
        prop_assert_eq!(rec.sides[0].bytes, fwd.len() as u64);
        prop_assert_eq!(rec.sides[1].bytes, rev.len() as u64);
    }

    #[test]
    fn counting_invariants_hold(
        pkts in prop::collection::vec(packet(), 1..200),
        cap in 1usize..8,
        batch in any::<bool>(),
    ) {
        let cfg = TrackerConfig {
            max_flows: cap,
            idle_timeout_tcp: std::time::Duration::from_secs(2),
            idle_timeout_udp: std::time::Duration::from_secs(1),
            ..TrackerConfig::default()
        };
        let mut t = FlowTracker::with_config(FiveTuple::bidirectional(), cfg);
        let frames: Vec<(Vec<u8>, u64)> = pkts
            .iter()
            .map(|&(a, ap, b, bp, tcp, len, ts)| (frame(a, ap, b, bp, tcp, len), ts))
            .collect();
        let mut sorted = frames.clone();
        sorted.sort_by_key(|f| f.1);
        let views: Vec<PacketView<'_>> =
            sorted.iter().map(|(f, ts)| PacketView::new(f, Timestamp(*ts))).collect();
        let mut ended_pkts = 0u64;
        let mut sink = |e: FlowEvent<'_, _>| {
            if let FlowEvent::Ended { flow, .. } = e {
                ended_pkts += flow.packets();
            }
        };
        if batch {
            t.track_batch(&views, &mut sink);
        } else {
            for v in &views {
                t.track(*v, &mut sink);
                prop_assert!(t.len() <= cap);
            }
        }
        let c = t.counters().clone();
        prop_assert!(t.len() <= cap);
        prop_assert_eq!(c.created_total(), c.ended_total() + t.len() as u64);
        prop_assert_eq!(c.packets, views.len() as u64);
        prop_assert_eq!(c.packets, c.packets_matched + c.unmatched_total());
        let live_pkts: u64 = t.flows().map(|f| f.packets()).sum();
        t.finish(&mut sink);
        // Every matched packet is in exactly one record.
        prop_assert_eq!(ended_pkts, c.packets_matched);
        prop_assert!(live_pkts <= c.packets_matched);
        prop_assert!(t.is_empty());
        let c = t.counters();
        prop_assert_eq!(c.created_total(), c.ended_total());
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 1..50),
        link in prop::sample::select(vec![
            LinkType::Ethernet, LinkType::RawIp, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Loopback,
        ]),
        orig_extra in 0u32..100,
    ) {
        let mut t = FlowTracker::with_config(
            FiveTuple::bidirectional(),
            TrackerConfig { max_flows: 4, ..TrackerConfig::default() },
        );
        for (i, f) in frames.iter().enumerate() {
            let v = PacketView::new(f, Timestamp(i as u64 * 1_000_000_000))
                .with_link(link)
                .with_orig_len(f.len() as u32 + orig_extra);
            t.track(v, &mut NoSink);
        }
        t.finish(&mut NoSink);
        let c = t.counters();
        prop_assert_eq!(c.packets, c.packets_matched + c.unmatched_total());
        prop_assert_eq!(c.created_total(), c.ended_total());
    }
}
