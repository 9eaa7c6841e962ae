//! A many-flows workload made of real TCP sessions: the whole TCP sessions
//! (first packet a SYN) of a few captures, copied once per flow with their
//! addresses rewritten so that every copy is a distinct flow, and their
//! packets interleaved round-robin across the flows (packet 0 of every
//! flow, then packet 1 of every flow that has one, and so on), so every
//! flow is open at once.
//!
//! Copy `i` of template `t` (`t = i % templates`): the client gets
//! 10.0.0.0/8 address `10.0.0.1 + i` (IPv6: `2001:db8:1::` + `i`), the
//! server `192.0.2.(1 + t % 254)` (IPv6: `2001:db8::` + `t + 1`); ports,
//! payload and everything else are the capture's. Checksums are left as
//! they were (nothing on the path verifies them).
//!
//! The replay is generated chunk by chunk into one reused buffer
//! ([`Sessions::fill`]), so a million flows need the templates and one chunk
//! in memory, not every frame of every copy.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use flowscope::pcap::PcapReader;
use flowscope::view::LinkType;

use crate::track::workload::Packet;

/// Time of the first packet (ns since the epoch).
pub const EPOCH_NS: u64 = 1_700_000_000_000_000_000;
/// Packet spacing: 1 µs (1 Mpps), as the synthetic workloads.
pub const GAP_NS: u64 = 1_000;
/// Most flows the address plan distinguishes (the client's 10.0.0.0/8).
pub const MAX_FLOWS: usize = (1 << 24) - 2;

/// One packet of a template session.
#[derive(Debug, Clone, Copy)]
struct TemplatePacket {
    /// Offset of the frame in [`Template::bytes`].
    offset: usize,
    len: u32,
    orig_len: u32,
    /// Offset of the IP header in the frame.
    ip: usize,
    v6: bool,
    /// Sent by the side that sent the SYN.
    from_client: bool,
}

/// One whole TCP session of a capture.
#[derive(Debug)]
struct Template {
    bytes: Vec<u8>,
    packets: Vec<TemplatePacket>,
}

/// The template sessions and how many flows copy them.
#[derive(Debug)]
pub struct Sessions {
    /// Longest first (see [`Replay`]).
    templates: Vec<Template>,
    flows: usize,
}

/// Where a replay stands: packet `round` of the flows left to visit in
/// that round, flow `block * templates + t` next.
#[derive(Debug, Clone, Copy, Default)]
pub struct Replay {
    round: usize,
    block: usize,
    t: usize,
    /// Packets generated so far (their times are `EPOCH_NS + k * GAP_NS`).
    emitted: u64,
}

/// The IP header offset of an Ethernet frame (one VLAN tag at most), and
/// whether it is IPv6; `None` for anything but IPv4/IPv6.
fn ip_offset(frame: &[u8]) -> Option<(usize, bool)> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    if ethertype == 0x8100 {
        off += 4;
        ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    }
    match ethertype {
        0x0800 => Some((off + 2, false)),
        0x86dd => Some((off + 2, true)),
        _ => None,
    }
}

/// An address (IPv4 in the first four bytes) and a port.
type Endpoint = ([u8; 16], u16);

/// Source and destination of a TCP packet, and its TCP flags byte; `None`
/// for other packets, IP fragments and IPv6 extension headers.
fn tcp_endpoints(frame: &[u8], ip: usize, v6: bool) -> Option<(Endpoint, Endpoint, u8)> {
    let hdr = frame.get(ip..)?;
    let (src, dst, l4) = if v6 {
        if *hdr.get(6)? != 6 {
            return None;
        }
        let mut s = [0; 16];
        let mut d = [0; 16];
        s.copy_from_slice(hdr.get(8..24)?);
        d.copy_from_slice(hdr.get(24..40)?);
        (s, d, 40)
    } else {
        let ihl = usize::from(hdr.first()? & 0x0f) * 4;
        let frag = u16::from_be_bytes([*hdr.get(6)?, *hdr.get(7)?]);
        if *hdr.get(9)? != 6 || frag & 0x3fff != 0 {
            return None;
        }
        let mut s = [0; 16];
        let mut d = [0; 16];
        s[..4].copy_from_slice(hdr.get(12..16)?);
        d[..4].copy_from_slice(hdr.get(16..20)?);
        (s, d, ihl)
    };
    let tcp = hdr.get(l4..l4 + 14)?;
    Some((
        (src, u16::from_be_bytes([tcp[0], tcp[1]])),
        (dst, u16::from_be_bytes([tcp[2], tcp[3]])),
        tcp[13],
    ))
}

/// Adds the whole TCP sessions of `path` (Ethernet frames only) to `out`.
fn load_capture(path: &Path, out: &mut Vec<Template>) -> Result<()> {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    let mut reader =
        PcapReader::open(path).with_context(|| format!("opening {}", path.display()))?;
    // Canonical endpoints → (template index, client), or None for a
    // session that does not start with a SYN.
    let mut sessions: HashMap<(Endpoint, Endpoint), Option<(usize, Endpoint)>> = HashMap::new();
    let first = out.len();
    while let Some(view) = reader
        .next_packet()
        .with_context(|| format!("reading {}", path.display()))?
    {
        if view.link != LinkType::Ethernet {
            continue;
        }
        let Some((ip, v6)) = ip_offset(view.frame) else {
            continue;
        };
        let Some((a, b, flags)) = tcp_endpoints(view.frame, ip, v6) else {
            continue;
        };
        let key = if a <= b { (a, b) } else { (b, a) };
        let entry = sessions.entry(key).or_insert_with(|| {
            (flags & (SYN | ACK) == SYN).then(|| {
                out.push(Template {
                    bytes: Vec::new(),
                    packets: Vec::new(),
                });
                (out.len() - 1, a)
            })
        });
        let Some((t, client)) = *entry else {
            continue;
        };
        if let Some(tpl) = out.get_mut(t) {
            tpl.packets.push(TemplatePacket {
                offset: tpl.bytes.len(),
                len: view.frame.len() as u32,
                orig_len: view.orig_len,
                ip,
                v6,
                from_client: a == client,
            });
            tpl.bytes.extend_from_slice(view.frame);
        }
    }
    anyhow::ensure!(
        out.len() > first,
        "{}: no whole TCP session (none starts with a SYN)",
        path.display()
    );
    Ok(())
}

impl Sessions {
    /// The whole TCP sessions of `paths`, copied into `flows` flows.
    pub fn load(paths: &[impl AsRef<Path>], flows: usize) -> Result<Self> {
        anyhow::ensure!(
            (1..=MAX_FLOWS).contains(&flows),
            "flows must be 1..={MAX_FLOWS}"
        );
        let mut templates = Vec::new();
        for p in paths {
            load_capture(p.as_ref(), &mut templates)?;
        }
        templates.sort_by_key(|t| std::cmp::Reverse(t.packets.len()));
        Ok(Self { templates, flows })
    }

    /// Template sessions.
    pub fn templates(&self) -> usize {
        self.templates.len()
    }

    /// Flows (copies) in one replay.
    pub fn flows(&self) -> usize {
        self.flows
    }

    /// Copies of template `t`.
    fn copies(&self, t: usize) -> usize {
        let n = self.templates.len();
        self.flows / n + usize::from(t < self.flows % n)
    }

    /// Packets and frame bytes of one whole replay.
    pub fn totals(&self) -> (u64, u64) {
        self.templates
            .iter()
            .enumerate()
            .fold((0, 0), |(p, b), (t, tpl)| {
                let c = self.copies(t) as u64;
                let bytes: u64 = tpl.packets.iter().map(|p| u64::from(p.len)).sum();
                (p + c * tpl.packets.len() as u64, b + c * bytes)
            })
    }

    /// Generates the next packets of `replay` into `bytes` and `packets`
    /// (both cleared first), at most `max` of them; `packets` times are
    /// relative to [`EPOCH_NS`]. Returns false once the replay is over.
    pub fn fill(
        &self,
        replay: &mut Replay,
        max: usize,
        bytes: &mut Vec<u8>,
        packets: &mut Vec<Packet>,
    ) -> bool {
        bytes.clear();
        packets.clear();
        let n = self.templates.len();
        let blocks = self.flows.div_ceil(n);
        while packets.len() < max {
            // Templates are longest first: those with a packet `round`
            // are a prefix.
            let live = self
                .templates
                .partition_point(|t| t.packets.len() > replay.round);
            if live == 0 {
                break;
            }
            let flow = replay.block * n + replay.t;
            if replay.block >= blocks || flow >= self.flows {
                replay.round += 1;
                replay.block = 0;
                replay.t = 0;
                continue;
            }
            if replay.t >= live {
                replay.block += 1;
                replay.t = 0;
                continue;
            }
            if let Some((tpl, p)) = self
                .templates
                .get(replay.t)
                .and_then(|tpl| Some((tpl, tpl.packets.get(replay.round)?)))
            {
                let start = bytes.len();
                bytes.extend_from_slice(
                    tpl.bytes
                        .get(p.offset..p.offset + p.len as usize)
                        .unwrap_or_default(),
                );
                rewrite(
                    bytes.get_mut(start..).unwrap_or_default(),
                    p,
                    flow,
                    replay.t,
                );
                packets.push(Packet {
                    offset: start,
                    len: p.len,
                    orig_len: p.orig_len,
                    rel_ns: replay.emitted * GAP_NS,
                });
                replay.emitted += 1;
            }
            replay.t += 1;
        }
        !packets.is_empty()
    }
}

/// Gives the frame of `p` copy `flow`'s addresses (see the module docs).
fn rewrite(frame: &mut [u8], p: &TemplatePacket, flow: usize, t: usize) {
    let (client, server, width, src, dst) = if p.v6 {
        let mut c = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        c[12..].copy_from_slice(&(flow as u32).to_be_bytes());
        let mut s = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        s[12..].copy_from_slice(&(t as u32 + 1).to_be_bytes());
        (c, s, 16, 8, 24)
    } else {
        let mut c = [0; 16];
        c[..4].copy_from_slice(&(0x0a00_0001 + flow as u32).to_be_bytes());
        let mut s = [0; 16];
        s[..4].copy_from_slice(&[192, 0, 2, 1 + (t % 254) as u8]);
        (c, s, 4, 12, 16)
    };
    let (from, to) = if p.from_client {
        (client, server)
    } else {
        (server, client)
    };
    for (off, addr) in [(src, from), (dst, to)] {
        if let Some(field) = frame.get_mut(p.ip + off..p.ip + off + width) {
            field.copy_from_slice(addr.get(..width).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XSS: &str = "../../shared/pcaps/ndpi__WebattackXSS.pcap";
    const TLS: &str = "../../shared/pcaps/ndpi__tls_long_cert.pcap";

    /// Every packet of every copy, in replay order.
    fn replay_all(s: &Sessions, chunk: usize) -> (Vec<u8>, Vec<Packet>) {
        let (mut all, mut pkts) = (Vec::new(), Vec::new());
        let (mut bytes, mut packets) = (Vec::new(), Vec::new());
        let mut r = Replay::default();
        while s.fill(&mut r, chunk, &mut bytes, &mut packets) {
            for p in &packets {
                pkts.push(Packet {
                    offset: all.len(),
                    ..*p
                });
                all.extend_from_slice(&bytes[p.offset..p.offset + p.len as usize]);
            }
        }
        (all, pkts)
    }

    #[test]
    fn copies_are_distinct_flows_with_the_templates_packets() {
        let paths = [XSS, TLS];
        let flows = 2000;
        let s = Sessions::load(&paths, flows).unwrap();
        // tshark -r ... -q -z conv,tcp: 661 + 1 conversations; those whose
        // first packet is a SYN are the templates.
        assert!(s.templates() > 1 && s.templates() <= 662);
        let (total, total_bytes) = s.totals();
        let (all, pkts) = replay_all(&s, 777);
        assert_eq!(pkts.len() as u64, total);
        assert_eq!(all.len() as u64, total_bytes);
        // Times strictly increasing, 1 µs apart.
        assert!(pkts.windows(2).all(|w| w[1].rel_ns == w[0].rel_ns + GAP_NS));
        // The first `flows` packets are each flow's SYN, all from distinct
        // clients in 10.0.0.0/8 to servers in 192.0.2.0/24.
        let mut clients = std::collections::HashSet::new();
        for p in &pkts[..flows] {
            let f = &all[p.offset..p.offset + p.len as usize];
            let (ip, v6) = ip_offset(f).unwrap();
            assert!(!v6);
            let ((src, _), (dst, _), flags) = tcp_endpoints(f, ip, v6).unwrap();
            assert_eq!(flags & 0x12, 0x02, "a SYN");
            assert_eq!(src[0], 10);
            assert_eq!(dst[..3], [192, 0, 2]);
            assert!(clients.insert(src));
        }
        assert_eq!(clients.len(), flows);
        // Every packet is packet `round` of its flow's template, the
        // addresses aside; each flow's packets come in template order.
        let mut seen: HashMap<usize, usize> = HashMap::new();
        for p in &pkts {
            let f = &all[p.offset..p.offset + p.len as usize];
            let (ip, v6) = ip_offset(f).unwrap();
            let ((sa, _), (da, _), _) = tcp_endpoints(f, ip, v6).unwrap();
            let client = if sa[0] == 10 { sa } else { da };
            let flow = (u32::from_be_bytes(client[..4].try_into().unwrap()) - 0x0a00_0001) as usize;
            let round = seen.entry(flow).or_default();
            let tpl = &s.templates[flow % s.templates()];
            let tp = tpl.packets[*round];
            *round += 1;
            let mut want = tpl.bytes[tp.offset..tp.offset + tp.len as usize].to_vec();
            rewrite(&mut want, &tp, flow, flow % s.templates());
            assert_eq!(f, &want[..]);
            let mut orig = f.to_vec();
            orig[ip + 12..ip + 20]
                .copy_from_slice(&tpl.bytes[tp.offset + ip + 12..tp.offset + ip + 20]);
            assert_eq!(orig, &tpl.bytes[tp.offset..tp.offset + tp.len as usize]);
        }
        assert_eq!(seen.len(), flows);
        assert!(
            seen.iter()
                .all(|(f, n)| *n == s.templates[f % s.templates()].packets.len())
        );
    }

    #[test]
    fn a_capture_without_whole_sessions_is_refused() {
        // QUIC only (tshark -z conv,tcp: no TCP conversation).
        let e = Sessions::load(&["../../shared/pcaps/ndpi__quic-27.pcap"], 1);
        assert!(e.is_err());
    }
}
