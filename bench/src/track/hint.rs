//! `trackbench --hints`: ns/packet of [`FiveTuple`] extraction alone, plain
//! (`extract`, the layer walk) against hinted (`FrameHint::from_meta` then
//! `extract` of the view `with_hint`, what a worker does with the XDP metadata), on frames
//! with VLAN tags, IPv4 options and IPv6 extension headers, and untagged
//! frames as the control.
//!
//! The metadata of each frame comes from `flowscope::wire::classify`, the
//! userspace twin of the XDP parser (a kernel test keeps them equal), built
//! before timing; reading it from the UMEM is not timed.

use std::hint::black_box;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use anyhow::{Result, ensure};
use flowscope::extract::{FiveTuple, FrameHint};
use flowscope::{FlowExtractor, PacketView, Timestamp};
use flowscope_common::XdpMeta;

use super::Stats;
use crate::frame::{self, FrameSpec, IpPair, Transport};

/// Frames per kind (distinct flows, by source port).
const FLOWS: u16 = 256;
/// Frame length before tags and extension headers are inserted.
const FRAME_LEN: usize = 128;

/// One row of the table: how the base frame is changed.
#[derive(Debug, Clone, Copy)]
struct Kind {
    name: &'static str,
    v6: bool,
    transport: Transport,
    /// VLAN tags (TPID) inserted after the MAC addresses.
    tags: &'static [u16],
    /// IPv4 options (4 bytes) or an IPv6 hop-by-hop header (8 bytes).
    ip_extra: bool,
}

const KINDS: [Kind; 6] = [
    Kind {
        name: "untagged IPv4 TCP (control: no hint, `from_meta` only)",
        v6: false,
        transport: Transport::Tcp,
        tags: &[],
        ip_extra: false,
    },
    Kind {
        name: "802.1Q IPv4 TCP",
        v6: false,
        transport: Transport::Tcp,
        tags: &[0x8100],
        ip_extra: false,
    },
    Kind {
        name: "QinQ IPv4 UDP",
        v6: false,
        transport: Transport::Udp,
        tags: &[0x88a8, 0x8100],
        ip_extra: false,
    },
    Kind {
        name: "802.1Q IPv4 with options, TCP",
        v6: false,
        transport: Transport::Tcp,
        tags: &[0x8100],
        ip_extra: true,
    },
    Kind {
        name: "802.1Q IPv6 TCP",
        v6: true,
        transport: Transport::Tcp,
        tags: &[0x8100],
        ip_extra: false,
    },
    Kind {
        name: "802.1Q IPv6 hop-by-hop, UDP",
        v6: true,
        transport: Transport::Udp,
        tags: &[0x8100],
        ip_extra: true,
    },
];

/// The frames of `kind`, one per flow.
fn frames(kind: Kind) -> Result<Vec<Vec<u8>>> {
    let ips = if kind.v6 {
        IpPair::V6(
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
        )
    } else {
        IpPair::V4(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 2))
    };
    (0..FLOWS)
        .map(|i| {
            let spec = FrameSpec {
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: [2, 0, 0, 0, 0, 2],
                ips,
                transport: kind.transport,
                src_port: 10_000 + i,
                dst_port: 443,
                tcp_seq: 1,
                tcp_ack: 1,
            };
            let mut f = vec![0; FRAME_LEN];
            frame::write(&spec, FRAME_LEN, &mut f)?;
            if kind.ip_extra {
                insert_ip_extra(&mut f, kind.v6);
            }
            for (n, tpid) in kind.tags.iter().enumerate() {
                let at = 12 + 4 * n;
                let tci = 100 + n as u16;
                f.splice(at..at, [tpid.to_be_bytes(), tci.to_be_bytes()].concat());
            }
            Ok(f)
        })
        .collect()
}

/// Inserts 4 bytes of IPv4 options (NOP, NOP, NOP, EOL) or an 8-byte IPv6
/// hop-by-hop header into the untagged frame `f`, fixing the lengths.
fn insert_ip_extra(f: &mut Vec<u8>, v6: bool) {
    const IP: usize = frame::ETH_LEN;
    let add = |f: &mut [u8], at: usize, n: u16| {
        let v = u16::from_be_bytes([f[at], f[at + 1]]) + n;
        f[at..at + 2].copy_from_slice(&v.to_be_bytes());
    };
    if v6 {
        let next = f[IP + 6];
        f[IP + 6] = 0;
        add(f, IP + 4, 8);
        f.splice(IP + 40..IP + 40, [next, 0, 1, 4, 0, 0, 0, 0]);
    } else {
        f[IP] = 0x46;
        add(f, IP + 2, 4);
        f.splice(IP + 20..IP + 20, [1, 1, 1, 0]);
    }
}

/// ns/packet of `passes` passes over `frames`, plain or hinted.
fn time(frames: &[(Vec<u8>, XdpMeta)], passes: u64, hinted: bool) -> f64 {
    let x = FiveTuple::bidirectional();
    let start = Instant::now();
    for _ in 0..passes {
        for (f, meta) in frames {
            let view = PacketView::new(f, Timestamp(1));
            let e = match FrameHint::from_meta(black_box(meta), f.len()) {
                Some(h) if hinted => x.extract(view.with_hint(Some(h))),
                _ => x.extract(view),
            };
            black_box(e.ok());
        }
    }
    start.elapsed().as_nanos() as f64 / (passes as f64 * frames.len() as f64)
}

/// Times every kind `runs` times, interleaved, about `packets` packets per
/// run and side, and writes a Markdown table of medians (min–max) to `out`.
///
/// # Errors
/// A frame that cannot be built, a hinted extraction that differs from the
/// plain one, or `out`.
pub fn bench(runs: usize, packets: u64, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "| frame | plain `extract` ns/pkt | hinted (`from_meta` + `extract` `with_hint`) ns/pkt | plain ÷ hinted |"
    )?;
    writeln!(out, "|---|--:|--:|--:|")?;
    for kind in KINDS {
        let frames: Vec<(Vec<u8>, XdpMeta)> = frames(kind)?
            .into_iter()
            .map(|f| {
                let m = flowscope::wire::classify(&f, 1);
                (f, m)
            })
            .collect();
        let x = FiveTuple::bidirectional();
        for (f, m) in &frames {
            let view = PacketView::new(f, Timestamp(1));
            if let Some(h) = FrameHint::from_meta(m, f.len()) {
                ensure!(
                    x.extract(view.with_hint(Some(h))) == x.extract(view),
                    "{}: hinted and plain extraction differ on {f:02x?}",
                    kind.name
                );
            }
        }
        let passes = packets.div_ceil(frames.len() as u64).max(1);
        let (mut plain, mut hinted) = (Vec::new(), Vec::new());
        for r in 0..runs.max(1) {
            // Alternate which side runs first.
            let first = r % 2 == 1;
            let a = time(&frames, passes, first);
            let b = time(&frames, passes, !first);
            let (p, h) = if first { (b, a) } else { (a, b) };
            plain.push(p);
            hinted.push(h);
        }
        let (Some(p), Some(h)) = (Stats::of(&plain), Stats::of(&hinted)) else {
            continue;
        };
        writeln!(
            out,
            "| {} | **{:.1}** ({:.1}–{:.1}) | **{:.1}** ({:.1}–{:.1}) | {:.2}× |",
            kind.name,
            p.median,
            p.min,
            p.max,
            h.median,
            h.min,
            h.max,
            p.median / h.median
        )?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_builds_frames_the_parser_reads_as_intended() {
        for kind in KINDS {
            for f in frames(kind).unwrap().iter().take(2) {
                let m = flowscope::wire::classify(f, 1);
                let e = FiveTuple::directional()
                    .extract(PacketView::new(f, Timestamp(1)))
                    .unwrap();
                assert_eq!(usize::from(m.vlan_count), kind.tags.len(), "{}", kind.name);
                let l4 = m.l4_offset as usize;
                let ip = m.l3_offset as usize;
                let extra = usize::from(kind.ip_extra) * if kind.v6 { 8 } else { 4 };
                let base = if kind.v6 { 40 } else { 20 };
                assert_eq!(l4 - ip, base + extra, "{}", kind.name);
                assert_eq!(
                    (e.key.dst_port(), e.key.protocol(), e.vlan[0]),
                    (
                        443,
                        kind.transport.number(),
                        if kind.tags.is_empty() { 0 } else { 100 }
                    ),
                    "{}",
                    kind.name
                );
            }
        }
    }
}
