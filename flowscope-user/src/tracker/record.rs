//! The per-flow record: everything the tracker knows about one flow.

use std::time::Duration;

use crate::extractor::{Encap, L4Proto, Orientation, TcpFlags, Tunnelled};
use crate::tracker::event::{FlowSide, FlowState};
use crate::tracker::history::History;
use crate::tracker::tcp::TcpTrack;
use crate::view::Timestamp;

/// Counters of one side of a flow: one cache line (see [`FlowRecord`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct SideStats {
    /// Packets sent by this side.
    pub packets: u64,
    /// Bytes sent: whole frames, original (wire) length.
    pub bytes: u64,
    /// Bytes of the IP packets sent, as their headers state (what IPFIX
    /// octet counts and Zeek's `ip_bytes` report).
    pub ip_bytes: u64,
    /// L4 payload bytes present in the frames.
    pub payload_bytes: u64,
    /// Time of this side's first packet (zero if it sent none).
    pub first_seen: Timestamp,
    /// Time of this side's last packet (zero if it sent none).
    pub last_seen: Timestamp,
    /// OR of the TCP flags this side sent.
    pub tcp_flags: TcpFlags,
}

/// One flow record, as stored in the table and handed to event sinks.
///
/// `repr(C)`, laid out for the per-packet path: the table stores records
/// cache-line aligned, and an ordinary packet (no SYN, FIN or RST) reads and
/// writes two of a record's four cache lines — the first (key, state,
/// initiator, history, the start of the TCP tracking) and the one holding its
/// own side's counters (each [`SideStats`] fills one line). The second line
/// (the rest of the TCP tracking, protocol, VLANs, flow ID, tunnel) is read when a
/// flow starts or ends or a control segment arrives. A unit test checks the
/// offsets.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct FlowRecord<K> {
    /// The flow key.
    pub key: K,
    /// Lifecycle state.
    pub state: FlowState,
    /// Orientation, relative to the key, of the initiator's packets.
    pub initiator: Orientation,
    /// Zeek-style history.
    pub history: History,
    /// TCP endpoint tracking (unused for other protocols).
    pub tcp: TcpTrack,
    /// Transport protocol.
    pub l4: L4Proto,
    /// VLAN IDs of the flow's first packet, outermost first (0 = absent).
    pub vlan: [u16; 2],
    /// This record continues an earlier record of the same flow that ended
    /// with an active timeout.
    pub continued: bool,
    /// The tunnel this flow carries (it is a carrier), with a decapsulating
    /// extractor ([`FlowExtractor::carrier`](crate::extractor::FlowExtractor::carrier)):
    /// a tunnelled packet counts in its carrier and in the flow inside.
    pub carries: Option<Encap>,
    /// Identifier unique within the tracker (and across trackers with
    /// distinct [`TrackerConfig::flow_id_base`](crate::tracker::TrackerConfig::flow_id_base)).
    pub flow_id: u64,
    /// The tunnel the flow was taken out of (a flow can be inside one
    /// tunnel and carry another).
    pub tunnel: Option<InTunnel>,
    /// Per-side counters, indexed by [`FlowSide::index`].
    pub sides: [SideStats; 2],
}

/// The tunnel a flow was taken out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InTunnel {
    /// The carrier's flow ID (of the record that carried the first packet
    /// of this record).
    pub parent: u64,
    /// The tunnel.
    pub tunnel: Tunnelled,
}

impl<K> FlowRecord<K> {
    /// Which side sent a packet with this orientation.
    pub fn side_of(&self, orientation: Orientation) -> FlowSide {
        if orientation == self.initiator {
            FlowSide::Initiator
        } else {
            FlowSide::Responder
        }
    }

    /// Counters of one side.
    pub fn side(&self, side: FlowSide) -> &SideStats {
        &self.sides[side.index()]
    }

    /// Time of the first packet of the record.
    pub fn start(&self) -> Timestamp {
        let [i, r] = &self.sides;
        match (i.packets, r.packets) {
            (0, _) => r.first_seen,
            (_, 0) => i.first_seen,
            _ => i.first_seen.min(r.first_seen),
        }
    }

    /// Time of the last packet of the record.
    pub fn end(&self) -> Timestamp {
        self.sides[0].last_seen.max(self.sides[1].last_seen)
    }

    /// `end - start`.
    pub fn duration(&self) -> Duration {
        self.end().saturating_sub(self.start())
    }

    /// Packets of both sides.
    pub fn packets(&self) -> u64 {
        self.sides[0].packets + self.sides[1].packets
    }

    /// Bytes of both sides.
    pub fn bytes(&self) -> u64 {
        self.sides[0].bytes + self.sides[1].bytes
    }

    /// Zeek's `conn_state` code (`S0`, `SF`, `REJ`, … `OTH`).
    pub fn conn_state(&self) -> &'static str {
        match self.l4 {
            L4Proto::Tcp => self
                .tcp
                .conn_state([self.sides[0].payload_bytes, self.sides[1].payload_bytes]),
            L4Proto::Udp if self.sides[0].packets > 0 && self.sides[1].packets > 0 => "SF",
            L4Proto::Udp if self.sides[1].packets == 0 => "S0",
            L4Proto::Udp => "SHR",
            _ => "OTH",
        }
    }
}
