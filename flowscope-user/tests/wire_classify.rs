//! `wire::classify` against the written rules of `flowscope_common::frame`,
//! on frames built byte by byte.

use flowscope::anomaly;
use flowscope::wire;
use flowscope_common::XdpMeta;
use flowscope_common::frame::{L3Class, L4Class};
use flowscope_common::hash::{flow_hash, pair_hash};
use flowscope_common::meta::{
    FLAG_ERR_L2, FLAG_ERR_L3, FLAG_ERR_L4, FLAG_FRAGMENT, FLAG_L4_VALID, FLAG_NONFIRST_FRAGMENT,
    META_MAGIC, META_VERSION,
};

mod wire_support;

use wire_support::{A4, A6, B4, B6, cat, eth, ipv4, ipv6, tcp, udp};

const SEED: u32 = 0x5eed_1234;

/// `wire::classify` with the anomaly mask checked against `anomaly::detect`
/// (tested on its own by its owner) and then cleared, so the expectations
/// below cover the parse rules of `frame.rs` only.
fn classify(frame: &[u8], seed: u32) -> XdpMeta {
    let m = wire::classify(frame, seed);
    assert_eq!(m.anomalies, anomaly::detect(frame));
    XdpMeta { anomalies: 0, ..m }
}

fn w4(a: [u8; 4]) -> [u32; 4] {
    [u32::from_le_bytes(a), 0, 0, 0]
}

fn w6(a: [u8; 16]) -> [u32; 4] {
    let w = |i: usize| u32::from_le_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    [w(0), w(4), w(8), w(12)]
}

/// The metadata every frame starts with.
fn base(frame: &[u8]) -> XdpMeta {
    XdpMeta {
        magic: META_MAGIC,
        version: META_VERSION,
        frame_len: frame.len() as u16,
        ..XdpMeta::default()
    }
}

/// Expected metadata of a parsed IP frame, `ports` those of its L4 header:
/// the flow hash takes them outside fragments, the steering hash takes
/// them except for UDP on a tunnel port (rule 5).
#[allow(clippy::too_many_arguments)]
fn ip_meta(
    frame: &[u8],
    l3: L3Class,
    proto: u8,
    (src, dst): ([u32; 4], [u32; 4]),
    ports: (u16, u16),
    flags: u8,
    vlan_count: u8,
    (l3_offset, l4_offset): (u16, u16),
) -> XdpMeta {
    XdpMeta {
        flags,
        l3: l3 as u8,
        l4: L4Class::from_ip_proto(proto) as u8,
        ip_proto: proto,
        vlan_count,
        l3_offset,
        l4_offset,
        flow_hash: if flags & FLAG_FRAGMENT != 0 {
            pair_hash(SEED, &src, &dst, proto)
        } else {
            flow_hash(SEED, &src, ports.0, &dst, ports.1, proto)
        },
        steer_hash: if proto == 17 && [ports.0, ports.1].iter().any(|p| TUNNEL_PORTS.contains(p)) {
            pair_hash(SEED, &src, &dst, proto)
        } else {
            flow_hash(SEED, &src, ports.0, &dst, ports.1, proto)
        },
        ..base(frame)
    }
}

/// VXLAN, Geneve, GTP-U and Teredo, from their specifications.
const TUNNEL_PORTS: [u16; 4] = [4789, 6081, 2152, 3544];

#[test]
fn helper_builds_tags_in_order() {
    let f = eth(&[(0x88a8, 10), (0x8100, 20)], 0x0800);
    assert_eq!(f[12..], [0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, 0x08, 0x00]);
    assert_eq!(eth(&[], 0x86dd)[12..], [0x86, 0xdd]);
}

#[test]
fn ipv4_tcp_plain() {
    let f = cat(&[
        &eth(&[], 0x0800),
        &ipv4(6, A4, B4, 0x4000, 0, 20),
        &tcp(1234, 80),
    ]);
    let want = ip_meta(
        &f,
        L3Class::Ipv4,
        6,
        (w4(A4), w4(B4)),
        (1234, 80),
        FLAG_L4_VALID,
        0,
        (14, 34),
    );
    assert_eq!(classify(&f, SEED), want);
}

#[test]
fn udp_on_a_tunnel_port_steers_by_the_address_pair() {
    for port in TUNNEL_PORTS {
        for ports in [(50000, port), (port, 50000)] {
            let f = cat(&[
                &eth(&[], 0x0800),
                &ipv4(17, A4, B4, 0, 0, 8),
                &udp(ports.0, ports.1, 0),
            ]);
            let m = classify(&f, SEED);
            let want = ip_meta(
                &f,
                L3Class::Ipv4,
                17,
                (w4(A4), w4(B4)),
                ports,
                FLAG_L4_VALID,
                0,
                (14, 34),
            );
            assert_eq!(m, want, "{ports:?}");
            assert_eq!(m.steer_hash, pair_hash(SEED, &w4(A4), &w4(B4), 17));
            assert_ne!(m.flow_hash, m.steer_hash, "the flow keeps its ports");
        }
    }
    // Not for TCP on those ports, nor for UDP on others.
    let tcp_f = cat(&[
        &eth(&[], 0x0800),
        &ipv4(6, A4, B4, 0, 0, 20),
        &tcp(50000, 4789),
    ]);
    let m = classify(&tcp_f, SEED);
    assert_eq!(m.steer_hash, m.flow_hash);
    let udp_f = cat(&[
        &eth(&[], 0x0800),
        &ipv4(17, A4, B4, 0, 0, 8),
        &udp(50000, 4790, 0),
    ]);
    let m = classify(&udp_f, SEED);
    assert_eq!(m.steer_hash, m.flow_hash);
}

#[test]
fn truncated_at_every_byte_of_a_tagged_ipv4_tcp_frame() {
    let f = cat(&[
        &eth(&[(0x8100, 7)], 0x0800),
        &ipv4(6, A4, B4, 0, 1, 20),
        &tcp(40000, 443),
    ]);
    assert_eq!(f.len(), 18 + 24 + 20);
    for cut in 0..=f.len() {
        let g = &f[..cut];
        let got = classify(g, SEED);
        let want = match cut {
            0..18 => XdpMeta {
                flags: FLAG_ERR_L2,
                vlan_count: u8::from(cut >= 18),
                ..base(g)
            },
            18..42 => XdpMeta {
                flags: FLAG_ERR_L3,
                l3: L3Class::Ipv4 as u8,
                vlan_count: 1,
                l3_offset: 18,
                ..base(g)
            },
            42..62 => ip_meta(
                g,
                L3Class::Ipv4,
                6,
                (w4(A4), w4(B4)),
                (0, 0),
                FLAG_ERR_L4,
                1,
                (18, 0),
            ),
            _ => ip_meta(
                g,
                L3Class::Ipv4,
                6,
                (w4(A4), w4(B4)),
                (40000, 443),
                FLAG_L4_VALID,
                1,
                (18, 42),
            ),
        };
        assert_eq!(got, want, "cut at {cut}");
    }
}

#[test]
fn vlan_qinq_and_a_third_tag() {
    let ip = cat(&[&ipv4(17, A4, B4, 0, 0, 8), &udp(53, 5353, 0)]);
    for (tags, off) in [
        (vec![(0x8100, 1)], 18u16),
        (vec![(0x88a8, 100), (0x8100, 200)], 22),
    ] {
        let f = cat(&[&eth(&tags, 0x0800), &ip]);
        let n = tags.len() as u8;
        let want = ip_meta(
            &f,
            L3Class::Ipv4,
            17,
            (w4(A4), w4(B4)),
            (53, 5353),
            FLAG_L4_VALID,
            n,
            (off, off + 20),
        );
        assert_eq!(classify(&f, SEED), want, "{tags:?}");
    }
    // Rule 1: a third tag leaves the frame unparsed as L3 Other.
    let f = cat(&[&eth(&[(0x88a8, 1), (0x8100, 2), (0x8100, 3)], 0x0800), &ip]);
    assert_eq!(
        classify(&f, SEED),
        XdpMeta {
            vlan_count: 2,
            l3_offset: 22,
            ..base(&f)
        }
    );
    // Truncated second tag.
    let f = eth(&[(0x88a8, 1), (0x8100, 2)], 0x0800);
    assert_eq!(
        classify(&f[..21], SEED),
        XdpMeta {
            flags: FLAG_ERR_L2,
            vlan_count: 1,
            ..base(&f[..21])
        }
    );
}

#[test]
fn non_ip_frames() {
    let mut f = eth(&[], 0x0806);
    f.extend_from_slice(&[0; 28]);
    assert_eq!(
        classify(&f, SEED),
        XdpMeta {
            l3_offset: 14,
            ..base(&f)
        }
    );
}

#[test]
fn ipv4_header_rules() {
    let l4 = tcp(1, 2);
    let ok = cat(&[&eth(&[], 0x0800), &ipv4(6, A4, B4, 0, 2, 20), &l4]);
    assert_eq!(classify(&ok, SEED).l4_offset, 14 + 28);
    let err_l3 = |f: &[u8]| XdpMeta {
        flags: FLAG_ERR_L3,
        l3: L3Class::Ipv4 as u8,
        l3_offset: 14,
        ..base(f)
    };
    // Version 6 in an IPv4 EtherType, IHL 4, total length below IHL·4.
    let mut bad = ok.clone();
    bad[14] = 0x65;
    assert_eq!(classify(&bad, SEED), err_l3(&bad));
    let mut bad = ok.clone();
    bad[14] = 0x44;
    assert_eq!(classify(&bad, SEED), err_l3(&bad));
    let mut bad = ok.clone();
    bad[16..18].copy_from_slice(&27u16.to_be_bytes());
    assert_eq!(classify(&bad, SEED), err_l3(&bad));
    // Total length beyond the frame is not an error.
    let mut long = ok.clone();
    long[16..18].copy_from_slice(&1500u16.to_be_bytes());
    assert_eq!(classify(&long, SEED), classify(&ok, SEED));
}

#[test]
fn ipv4_fragments_first_and_non_first() {
    let first = cat(&[
        &eth(&[], 0x0800),
        &ipv4(17, A4, B4, 0x2000, 0, 8),
        &udp(5000, 53, 0),
    ]);
    let want = ip_meta(
        &first,
        L3Class::Ipv4,
        17,
        (w4(A4), w4(B4)),
        (5000, 53), // rule 5: in the steering hash, not in the flow hash
        FLAG_FRAGMENT | FLAG_L4_VALID,
        0,
        (14, 34),
    );
    assert_eq!(classify(&first, SEED), want);
    // Offset 185·8 = 1480, MF clear: the last fragment, no L4 parse even with bytes present.
    let later = cat(&[&eth(&[], 0x0800), &ipv4(17, A4, B4, 185, 0, 3), &[1, 2, 3]]);
    let flags = FLAG_FRAGMENT | FLAG_NONFIRST_FRAGMENT;
    let want = ip_meta(
        &later,
        L3Class::Ipv4,
        17,
        (w4(A4), w4(B4)),
        (0, 0),
        flags,
        0,
        (14, 0),
    );
    assert_eq!(classify(&later, SEED), want);
    // The later fragment's own steering hash is the address pair's; the
    // fragment table (`extract::Steering`) gives it the first's.
    assert_ne!(
        classify(&first, SEED).steer_hash,
        classify(&later, SEED).steer_hash
    );
    assert_eq!(
        classify(&first, SEED).flow_hash,
        classify(&later, SEED).flow_hash
    );
}

#[test]
fn ipv6_extension_chains() {
    let hbh = [60u8, 0, 1, 4, 0, 0, 0, 0]; // → dstopts
    let dst = [17u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // 16 bytes → UDP
    let f = cat(&[
        &eth(&[], 0x86dd),
        &ipv6(0, A6, B6, 32),
        &hbh,
        &dst,
        &udp(546, 547, 0),
    ]);
    let want = ip_meta(
        &f,
        L3Class::Ipv6,
        17,
        (w6(A6), w6(B6)),
        (546, 547),
        FLAG_L4_VALID,
        0,
        (14, 14 + 40 + 24),
    );
    assert_eq!(classify(&f, SEED), want);
    // Truncated anywhere inside the chain: ERR_L3.
    for cut in 54..78 {
        let g = &f[..cut];
        let want = XdpMeta {
            flags: FLAG_ERR_L3,
            l3: L3Class::Ipv6 as u8,
            l3_offset: 14,
            ..base(g)
        };
        assert_eq!(classify(g, SEED), want, "cut {cut}");
    }
    // Six extension headers are walked; a seventh is ERR_L3.
    let opt = |next: u8| [next, 0, 0, 0, 0, 0, 0, 0];
    let mut six = Vec::new();
    for _ in 0..5 {
        six.extend_from_slice(&opt(60));
    }
    six.extend_from_slice(&opt(58));
    let f = cat(&[
        &eth(&[], 0x86dd),
        &ipv6(60, A6, B6, 52),
        &six,
        &[128, 0, 0, 0],
    ]);
    let want = ip_meta(
        &f,
        L3Class::Ipv6,
        58,
        (w6(A6), w6(B6)),
        (0, 0),
        FLAG_L4_VALID,
        0,
        (14, 14 + 40 + 48),
    );
    assert_eq!(classify(&f, SEED), want);
    let mut seven = six.clone();
    seven[40] = 60;
    seven.extend_from_slice(&opt(58));
    let f = cat(&[
        &eth(&[], 0x86dd),
        &ipv6(60, A6, B6, 60),
        &seven,
        &[128, 0, 0, 0],
    ]);
    let want = XdpMeta {
        flags: FLAG_ERR_L3,
        l3: L3Class::Ipv6 as u8,
        l3_offset: 14,
        ..base(&f)
    };
    assert_eq!(classify(&f, SEED), want);
}

#[test]
fn ipv6_fragments() {
    // First fragment (offset 0, M=1) then TCP: parsed, ports steer but do
    // not enter the flow hash.
    let frag0 = [6u8, 0, 0, 1, 0, 0, 0, 9];
    let f = cat(&[&eth(&[], 0x86dd), &ipv6(44, A6, B6, 28), &frag0, &tcp(1, 2)]);
    let flags = FLAG_FRAGMENT | FLAG_L4_VALID;
    let want = ip_meta(
        &f,
        L3Class::Ipv6,
        6,
        (w6(A6), w6(B6)),
        (1, 2),
        flags,
        0,
        (14, 62),
    );
    assert_eq!(classify(&f, SEED), want);
    // Atomic fragment (offset 0, M=0) is still a fragment.
    let atomic = [6u8, 0, 0, 0, 0, 0, 0, 9];
    let f = cat(&[
        &eth(&[], 0x86dd),
        &ipv6(44, A6, B6, 28),
        &atomic,
        &tcp(1, 2),
    ]);
    assert_eq!(classify(&f, SEED).flags, flags);
    // Non-first: the walk ends, the next header is the protocol.
    let later = [6u8, 0, 0x05, 0xa8, 0, 0, 0, 9];
    let f = cat(&[
        &eth(&[], 0x86dd),
        &ipv6(44, A6, B6, 12),
        &later,
        &[0xde, 0xad, 0xbe, 0xef],
    ]);
    let flags = FLAG_FRAGMENT | FLAG_NONFIRST_FRAGMENT;
    let want = ip_meta(
        &f,
        L3Class::Ipv6,
        6,
        (w6(A6), w6(B6)),
        (0, 0),
        flags,
        0,
        (14, 0),
    );
    assert_eq!(classify(&f, SEED), want);
}

#[test]
fn l4_rules() {
    let icmp = cat(&[&eth(&[], 0x0800), &ipv4(1, A4, B4, 0, 0, 4), &[8, 0, 0, 0]]);
    let want = ip_meta(
        &icmp,
        L3Class::Ipv4,
        1,
        (w4(A4), w4(B4)),
        (0, 0),
        FLAG_L4_VALID,
        0,
        (14, 34),
    );
    assert_eq!(classify(&icmp, SEED), want);
    let short = &icmp[..37];
    let want = ip_meta(
        short,
        L3Class::Ipv4,
        1,
        (w4(A4), w4(B4)),
        (0, 0),
        FLAG_ERR_L4,
        0,
        (14, 0),
    );
    assert_eq!(classify(short, SEED), want);
    // Other protocols (GRE) are not parsed: no flags.
    let gre = cat(&[&eth(&[], 0x0800), &ipv4(47, A4, B4, 0, 0, 0)]);
    let want = ip_meta(
        &gre,
        L3Class::Ipv4,
        47,
        (w4(A4), w4(B4)),
        (0, 0),
        0,
        0,
        (14, 0),
    );
    assert_eq!(classify(&gre, SEED), want);
    assert_eq!(classify(&gre, SEED).l4_class(), L4Class::Other);
    // TCP data offset below 5.
    let mut t = tcp(1, 2);
    t[12] = 0x40;
    let f = cat(&[&eth(&[], 0x0800), &ipv4(6, A4, B4, 0, 0, 20), &t]);
    assert_eq!(classify(&f, SEED).flags, FLAG_ERR_L4);
    // Data offset 6 without the option bytes.
    t[12] = 0x60;
    let f = cat(&[&eth(&[], 0x0800), &ipv4(6, A4, B4, 0, 0, 20), &t]);
    assert_eq!(classify(&f, SEED).flags, FLAG_ERR_L4);
    // UDP needs 8 bytes.
    let f = cat(&[&eth(&[], 0x86dd), &ipv6(17, A6, B6, 8), &udp(1, 2, 0)[..7]]);
    assert_eq!(classify(&f, SEED).flags, FLAG_ERR_L4);
}

#[test]
fn hashes_are_symmetric_for_swapped_endpoints() {
    let ab = cat(&[
        &eth(&[], 0x0800),
        &ipv4(6, A4, B4, 0, 0, 20),
        &tcp(1234, 80),
    ]);
    let ba = cat(&[
        &eth(&[], 0x0800),
        &ipv4(6, B4, A4, 0, 0, 20),
        &tcp(80, 1234),
    ]);
    let (x, y) = (classify(&ab, SEED), classify(&ba, SEED));
    assert_eq!((x.flow_hash, x.steer_hash), (y.flow_hash, y.steer_hash));
    assert_ne!(x.flow_hash, 0);
    let ab6 = cat(&[&eth(&[], 0x86dd), &ipv6(17, A6, B6, 8), &udp(9, 10, 0)]);
    let ba6 = cat(&[&eth(&[], 0x86dd), &ipv6(17, B6, A6, 8), &udp(10, 9, 0)]);
    assert_eq!(classify(&ab6, 7).flow_hash, classify(&ba6, 7).flow_hash);
    assert_ne!(
        classify(&ab6, 7).flow_hash,
        classify(&ab6, 8).flow_hash,
        "seeded"
    );
}

#[test]
fn frame_len_is_clamped() {
    let mut f = cat(&[&eth(&[], 0x0806)]);
    f.resize(70_000, 0);
    assert_eq!(classify(&f, SEED).frame_len, 65_535);
    assert_eq!(
        classify(&[], SEED),
        XdpMeta {
            flags: FLAG_ERR_L2,
            ..base(&[])
        }
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_and_keeps_offsets_inside(frame in proptest::collection::vec(any::<u8>(), 0..128), seed in any::<u32>()) {
            let m = classify(&frame, seed);
            prop_assert_eq!((m.magic, m.version, usize::from(m.frame_len)), (META_MAGIC, META_VERSION, frame.len()));
            prop_assert!(usize::from(m.l3_offset) <= frame.len());
            if m.flags & FLAG_L4_VALID != 0 {
                prop_assert!(usize::from(m.l4_offset) < frame.len());
            } else {
                prop_assert_eq!(m.l4_offset, 0);
            }
        }

        #[test]
        fn swapped_endpoints_hash_alike(a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), pa in any::<u16>(), pb in any::<u16>(), seed in any::<u32>()) {
            let ab = cat(&[&eth(&[], 0x0800), &ipv4(17, a, b, 0, 0, 8), &udp(pa, pb, 0)]);
            let ba = cat(&[&eth(&[], 0x0800), &ipv4(17, b, a, 0, 0, 8), &udp(pb, pa, 0)]);
            let (x, y) = (classify(&ab, seed), classify(&ba, seed));
            prop_assert_eq!((x.flow_hash, x.steer_hash), (y.flow_hash, y.steer_hash));
        }
    }
}
