//! Shared by the pipeline tests: TCP segments of one connection built byte
//! by byte (Ethernet, IPv4, TCP), and a sink that keeps the L7 records.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use flowscope::extract::FiveTupleKey;
use flowscope::l7::L7Record;
use flowscope::pipeline::{FlowSummary, PipelineSink};
use flowscope::tracker::{EndReason, FlowRecord};
use flowscope::view::Timestamp;

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
    ) {
        self.ended += 1;
    }
}
