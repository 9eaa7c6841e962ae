//! The frames a tracker benchmark replays: built or loaded once, kept in one
//! contiguous buffer, replayed in passes with time moving forward.

use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, Result};
use flowscope::pcap::PcapReader;
use flowscope::view::LinkType;

use crate::frame::{self, FrameSpec, IpPair, Transport};

/// Time of the first packet of a synthetic workload (ns since the epoch).
const SYNTHETIC_EPOCH_NS: u64 = 1_700_000_000_000_000_000;
/// Packet spacing of synthetic workloads: 1 µs (1 Mpps).
const SYNTHETIC_GAP_NS: u64 = 1_000;
/// Frame length of synthetic frames: Ethernet + IPv4 + TCP + 1 payload
/// byte, as in flowscope 0.3.0's `tracker` bench.
const SYNTHETIC_LEN: usize = frame::ETH_LEN + 20 + 20 + 1;

/// One frame of a workload.
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    /// Offset of the frame in [`Workload::bytes`].
    pub offset: usize,
    /// Captured length.
    pub len: u32,
    /// Length on the wire.
    pub orig_len: u32,
    /// Time relative to the workload's first packet (ns).
    pub rel_ns: u64,
}

/// A named set of Ethernet frames replayed in order, pass after pass.
#[derive(Debug)]
pub struct Workload {
    /// Row label.
    pub name: String,
    /// Every frame, back to back.
    pub bytes: Vec<u8>,
    /// The frames in replay order.
    pub packets: Vec<Packet>,
    /// Time of the first packet (ns since the epoch).
    pub epoch_ns: u64,
    /// Time one pass spans: pass `p` is shifted by `p * span_ns`.
    pub span_ns: u64,
    /// Distinct bidirectional flows in one pass.
    pub flows: usize,
}

impl Workload {
    /// The frame of `p`.
    pub fn frame(&self, p: &Packet) -> &[u8] {
        self.bytes
            .get(p.offset..p.offset + p.len as usize)
            .unwrap_or_default()
    }

    /// Time of `p` in pass `pass` (ns since the epoch).
    pub fn time_ns(&self, p: &Packet, pass: u64) -> u64 {
        self.epoch_ns + pass * self.span_ns + p.rel_ns
    }

    /// flowscope 0.3.0's synthetic workload: `n` TCP flows (PSH|ACK, one
    /// payload byte) from 10.0.0.1 to 10.0.0.2:80, sent round-robin, one
    /// packet each per pass. Source ports 1024.. as in 0.3.0 while they fit;
    /// above 60 000 flows the source address varies too.
    pub fn synthetic(name: &str, n: usize) -> Result<Self> {
        const PORTS: usize = 60_000;
        let mut bytes = vec![0u8; n * SYNTHETIC_LEN];
        let mut packets = Vec::with_capacity(n);
        for (i, buf) in bytes.chunks_exact_mut(SYNTHETIC_LEN).enumerate() {
            let host = u32::from(Ipv4Addr::new(10, 0, 0, 1)) + (i / PORTS) as u32 * 256;
            let spec = FrameSpec {
                src_mac: [0; 6],
                dst_mac: [0; 6],
                ips: IpPair::V4(Ipv4Addr::from(host), Ipv4Addr::new(10, 0, 0, 2)),
                transport: Transport::Tcp,
                src_port: 1024 + (i % PORTS) as u16,
                dst_port: 80,
                tcp_seq: 1000,
                tcp_ack: 0,
            };
            frame::write(&spec, SYNTHETIC_LEN, buf).context("building a synthetic frame")?;
            packets.push(Packet {
                offset: i * SYNTHETIC_LEN,
                len: SYNTHETIC_LEN as u32,
                orig_len: SYNTHETIC_LEN as u32,
                rel_ns: i as u64 * SYNTHETIC_GAP_NS,
            });
        }
        Ok(Self {
            name: name.to_owned(),
            bytes,
            packets,
            epoch_ns: SYNTHETIC_EPOCH_NS,
            span_ns: n as u64 * SYNTHETIC_GAP_NS,
            flows: n,
        })
    }

    /// Every Ethernet frame of a capture file, read into memory with our
    /// pcap reader. `flows` is left 0 (the trackers count them).
    pub fn capture(name: &str, path: &Path) -> Result<Self> {
        let mut reader =
            PcapReader::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut bytes = Vec::new();
        let mut packets = Vec::new();
        let mut first = None;
        let mut last = 0;
        while let Some(view) = reader
            .next_packet()
            .with_context(|| format!("reading {}", path.display()))?
        {
            if view.link != LinkType::Ethernet {
                continue;
            }
            let t = view.timestamp.0;
            let t0 = *first.get_or_insert(t);
            last = last.max(t);
            packets.push(Packet {
                offset: bytes.len(),
                len: view.frame.len() as u32,
                orig_len: view.orig_len,
                rel_ns: t.saturating_sub(t0),
            });
            bytes.extend_from_slice(view.frame);
        }
        let epoch_ns = first.unwrap_or(SYNTHETIC_EPOCH_NS);
        Ok(Self {
            name: name.to_owned(),
            bytes,
            packets,
            epoch_ns,
            // One second of silence between passes.
            span_ns: last.saturating_sub(epoch_ns) + 1_000_000_000,
            flows: 0,
        })
    }
}
