//! Extraction with a [`FrameHint`]: the same result as the walk, read at the
//! hinted offsets.

use flowscope_common::XdpMeta;
use flowscope_common::frame::*;
use flowscope_common::meta::*;

use crate::extract::FiveTuple;
use crate::extract::test_frames::{eth, ext, ipv4, ipv6, tcp, udp};
use crate::extractor::{FlowExtractor, L4Proto};
use crate::view::FrameHint;
use crate::view::{PacketView, Timestamp};

const V4: u16 = ETH_P_IPV4;
const V6: u16 = ETH_P_IPV6;
const Q: u16 = ETH_P_8021Q;
const AD: u16 = ETH_P_8021AD;

fn frames() -> Vec<Vec<u8>> {
    let hbh_rt_dst = [ext(43, 0), ext(60, 1), ext(6, 0), tcp()].concat();
    vec![
        [eth(&[], V4), ipv4(6, &[], 0x4000, &tcp())].concat(),
        [eth(&[(Q, 0x2005)], V4), ipv4(6, &[], 0, &tcp())].concat(),
        [eth(&[(AD, 100), (Q, 0xf00f)], V4), ipv4(17, &[], 0, &udp())].concat(),
        [eth(&[(Q, 7)], V4), ipv4(6, &[1, 1, 1, 0], 0, &tcp())].concat(),
        [eth(&[(Q, 7)], V4), ipv4(17, &[], 0x2000, &udp())].concat(),
        [eth(&[(Q, 7)], V4), ipv4(17, &[], 0x0010, &udp())].concat(),
        [
            eth(&[(Q, 7)], V4),
            ipv4(1, &[], 0, &[8, 0, 0, 0, 0, 1, 0, 1]),
        ]
        .concat(),
        [eth(&[(Q, 9)], V6), ipv6(0, &hbh_rt_dst)].concat(),
        [
            eth(&[(AD, 1), (Q, 2)], V6),
            ipv6(60, &[ext(17, 2), udp()].concat()),
        ]
        .concat(),
        [eth(&[], V6), ipv6(0, &[ext(6, 0), tcp()].concat())].concat(),
        [
            eth(&[], V6),
            ipv6(44, &[vec![6, 0, 0, 1, 0, 0, 0, 5], tcp()].concat()),
        ]
        .concat(),
        [eth(&[(Q, 3)], V6), ipv6(17, &udp())].concat(),
        [eth(&[(Q, 1), (Q, 2), (Q, 3)], V4), ipv4(6, &[], 0, &tcp())].concat(),
        [
            eth(&[(Q, 1)], 0x8847),
            vec![0, 0, 1, 64],
            ipv4(6, &[], 0, &tcp()),
        ]
        .concat(),
        [eth(&[], 0x0806), vec![0; 28]].concat(),
    ]
}

/// The hinted extraction of `frame` (hint from the userspace twin of the
/// XDP parser), checked against the plain one; whether a hint applied.
fn check(frame: &[u8]) -> (bool, bool) {
    let meta = crate::wire::classify(frame, 7);
    let Some(hint) = FrameHint::from_meta(&meta, frame.len()) else {
        return (false, false);
    };
    let view = PacketView::new(frame, Timestamp(1));
    for x in [FiveTuple::bidirectional(), FiveTuple::directional()] {
        assert_eq!(
            x.extract(view.with_hint(Some(hint))),
            x.extract(view),
            "frame {frame:02x?}, {hint:?}"
        );
    }
    let link = hint.link(frame);
    (link.is_some(), link.is_some_and(|l| l.upper.is_some()))
}

#[test]
fn hinted_extraction_equals_the_walk_on_mutated_frames() {
    let (mut linked, mut upper) = (0, 0);
    for base in frames() {
        for n in 0..=base.len() {
            check(&base[..n]);
        }
        for i in 12..base.len() {
            for v in [
                0x00, 0x06, 0x11, 0x2c, 0x3b, 0x45, 0x46, 0x60, 0x81, 0x86, 0xff,
            ] {
                let mut f = base.clone();
                f[i] = v;
                let (l, u) = check(&f);
                linked += usize::from(l);
                upper += usize::from(u);
            }
        }
    }
    // The hinted reads ran, not only the fallback.
    assert!(
        linked > 1000 && upper > 100,
        "{linked} linked, {upper} upper"
    );
}

/// A frame and metadata written by hand: VLAN 5, IPv6, a hop-by-hop
/// header of 16 bytes, TCP.
fn tagged_v6() -> (Vec<u8>, XdpMeta) {
    let f = [eth(&[(Q, 5)], V6), ipv6(0, &[ext(6, 1), tcp()].concat())].concat();
    let meta = XdpMeta {
        magic: META_MAGIC,
        version: META_VERSION,
        flags: FLAG_L4_VALID,
        l3: L3Class::Ipv6 as u8,
        l4: 1,
        ip_proto: 6,
        vlan_count: 1,
        l3_offset: 18,
        l4_offset: 18 + 40 + 16,
        frame_len: f.len() as u16,
        ..XdpMeta::default()
    };
    (f, meta)
}

#[test]
fn hand_written_metadata_is_read_at_its_offsets() {
    let (f, meta) = tagged_v6();
    let hint = FrameHint::from_meta(&meta, f.len()).expect("a valid hint");
    let link = hint.link(&f).expect("the frame matches the hint");
    assert_eq!(
        (link.l3_offset, link.ethertype, link.vlan, link.upper),
        (18, V6, [5, 0], Some((6, 74)))
    );
    let (ip, l4) = super::parse::ip_fast(&f, 18, V6, link.upper)
        .expect("the fixed-offset read takes the hinted chain");
    assert_eq!((ip.l4_offset, l4.src_port, l4.dst_port), (74, 1234, 80));
    let e = FiveTuple::directional()
        .extract(PacketView::new(&f, Timestamp(1)).with_hint(Some(hint)))
        .unwrap();
    assert_eq!(
        (e.key.src_port(), e.key.dst_port(), e.l4, e.vlan),
        (1234, 80, L4Proto::Tcp, [5, 0])
    );
    assert_eq!(
        (e.payload_offset, e.payload_len, e.ip_len),
        (74 + 20, 3, 40 + 16 + 23)
    );
}

#[test]
fn metadata_that_does_not_fit_the_frame_gives_no_hint() {
    let (f, meta) = tagged_v6();
    let bad = [
        XdpMeta { magic: 0, ..meta },
        XdpMeta { version: 1, ..meta },
        XdpMeta {
            frame_len: meta.frame_len - 1,
            ..meta
        },
        XdpMeta {
            flags: FLAG_ERR_L2,
            ..meta
        },
        XdpMeta {
            l3: L3Class::Other as u8,
            ..meta
        },
        XdpMeta {
            vlan_count: 3,
            l3_offset: 26,
            ..meta
        },
        XdpMeta {
            l3_offset: 14,
            ..meta
        },
    ];
    for m in bad {
        assert_eq!(FrameHint::from_meta(&m, f.len()), None, "{m:?}");
    }
    // Valid blocks that describe another frame: the link check refuses them.
    let other = [
        XdpMeta {
            vlan_count: 0,
            l3_offset: 14,
            ..meta
        },
        XdpMeta {
            vlan_count: 2,
            l3_offset: 22,
            ..meta
        },
        XdpMeta {
            l3: L3Class::Ipv4 as u8,
            ..meta
        },
    ];
    for m in other {
        let hint = FrameHint::from_meta(&m, f.len()).expect("valid on its own");
        assert!(hint.link(&f).is_none(), "{m:?}");
        let view = PacketView::new(&f, Timestamp(1));
        let x = FiveTuple::bidirectional();
        assert_eq!(x.extract(view.with_hint(Some(hint))), x.extract(view));
    }
    // A hint is for one frame length only (an inner, decapsulated frame
    // never inherits it).
    let hint = FrameHint::from_meta(&meta, f.len()).unwrap();
    assert!(hint.link(&f[..f.len() - 1]).is_none());
}
