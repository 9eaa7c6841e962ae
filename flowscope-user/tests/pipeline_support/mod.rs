//! Shared by the pipeline tests: TCP segments of one connection built byte
//! by byte (Ethernet, IPv4, TCP), a sink that keeps the L7 records, and one
//! that also keeps each flow's app_proto, for a capture file run through.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::HashMap;
use std::path::Path;

use flowscope::FlowExtractor;
use flowscope::extract::{AutoDetectEncap, FiveTuple, FiveTupleKey};
use flowscope::l7::L7Record;
use flowscope::pcap::PcapReader;
use flowscope::pipeline::{Carrier, FlowSummary, Pipeline, PipelineConfig, PipelineSink};
use flowscope::tracker::{EndReason, FlowRecord};
use flowscope::view::{LinkType, PacketView, Timestamp};

/// `frame`, whole, as captured on Ethernet at `ts` nanoseconds.
pub fn view(frame: &[u8], ts: u64) -> PacketView<'_> {
    PacketView {
        frame,
        timestamp: Timestamp(ts),
        link: LinkType::Ethernet,
        orig_len: frame.len() as u32,
        hint: None,
    }
}

/// TCP flags.
pub const FIN: u8 = 0x01;
/// TCP flags.
pub const SYN: u8 = 0x02;
/// TCP flags.
pub const PSH: u8 = 0x08;
/// TCP flags.
pub const ACK: u8 = 0x10;

/// Ethernet + IPv4 (no options) + TCP (no options).
pub const HEADERS: usize = 14 + 20 + 20;

/// One TCP connection: client 192.0.2.1:`client_port` → 198.51.100.1:`server_port`.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    /// Client port.
    pub client_port: u16,
    /// Server port.
    pub server_port: u16,
    /// Client's initial sequence number.
    pub client_isn: u32,
    /// Server's initial sequence number.
    pub server_isn: u32,
}

impl Conn {
    /// Writes one segment into `frame` (resized to fit).
    pub fn write(
        &self,
        frame: &mut Vec<u8>,
        from_client: bool,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) {
        let (src, dst, sport, dport) = if from_client {
            (
                [192, 0, 2, 1],
                [198, 51, 100, 1],
                self.client_port,
                self.server_port,
            )
        } else {
            (
                [198, 51, 100, 1],
                [192, 0, 2, 1],
                self.server_port,
                self.client_port,
            )
        };
        frame.clear();
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = (20 + 20 + payload.len()) as u16;
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let sum = checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&sport.to_be_bytes());
        frame.extend_from_slice(&dport.to_be_bytes());
        frame.extend_from_slice(&seq.to_be_bytes());
        frame.extend_from_slice(&ack.to_be_bytes());
        frame.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        frame.extend_from_slice(payload);
    }

    /// One segment as a new frame.
    pub fn segment(
        &self,
        from_client: bool,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = Vec::with_capacity(HEADERS + payload.len());
        self.write(&mut f, from_client, seq, ack, flags, payload);
        f
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&self) -> Vec<Vec<u8>> {
        let (c, s) = (self.client_isn, self.server_isn);
        vec![
            self.segment(true, c, 0, SYN, b""),
            self.segment(false, s, c.wrapping_add(1), SYN | ACK, b""),
            self.segment(true, c.wrapping_add(1), s.wrapping_add(1), ACK, b""),
        ]
    }
}

/// IPv4 header checksum.
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Keeps the L7 records and counts the ended flows.
#[derive(Debug, Default)]
pub struct Records {
    /// Every record, in emission order.
    pub l7: Vec<L7Record>,
    /// Flow records ended.
    pub ended: usize,
}

impl PipelineSink<FiveTupleKey> for Records {
    fn l7(&mut self, _flow: &FlowRecord<FiveTupleKey>, _ts: Timestamp, record: L7Record) {
        self.l7.push(record);
    }

    fn flow_ended(
        &mut self,
        _flow: &FlowRecord<FiveTupleKey>,
        _reason: EndReason,
        _summary: Option<&FlowSummary>,
        _carrier: Option<&Carrier>,
    ) {
        self.ended += 1;
    }
}

/// What the whole pipeline produced for a capture file: its L7 records and
/// each flow record's app_proto.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every record, in emission order.
    pub l7: Vec<L7Record>,
    /// Each flow record's app_proto (`-` if none) by its endpoints
    /// (`ip:port`, IPv6 in brackets as nDPI writes them), both orders.
    pub protos: HashMap<(String, String), Vec<String>>,
}

impl PipelineSink<FiveTupleKey> for Outcome {
    fn l7(&mut self, _: &FlowRecord<FiveTupleKey>, _: Timestamp, record: L7Record) {
        self.l7.push(record);
    }

    fn flow_ended(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        _: EndReason,
        summary: Option<&FlowSummary>,
        _carrier: Option<&Carrier>,
    ) {
        let k = flow.key.oriented(flow.initiator);
        let (a, b) = (k.src().to_string(), k.dst().to_string());
        let proto = summary
            .and_then(FlowSummary::app_proto)
            .unwrap_or("-")
            .to_owned();
        self.protos
            .entry((a.clone(), b.clone()))
            .or_default()
            .push(proto.clone());
        self.protos.entry((b, a)).or_default().push(proto);
    }
}

impl Outcome {
    /// `path` through the whole pipeline, tunnels decapsulated or not.
    pub fn of(path: &Path, decap: bool) -> Self {
        fn with<E: FlowExtractor<Key = FiveTupleKey>>(path: &Path, extractor: E) -> Outcome {
            let mut reader = PcapReader::open(path).expect("open capture");
            let mut pipeline = Pipeline::new(extractor, PipelineConfig::default());
            let mut out = Outcome::default();
            while let Some(view) = reader.next_packet().expect("read to the end") {
                pipeline.process(view, &mut out);
            }
            pipeline.finish(&mut out);
            out
        }
        if decap {
            with(path, AutoDetectEncap::new(FiveTuple::bidirectional()))
        } else {
            with(path, FiveTuple::bidirectional())
        }
    }

    /// The app_protos of the flow records between `a` and `b`.
    pub fn proto(&self, a: &str, b: &str) -> Vec<String> {
        self.protos
            .get(&(a.to_owned(), b.to_owned()))
            .unwrap_or_else(|| panic!("no flow {a} {b}"))
            .clone()
    }

    /// The records `pick` takes (one protocol's).
    pub fn records<T>(&self, pick: impl Fn(&L7Record) -> Option<&T>) -> Vec<&T> {
        self.l7.iter().filter_map(pick).collect()
    }
}
