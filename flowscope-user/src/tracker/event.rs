//! What the tracker tells its caller: [`FlowEvent`]s, delivered through an
//! [`EventSink`] so that no event is ever allocated.

use crate::extractor::{Extracted, L4Proto};
use crate::tracker::record::FlowRecord;
use crate::view::{PacketView, Timestamp};

/// Which end of a flow sent a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowSide {
    /// The side that opened the flow (Zeek's originator, EVE's `toserver`).
    Initiator,
    /// The other side.
    Responder,
}

impl FlowSide {
    /// Both sides, initiator first.
    pub const ALL: [FlowSide; 2] = [FlowSide::Initiator, FlowSide::Responder];

    /// 0 for the initiator, 1 for the responder.
    pub const fn index(self) -> usize {
        match self {
            Self::Initiator => 0,
            Self::Responder => 1,
        }
    }

    /// The other side.
    pub const fn other(self) -> Self {
        match self {
            Self::Initiator => Self::Responder,
            Self::Responder => Self::Initiator,
        }
    }

    /// Static label (`side` label of the metrics).
    pub const fn label(self) -> &'static str {
        match self {
            Self::Initiator => "initiator",
            Self::Responder => "responder",
        }
    }
}

/// Why a flow record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// TCP closed by FINs, and the close linger time passed (or a new SYN reused the tuple).
    Fin,
    /// TCP reset, and the close linger time passed (or a new SYN reused the tuple).
    Rst,
    /// No packet for the idle timeout of the flow.
    IdleTimeout,
    /// Interim record of a long flow; the flow goes on in a new record.
    ActiveTimeout,
    /// Removed to make room for a new flow in a full table.
    Evicted,
    /// Ended by the reassembler because a buffer overflowed.
    BufferOverflow,
    /// Ended by a session parser that gave up.
    ParseError,
    /// Still open at the end of input (or at shutdown).
    ForceClosed,
}

impl EndReason {
    /// Every reason, in the order of [`EndReason::index`].
    pub const ALL: [EndReason; 8] = [
        Self::Fin,
        Self::Rst,
        Self::IdleTimeout,
        Self::ActiveTimeout,
        Self::Evicted,
        Self::BufferOverflow,
        Self::ParseError,
        Self::ForceClosed,
    ];

    /// Position in [`EndReason::ALL`].
    pub const fn index(self) -> usize {
        match self {
            Self::Fin => 0,
            Self::Rst => 1,
            Self::IdleTimeout => 2,
            Self::ActiveTimeout => 3,
            Self::Evicted => 4,
            Self::BufferOverflow => 5,
            Self::ParseError => 6,
            Self::ForceClosed => 7,
        }
    }

    /// Static label (`reason` label of `flowscope_flows_ended_total`, EVE `flow.reason`).
    pub const fn label(self) -> &'static str {
        match self {
            Self::Fin => "fin",
            Self::Rst => "rst",
            Self::IdleTimeout => "idle",
            Self::ActiveTimeout => "active_timeout",
            Self::Evicted => "evicted",
            Self::BufferOverflow => "buffer_overflow",
            Self::ParseError => "parse_error",
            Self::ForceClosed => "force_closed",
        }
    }
}

/// Lifecycle state of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowState {
    /// TCP: the initiator's SYN seen, no SYN-ACK yet.
    SynSent,
    /// TCP: SYN-ACK seen, the initiator's ACK not yet.
    SynReceived,
    /// TCP: handshake completed (or picked up mid-stream and both sides sent).
    Established,
    /// TCP: one side sent a FIN.
    FinWait,
    /// TCP: both sides sent a FIN.
    Closing,
    /// TCP: both FINs acknowledged.
    Closed,
    /// TCP: a RST was seen.
    Reset,
    /// TCP picked up without a SYN (mid-stream), only one side seen so far.
    MidStream,
    /// Any non-TCP flow.
    Active,
}

impl FlowState {
    /// True for states after which only a new SYN starts anything new.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Closed | Self::Reset)
    }

    /// True once both FINs or a RST were seen: the flow lingers, then ends
    /// with [`EndReason::Fin`] or [`EndReason::Rst`].
    pub const fn is_closed(self) -> bool {
        matches!(self, Self::Closing | Self::Closed | Self::Reset)
    }

    /// Lower-case name (EVE `tcp.state` / `flow.state` values).
    pub const fn label(self) -> &'static str {
        match self {
            Self::SynSent => "syn_sent",
            Self::SynReceived => "syn_recv",
            Self::Established => "established",
            Self::FinWait => "fin_wait",
            Self::Closing => "closing",
            Self::Closed => "closed",
            Self::Reset => "reset",
            Self::MidStream => "midstream",
            Self::Active => "active",
        }
    }
}

/// In-flight irregularities the tracker reports without ending the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// A flow was evicted because the table was full.
    FlowTableEviction,
    /// A TCP packet with SYN together with FIN or RST, or FIN with RST.
    TcpFlagCombo,
    /// The reassembler dropped an out-of-order segment.
    OutOfOrderSegment,
    /// The reassembler dropped bytes over its buffer cap.
    BufferOverflow,
    /// A session parser failed.
    ParseError,
}

impl AnomalyKind {
    /// Every kind, in the order of [`AnomalyKind::index`].
    pub const ALL: [AnomalyKind; 5] = [
        Self::FlowTableEviction,
        Self::TcpFlagCombo,
        Self::OutOfOrderSegment,
        Self::BufferOverflow,
        Self::ParseError,
    ];

    /// Position in [`AnomalyKind::ALL`].
    pub const fn index(self) -> usize {
        match self {
            Self::FlowTableEviction => 0,
            Self::TcpFlagCombo => 1,
            Self::OutOfOrderSegment => 2,
            Self::BufferOverflow => 3,
            Self::ParseError => 4,
        }
    }

    /// Static label (`kind` label of `flowscope_anomalies_total`).
    pub const fn label(self) -> &'static str {
        match self {
            Self::FlowTableEviction => "flow_table_eviction",
            Self::TcpFlagCombo => "tcp_flag_combo",
            Self::OutOfOrderSegment => "ooo_segment",
            Self::BufferOverflow => "buffer_overflow",
            Self::ParseError => "parse_error",
        }
    }
}

/// One thing that happened, borrowing the tracker's flow record.
///
/// Events borrow instead of copy: a sink that keeps something copies what it
/// needs (e.g. [`FlowRecord`] is `Copy`).
#[derive(Debug, Clone, Copy)]
pub enum FlowEvent<'a, K> {
    /// A new flow record (its first packet follows as [`FlowEvent::Packet`]).
    Started {
        /// The new record.
        flow: &'a FlowRecord<K>,
    },
    /// A packet of a known flow, after the record was updated.
    Packet {
        /// The flow, with this packet counted.
        flow: &'a FlowRecord<K>,
        /// The record's slot in the table (see [`FlowEvent::Ended`]).
        slot: u32,
        /// Who sent it.
        side: FlowSide,
        /// What the extractor found.
        extracted: &'a Extracted<K>,
        /// The frame.
        view: PacketView<'a>,
    },
    /// A flow was first seen carrying a tunnel (its record's
    /// [`carries`](FlowRecord::carries) was just set); the packet
    /// follows as [`FlowEvent::Packet`] of the flow and of the one inside.
    Tunnel {
        /// The carrier.
        flow: &'a FlowRecord<K>,
        /// When.
        ts: Timestamp,
    },
    /// TCP handshake completed.
    Established {
        /// The flow.
        flow: &'a FlowRecord<K>,
        /// When.
        ts: Timestamp,
    },
    /// TCP state changed (other than to `Established`, which has its own event).
    StateChange {
        /// The flow, already in state `to`.
        flow: &'a FlowRecord<K>,
        /// Previous state.
        from: FlowState,
        /// New state.
        to: FlowState,
        /// When.
        ts: Timestamp,
    },
    /// A flow record ended; it is complete and final.
    Ended {
        /// The final record.
        flow: &'a FlowRecord<K>,
        /// Its slot in the table, below the tracker's capacity: the slot
        /// of every packet of the record, free for another flow after this
        /// event unless the record ended with an active timeout (the flow
        /// goes on in the same slot). A sink may keep per-flow state in an
        /// array indexed by slot, reset here.
        slot: u32,
        /// Why.
        reason: EndReason,
    },
    /// Something irregular, counted in `flowscope_anomalies_total`.
    Anomaly {
        /// The flow concerned, if any.
        flow: Option<&'a FlowRecord<K>>,
        /// What.
        kind: AnomalyKind,
        /// When.
        ts: Timestamp,
    },
}

/// Receives the tracker's events. Implemented for every `FnMut(FlowEvent<'_, K>)`.
pub trait EventSink<K> {
    /// Called once per event, in order.
    fn event(&mut self, event: FlowEvent<'_, K>);

    /// Bytes from the start of each frame that the sink reads when it
    /// takes the packet (payload parsers), which
    /// [`FlowTracker::track_batch`](super::FlowTracker::track_batch)
    /// prefetches with the headers when it prefetches records. Default: 0,
    /// the headers only.
    #[inline(always)]
    fn frame_bytes(&self) -> usize {
        0
    }

    /// A packet of the flow in `slot` (probably: the tracker's guess before
    /// it compares keys) will soon be an event:
    /// [`FlowTracker::track_batch`](super::FlowTracker::track_batch) calls
    /// this when it prefetches the record, so that a sink can prefetch its
    /// own per-slot state. Default: nothing.
    #[inline(always)]
    fn prefetch(&mut self, slot: u32) {
        let _ = slot;
    }

    /// Called twice after [`prefetch`](Self::prefetch) of the same `slot`,
    /// a few packets apart, when what the call before asked for has
    /// probably arrived: at `depth` 1 a sink whose per-slot state points
    /// elsewhere prefetches that, at `depth` 2 what that points to.
    /// Default: nothing.
    #[inline(always)]
    fn prefetch_deep(&mut self, slot: u32, depth: usize) {
        let _ = (slot, depth);
    }
}

impl<K, F: FnMut(FlowEvent<'_, K>)> EventSink<K> for F {
    fn event(&mut self, event: FlowEvent<'_, K>) {
        self(event)
    }
}

/// A sink that drops every event (for callers that only want counters).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSink;

impl<K> EventSink<K> for NoSink {
    fn event(&mut self, _event: FlowEvent<'_, K>) {}
}

/// Position of a protocol in the `l4` counter arrays.
pub(crate) const fn l4_index(l4: L4Proto) -> usize {
    match l4 {
        L4Proto::Tcp => 0,
        L4Proto::Udp => 1,
        L4Proto::Icmp => 2,
        L4Proto::IcmpV6 => 3,
        L4Proto::Sctp => 4,
        L4Proto::Other(_) => 5,
    }
}

/// The `l4` labels in the order of the counter arrays.
pub(crate) const L4_LABELS: [&str; 6] = ["tcp", "udp", "icmp", "icmpv6", "sctp", "other"];
