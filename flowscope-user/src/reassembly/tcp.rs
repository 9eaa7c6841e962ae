//! The TCP [`Reassembler`] of one side of one flow: sequence anchoring,
//! in-order delivery straight from the caller's slice, out-of-order
//! buffering, retransmission checks, gaps and overflow.

use super::budget::ReassemblyBudget;
use super::buffer::{OooBuffer, Overlap};
use super::{OverflowPolicy, ReassemblyConfig};
use crate::extractor::TcpFlags;

/// What the reassembler hands its consumer, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// The next bytes of the stream. Borrowed for the call only.
    Data(&'a [u8]),
    /// This many bytes of the stream will never be delivered (lost, or
    /// given up on overflow); the stream continues after them.
    Gap(u64),
}

/// Where a side's stream stands after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamStatus {
    /// More bytes may come.
    Open,
    /// Every byte up to the FIN was delivered (or
    /// [`flush`](Reassembler::flush) ended the stream): nothing more will
    /// be delivered.
    Finished,
    /// [`OverflowPolicy::DropFlow`] hit a cap: the flow must end with reason
    /// buffer overflow. Nothing more will be delivered.
    Overflow,
}

/// What one side's reassembler counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideCounters {
    /// Bytes delivered to the consumer.
    pub bytes_delivered: u64,
    /// Segments that arrived ahead of a hole.
    pub ooo_segments: u64,
    /// Segments carrying bytes already delivered or buffered.
    pub retransmits: u64,
    /// Retransmits whose bytes differed from the buffered ones.
    pub inconsistent_retransmits: u64,
    /// Times a segment did not fit under the side's or the shared cap.
    pub overflows: u64,
    /// Bytes discarded because of a cap ([`OverflowPolicy::DropFlow`]).
    pub bytes_dropped_oversize: u64,
    /// Gaps delivered.
    pub gaps: u64,
    /// Bytes those gaps stood for.
    pub gap_bytes: u64,
    /// Most payload bytes buffered at once.
    pub high_watermark_bytes: u64,
}

/// Kinds of reassembly anomaly, reported once per flow and side with a count
/// (see [`Reassembler::anomalies`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReassemblyAnomaly {
    /// A segment did not fit under a cap.
    BufferOverflow,
    /// A segment arrived ahead of a hole.
    OutOfOrderSegment,
    /// A retransmission carried bytes different from those held.
    RetransmitInconsistency,
}

impl ReassemblyAnomaly {
    /// Static label for logs and metrics (`kind` label).
    pub const fn label(self) -> &'static str {
        match self {
            Self::BufferOverflow => "buffer_overflow",
            Self::OutOfOrderSegment => "out_of_order_segment",
            Self::RetransmitInconsistency => "retransmit_inconsistency",
        }
    }
}

/// How the stream's offsets map to sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    /// Sequence number of stream offset 0 (ISN + 1, or the first data
    /// segment's sequence number when the SYN was not seen).
    base_seq: u32,
}

/// Reassembles one side of one TCP flow.
///
/// Payload is copied out of the caller's frame only when it must wait
/// behind a hole; in-order bytes go straight from the caller's slice to the
/// consumer. Offsets are 64-bit stream offsets, so the stream can run past
/// any number of sequence-number wraps; a segment's place is found by 32-bit
/// serial arithmetic against the next expected sequence number.
///
/// The owner must call [`release`](Self::release) before dropping it, to
/// return its storage to the shared [`ReassemblyBudget`].
#[derive(Debug, Default)]
pub struct Reassembler {
    anchor: Option<Anchor>,
    /// Stream offset of the next byte to deliver.
    next: u64,
    /// Stream offset the FIN occupies, once seen.
    fin_at: Option<u64>,
    status: Option<StreamStatus>,
    buffer: OooBuffer,
    counters: SideCounters,
}

impl Reassembler {
    /// A side nothing of which has been seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// What this side counted.
    pub fn counters(&self) -> &SideCounters {
        &self.counters
    }

    /// Each anomaly kind seen on this side, with how often.
    pub fn anomalies(&self) -> impl Iterator<Item = (ReassemblyAnomaly, u64)> + use<> {
        let c = self.counters;
        [
            (ReassemblyAnomaly::BufferOverflow, c.overflows),
            (ReassemblyAnomaly::OutOfOrderSegment, c.ooo_segments),
            (
                ReassemblyAnomaly::RetransmitInconsistency,
                c.inconsistent_retransmits,
            ),
        ]
        .into_iter()
        .filter(|&(_, n)| n > 0)
    }

    /// Payload bytes waiting behind a hole.
    pub fn buffered_bytes(&self) -> u64 {
        self.buffer.held_bytes()
    }

    /// Bytes of the shared budget this side holds.
    pub fn memory_bytes(&self) -> u64 {
        self.buffer.memory_bytes()
    }

    /// Sequence number of the next byte expected, once anchored.
    pub fn next_seq(&self) -> Option<u32> {
        self.anchor
            .map(|a| a.base_seq.wrapping_add(self.next as u32))
    }

    /// Where the stream stands.
    pub fn status(&self) -> StreamStatus {
        self.status.unwrap_or(StreamStatus::Open)
    }

    /// Takes one segment of this side: its sequence number, flags and
    /// payload. Delivers whatever becomes contiguous to `out`.
    pub fn segment(
        &mut self,
        budget: &mut ReassemblyBudget,
        config: &ReassemblyConfig,
        seq: u32,
        flags: TcpFlags,
        payload: &[u8],
        out: &mut impl FnMut(Delivery<'_>),
    ) -> StreamStatus {
        if let Some(status) = self.status {
            if status == StreamStatus::Overflow {
                self.counters.bytes_dropped_oversize += payload.len() as u64;
            } else if !payload.is_empty() {
                self.counters.retransmits += 1;
            }
            return status;
        }
        let syn = flags.contains(TcpFlags::SYN);
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        let anchor = match self.anchor {
            Some(anchor) => anchor,
            None if syn || !payload.is_empty() => {
                let anchor = Anchor { base_seq: data_seq };
                self.anchor = Some(anchor);
                anchor
            }
            // A bare ACK or FIN before anything anchors the stream.
            None => return StreamStatus::Open,
        };
        let next_seq = anchor.base_seq.wrapping_add(self.next as u32);
        // Serial arithmetic: a segment up to 2^31 behind is old.
        let rel = i64::from(data_seq.wrapping_sub(next_seq) as i32);
        let start = self.next as i64 + rel;
        let end = start + payload.len() as i64;
        if flags.contains(TcpFlags::FIN) && self.fin_at.is_none() {
            self.fin_at = Some(end.max(0) as u64);
        }
        if !payload.is_empty() {
            self.data(budget, config, start, payload, out);
        }
        if self.status.is_none() && self.fin_at == Some(self.next) {
            self.status = Some(StreamStatus::Finished);
        }
        self.buffer.release_if_empty(budget);
        self.status()
    }

    /// The peer acknowledged every byte of this side before sequence
    /// number `ack`. A hole followed by held bytes the peer acknowledged as
    /// well can no longer be filled by anything but a retransmission the
    /// peer does not need: those bytes were lost by the capture, not the
    /// network. Each such hole is given up now (a [`Delivery::Gap`]) and the
    /// bytes after it delivered, instead of waiting for a cap or the end of
    /// the flow. Holes with nothing acknowledged after them keep waiting
    /// (the capture may have put the acknowledgement before the data).
    pub fn acknowledged(
        &mut self,
        budget: &mut ReassemblyBudget,
        ack: u32,
        out: &mut impl FnMut(Delivery<'_>),
    ) -> StreamStatus {
        let Some(anchor) = self.anchor else {
            return self.status();
        };
        if self.status.is_some() {
            return self.status();
        }
        let next_seq = anchor.base_seq.wrapping_add(self.next as u32);
        let ahead = ack.wrapping_sub(next_seq) as i32;
        if ahead <= 0 {
            return self.status();
        }
        let acked = self.next + ahead as u64;
        while self.buffer.first_end().is_some_and(|end| end <= acked) {
            self.skip_first_hole(out);
        }
        if self.fin_at == Some(self.next) {
            self.status = Some(StreamStatus::Finished);
        }
        self.buffer.release_if_empty(budget);
        self.status()
    }

    /// Ends the stream (RST, flow timeout or eviction, shutdown): delivers
    /// every buffered byte with a [`Delivery::Gap`] for each hole, and a
    /// final gap up to the FIN if one was seen, then frees the storage.
    pub fn flush(&mut self, budget: &mut ReassemblyBudget, out: &mut impl FnMut(Delivery<'_>)) {
        if self.status.is_none() {
            while self.skip_first_hole(out) {}
            if let Some(fin) = self.fin_at
                && fin > self.next
            {
                self.gap(fin - self.next, out);
                self.next = fin;
            }
            self.status = Some(StreamStatus::Finished);
        }
        self.release(budget);
    }

    /// Drops whatever is buffered (counted as dropped) and returns the
    /// storage to the budget. Call before dropping the reassembler.
    pub fn release(&mut self, budget: &mut ReassemblyBudget) {
        self.counters.bytes_dropped_oversize += self.buffer.clear();
        self.buffer.release_if_empty(budget);
    }

    /// Places the payload of a segment spanning stream offsets
    /// `[start, start + payload.len())`.
    fn data(
        &mut self,
        budget: &mut ReassemblyBudget,
        config: &ReassemblyConfig,
        start: i64,
        payload: &[u8],
        out: &mut impl FnMut(Delivery<'_>),
    ) {
        // Where the segment started decides the LowerSeq/HigherSeq policies.
        let origin = start.max(0) as u64;
        let mut overflowed = false;
        loop {
            let next = self.next as i64;
            let skip = usize::try_from(next - start).unwrap_or(0);
            let Some(data) = payload.get(skip..).filter(|d| !d.is_empty()) else {
                if !overflowed {
                    self.counters.retransmits += 1;
                }
                return;
            };
            if skip > 0 && !overflowed {
                self.counters.retransmits += 1;
            }
            let at = self.next.max(start.max(0) as u64);
            if at == self.next {
                let overlap = self.deliver(data, origin, config, out);
                self.note(overlap, overflowed);
                return;
            }
            if !overflowed {
                self.counters.ooo_segments += 1;
            }
            let inserted = self
                .buffer
                .insert(budget, config, self.next, at, data, origin);
            match inserted {
                Ok(overlap) => {
                    self.note(overlap, overflowed);
                    let held = self.buffer.held_bytes();
                    self.counters.high_watermark_bytes =
                        self.counters.high_watermark_bytes.max(held);
                    return;
                }
                Err(_) => {
                    if !overflowed {
                        self.counters.overflows += 1;
                        overflowed = true;
                    }
                    match config.overflow {
                        OverflowPolicy::DropFlow => {
                            self.counters.bytes_dropped_oversize +=
                                self.buffer.clear() + data.len() as u64;
                            self.status = Some(StreamStatus::Overflow);
                            return;
                        }
                        OverflowPolicy::SlidingWindow => {
                            // Give the oldest hole up and deliver what follows
                            // it; with nothing held, skip to the segment.
                            if !self.skip_first_hole(out) {
                                self.gap(at - self.next, out);
                                self.next = at;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Delivers `data`, which starts at the next offset.
    fn deliver(
        &mut self,
        data: &[u8],
        origin: u64,
        config: &ReassemblyConfig,
        out: &mut impl FnMut(Delivery<'_>),
    ) -> Overlap {
        let delivered = &mut self.counters.bytes_delivered;
        self.buffer
            .deliver_in_order(&mut self.next, data, origin, config.overlap, &mut |b| {
                *delivered += b.len() as u64;
                out(Delivery::Data(b));
            })
    }

    /// Counts what an insertion or delivery found.
    fn note(&mut self, overlap: Overlap, overflowed: bool) {
        if overlap.seen && !overflowed {
            self.counters.retransmits += 1;
        }
        if overlap.inconsistent {
            self.counters.inconsistent_retransmits += 1;
        }
    }

    /// Gives up the hole before the first buffered run and delivers the
    /// runs that follow it. False if nothing is buffered.
    fn skip_first_hole(&mut self, out: &mut impl FnMut(Delivery<'_>)) -> bool {
        let Some(first) = self.buffer.first_start() else {
            return false;
        };
        self.gap(first - self.next, out);
        self.next = first;
        let delivered = &mut self.counters.bytes_delivered;
        self.buffer.drain_contiguous(&mut self.next, &mut |b| {
            *delivered += b.len() as u64;
            out(Delivery::Data(b));
        });
        true
    }

    fn gap(&mut self, len: u64, out: &mut impl FnMut(Delivery<'_>)) {
        if len > 0 {
            self.counters.gaps += 1;
            self.counters.gap_bytes += len;
            out(Delivery::Gap(len));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A side whose SYN anchored sequence 1000 at offset 0.
    fn side() -> (Reassembler, ReassemblyBudget, ReassemblyConfig) {
        let mut r = Reassembler::new();
        let mut b = ReassemblyBudget::new(1 << 20);
        let c = ReassemblyConfig::default();
        r.segment(&mut b, &c, 999, TcpFlags::SYN, b"", &mut |_| {});
        (r, b, c)
    }

    #[test]
    fn an_acknowledged_hole_is_given_up_with_the_bytes_after_it() {
        let (mut r, mut b, c) = side();
        let mut out = Vec::new();
        let mut push = |d: Delivery<'_>| out.push(format!("{d:?}"));
        r.segment(&mut b, &c, 1000, TcpFlags::ACK, b"ab", &mut push);
        // Offsets 2..5 never arrive; 5..7 and 9..10 wait behind holes.
        r.segment(&mut b, &c, 1005, TcpFlags::ACK, b"cd", &mut push);
        r.segment(&mut b, &c, 1009, TcpFlags::ACK, b"e", &mut push);
        // Acknowledges the first hole but not all of the bytes after it:
        // nothing proves the hole lost yet.
        r.acknowledged(&mut b, 1006, &mut push);
        // Acknowledges the first hole and the run after it, not the second.
        r.acknowledged(&mut b, 1008, &mut push);
        assert_eq!(r.buffered_bytes(), 1);
        // The second hole arrives after all.
        r.segment(&mut b, &c, 1007, TcpFlags::ACK, b"xy", &mut push);
        // Old and wrapped-back acknowledgements change nothing.
        r.acknowledged(&mut b, 900, &mut push);
        r.acknowledged(&mut b, 1000u32.wrapping_sub(1 << 31), &mut push);
        assert_eq!(
            out,
            [
                "Data([97, 98])",
                "Gap(3)",
                "Data([99, 100])",
                "Data([120, 121])",
                "Data([101])"
            ]
        );
        assert_eq!(r.counters().gap_bytes, 3);
        assert_eq!(r.memory_bytes(), 0);
    }

    #[test]
    fn an_acknowledged_hole_before_the_fin_finishes_the_stream() {
        let (mut r, mut b, c) = side();
        let fin = TcpFlags(TcpFlags::ACK.0 | TcpFlags::FIN.0);
        let mut gaps = 0;
        r.segment(&mut b, &c, 1004, fin, b"z", &mut |d| {
            gaps += u64::from(matches!(d, Delivery::Gap(_)));
        });
        // The FIN itself is acknowledged too (offset 5 + 1).
        let status = r.acknowledged(&mut b, 1006, &mut |d| {
            gaps += u64::from(matches!(d, Delivery::Gap(_)));
        });
        assert_eq!(status, StreamStatus::Finished);
        assert_eq!(gaps, 1);
        assert_eq!(r.counters().gap_bytes, 4);
    }
}
