//! TCP stream and IP fragment reassembly.
//!
//! - [`Reassembler`]: one per (TCP flow, side). Delivers the side's bytes in
//!   order as [`Delivery::Data`], never stitching over a hole: a hole that is
//!   given up (at the end of the stream, on overflow, or once the peer
//!   [acknowledged](Reassembler::acknowledged) bytes after it) arrives as
//!   [`Delivery::Gap`] with its exact length. Out-of-order bytes wait in
//!   bounded storage charged to a [`ReassemblyBudget`] shared by all flows of
//!   a worker and passed by `&mut` (no atomics, no locks).
//! - [`ipfrag`]: IPv4 and IPv6 fragment reassembly into whole IP packets.
//!
//! # Example
//!
//! ```
//! use flowscope::TcpFlags;
//! use flowscope::reassembly::{Delivery, ReassemblyBudget, ReassemblyConfig, Reassembler};
//!
//! let config = ReassemblyConfig::default();
//! let mut budget = ReassemblyBudget::new(1 << 20);
//! let mut side = Reassembler::new();
//! let mut stream = Vec::new();
//! let mut out = |d: Delivery<'_>| {
//!     if let Delivery::Data(bytes) = d {
//!         stream.extend_from_slice(bytes)
//!     }
//! };
//! side.segment(&mut budget, &config, 999, TcpFlags::SYN, b"", &mut out);
//! side.segment(&mut budget, &config, 1005, TcpFlags::ACK, b"world", &mut out); // ahead of a hole
//! side.segment(&mut budget, &config, 1000, TcpFlags::ACK, b"hello", &mut out);
//! side.release(&mut budget);
//! assert_eq!(stream, b"helloworld");
//! ```

mod budget;
mod buffer;
pub mod ipfrag;
mod tcp;

pub use budget::ReassemblyBudget;
pub use tcp::{Delivery, Reassembler, ReassemblyAnomaly, SideCounters, StreamStatus};

/// Which bytes win where a new segment overlaps bytes already buffered or,
/// for an in-order segment, bytes buffered ahead of it.
///
/// Each buffered byte remembers the sequence number at which the segment
/// that wrote it started; the policy compares that with the new segment's.
/// Bytes already delivered cannot be replaced: a retransmission of them is
/// counted and dropped whatever the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OverlapPolicy {
    /// The bytes held first win (default).
    #[default]
    First,
    /// The newest bytes win.
    Last,
    /// The bytes of the segment that started at the lower sequence number
    /// win; on a tie the bytes held win (BSD-like: favour old data unless
    /// the new segment starts before it).
    LowerSeq,
    /// The bytes of the segment that started at the higher sequence number
    /// win; on a tie the bytes held win.
    HigherSeq,
}

impl OverlapPolicy {
    /// True if a new segment that started at stream offset `new_origin`
    /// replaces bytes written by one that started at `old_origin`.
    pub(crate) fn new_wins(self, old_origin: u64, new_origin: u64) -> bool {
        match self {
            Self::First => false,
            Self::Last => true,
            Self::LowerSeq => new_origin < old_origin,
            Self::HigherSeq => new_origin > old_origin,
        }
    }

    /// True if the policy never looks at where a segment started, so
    /// adjacent runs of bytes can be merged.
    pub(crate) fn ignores_origin(self) -> bool {
        matches!(self, Self::First | Self::Last)
    }
}

/// What a side does when a segment does not fit under its own cap or the
/// shared budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OverflowPolicy {
    /// Keep the flow: give up the oldest hole (a [`Delivery::Gap`]), deliver
    /// the bytes buffered after it, and repeat until the segment fits;
    /// with nothing buffered, skip straight to the segment. No buffered byte
    /// is lost, only holes are declared. Default.
    #[default]
    SlidingWindow,
    /// Discard everything buffered (counted in
    /// [`SideCounters::bytes_dropped_oversize`]) and report
    /// [`StreamStatus::Overflow`]: the flow must end with reason buffer
    /// overflow.
    DropFlow,
}

/// Reassembly settings, shared by every side of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Memory one side may hold for out-of-order bytes (ring and run
    /// table). A segment ending more than this past the next expected byte
    /// overflows. Default 256 KiB.
    pub max_side_bytes: u64,
    /// Overlap policy. Default [`OverlapPolicy::First`].
    pub overlap: OverlapPolicy,
    /// Overflow policy. Default [`OverflowPolicy::SlidingWindow`].
    pub overflow: OverflowPolicy,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        Self {
            max_side_bytes: 256 * 1024,
            overlap: OverlapPolicy::First,
            overflow: OverflowPolicy::SlidingWindow,
        }
    }
}
