//! Property tests: no extractor panics on any bytes of any link type, offsets
//! stay inside the frame, and both directions share a bidirectional key.

mod wire_support;

use flowscope::extract::{
    AutoDetectEncap, FiveTuple, FlowLabel, InnerGeneve, InnerGre, InnerGtpU, InnerIpInIp,
    InnerTeredo, InnerVxlan, IpPair, MacPair, StripMpls, StripVlan,
};
use flowscope::{
    Extracted, FlowExtractor, LinkType, Orientation, PacketView, Timestamp, Unmatched,
};
use proptest::prelude::*;
use wire_support::{cat, eth, ipv4, ipv6, tcp, udp};

const LINKS: [LinkType; 5] = LinkType::ALL;

fn check<K>(frame: &[u8], r: Result<Extracted<K>, Unmatched>) {
    if let Ok(e) = r {
        assert!(e.payload_offset as usize + e.payload_len as usize <= frame.len());
    }
}

/// Runs every extractor and combinator on `frame` as `link`.
fn run_all(frame: &[u8], link: LinkType) {
    let v = PacketView::new(frame, Timestamp(0)).with_link(link);
    let ft = FiveTuple::bidirectional();
    check(frame, ft.extract(v));
    check(frame, FiveTuple::directional().extract(v));
    check(frame, IpPair.extract(v));
    check(frame, MacPair.extract(v));
    check(frame, FlowLabel::new(ft).extract(v));
    check(frame, StripVlan::new(ft).extract(v));
    check(frame, StripMpls::new(ft).extract(v));
    check(frame, InnerGre::new(ft).extract(v));
    check(frame, InnerIpInIp::new(ft).extract(v));
    check(frame, InnerVxlan::new(ft).extract(v));
    check(frame, InnerGeneve::new(ft).extract(v));
    check(frame, InnerGtpU::new(ft).extract(v));
    check(frame, InnerTeredo::new(ft).extract(v));
    check(frame, AutoDetectEncap::new(ft).extract(v));
    check(frame, AutoDetectEncap::new(IpPair).extract(v));
}

/// Valid tunnelled frames to mutate, so the fuzzing reaches deep layers.
fn seeds() -> Vec<Vec<u8>> {
    let inner = cat(&[
        &eth(&[], 0x0800),
        &ipv4(6, [1, 1, 1, 1], [2, 2, 2, 2], 0, 0, 20),
        &tcp(1, 2),
    ]);
    let over_udp = |port: u16, hdr: &[u8], body: &[u8]| {
        let len = (hdr.len() + body.len()) as u16;
        cat(&[
            &eth(&[(0x8100, 1)], 0x0800),
            &ipv4(17, [3; 4], [4; 4], 0, 0, 8 + len),
            &udp(9, port, len),
            hdr,
            body,
        ])
    };
    vec![
        over_udp(4789, &[8, 0, 0, 0, 0, 0, 1, 0], &inner),
        over_udp(6081, &[0, 0, 0x65, 0x58, 0, 0, 1, 0], &inner),
        over_udp(
            2152,
            &[0x34, 0xff, 0, 60, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0, 0, 0],
            &inner[14..],
        ),
        over_udp(
            3544,
            &[0, 0, 1, 2, 3, 4, 5, 6],
            &cat(&[&ipv6(17, [5; 16], [6; 16], 8), &udp(1, 2, 0)]),
        ),
        cat(&[
            &eth(&[], 0x0800),
            &ipv4(47, [3; 4], [4; 4], 0, 0, 48),
            &[0xb0, 0, 0x65, 0x58],
            &[0; 12],
            &inner,
        ]),
        cat(&[&eth(&[], 0x8847), &[0, 0, 0x11, 64], &inner[14..]]),
        cat(&[
            &eth(&[], 0x86dd),
            &ipv6(0, [5; 16], [6; 16], 36),
            &[44, 0, 0, 0, 0, 0, 0, 0],
            &[6, 0, 0, 1, 0, 0, 0, 1],
            &tcp(1, 2),
        ]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_panic_on_arbitrary_bytes(frame in proptest::collection::vec(any::<u8>(), 0..160), link in 0usize..5) {
        run_all(&frame, LINKS[link]);
    }

    #[test]
    fn no_panic_on_mutated_tunnels(
        seed in 0usize..7,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut f = seeds()[seed].clone();
        for (at, b) in flips {
            let i = at % f.len();
            f[i] = b;
        }
        f.truncate(cut % (f.len() + 1));
        run_all(&f, LinkType::Ethernet);
    }

    #[test]
    fn bidirectional_key_is_the_same_both_ways(
        a in any::<[u8; 16]>(),
        b in any::<[u8; 16]>(),
        pa in any::<u16>(),
        pb in any::<u16>(),
        v6 in any::<bool>(),
        proto_udp in any::<bool>(),
    ) {
        let frame = |src: [u8; 16], dst: [u8; 16], sp: u16, dp: u16| {
            let l4 = if proto_udp { udp(sp, dp, 0) } else { tcp(sp, dp) };
            let proto = if proto_udp { 17 } else { 6 };
            if v6 {
                cat(&[&eth(&[], 0x86dd), &ipv6(proto, src, dst, l4.len() as u16), &l4])
            } else {
                let s = [src[0], src[1], src[2], src[3]];
                let d = [dst[0], dst[1], dst[2], dst[3]];
                cat(&[&eth(&[], 0x0800), &ipv4(proto, s, d, 0, 0, l4.len() as u16), &l4])
            }
        };
        let ab = frame(a, b, pa, pb);
        let ba = frame(b, a, pb, pa);
        let x = FiveTuple::bidirectional().extract(PacketView::new(&ab, Timestamp(0))).unwrap();
        let y = FiveTuple::bidirectional().extract(PacketView::new(&ba, Timestamp(0))).unwrap();
        prop_assert_eq!(x.key, y.key);
        prop_assert_eq!(x.key.oriented(x.orientation).src_port(), pa);
        prop_assert_eq!(y.key.oriented(y.orientation).src_port(), pb);
        if x.key.src() != x.key.dst() {
            prop_assert_eq!(x.orientation.flip(), y.orientation);
        } else {
            prop_assert_eq!(x.orientation, Orientation::Forward);
        }
        let p = IpPair.extract(PacketView::new(&ab, Timestamp(0))).unwrap();
        let q = IpPair.extract(PacketView::new(&ba, Timestamp(0))).unwrap();
        prop_assert_eq!(p.key, q.key);
    }
}
