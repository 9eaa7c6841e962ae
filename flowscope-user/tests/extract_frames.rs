//! Extractors and decapsulation combinators on frames built byte by byte.

mod wire_support;

use flowscope::extract::{
    AutoDetectEncap, FiveTuple, FlowLabel, InnerGeneve, InnerGre, InnerGtpU, InnerIpInIp,
    InnerTeredo, InnerVxlan, IpPair, MacPair, StripMpls, StripVlan,
};
use flowscope::{
    FlowExtractor, L4Proto, LinkType, Orientation, PacketView, TcpFlags, TcpInfo, Timestamp,
    Unmatched,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use wire_support::{A4, A6, B4, B6, MAC_A, MAC_B, cat, eth, ipv4, ipv6, tcp, udp};

fn view(frame: &[u8]) -> PacketView<'_> {
    PacketView::new(frame, Timestamp(1))
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(a: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
}

/// Ethernet/IPv4/TCP from A4:1234 to B4:80 with `payload` and 6 padding bytes.
fn tcp_frame(tags: &[(u16, u16)], payload: &[u8]) -> Vec<u8> {
    let mut f = cat(&[
        &eth(tags, 0x0800),
        &ipv4(6, A4, B4, 0, 0, 20 + payload.len() as u16),
        &tcp(1234, 80),
        payload,
    ]);
    f.extend_from_slice(&[0; 6]);
    f
}

#[test]
fn ipv4_tcp_fills_every_field() {
    let f = tcp_frame(&[], b"hello");
    let e = FiveTuple::bidirectional().extract(view(&f)).unwrap();
    assert_eq!(
        (
            e.key.src_ip(),
            e.key.src_port(),
            e.key.dst_ip(),
            e.key.dst_port()
        ),
        (v4(A4), 1234, v4(B4), 80)
    );
    assert_eq!(
        (e.key.proto(), e.key.protocol(), e.key.is_ipv6()),
        (L4Proto::Tcp, 6, false)
    );
    assert_eq!(e.orientation, Orientation::Forward);
    assert_eq!(e.l4, L4Proto::Tcp);
    assert_eq!(
        e.tcp,
        Some(TcpInfo {
            flags: TcpFlags::SYN,
            seq: 1,
            ack: 0,
            window: 0xffff
        })
    );
    assert_eq!(e.vlan, [0, 0]);
    assert_eq!(
        (e.payload_offset, e.payload_len),
        (54, 5),
        "Ethernet padding is not payload"
    );
    assert_eq!(e.fragment, None);
}

#[test]
fn both_directions_share_the_bidirectional_key() {
    let ab = tcp_frame(&[], b"");
    let ba = cat(&[
        &eth(&[], 0x0800),
        &ipv4(6, B4, A4, 0, 0, 20),
        &tcp(80, 1234),
    ]);
    let x = FiveTuple::bidirectional().extract(view(&ab)).unwrap();
    let y = FiveTuple::bidirectional().extract(view(&ba)).unwrap();
    assert_eq!(x.key, y.key);
    assert_eq!(
        (x.orientation, y.orientation),
        (Orientation::Forward, Orientation::Reverse)
    );
    assert_eq!(y.key.oriented(y.orientation).src_ip(), v4(B4));
    let dx = FiveTuple::directional().extract(view(&ab)).unwrap();
    let dy = FiveTuple::directional().extract(view(&ba)).unwrap();
    assert_eq!(dx.key.reversed(), dy.key);
    assert_eq!(dy.orientation, Orientation::Forward);
}

#[test]
fn vlan_tags_and_mpls_labels() {
    let f = tcp_frame(&[(0x88a8, 100), (0x8100, 200)], b"x");
    let e = FiveTuple::bidirectional().extract(view(&f)).unwrap();
    assert_eq!(
        (e.vlan, e.payload_offset, e.payload_len),
        ([100, 200], 62, 1)
    );
    let four = tcp_frame(&[(0x88a8, 1), (0x8100, 2), (0x8100, 3), (0x8100, 4)], b"");
    assert_eq!(
        FiveTuple::bidirectional()
            .extract(view(&four))
            .unwrap()
            .vlan,
        [1, 2]
    );
    let five = tcp_frame(
        &[
            (0x8100, 1),
            (0x8100, 2),
            (0x8100, 3),
            (0x8100, 4),
            (0x8100, 5),
        ],
        b"",
    );
    assert_eq!(
        FiveTuple::bidirectional().extract(view(&five)),
        Err(Unmatched::BadL2)
    );

    // VLAN 7, then two MPLS labels (the second bottom-of-stack), then IPv4.
    let mpls = cat(&[
        &eth(&[(0x8100, 7)], 0x8847),
        &[0, 0x01, 0x00, 64, 0, 0x02, 0x01, 64],
        &ipv4(17, A4, B4, 0, 0, 8 + 2),
        &udp(5000, 53, 2),
        b"hi",
    ]);
    for e in [
        FiveTuple::bidirectional().extract(view(&mpls)).unwrap(),
        StripMpls::new(FiveTuple::bidirectional())
            .extract(view(&mpls))
            .unwrap(),
        StripVlan::new(FiveTuple::bidirectional())
            .extract(view(&mpls))
            .unwrap(),
    ] {
        assert_eq!(
            (
                e.key.src_port(),
                e.key.dst_port(),
                e.vlan,
                e.payload_offset,
                e.payload_len
            ),
            (5000, 53, [7, 0], 54, 2)
        );
    }
    assert_eq!(&mpls[54..56], b"hi");
    // A pseudowire control word after the stack is not IP.
    let pw = cat(&[
        &eth(&[], 0x8847),
        &[0, 0, 0x11, 64],
        &[0; 4],
        &ipv4(6, A4, B4, 0, 0, 0),
    ]);
    assert_eq!(
        FiveTuple::bidirectional().extract(view(&pw)),
        Err(Unmatched::NotIp)
    );
    // Labels that never reach the bottom of the stack.
    let endless = cat(&[&eth(&[], 0x8847), &[0, 0, 0x10, 64].repeat(9)]);
    assert_eq!(
        FiveTuple::bidirectional().extract(view(&endless)),
        Err(Unmatched::BadL2)
    );
    assert_eq!(
        StripVlan::new(FiveTuple::bidirectional()).extract(view(&tcp_frame(&[], b""))),
        Err(Unmatched::BadEncap)
    );
}

#[test]
fn link_types() {
    let ip = cat(&[&ipv4(6, A4, B4, 0, 0, 23), &tcp(1234, 80), b"abc"]);
    let sll = cat(&[&[0, 0, 0, 1, 0, 6], &MAC_A, &[0, 0, 0x08, 0x00], &ip]);
    let sll2 = cat(&[
        &[0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6],
        &MAC_A,
        &[0, 0],
        &ip,
    ]);
    let lo = cat(&[&[2, 0, 0, 0], &ip]);
    for (frame, link, header) in [
        (&ip, LinkType::RawIp, 0),
        (&sll, LinkType::LinuxSll, 16),
        (&sll2, LinkType::LinuxSll2, 20),
        (&lo, LinkType::Loopback, 4),
    ] {
        let e = FiveTuple::bidirectional()
            .extract(view(frame).with_link(link))
            .unwrap();
        assert_eq!((e.key.src_port(), e.key.dst_port()), (1234, 80), "{link:?}");
        assert_eq!(
            (e.payload_offset, e.payload_len),
            (header + 40, 3),
            "{link:?}"
        );
        // No MAC addresses outside Ethernet.
        assert_eq!(
            MacPair.extract(view(frame).with_link(link)).err(),
            Some(Unmatched::BadL2)
        );
    }
    let ip6 = cat(&[&ipv6(17, A6, B6, 8), &udp(1, 2, 0)]);
    let lo6 = cat(&[&[30, 0, 0, 0], &ip6]);
    let e = FiveTuple::bidirectional()
        .extract(view(&lo6).with_link(LinkType::Loopback))
        .unwrap();
    assert_eq!(e.key.src_ip(), v6(A6));
    let unknown_family = cat(&[&[7, 0, 0, 0], &ip6]);
    assert_eq!(
        FiveTuple::bidirectional().extract(view(&unknown_family).with_link(LinkType::Loopback)),
        Err(Unmatched::NotIp)
    );
    assert_eq!(
        FiveTuple::bidirectional().extract(view(&[0x50; 40]).with_link(LinkType::RawIp)),
        Err(Unmatched::BadL3)
    );
}

#[test]
fn ipv6_extension_headers_and_flow_label() {
    let hbh = [60u8, 0, 1, 4, 0, 0, 0, 0];
    let dst = [17u8, 0, 1, 4, 0, 0, 0, 0];
    let f = cat(&[
        &eth(&[], 0x86dd),
        &ipv6(0, B6, A6, 16 + 8 + 4),
        &hbh,
        &dst,
        &udp(53, 40000, 4),
        b"data",
    ]);
    let e = FiveTuple::bidirectional().extract(view(&f)).unwrap();
    assert_eq!(e.orientation, Orientation::Reverse, "B6 > A6");
    assert_eq!((e.key.src_ip(), e.key.src_port()), (v6(A6), 40000));
    assert_eq!((e.payload_offset, e.payload_len), (14 + 40 + 16 + 8, 4));
    let l = FlowLabel::new(FiveTuple::bidirectional())
        .extract(view(&f))
        .unwrap();
    assert_eq!((l.key.inner, l.key.label), (e.key, 0x12345));
    let l4 = FlowLabel::new(FiveTuple::bidirectional())
        .extract(view(&tcp_frame(&[], b"")))
        .unwrap();
    assert_eq!(l4.key.label, 0);
}

#[test]
fn icmp_is_keyed_by_type_and_payload_starts_at_its_header() {
    let f = cat(&[
        &eth(&[], 0x0800),
        &ipv4(1, A4, B4, 0, 0, 8),
        &[8, 0, 0xf7, 0xff, 0, 1, 0, 1],
    ]);
    let e = FiveTuple::bidirectional().extract(view(&f)).unwrap();
    // Echo request: its type, and the reply's type (Zeek's ports).
    let k = e.key.oriented(e.orientation);
    assert_eq!((k.src_port(), k.dst_port(), e.l4), (8, 0, L4Proto::Icmp));
    assert_eq!((e.payload_offset, e.payload_len), (34, 8));
    assert_eq!(f[e.payload_offset as usize], 8, "ICMP type");
    let short = &f[..37];
    assert_eq!(
        FiveTuple::bidirectional().extract(view(short)),
        Err(Unmatched::BadL4)
    );
}

#[test]
fn unmatched_reasons() {
    let x = FiveTuple::bidirectional();
    assert_eq!(x.extract(view(&[0; 13])), Err(Unmatched::BadL2));
    assert_eq!(
        x.extract(view(&cat(&[&eth(&[], 0x0806), &[0; 28]]))),
        Err(Unmatched::NotIp)
    );
    assert_eq!(
        x.extract(view(&cat(&[&eth(&[], 0x0800), &[0x45; 19]]))),
        Err(Unmatched::BadL3)
    );
    let short_tcp = cat(&[
        &eth(&[], 0x0800),
        &ipv4(6, A4, B4, 0, 0, 20),
        &tcp(1, 2)[..19],
    ]);
    assert_eq!(x.extract(view(&short_tcp)), Err(Unmatched::BadL4));
    // Fragments: the first is keyed with ports, the others go to reassembly.
    let first = cat(&[
        &eth(&[], 0x0800),
        &ipv4(17, A4, B4, 0x2000, 0, 16),
        &udp(1, 2, 100),
        &[0; 8],
    ]);
    let e = x.extract(view(&first)).unwrap();
    let frag = e.fragment.unwrap();
    assert_eq!(
        (frag.id, frag.offset, frag.more, e.key.src_port()),
        (0xabcd, 0, true, 1)
    );
    let later = cat(&[&eth(&[], 0x0800), &ipv4(17, A4, B4, 2, 0, 8), &[0; 8]]);
    assert_eq!(x.extract(view(&later)), Err(Unmatched::Fragment));
    let pair = IpPair.extract(view(&later)).unwrap();
    assert_eq!((pair.key.a(), pair.key.b()), (v4(A4), v4(B4)));
    assert_eq!(
        (
            pair.fragment.unwrap().offset,
            pair.payload_offset,
            pair.payload_len
        ),
        (16, 34, 8)
    );
    let frag6 = cat(&[
        &eth(&[], 0x86dd),
        &ipv6(44, A6, B6, 16),
        &[17, 0, 0, 0x18, 0, 0, 0, 5],
        &[0; 8],
    ]);
    assert_eq!(x.extract(view(&frag6)), Err(Unmatched::Fragment));
    assert_eq!(
        IpPair.extract(view(&frag6)).unwrap().fragment.unwrap().id,
        5
    );
}

#[test]
fn mac_pair() {
    let arp = cat(&[&eth(&[(0x8100, 3)], 0x0806), &[0; 28]]);
    let e = MacPair.extract(view(&arp)).unwrap();
    assert_eq!(
        (e.key.a, e.key.b, e.orientation),
        (MAC_A, MAC_B, Orientation::Reverse)
    );
    assert_eq!(
        (e.l4, e.vlan, e.payload_offset, e.payload_len),
        (L4Proto::Other(0), [3, 0], 18, 28)
    );
    let t = MacPair.extract(view(&tcp_frame(&[], b"ab"))).unwrap();
    assert_eq!(
        (t.l4, t.payload_offset, t.payload_len),
        (L4Proto::Tcp, 54, 2)
    );
    assert!(t.tcp.is_some());
}

/// Inner Ethernet/IPv4/TCP from B4:2222 to A4:443 carrying "inner".
fn inner_eth() -> Vec<u8> {
    cat(&[&eth(&[], 0x0800), &inner_ip()])
}

fn inner_ip() -> Vec<u8> {
    cat(&[&ipv4(6, B4, A4, 0, 0, 25), &tcp(2222, 443), b"inner"])
}

/// Outer Ethernet (VLAN 9)/IPv4 carrying `proto` and `body`.
fn outer_ip(proto: u8, body: &[u8]) -> Vec<u8> {
    cat(&[
        &eth(&[(0x8100, 9)], 0x0800),
        &ipv4(proto, [10, 0, 0, 1], [10, 0, 0, 2], 0, 0, body.len() as u16),
        body,
    ])
}

/// Outer Ethernet (VLAN 9)/IPv4/UDP to `dport` carrying `body`.
fn outer_udp(dport: u16, body: &[u8]) -> Vec<u8> {
    outer_ip(17, &cat(&[&udp(50000, dport, body.len() as u16), body]))
}

/// Checks the inner flow of `frame` through `ex` and through AutoDetectEncap.
fn assert_inner<E: FlowExtractor<Key = flowscope::extract::FiveTupleKey>>(ex: E, frame: &[u8]) {
    for e in [
        ex.extract(view(frame)).unwrap(),
        AutoDetectEncap::new(FiveTuple::bidirectional())
            .extract(view(frame))
            .unwrap(),
    ] {
        assert_eq!(
            (
                e.key.src_ip(),
                e.key.src_port(),
                e.key.dst_ip(),
                e.key.dst_port()
            ),
            (v4(A4), 443, v4(B4), 2222)
        );
        assert_eq!(e.orientation, Orientation::Reverse);
        assert_eq!(e.vlan, [9, 0], "outer VLAN");
        let at = e.payload_offset as usize;
        assert_eq!(&frame[at..at + e.payload_len as usize], b"inner");
    }
}

#[test]
fn gre_with_all_options_and_bridged_ethernet() {
    let ip_in_gre = outer_ip(
        47,
        &cat(&[
            &[0xb0, 0, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2],
            &inner_ip(),
        ]),
    );
    assert_inner(InnerGre::new(FiveTuple::bidirectional()), &ip_in_gre);
    let teb = outer_ip(
        47,
        &cat(&[&[0x20, 0, 0x65, 0x58, 0, 0, 0, 7], &inner_eth()]),
    );
    assert_inner(InnerGre::new(FiveTuple::bidirectional()), &teb);
    let ppp = outer_ip(47, &cat(&[&[0, 0, 0x88, 0x0b], &inner_ip()]));
    assert_eq!(
        InnerGre::new(FiveTuple::bidirectional()).extract(view(&ppp)),
        Err(Unmatched::BadEncap)
    );
    assert_eq!(
        InnerGre::new(FiveTuple::bidirectional()).extract(view(&tcp_frame(&[], b""))),
        Err(Unmatched::BadEncap)
    );
}

#[test]
fn udp_tunnels() {
    let vx = outer_udp(4789, &cat(&[&[0x08, 0, 0, 0, 0, 0, 1, 0], &inner_eth()]));
    assert_inner(InnerVxlan::new(FiveTuple::bidirectional()), &vx);
    let geneve = outer_udp(
        6081,
        &cat(&[&[0x01, 0, 0x08, 0x00, 0, 0, 5, 0, 1, 2, 3, 4], &inner_ip()]),
    );
    assert_inner(InnerGeneve::new(FiveTuple::bidirectional()), &geneve);
    // GTP-U with E flag and one extension header.
    let payload = inner_ip();
    let mut gtp = vec![0x34, 0xff];
    gtp.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    gtp.extend_from_slice(&[0, 0, 0, 42, 0, 0, 0, 0x85, 1, 0, 0, 0]);
    let gtp = outer_udp(2152, &cat(&[&gtp, &payload]));
    assert_inner(InnerGtpU::new(FiveTuple::bidirectional()), &gtp);
    // Teredo with an origin indication, inner IPv6/UDP.
    let ip6 = cat(&[&ipv6(17, A6, B6, 8 + 5), &udp(3000, 4000, 5), b"inner"]);
    let teredo = outer_udp(3544, &cat(&[&[0, 0, 0x12, 0x34, 1, 2, 3, 4], &ip6]));
    for e in [
        InnerTeredo::new(FiveTuple::bidirectional())
            .extract(view(&teredo))
            .unwrap(),
        AutoDetectEncap::new(FiveTuple::bidirectional())
            .extract(view(&teredo))
            .unwrap(),
    ] {
        assert_eq!(
            (e.key.src_ip(), e.key.dst_port(), e.vlan),
            (v6(A6), 4000, [9, 0])
        );
        assert_eq!(&teredo[e.payload_offset as usize..][..5], b"inner");
    }
    // A custom port.
    let vx2 = outer_udp(8472, &cat(&[&[0x08, 0, 0, 0, 0, 0, 1, 0], &inner_eth()]));
    let e = InnerVxlan::with_port(FiveTuple::bidirectional(), 8472)
        .extract(view(&vx2))
        .unwrap();
    assert_eq!((e.key.src_ip(), e.key.src_port()), (v4(A4), 443));
    assert_eq!(
        InnerVxlan::new(FiveTuple::bidirectional()).extract(view(&vx2)),
        Err(Unmatched::BadEncap)
    );
}

#[test]
fn ip_in_ip() {
    assert_inner(
        InnerIpInIp::new(FiveTuple::bidirectional()),
        &outer_ip(4, &inner_ip()),
    );
}

#[test]
fn auto_detect_nests_and_falls_back() {
    // VXLAN inside GRE-bridged Ethernet: two layers.
    let vx = cat(&[
        &eth(&[], 0x0800),
        &ipv4(
            17,
            [10, 1, 1, 1],
            [10, 1, 1, 2],
            0,
            0,
            8 + 8 + inner_eth().len() as u16,
        ),
        &udp(1, 4789, 8 + inner_eth().len() as u16),
        &[0x08, 0, 0, 0, 0, 0, 1, 0],
        &inner_eth(),
    ]);
    let nested = outer_ip(47, &cat(&[&[0, 0, 0x65, 0x58], &vx]));
    assert_inner(
        InnerGre::new(InnerVxlan::new(FiveTuple::bidirectional())),
        &nested,
    );
    // Not VXLAN after all (I flag clear): the outer UDP flow.
    let fake = outer_udp(4789, &[0u8; 30]);
    let e = AutoDetectEncap::new(FiveTuple::bidirectional())
        .extract(view(&fake))
        .unwrap();
    assert_eq!(
        (e.key.src_ip(), e.key.src_port(), e.key.dst_port()),
        (v4([10, 0, 0, 1]), 50000, 4789)
    );
    // VXLAN carrying ARP: the outer UDP flow too.
    let arp = outer_udp(
        4789,
        &cat(&[&[0x08, 0, 0, 0, 0, 0, 1, 0], &eth(&[], 0x0806), &[0; 28]]),
    );
    assert_eq!(
        AutoDetectEncap::new(FiveTuple::bidirectional())
            .extract(view(&arp))
            .unwrap()
            .key
            .dst_port(),
        4789
    );
    // Plain traffic.
    let plain = tcp_frame(&[], b"");
    assert_eq!(
        AutoDetectEncap::new(FiveTuple::bidirectional()).extract(view(&plain)),
        FiveTuple::bidirectional().extract(view(&plain))
    );
}
