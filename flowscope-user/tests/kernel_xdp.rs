//! Tier 2: the XDP program run with `BPF_PROG_TEST_RUN` on crafted frames.
//!
//! Each frame is built byte by byte; the test checks what the program parsed
//! (read back from its per-CPU `PARSED` map, so on every kernel), the
//! metadata block it writes in front of the frame where the kernel allows
//! `bpf_xdp_adjust_meta`, every counter slot it moves, its verdict, and that
//! the userspace parser (`flowscope::wire::classify`, with the reader's
//! fragment table `flowscope::extract::Steering` fed the same frames) says
//! exactly the same.

mod common;

use common::{frames::*, kernel_tests_enabled};
use flowscope::capture::Datapath;
use flowscope::extract::Steering;
use flowscope::view::LinkType;
use flowscope_common::{
    Counter, CounterBlock, XdpConfig, XdpMeta,
    config::{MODE_COUNT_ONLY, MODE_REDIRECT},
    frame::{L3Class, L4Class},
    hash,
    meta::*,
};

const SEED: u32 = 0x0bad_5eed;
const XDP_PASS: u32 = 2;

struct Outcome {
    action: u32,
    /// The block written in front of the frame.
    written: Option<XdpMeta>,
    /// What the program parsed.
    meta: XdpMeta,
    delta: CounterBlock,
    /// What the userspace twin says.
    twin: XdpMeta,
    /// The twin steered this frame, a later fragment, without its first.
    unsteered: bool,
}

/// The program, and its userspace twin fed the same frames in the same
/// order (its fragment table is stateful, as the program's is).
struct Bed {
    dp: Datapath,
    steering: Steering,
}

impl From<Datapath> for Bed {
    fn from(dp: Datapath) -> Self {
        Self {
            dp,
            steering: Steering::new(SEED),
        }
    }
}

fn config(mode: u32) -> XdpConfig {
    XdpConfig {
        mode,
        sockets_per_queue: 2,
        hash_seed: SEED,
        _reserved: 0,
    }
}

fn load(mode: u32) -> Bed {
    common::xdp::load(config(mode)).into()
}

fn run(bed: &mut Bed, frame: &[u8]) -> Outcome {
    let dp = &mut bed.dp;
    let unsteered = bed.steering.unsteered();
    let before = dp.counters().unwrap();
    let r = common::xdp::test_run(dp, frame);
    let after = dp.counters().unwrap();
    let mut delta = CounterBlock::default();
    for (d, (a, b)) in delta
        .slots
        .iter_mut()
        .zip(after.slots.iter().zip(before.slots.iter()))
    {
        d.packets = a.packets - b.packets;
        d.bytes = a.bytes - b.bytes;
    }
    Outcome {
        action: r.action,
        written: r.written,
        meta: r.parsed.meta,
        delta,
        twin: XdpMeta {
            steer_hash: bed.steering.steer(frame, LinkType::Ethernet),
            ..flowscope::wire::classify(frame, SEED)
        },
        unsteered: bed.steering.unsteered() > unsteered,
    }
}

/// The slots a frame must move, from its metadata, by the rules of
/// flowscope_common::frame, plus the verdict slot, and
/// `fragment_unsteered` for a later fragment steered without its first.
fn expected_delta(m: &XdpMeta, verdict: Counter, unsteered: bool) -> CounterBlock {
    let len = u64::from(m.frame_len);
    let mut b = CounterBlock::default();
    let mut bump = |c: Counter| {
        b.slots[c as usize].packets += 1;
        b.slots[c as usize].bytes += len;
    };
    bump(Counter::All);
    bump(match m.l3_class() {
        L3Class::Ipv4 => Counter::Ipv4,
        L3Class::Ipv6 => Counter::Ipv6,
        L3Class::Other => Counter::L3Other,
    });
    match m.l4_class() {
        L4Class::Tcp => bump(Counter::Tcp),
        L4Class::Udp => bump(Counter::Udp),
        L4Class::Icmp => bump(Counter::Icmp),
        L4Class::Icmpv6 => bump(Counter::Icmpv6),
        L4Class::Other => bump(Counter::L4Other),
        L4Class::None => {}
    }
    for (flag, c) in [
        (FLAG_FRAGMENT, Counter::Fragment),
        (FLAG_ERR_L2, Counter::ErrL2),
        (FLAG_ERR_L3, Counter::ErrL3),
        (FLAG_ERR_L4, Counter::ErrL4),
    ] {
        if m.flags & flag != 0 {
            bump(c);
        }
    }
    bump(verdict);
    if unsteered {
        bump(Counter::FragmentUnsteered);
    }
    b
}

/// Runs `frame` in redirect mode (empty XSKMAP: the pass fallback) and
/// checks verdict, counters and agreement with the userspace parser.
fn check(bed: &mut Bed, frame: &[u8]) -> XdpMeta {
    let o = run(bed, frame);
    assert_eq!(
        o.action, XDP_PASS,
        "empty XSKMAP slot falls back to XDP_PASS"
    );
    let m = o.meta;
    assert_eq!(
        o.written,
        bed.dp.metadata().then_some(m),
        "a block in front of the frame exactly when metadata is on"
    );
    assert_eq!(
        (m.magic, m.version, usize::from(m.frame_len)),
        (META_MAGIC, META_VERSION, frame.len())
    );
    assert_eq!(
        o.delta,
        expected_delta(&m, Counter::PassFallback, o.unsteered),
        "counters for {m:?}"
    );
    assert_eq!(o.twin, m, "userspace parser disagrees on {frame:02x?}");
    m
}

fn words(a: &[u8]) -> [u32; 4] {
    let mut w = [0u32; 4];
    for (i, c) in a.chunks(4).enumerate() {
        w[i] = u32::from_le_bytes(c.try_into().unwrap());
    }
    w
}

fn tcp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    cat(&[
        &eth(&[], 0x0800),
        &ipv4(src, dst, 6, &[], 20, 0),
        &tcp(sport, dport, 0x02),
    ])
}

#[test]
fn classes_offsets_and_hashes() {
    if !kernel_tests_enabled("classes_offsets_and_hashes") {
        return;
    }
    let mut dp = load(MODE_REDIRECT);

    let m = check(&mut dp, &tcp4(v4a(1), 40000, v4b(2), 80));
    assert_eq!(
        (
            m.l3_class(),
            m.l4_class(),
            m.ip_proto,
            m.l3_offset,
            m.l4_offset,
            m.vlan_count
        ),
        (L3Class::Ipv4, L4Class::Tcp, 6, 14, 34, 0)
    );
    assert_eq!(m.flags, FLAG_L4_VALID);
    assert_eq!(
        m.flow_hash,
        hash::flow_hash(SEED, &words(&v4a(1)), 40000, &words(&v4b(2)), 80, 6)
    );
    assert_eq!(m.steer_hash, m.flow_hash, "TCP steers by its five-tuple");
    let back = check(&mut dp, &tcp4(v4b(2), 80, v4a(1), 40000));
    assert_eq!(
        (back.flow_hash, back.steer_hash),
        (m.flow_hash, m.steer_hash),
        "symmetric for swapped endpoints"
    );
    let other = check(&mut dp, &tcp4(v4a(1), 40001, v4b(2), 80));
    assert_ne!(other.flow_hash, m.flow_hash, "another port is another flow");
    assert_ne!(other.steer_hash, m.steer_hash, "and steers apart");
    assert_ne!(
        check(&mut dp, &tcp4(v4a(3), 40000, v4b(2), 80)).flow_hash,
        m.flow_hash
    );

    // IPv4 with 8 bytes of options, UDP.
    let f = cat(&[
        &eth(&[], 0x0800),
        &ipv4(v4a(1), v4b(2), 17, &[1, 1, 1, 1, 1, 1, 1, 0], 12, 0),
        &udp(53, 5353, 4),
        &[0; 4],
    ]);
    let m = check(&mut dp, &f);
    assert_eq!(
        (m.l4_class(), m.l4_offset, m.flags),
        (L4Class::Udp, 42, FLAG_L4_VALID)
    );

    // ICMP and ICMPv6.
    let m = check(
        &mut dp,
        &cat(&[
            &eth(&[], 0x0800),
            &ipv4(v4a(1), v4b(2), 1, &[], 8, 0),
            &icmp_echo(8),
        ]),
    );
    assert_eq!(
        (m.l4_class(), m.flags, m.flow_hash),
        (L4Class::Icmp, FLAG_L4_VALID, m.steer_hash)
    );
    let m = check(
        &mut dp,
        &cat(&[
            &eth(&[], 0x86dd),
            &ipv6(v6(1), v6(2), 58, 8),
            &icmp_echo(128),
        ]),
    );
    assert_eq!(
        (m.l3_class(), m.l4_class(), m.l4_offset),
        (L3Class::Ipv6, L4Class::Icmpv6, 54)
    );

    // Another L4 protocol (GRE, 47) is classed but not parsed.
    let m = check(
        &mut dp,
        &cat(&[
            &eth(&[], 0x0800),
            &ipv4(v4a(1), v4b(2), 47, &[], 4, 0),
            &[0; 4],
        ]),
    );
    assert_eq!((m.l4_class(), m.flags, m.ip_proto), (L4Class::Other, 0, 47));

    // ARP: other L3, no L4, hash 0.
    let mut arp = eth(&[], 0x0806);
    arp.extend_from_slice(&[0; 28]);
    let m = check(&mut dp, &arp);
    assert_eq!(
        (m.l3_class(), m.l4_class(), m.flow_hash, m.steer_hash),
        (L3Class::Other, L4Class::None, 0, 0)
    );
}

#[test]
fn vlan_and_qinq() {
    if !kernel_tests_enabled("vlan_and_qinq") {
        return;
    }
    let mut dp = load(MODE_REDIRECT);
    let inner = cat(&[&ipv4(v4a(1), v4b(2), 17, &[], 8, 0), &udp(1, 2, 0)]);
    let m = check(&mut dp, &cat(&[&eth(&[(0x8100, 10)], 0x0800), &inner]));
    assert_eq!(
        (m.vlan_count, m.l3_offset, m.l4_offset, m.l4_class()),
        (1, 18, 38, L4Class::Udp)
    );
    let m = check(
        &mut dp,
        &cat(&[&eth(&[(0x88a8, 100), (0x8100, 10)], 0x0800), &inner]),
    );
    assert_eq!((m.vlan_count, m.l3_offset, m.l4_offset), (2, 22, 42));
    // A third tag is not followed: the frame is "other L3".
    let m = check(
        &mut dp,
        &cat(&[
            &eth(&[(0x88a8, 1), (0x8100, 2), (0x8100, 3)], 0x0800),
            &inner,
        ]),
    );
    assert_eq!(
        (m.vlan_count, m.l3_class(), m.flags),
        (2, L3Class::Other, 0)
    );
}

#[test]
fn ipv6_extension_chains_and_fragments() {
    if !kernel_tests_enabled("ipv6_extension_chains_and_fragments") {
        return;
    }
    let mut dp = load(MODE_REDIRECT);
    let tcp_h = tcp(443, 50000, 0x10);
    // hop-by-hop (8) → routing (24) → destination options (16) → TCP.
    let chain = cat(&[&ext(43, 0), &ext(60, 2), &ext(6, 1), &tcp_h]);
    let m = check(
        &mut dp,
        &cat(&[
            &eth(&[], 0x86dd),
            &ipv6(v6(1), v6(2), 0, chain.len()),
            &chain,
        ]),
    );
    assert_eq!(
        (m.l4_class(), m.ip_proto, m.l4_offset, m.flags),
        (L4Class::Tcp, 6, 14 + 40 + 48, FLAG_L4_VALID)
    );

    // First fragment: L4 parsed, ports left out of the flow hash but in
    // the steering hash.
    let (a6, b6) = (words(&v6(1)), words(&v6(2)));
    let first = cat(&[&frag6(17, 0, true, 7), &udp(5000, 53, 100)]);
    let m = check(
        &mut dp,
        &cat(&[
            &eth(&[], 0x86dd),
            &ipv6(v6(1), v6(2), 44, first.len()),
            &first,
        ]),
    );
    assert_eq!(
        (m.flags, m.l4_offset, m.flow_hash, m.steer_hash),
        (
            FLAG_FRAGMENT | FLAG_L4_VALID,
            62,
            hash::pair_hash(SEED, &a6, &b6, 17),
            hash::flow_hash(SEED, &a6, 5000, &b6, 53, 17)
        )
    );
    let v6_fragment = |offset8: u16, id: u32| {
        let rest = cat(&[&frag6(17, offset8, false, id), &[0xab; 24]]);
        cat(&[
            &eth(&[], 0x86dd),
            &ipv6(v6(1), v6(2), 44, rest.len()),
            &rest,
        ])
    };
    // Non-first fragment: no L4, the first's steering from the table.
    let m2 = check(&mut dp, &v6_fragment(13, 7));
    assert_eq!(
        (m2.flags, m2.l4_class(), m2.steer_hash),
        (
            FLAG_FRAGMENT | FLAG_NONFIRST_FRAGMENT,
            L4Class::Udp,
            m.steer_hash
        )
    );
    // A later fragment of a datagram whose first was not seen: the pair,
    // and counted.
    let m3 = check(&mut dp, &v6_fragment(13, 8));
    assert_eq!(m3.steer_hash, m.flow_hash);
    let unsteered =
        |dp: &mut Bed, frame: &[u8]| run(dp, frame).delta.get(Counter::FragmentUnsteered).packets;
    assert_eq!(unsteered(&mut dp, &v6_fragment(14, 8)), 1);
    assert_eq!(
        unsteered(&mut dp, &v6_fragment(14, 7)),
        0,
        "its first was seen"
    );

    // IPv4 fragments likewise.
    let f1 = check(
        &mut dp,
        &cat(&[
            &eth(&[], 0x0800),
            &ipv4(v4a(1), v4b(2), 17, &[], 16, 0x2000),
            &udp(1000, 53, 8),
            &[0; 8],
        ]),
    );
    let f2 = check(
        &mut dp,
        &cat(&[
            &eth(&[], 0x0800),
            &ipv4(v4a(1), v4b(2), 17, &[], 16, 2),
            &[0; 16],
        ]),
    );
    assert_eq!(f1.flags, FLAG_FRAGMENT | FLAG_L4_VALID);
    assert_eq!(f2.flags, FLAG_FRAGMENT | FLAG_NONFIRST_FRAGMENT);
    assert_eq!(
        f1.steer_hash,
        hash::flow_hash(SEED, &words(&v4a(1)), 1000, &words(&v4b(2)), 53, 17)
    );
    assert_eq!(
        (f2.steer_hash, f2.flow_hash),
        (f1.steer_hash, f1.flow_hash),
        "all fragments of a datagram steer alike"
    );
    // The reverse direction's later fragment is another datagram.
    let back = check(
        &mut dp,
        &cat(&[
            &eth(&[], 0x0800),
            &ipv4(v4b(2), v4a(1), 17, &[], 16, 2),
            &[0; 16],
        ]),
    );
    assert_eq!(back.steer_hash, f1.flow_hash);

    // A chain longer than the limit is an L3 error.
    let long: Vec<u8> = (0..7).flat_map(|_| ext(0, 0)).collect();
    let m = check(
        &mut dp,
        &cat(&[&eth(&[], 0x86dd), &ipv6(v6(1), v6(2), 0, long.len()), &long]),
    );
    assert_eq!(m.flags, FLAG_ERR_L3);
}

#[test]
fn truncated_at_every_boundary() {
    if !kernel_tests_enabled("truncated_at_every_boundary") {
        return;
    }
    let mut dp = load(MODE_REDIRECT);
    // VLAN + IPv4 + TCP: L2 needs 18 bytes, L3 38, L4 58.
    let full = cat(&[
        &eth(&[(0x8100, 5)], 0x0800),
        &ipv4(v4a(1), v4b(2), 6, &[], 20, 0),
        &tcp(1, 2, 0x02),
    ]);
    for len in 14..=full.len() {
        let m = check(&mut dp, &full[..len]);
        let want = if len < 18 {
            FLAG_ERR_L2
        } else if len < 38 {
            FLAG_ERR_L3
        } else if len < 58 {
            FLAG_ERR_L4
        } else {
            FLAG_L4_VALID
        };
        assert_eq!(m.flags, want, "cut at {len}");
    }
    // IPv6 + hop-by-hop (16) + UDP: L3 needs 14+40+16 = 70, L4 78.
    let full = cat(&[
        &eth(&[], 0x86dd),
        &ipv6(v6(1), v6(2), 0, 24),
        &ext(17, 1),
        &udp(1, 2, 0),
    ]);
    for len in 14..=full.len() {
        let m = check(&mut dp, &full[..len]);
        let want = if len < 70 {
            FLAG_ERR_L3
        } else if len < 78 {
            FLAG_ERR_L4
        } else {
            FLAG_L4_VALID
        };
        assert_eq!(m.flags, want, "IPv6 cut at {len}");
    }
    // Malformed IPv4: IHL 4, version 5, total length below the header.
    let mut bad = tcp4(v4a(1), 1, v4b(2), 2);
    bad[14] = 0x44;
    assert_eq!(check(&mut dp, &bad).flags, FLAG_ERR_L3);
    bad[14] = 0x55;
    assert_eq!(check(&mut dp, &bad).flags, FLAG_ERR_L3);
    let mut short_total = tcp4(v4a(1), 1, v4b(2), 2);
    short_total[16..18].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(check(&mut dp, &short_total).flags, FLAG_ERR_L3);
    // TCP data offset below 5.
    let mut doff = tcp4(v4a(1), 1, v4b(2), 2);
    doff[14 + 20 + 12] = 0x40;
    assert_eq!(check(&mut dp, &doff).flags, FLAG_ERR_L4);
}

#[test]
fn count_only_passes_everything() {
    if !kernel_tests_enabled("count_only_passes_everything") {
        return;
    }
    let mut dp = load(MODE_COUNT_ONLY);
    for frame in [tcp4(v4a(1), 1, v4b(2), 2), eth(&[], 0x0806)] {
        let o = run(&mut dp, &frame);
        assert_eq!(o.action, XDP_PASS);
        assert!(
            o.written.is_none(),
            "count-only mode leaves the frame alone"
        );
        let m = o.twin;
        assert_eq!(o.meta, m, "count-only mode parses all the same");
        assert_eq!(
            o.delta,
            expected_delta(&m, Counter::PassCountOnly, o.unsteered)
        );
    }
}

/// Random mutations of valid frames: the kernel and userspace parsers agree
/// on every one of them (a fixed-seed xorshift, so failures reproduce).
#[test]
fn differential_on_mutated_frames() {
    if !kernel_tests_enabled("differential_on_mutated_frames") {
        return;
    }
    let mut dp = load(MODE_REDIRECT);
    let seeds = [
        tcp4(v4a(1), 1, v4b(2), 2),
        cat(&[
            &eth(&[(0x8100, 5), (0x8100, 6)], 0x86dd),
            &ipv6(v6(1), v6(2), 0, 40),
            &ext(44, 0),
            &frag6(6, 0, true, 1),
            &tcp(1, 2, 0),
        ]),
        cat(&[
            &eth(&[], 0x0800),
            &ipv4(v4a(1), v4b(2), 17, &[1, 1, 1, 0], 8, 0x2000),
            &udp(1, 2, 0),
        ]),
    ];
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for i in 0..3000 {
        let mut f = seeds[i % seeds.len()].clone();
        for _ in 0..1 + next() % 3 {
            let pos = (next() as usize) % f.len();
            f[pos] = next() as u8;
        }
        let cut = 14 + (next() as usize) % (f.len() - 13);
        f.truncate(cut);
        let o = run(&mut dp, &f);
        assert_eq!(o.twin, o.meta, "disagreement on {f:02x?}");
    }
}

/// With the metadata block off, the verifier knows the helper call is dead
/// and removes it: what lets the program load on kernels that refuse
/// `bpf_xdp_adjust_meta`. With it on (where allowed), the call stays. A
/// translated call names its helper by address, so a one-call reference
/// program tells which call is `bpf_xdp_adjust_meta`.
#[test]
fn metadata_off_leaves_no_adjust_meta_call() {
    if !kernel_tests_enabled("metadata_off_leaves_no_adjust_meta_call") {
        return;
    }
    use flowscope::capture::bpf_sys::{self, helper};
    use std::os::fd::AsFd;
    let mut off: Bed = Datapath::load_detached(config(MODE_REDIRECT), false, None)
        .expect("loads with metadata off, on every kernel")
        .into();
    let frame = tcp4(v4a(1), 1, v4b(2), 2);
    let o = run(&mut off, &frame);
    assert_eq!((o.written, o.meta), (None, o.twin));
    if !common::xdp::metadata_block_enabled(
        "metadata_off_leaves_no_adjust_meta_call (the call check)",
    ) {
        return;
    }
    let reference = bpf_sys::prog_load(
        bpf_sys::PROG_TYPE_XDP,
        &bpf_sys::only_calling(helper::XDP_ADJUST_META, 2),
        "fs_ref_meta",
    )
    .expect("the kernel allows the helper");
    let insns = bpf_sys::xlated_insns(reference.as_fd()).unwrap();
    let adjust_meta: Vec<i32> = bpf_sys::helper_calls(&insns).collect();
    assert_eq!(adjust_meta.len(), 1);
    let calls = off.dp.helper_calls().unwrap();
    assert!(!calls.is_empty(), "the program calls helpers (map lookups)");
    assert!(
        calls.iter().all(|c| *c != adjust_meta[0]),
        "bpf_xdp_adjust_meta ({}) still called: {calls:?}",
        adjust_meta[0]
    );
    let mut on: Bed = Datapath::load_detached(config(MODE_REDIRECT), true, None)
        .expect("loads")
        .into();
    assert!(on.dp.helper_calls().unwrap().contains(&adjust_meta[0]));
    let o = run(&mut on, &frame);
    assert_eq!(o.written, Some(o.twin));
}
