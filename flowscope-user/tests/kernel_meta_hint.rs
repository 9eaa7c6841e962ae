//! Tier 2: the metadata block the real XDP program builds (run with
//! `BPF_PROG_TEST_RUN`, read back from its per-CPU `COUNTERS` map, so on every
//! kernel) as a [`FrameHint`] never changes what [`FiveTuple`]
//! extracts. Frames built byte by byte (VLAN and QinQ, IPv4 options, IPv6
//! extension chains, fragments, ICMP, not IP), every truncation of them and
//! thousands of random mutations; for each, the hinted extraction must equal
//! the plain walk's.

mod common;

use common::{frames::*, kernel_tests_enabled};
use flowscope::capture::Datapath;
use flowscope::extract::{FiveTuple, FrameHint};
use flowscope::{FlowExtractor, PacketView, Timestamp};
use flowscope_common::{XdpConfig, config::MODE_REDIRECT};

fn seeds() -> Vec<Vec<u8>> {
    let t = tcp(40000, 443, 0x18);
    let u = udp(5353, 53, 12);
    let chain = cat(&[&ext(43, 0), &ext(60, 2), &ext(6, 1), &t]);
    let v6_udp = cat(&[&ext(17, 0), &u, &[0; 12]]);
    vec![
        cat(&[&eth(&[], 0x0800), &ipv4(v4a(1), v4b(2), 6, &[], 20, 0), &t]),
        cat(&[
            &eth(&[(0x8100, 10)], 0x0800),
            &ipv4(v4a(1), v4b(2), 6, &[], 20, 0x4000),
            &t,
        ]),
        cat(&[
            &eth(&[(0x88a8, 100), (0x8100, 0x200a)], 0x0800),
            &ipv4(v4a(3), v4b(4), 17, &[], 20, 0),
            &u,
            &[0; 12],
        ]),
        cat(&[
            &eth(&[(0x8100, 7)], 0x0800),
            &ipv4(v4a(1), v4b(2), 6, &[1, 1, 1, 0, 0x94, 4, 0, 0], 20, 0),
            &t,
        ]),
        cat(&[
            &eth(&[(0x8100, 7)], 0x0800),
            &ipv4(v4a(1), v4b(2), 17, &[], 20, 0x2000),
            &u,
        ]),
        cat(&[
            &eth(&[(0x8100, 7)], 0x0800),
            &ipv4(v4a(1), v4b(2), 17, &[], 8, 0x0003),
            &[0; 8],
        ]),
        cat(&[
            &eth(&[(0x8100, 8)], 0x0800),
            &ipv4(v4a(5), v4b(6), 1, &[], 8, 0),
            &icmp_echo(8),
        ]),
        cat(&[
            &eth(&[(0x8100, 9)], 0x86dd),
            &ipv6(v6(1), v6(2), 0, chain.len()),
            &chain,
        ]),
        cat(&[
            &eth(&[(0x88a8, 1), (0x8100, 2)], 0x86dd),
            &ipv6(v6(3), v6(4), 60, v6_udp.len()),
            &v6_udp,
        ]),
        cat(&[
            &eth(&[], 0x86dd),
            &ipv6(v6(1), v6(2), 44, 8 + 20),
            &frag6(6, 0, true, 9),
            &t,
        ]),
        cat(&[
            &eth(&[(0x8100, 5)], 0x86dd),
            &ipv6(v6(1), v6(2), 0, 8 + 8 + 8),
            &ext(44, 0),
            &frag6(17, 3, false, 9),
            &[0; 8],
        ]),
        cat(&[
            &eth(&[(0x8100, 5)], 0x86dd),
            &ipv6(v6(1), v6(2), 58, 8),
            &icmp_echo(128),
        ]),
        cat(&[
            &eth(&[(0x8100, 1), (0x8100, 2), (0x8100, 3)], 0x0800),
            &ipv4(v4a(1), v4b(2), 6, &[], 20, 0),
            &t,
        ]),
        cat(&[&eth(&[(0x8100, 1)], 0x0806), &[0; 28]]),
    ]
}

/// Runs `frame` through the program; asserts the hinted extraction equals
/// the plain one. True when the program's metadata gave a hint.
fn check(dp: &mut Datapath, frame: &[u8]) -> bool {
    let meta = common::xdp::test_run(dp, frame).parsed.meta;
    let Some(hint) = FrameHint::from_meta(&meta, frame.len()) else {
        return false;
    };
    let view = PacketView::new(frame, Timestamp(1));
    for x in [FiveTuple::bidirectional(), FiveTuple::directional()] {
        assert_eq!(
            x.extract(view.with_hint(Some(hint))),
            x.extract(view),
            "frame {frame:02x?}, metadata {meta:?}"
        );
    }
    true
}

#[test]
fn hints_from_the_xdp_program_never_change_the_extraction() {
    if !kernel_tests_enabled("hints_from_the_xdp_program_never_change_the_extraction") {
        return;
    }
    let mut dp = common::xdp::load(XdpConfig {
        mode: MODE_REDIRECT,
        sockets_per_queue: 1,
        hash_seed: 0x5eed,
        _reserved: 0,
    });
    let seeds = seeds();
    let mut hinted = 0;
    let mut frames = 0;
    for s in &seeds {
        // BPF_PROG_TEST_RUN needs at least an Ethernet header.
        for n in 14..=s.len() {
            hinted += usize::from(check(&mut dp, &s[..n]));
            frames += 1;
        }
    }
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for i in 0..4000 {
        let mut f = seeds[i % seeds.len()].clone();
        for _ in 0..1 + next() % 3 {
            let pos = 12 + (next() as usize) % (f.len() - 12);
            f[pos] = next() as u8;
        }
        if next().is_multiple_of(4) {
            let cut = 14 + (next() as usize) % (f.len() - 13);
            f.truncate(cut);
        }
        hinted += usize::from(check(&mut dp, &f));
        frames += 1;
    }
    eprintln!("{hinted} of {frames} frames had a hint");
    // Most frames stay IP after the link layer: the hinted reads ran.
    assert!(
        hinted * 2 > frames,
        "{hinted} of {frames} frames had a hint"
    );
}
