//! SYN-flood mode of the generator: every flood frame is a SYN of a distinct
//! flow from a pseudo-random source address and port, with a few long,
//! well-formed TCP connections interleaved, to check that a flow table much
//! smaller than the flood keeps its memory bound, counts its evictions and
//! still tracks the connections that completed a handshake.
//!
//! Flood frame `n` (numbered over all queues; queue `q` sends the `n` with
//! `n % queues == q`) is fully determined by `n` and the seed:
//! even `n` are IPv6 from `2001:db8:f100::/48` (the low 64 bits of the
//! source are a bijective mix of `n`, so sources never repeat), odd `n` are
//! IPv4 from 198.51.100.1–254 with the (address, port) pair a permutation of
//! `n / 2` over all 254 × 64 512 pairs (distinct up to
//! [`MAX_FLOOD_FRAMES`]). Destinations: 203.0.113.10–13 or
//! 2001:db8:d::1–4, port 80 or 443.
//!
//! Established connection `k` (on queue `k % queues`) goes from 203.0.113.100
//! (even `k`) or `2001:db8:e::k` (odd `k`), port `40000 + k`, to
//! 198.51.100.200 or `2001:db8:d::100`, port 443: SYN, SYN-ACK, ACK back to
//! back at a point of the first half of its queue's flood, then
//! [`CONN_DATA_FRAMES`] data segments per direction spread evenly over the
//! rest of the flood, then FIN-ACK both ways and a last ACK after the flood.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::flows::{self, Flow};
use crate::frame::{self, ETH_LEN, FrameSpec, IpPair, MAX_FRAME_LEN, Transport};
use crate::generator::{self, Config, Error, FlowReport, QueueReport, Report};
use crate::packet_socket::{MAX_BATCH, PacketSocket};

/// Distinct IPv4 (source address, source port) pairs of the flood.
const V4_PAIRS: u64 = 254 * 64_512;
/// Multiplier of the IPv4 permutation: a prime, so coprime with [`V4_PAIRS`].
const V4_MULT: u64 = 2_654_435_761;
/// Most flood frames that are all distinct flows.
pub const MAX_FLOOD_FRAMES: u64 = 2 * V4_PAIRS;
/// Most established connections.
pub const MAX_ESTABLISHED: u32 = 10_000;
/// Data segments each established connection sends per direction.
pub const CONN_DATA_FRAMES: u32 = 10;
/// Frames of one connection: handshake, data both ways, FIN-ACK both ways
/// and the last ACK.
const CONN_FRAMES: u32 = 3 + 2 * CONN_DATA_FRAMES + 3;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const SYN_ACK: u8 = 0x12;
const FIN_ACK: u8 = 0x11;
/// What [`frame::write`] puts in every TCP segment.
const PSH_ACK: u8 = 0x18;

/// What the flood adds to a [`Config`].
#[derive(Clone, Copy, Debug)]
pub struct FloodConfig {
    /// Long connections interleaved with the flood.
    pub established: u32,
    /// Seed of the pseudo-random sources; the same seed sends the same frames.
    pub seed: u64,
}

/// Sends `cfg.frames` flood SYNs (each a distinct flow) plus the frames of
/// `flood.established` connections, over `cfg.queues` queues at
/// `cfg.rate_pps` frames per second in total. `cfg.size` is the length of
/// the connections' data frames; `cfg.flows`, `both_directions` and `ipv6`
/// are not used. The report lists the connections only.
///
/// # Errors
/// [`Error::Config`] for more than [`MAX_FLOOD_FRAMES`] frames or
/// [`MAX_ESTABLISHED`] connections, and the errors of [`generator::run`].
pub fn run(cfg: &Config, flood: FloodConfig) -> Result<Report, Error> {
    if cfg.frames > MAX_FLOOD_FRAMES {
        return Err(Error::Config(format!(
            "--frames {} exceeds the {MAX_FLOOD_FRAMES} distinct flows of --syn-flood",
            cfg.frames
        )));
    }
    if flood.established > MAX_ESTABLISHED {
        return Err(Error::Config(format!(
            "--established must be at most {MAX_ESTABLISHED}"
        )));
    }
    generator::run_queues(cfg, move |sock, queue, cpu, cfg| {
        send_queue(sock, queue, cpu, cfg, flood)
    })
}

/// SplitMix64's output function: a bijection of `u64`.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The SYN of flood flow `n` (`n < MAX_FLOOD_FRAMES`).
pub fn flood_spec(n: u64, seed: u64, a_mac: [u8; 6], b_mac: [u8; 6]) -> FrameSpec {
    let h = mix(n.wrapping_add(mix(seed)));
    let dst = (h >> 8) % 4;
    let (ips, src_port) = if n.is_multiple_of(2) {
        let src = Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xf100,
            0,
            (h >> 48) as u16,
            (h >> 32) as u16,
            (h >> 16) as u16,
            h as u16,
        );
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0xd, 0, 0, 0, 0, 1 + dst as u16);
        (IpPair::V6(src, dst), 1024 + ((h >> 20) % 64_512) as u16)
    } else {
        let p = ((n / 2) % V4_PAIRS * V4_MULT + mix(seed) % V4_PAIRS) % V4_PAIRS;
        let src = Ipv4Addr::new(198, 51, 100, 1 + (p % 254) as u8);
        let dst = Ipv4Addr::new(203, 0, 113, 10 + dst as u8);
        (IpPair::V4(src, dst), 1024 + (p / 254) as u16)
    };
    FrameSpec {
        src_mac: a_mac,
        dst_mac: b_mac,
        ips,
        transport: Transport::Tcp,
        src_port,
        dst_port: if h & 1 == 0 { 80 } else { 443 },
        tcp_seq: (h >> 32) as u32,
        tcp_ack: 0,
    }
}

/// The flow of established connection `k`.
pub fn conn_flow(k: u32) -> Flow {
    let ips = if k.is_multiple_of(2) {
        IpPair::V4(
            Ipv4Addr::new(203, 0, 113, 100),
            Ipv4Addr::new(198, 51, 100, 200),
        )
    } else {
        IpPair::V6(
            Ipv6Addr::new(0x2001, 0xdb8, 0xe, 0, 0, 0, (k >> 16) as u16, k as u16),
            Ipv6Addr::new(0x2001, 0xdb8, 0xd, 0, 0, 0, 0, 0x100),
        )
    };
    Flow {
        index: k,
        transport: Transport::Tcp,
        ips,
        // k <= MAX_ESTABLISHED, so the port fits.
        a_port: 40_000 + k as u16,
        b_port: 443,
    }
}

/// Replaces the TCP flags of a frame from [`frame::write`] and updates the
/// TCP checksum incrementally (RFC 1624, eqn. 3).
fn set_tcp_flags(frame: &mut [u8], flags: u8) {
    let ip_len = if frame[12..14] == [0x86, 0xdd] {
        40
    } else {
        20
    };
    let tcp = &mut frame[ETH_LEN + ip_len..];
    let old = u16::from_be_bytes([tcp[12], tcp[13]]);
    tcp[13] = flags;
    let new = u16::from_be_bytes([tcp[12], tcp[13]]);
    let hc = u16::from_be_bytes([tcp[16], tcp[17]]);
    let csum = checksum::finish(u64::from(!hc) + u64::from(!old) + u64::from(new));
    tcp[16..18].copy_from_slice(&csum.to_be_bytes());
}

/// One established connection being sent.
struct Conn {
    report: FlowReport,
    /// Flood position of the handshake.
    start: u64,
    /// Index of the next frame in its plan, `0..CONN_FRAMES`.
    next: u32,
    seq_a: u32,
    seq_b: u32,
    /// Length of its data frames.
    len: usize,
}

impl Conn {
    /// Flood position (frames of the queue's flood sent) at which the next
    /// frame is due; `None` when done.
    fn due(&self, flood_frames: u64) -> Option<u64> {
        let d = u64::from(CONN_DATA_FRAMES) * 2;
        match u64::from(self.next) {
            0..3 => Some(self.start),
            i if i < 3 + d => Some(self.start + (flood_frames - self.start) * (i - 2) / (d + 1)),
            i if i < u64::from(CONN_FRAMES) => Some(flood_frames),
            _ => None,
        }
    }

    /// Writes the next frame into `buf`; returns (A→B?, length).
    fn write_next(&mut self, cfg: &Config, buf: &mut [u8]) -> Result<(bool, usize), Error> {
        let i = self.next;
        self.next += 1;
        let header = frame::headers_len(self.report.flow.ips, Transport::Tcp);
        let data_end = 3 + 2 * CONN_DATA_FRAMES;
        let (ab, flags, len) = match i {
            0 => (true, SYN, header),
            1 => (false, SYN_ACK, header),
            2 => (true, ACK, header),
            i if i < data_end => ((i - 3) % 2 == 0, PSH_ACK, self.len),
            i if i == data_end => (true, FIN_ACK, header),
            i if i == data_end + 1 => (false, FIN_ACK, header),
            _ => (true, ACK, header),
        };
        let f = &self.report.flow;
        let (seq, ack) = if ab {
            (self.seq_a, if flags == SYN { 0 } else { self.seq_b })
        } else {
            (self.seq_b, self.seq_a)
        };
        let spec = FrameSpec {
            src_mac: if ab { cfg.a_mac } else { cfg.b_mac },
            dst_mac: if ab { cfg.b_mac } else { cfg.a_mac },
            ips: if ab { f.ips } else { f.ips.reversed() },
            transport: Transport::Tcp,
            src_port: if ab { f.a_port } else { f.b_port },
            dst_port: if ab { f.b_port } else { f.a_port },
            tcp_seq: seq,
            tcp_ack: ack,
        };
        frame::write(&spec, len, buf).map_err(|e| Error::Config(e.to_string()))?;
        if flags != PSH_ACK {
            set_tcp_flags(&mut buf[..len], flags);
        }
        // SYN and FIN take one sequence number, data its length.
        let used = if flags & (SYN | 0x01) != 0 {
            1
        } else {
            (len - header) as u32
        };
        if ab {
            self.seq_a = self.seq_a.wrapping_add(used);
        } else {
            self.seq_b = self.seq_b.wrapping_add(used);
        }
        Ok((ab, len))
    }
}

fn send_queue(
    sock: &PacketSocket,
    queue: usize,
    cpu: usize,
    cfg: &Config,
    flood: FloodConfig,
) -> Result<QueueReport, Error> {
    let queues = cfg.queues as u64;
    let flood_frames = flows::frames_of(queue as u32, cfg.frames, cfg.queues as u32);
    let ks: Vec<u32> = (queue as u32..flood.established)
        .step_by(cfg.queues)
        .collect();
    let n_conns = ks.len() as u64;
    let mut conns: Vec<Conn> = ks
        .iter()
        .enumerate()
        .map(|(j, &k)| {
            let flow = conn_flow(k);
            let seq_a = mix(u64::from(k) ^ flood.seed) as u32;
            Conn {
                report: FlowReport::new(flow, queue),
                start: flood_frames * j as u64 / (2 * n_conns),
                next: 0,
                seq_a,
                seq_b: seq_a ^ 0x5555_5555,
                len: cfg.size.max(frame::headers_len(flow.ips, Transport::Tcp)),
            }
        })
        .collect();
    let mut left = flood_frames + n_conns * u64::from(CONN_FRAMES);
    let mut pos = 0u64;
    let mut bufs = vec![[0u8; MAX_FRAME_LEN]; MAX_BATCH];
    // Per batch slot: (connection index or usize::MAX for the flood, A→B?, length).
    let mut slots = [(usize::MAX, true, 0usize); MAX_BATCH];
    let mut report = QueueReport {
        queue,
        cpu,
        frames: 0,
        bytes: 0,
        retries: 0,
        flows: Vec::new(),
    };
    let started = std::time::Instant::now();
    let per_queue = cfg.rate_pps.map(|r| (r as f64 / queues as f64).max(1.0));
    while left > 0 {
        if let Some(rate) = per_queue {
            generator::pace(started, report.frames, rate);
        }
        let mut n = 0;
        while n < MAX_BATCH && left > 0 {
            let due = conns
                .iter()
                .position(|c| c.due(flood_frames).is_some_and(|d| d <= pos));
            slots[n] = match due {
                Some(c) => {
                    let (ab, len) = conns[c].write_next(cfg, &mut bufs[n])?;
                    (c, ab, len)
                }
                None => {
                    let spec = flood_spec(
                        queue as u64 + queues * pos,
                        flood.seed,
                        cfg.a_mac,
                        cfg.b_mac,
                    );
                    let len = spec.header_len();
                    frame::write(&spec, len, &mut bufs[n])
                        .map_err(|e| Error::Config(e.to_string()))?;
                    set_tcp_flags(&mut bufs[n][..len], SYN);
                    pos += 1;
                    (usize::MAX, true, len)
                }
            };
            n += 1;
            left -= 1;
        }
        let frames: [&[u8]; MAX_BATCH] = std::array::from_fn(|k| &bufs[k][..slots[k].2]);
        generator::send_all(sock, &frames[..n], &mut report.retries, &cfg.iface, queue)?;
        for &(c, ab, len) in &slots[..n] {
            let len = len as u64;
            if let Some(conn) = conns.get_mut(c) {
                conn.report.count(ab, len);
            }
            report.frames += 1;
            report.bytes += len;
        }
    }
    report.flows = conns.into_iter().map(|c| c.report).collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    /// The transport checksum verifies when the one's-complement sum over
    /// pseudo-header and segment is all ones.
    fn tcp_checksum_ok(f: &[u8]) -> bool {
        let (ip_len, pseudo) = if f[12..14] == [0x86, 0xdd] {
            (40, checksum::add(0, &f[22..54]))
        } else {
            (20, checksum::add(0, &f[26..34]))
        };
        let seg = &f[ETH_LEN + ip_len..];
        checksum::finish(checksum::add(pseudo + 6 + seg.len() as u64, seg)) == 0
    }

    #[test]
    fn flood_flows_are_distinct_documentation_syns() {
        let mut seen = HashSet::new();
        let mut buf = [0u8; MAX_FRAME_LEN];
        for n in 0..200_000 {
            let s = flood_spec(n, 7, A, B);
            // Sources alone never repeat, so neither do flows.
            let src = match s.ips {
                IpPair::V4(a, _) => std::net::IpAddr::V4(a),
                IpPair::V6(a, _) => std::net::IpAddr::V6(a),
            };
            assert!(seen.insert((src, s.src_port)), "frame {n}");
            match s.ips {
                IpPair::V4(a, b) => {
                    assert_eq!(&a.octets()[..3], &[198, 51, 100]);
                    assert_eq!(&b.octets()[..3], &[203, 0, 113]);
                }
                IpPair::V6(a, b) => {
                    assert_eq!(&a.segments()[..2], &[0x2001, 0xdb8]);
                    assert_eq!(&b.segments()[..2], &[0x2001, 0xdb8]);
                }
            }
            if n < 1000 {
                let len = s.header_len();
                frame::write(&s, len, &mut buf).unwrap();
                set_tcp_flags(&mut buf[..len], SYN);
                let tcp = len - 20;
                assert_eq!(buf[tcp + 13], SYN);
                assert!(tcp_checksum_ok(&buf[..len]), "frame {n}");
            }
        }
        // The same seed repeats the frames, another one does not.
        assert_eq!(flood_spec(5, 7, A, B), flood_spec(5, 7, A, B));
        assert_ne!(flood_spec(5, 7, A, B), flood_spec(5, 8, A, B));
    }

    #[test]
    fn ipv4_pairs_are_a_permutation() {
        // Over the whole IPv4 range, every (address, port) pair once.
        let mut seen = vec![false; V4_PAIRS as usize];
        for m in 0..V4_PAIRS {
            let s = flood_spec(2 * m + 1, 3, A, B);
            let IpPair::V4(a, _) = s.ips else {
                panic!("odd frames are IPv4")
            };
            let p = (u64::from(s.src_port) - 1024) * 254 + u64::from(a.octets()[3]) - 1;
            assert!(
                !std::mem::replace(&mut seen[p as usize], true),
                "pair {p} twice"
            );
        }
    }

    #[test]
    fn connection_frames_are_a_valid_exchange() {
        let cfg = Config {
            iface: String::new(),
            frames: 0,
            flows: 1,
            size: 200,
            both_directions: false,
            queues: 1,
            ipv6: false,
            a_mac: A,
            b_mac: B,
            rate_pps: None,
        };
        for k in [0, 1] {
            let flow = conn_flow(k);
            let mut c = Conn {
                report: FlowReport::new(flow, 0),
                start: 0,
                next: 0,
                seq_a: 1000,
                seq_b: 5000,
                len: 200,
            };
            let mut buf = [0u8; MAX_FRAME_LEN];
            let mut got = Vec::new();
            while c.due(0).is_some() {
                let (ab, len) = c.write_next(&cfg, &mut buf).unwrap();
                assert!(tcp_checksum_ok(&buf[..len]));
                let off = ETH_LEN + if k == 0 { 20 } else { 40 };
                let seq = u32::from_be_bytes(buf[off + 4..off + 8].try_into().unwrap());
                let ack = u32::from_be_bytes(buf[off + 8..off + 12].try_into().unwrap());
                got.push((ab, buf[off + 13], seq, ack, len));
            }
            assert_eq!(got.len(), CONN_FRAMES as usize);
            let h = frame::headers_len(flow.ips, Transport::Tcp);
            let p = 200 - h as u32;
            let d = CONN_DATA_FRAMES;
            assert_eq!(got[0], (true, SYN, 1000, 0, h));
            assert_eq!(got[1], (false, SYN_ACK, 5000, 1001, h));
            assert_eq!(got[2], (true, ACK, 1001, 5001, h));
            assert_eq!(got[3], (true, PSH_ACK, 1001, 5001, 200));
            assert_eq!(got[4], (false, PSH_ACK, 5001, 1001 + p, 200));
            let (sa, sb) = (1001 + d * p, 5001 + d * p);
            let end = got.len() - 3;
            assert_eq!(got[end], (true, FIN_ACK, sa, sb, h));
            assert_eq!(got[end + 1], (false, FIN_ACK, sb, sa + 1, h));
            assert_eq!(got[end + 2], (true, ACK, sa + 1, sb + 1, h));
        }
    }
}
