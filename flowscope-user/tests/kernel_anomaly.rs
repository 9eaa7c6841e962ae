//! Issue: line-rate anomaly counting. One crafted frame per kind through the
//! XDP program with `BPF_PROG_TEST_RUN`: that kind's counter moves by exactly
//! one, no other kind moves, and the userspace detector says the same.

mod common;

use common::{frames::*, kernel_tests_enabled};
use flowscope::capture::Datapath;
use flowscope_common::{
    XdpConfig, XdpMeta,
    anomaly::{Anomaly as A, AnomalyBlock},
    config::MODE_REDIRECT,
};

const SEED: u32 = 7;

fn load() -> Datapath {
    common::xdp::load(XdpConfig {
        mode: MODE_REDIRECT,
        sockets_per_queue: 1,
        hash_seed: SEED,
        _reserved: 0,
    })
}

/// Runs `frame` and returns the anomaly counters it moved and its metadata.
fn run(dp: &mut Datapath, frame: &[u8]) -> (AnomalyBlock, XdpMeta) {
    let before = dp.anomalies().unwrap();
    let meta = common::xdp::test_run(dp, frame).parsed.meta;
    let after = dp.anomalies().unwrap();
    let mut d = AnomalyBlock::default();
    for (i, c) in d.counts.iter_mut().enumerate() {
        *c = after.counts[i] - before.counts[i];
    }
    (d, meta)
}

fn set_ttl(mut f: Vec<u8>, ttl: u8) -> Vec<u8> {
    f[14 + 8] = ttl;
    f
}

fn tcp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    cat(&[
        &eth(&[], 0x0800),
        &ipv4(src, dst, 6, &[], 20 + payload.len(), 0),
        &tcp(sport, dport, flags),
        payload,
    ])
}

fn udp_frame(src: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    cat(&[
        &eth(&[], 0x0800),
        &ipv4(src, v4b(2), 17, &[], 12, 0),
        &udp(sport, dport, 4),
        &[1, 2, 3, 4],
    ])
}

const ACK: u8 = 0x10;

#[test]
fn one_frame_per_kind_moves_exactly_that_kind() {
    if !kernel_tests_enabled("one_frame_per_kind_moves_exactly_that_kind") {
        return;
    }
    let mut dp = load();
    let ok_tcp = || tcp_frame(v4a(1), v4b(2), 1000, 80, ACK, &[]);
    let mut bad_total = ok_tcp();
    bad_total[16..18].copy_from_slice(&200u16.to_be_bytes());
    let mut bad_ihl = ok_tcp();
    bad_ihl[14] = 0x44;
    let mut udp_len = udp_frame(v4a(1), 1000, 53);
    udp_len[14 + 20 + 5] = 99;
    let mut lldp = eth(&[], 0x88cc);
    lldp.extend_from_slice(&[0; 30]);
    // (frame, the kinds and indicators it must raise, nothing else)
    let cases: Vec<(Vec<u8>, Vec<A>)> = vec![
        (eth(&[], 0x8100), vec![A::TruncatedL2]),
        (ok_tcp()[..30].to_vec(), vec![A::TruncatedL3]),
        // IP total length says 10 bytes of TCP follow, and they do: only
        // the TCP header is short (a cut frame would also be a bad total).
        (
            cat(&[
                &eth(&[], 0x0800),
                &ipv4(v4a(1), v4b(2), 6, &[], 10, 0),
                &tcp(1000, 80, ACK)[..10],
            ]),
            vec![A::TruncatedL4],
        ),
        (
            ok_tcp()[..44].to_vec(),
            vec![A::TruncatedL4, A::Ipv4BadTotalLen],
        ),
        (bad_ihl, vec![A::Ipv4BadHeaderLen]),
        (bad_total, vec![A::Ipv4BadTotalLen]),
        (
            cat(&[
                &eth(&[], 0x0800),
                &ipv4(v4a(1), v4b(2), 17, &[1, 1, 1, 0], 12, 0),
                &udp(1, 2, 4),
                &[0; 4],
            ]),
            vec![A::Ipv4Options],
        ),
        (set_ttl(ok_tcp(), 1), vec![A::TtlLow]),
        (set_ttl(ok_tcp(), 0), vec![A::TtlLow]),
        (tcp_frame(v4a(9), v4a(9), 1000, 80, ACK, &[]), vec![A::Land]),
        (
            tcp_frame([255; 4], v4b(2), 1000, 80, ACK, &[]),
            vec![A::SrcBroadcast],
        ),
        (
            tcp_frame([224, 0, 0, 5], v4b(2), 1000, 80, ACK, &[]),
            vec![A::SrcMulticast],
        ),
        (
            tcp_frame([127, 0, 0, 1], v4b(2), 1000, 80, ACK, &[]),
            vec![A::SrcLoopback],
        ),
        (
            tcp_frame([0; 4], v4b(2), 1000, 80, ACK, &[]),
            vec![A::SrcUnspecified],
        ),
        (
            cat(&[
                &eth(&[], 0x0800),
                &ipv4(v4a(1), v4b(2), 17, &[], 16, 0x2000),
                &udp(1, 2, 8),
                &[0; 8],
            ]),
            vec![A::FragFirst],
        ),
        (
            cat(&[
                &eth(&[], 0x0800),
                &ipv4(v4a(1), v4b(2), 17, &[], 16, 0x0003),
                &[0; 16],
            ]),
            vec![A::FragNonFirst],
        ),
        (
            cat(&[
                &eth(&[], 0x0800),
                &ipv4(v4a(1), v4b(2), 6, &[], 8, 0x2000),
                &tcp(1, 2, ACK)[..8],
            ]),
            vec![A::FragTinyFirst],
        ),
        (
            tcp_frame(v4a(1), v4b(2), 1000, 80, 0x00, &[]),
            vec![A::TcpNull],
        ),
        (
            tcp_frame(v4a(1), v4b(2), 1000, 80, 0x29, &[]),
            vec![A::TcpXmas],
        ),
        (
            tcp_frame(v4a(1), v4b(2), 1000, 80, 0x03, &[]),
            vec![A::TcpSynFin, A::Syn],
        ),
        (
            tcp_frame(v4a(1), v4b(2), 1000, 80, 0x06, &[]),
            vec![A::TcpSynRst, A::Syn, A::Rst],
        ),
        (
            tcp_frame(v4a(1), v4b(2), 1000, 80, 0x05, &[]),
            vec![A::TcpFinRst, A::Rst],
        ),
        (
            tcp_frame(v4a(1), v4b(2), 1000, 80, 0x01, &[]),
            vec![A::TcpFinNoAck],
        ),
        (
            tcp_frame(v4a(1), v4b(2), 1000, 80, 0x08, &[]),
            vec![A::TcpPshNoAck],
        ),
        (
            tcp_frame(v4a(1), v4b(2), 1000, 80, 0x20, &[]),
            vec![A::TcpUrgNoAck],
        ),
        (
            tcp_frame(v4a(1), v4b(2), 1000, 80, 0x02, b"hello"),
            vec![A::TcpSynPayload, A::Syn],
        ),
        (
            tcp_frame(v4a(1), v4b(2), 0, 80, ACK, &[]),
            vec![A::TcpPortZero],
        ),
        (udp_len, vec![A::UdpLenMismatch]),
        (udp_frame(v4a(1), 1000, 0), vec![A::UdpPortZero]),
        (lldp, vec![A::UnknownEthertype]),
        (
            cat(&[
                &eth(&[], 0x0800),
                &ipv4(v4a(1), v4b(2), 253, &[], 4, 0),
                &[0; 4],
            ]),
            vec![A::UnknownL4Proto],
        ),
        (tcp_frame(v4a(1), v4b(2), 1000, 80, 0x02, &[]), vec![A::Syn]),
        (
            tcp_frame(v4a(1), v4b(2), 80, 1000, 0x12, &[]),
            vec![A::SynAck],
        ),
        (tcp_frame(v4a(1), v4b(2), 80, 1000, 0x14, &[]), vec![A::Rst]),
        (
            cat(&[
                &eth(&[], 0x0800),
                &ipv4(v4a(1), v4b(2), 1, &[], 8, 0),
                &[3, 3, 0, 0, 0, 0, 0, 0],
            ]),
            vec![A::IcmpUnreachable],
        ),
        (
            cat(&[
                &eth(&[], 0x86dd),
                &ipv6(v6(1), v6(2), 58, 8),
                &[1, 4, 0, 0, 0, 0, 0, 0],
            ]),
            vec![A::IcmpUnreachable],
        ),
        (ok_tcp(), vec![]),
    ];
    let mut covered = std::collections::HashSet::new();
    for (frame, kinds) in &cases {
        let (delta, meta) = run(&mut dp, frame);
        let mut want = AnomalyBlock::default();
        for k in kinds {
            want.counts[*k as usize] = 1;
            covered.insert(*k);
        }
        assert_eq!(
            delta,
            want,
            "frame for {kinds:?} moved {:?}",
            A::in_mask(meta.anomalies).collect::<Vec<_>>()
        );
        assert_eq!(meta.anomalies, kinds.iter().fold(0, |m, k| m | k.bit()));
        assert_eq!(
            flowscope::anomaly::detect(frame),
            meta.anomalies,
            "userspace detector on {kinds:?}"
        );
    }
    for k in A::ALL {
        assert!(covered.contains(k), "no test frame for {k:?}");
    }
}

#[test]
fn sketches_rank_syn_targets_and_port_scanners() {
    if !kernel_tests_enabled("sketches_rank_syn_targets_and_port_scanners") {
        return;
    }
    let mut dp = load();
    dp.take_sketches().unwrap();
    // 100 SYNs to one victim from 100 sources; 5 SYNs each to 4 other hosts.
    for i in 0..100u8 {
        run(
            &mut dp,
            &tcp_frame([203, 0, 113, i], v4b(9), 40000, 80, 0x02, &[]),
        );
    }
    for host in 20..24u8 {
        for _ in 0..5 {
            run(
                &mut dp,
                &tcp_frame(v4a(1), v4b(host), 40001, 443, 0x02, &[]),
            );
        }
    }
    // One scanner touches 40 distinct ports with SYNs, twice each; another
    // 20 ports with plain UDP datagrams (no anomaly kind), twice each.
    for _ in 0..2 {
        for port in 1..=40u16 {
            run(&mut dp, &tcp_frame(v4a(66), v4b(5), 50000, port, 0x02, &[]));
        }
        for port in 1000..1020u16 {
            run(&mut dp, &udp_frame(v4a(7), 5000, port));
        }
    }
    let snap = dp.take_sketches().unwrap();
    let syn = flowscope::anomaly::top_offenders(&snap.syn_dst, 3);
    assert_eq!(syn[0].addr, std::net::IpAddr::from(v4b(9)));
    assert!(
        (100..=102).contains(&syn[0].estimate),
        "victim estimate {}",
        syn[0].estimate
    );
    assert_eq!(
        syn[1].addr,
        std::net::IpAddr::from(v4b(5)),
        "the scanner's target (80 SYNs) is next: {syn:?}"
    );
    assert!((80..=82).contains(&syn[1].estimate), "{syn:?}");
    let scanners = flowscope::anomaly::top_offenders(&snap.src_ports, 2);
    assert_eq!(scanners[0].addr, std::net::IpAddr::from(v4a(66)));
    // The count-min can only overcount; the 2^16-bit pair filter can
    // undercount when a new (source, port) pair hits a bit an earlier pair
    // set (~145 pairs here: a few percent per pair). Both by a little.
    assert!(
        (36..=42).contains(&scanners[0].estimate),
        "distinct ports {}",
        scanners[0].estimate
    );
    assert_eq!(
        scanners[1].addr,
        std::net::IpAddr::from(v4a(7)),
        "the UDP scanner is next: {scanners:?}"
    );
    assert!(
        (17..=22).contains(&scanners[1].estimate),
        "distinct UDP ports {}",
        scanners[1].estimate
    );
    // Reset: the next interval starts empty.
    let empty = dp.take_sketches().unwrap();
    assert!(flowscope::anomaly::top_offenders(&empty.syn_dst, 3).is_empty());
}
