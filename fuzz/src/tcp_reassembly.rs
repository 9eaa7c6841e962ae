//! Target `tcp_reassembly`: the TCP [`Reassembler`] of both sides of a flow
//! sharing one [`ReassemblyBudget`], driven by an operation language.
//!
//! Input: a header (policies, payload mode, per-side cap, budget cap, each
//! side's initial sequence number), then operations of one byte each plus
//! their fields: a segment at a sequence number relative to the side's ISN
//! (signed 16 bits) or absolute (32 bits), with flags and a payload length;
//! a flush of one side. In pattern mode every payload byte is a function of
//! its sequence number, so whatever the overlaps and retransmissions the
//! delivered stream must match that function; otherwise payloads come from
//! the input.
//!
//! Checked after every operation: delivered data plus gaps move exactly to
//! [`Reassembler::next_seq`], `bytes_delivered` counts the data handed out,
//! nothing is delivered after the stream finished or overflowed, each side
//! stays under its cap and the budget under its own.

use flowscope::TcpFlags;
use flowscope::reassembly::{
    Delivery, OverflowPolicy, OverlapPolicy, Reassembler, ReassemblyBudget, ReassemblyConfig,
    StreamStatus,
};

use super::input::Input;

/// Operation: a segment at ISN + a signed 16-bit offset (low bit: side).
pub const OP_SEGMENT_REL: u8 = 0;
/// Operation: a segment at an absolute sequence number (low bit: side).
pub const OP_SEGMENT_ABS: u8 = 2;
/// Operation: flush a side (low bit: side).
pub const OP_FLUSH: u8 = 4;

/// Header byte bit: payloads come from the input instead of the pattern.
pub const MODE_RAW_PAYLOAD: u8 = 0x08;

/// The payload byte at sequence number `seq` in pattern mode.
pub fn pattern(seq: u32) -> u8 {
    (seq as u8).wrapping_mul(31) ^ (seq >> 8) as u8
}

/// One side and what the checks track of it.
struct Side {
    r: Reassembler,
    isn: u32,
    delivered: u64,
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let config = ReassemblyConfig {
        overlap: [
            OverlapPolicy::First,
            OverlapPolicy::Last,
            OverlapPolicy::LowerSeq,
            OverlapPolicy::HigherSeq,
        ][usize::from(mode & 3)],
        overflow: if mode & 4 == 0 {
            OverflowPolicy::SlidingWindow
        } else {
            OverflowPolicy::DropFlow
        },
        max_side_bytes: 64 << (input.u8() % 10),
    };
    let raw = mode & MODE_RAW_PAYLOAD != 0;
    let mut budget = ReassemblyBudget::new(u64::from(input.u16()) * 8);
    let mut sides = [0, 1].map(|_| Side {
        r: Reassembler::new(),
        isn: input.u32(),
        delivered: 0,
    });
    while !input.is_empty() {
        let op = input.u8();
        let s = &mut sides[usize::from(op & 1)];
        match op & 0x06 {
            OP_FLUSH => {
                let start = s.r.next_seq();
                let mut check = Checker::new(start, raw);
                s.r.flush(&mut budget, &mut |d| check.take(d));
                check.end(s);
            }
            kind => {
                let seq = if kind == OP_SEGMENT_ABS {
                    input.u32()
                } else {
                    s.isn.wrapping_add(input.u16() as i16 as u32)
                };
                let flags = TcpFlags(input.u8());
                let len = usize::from(input.u8());
                let stored;
                let payload: &[u8] = if raw {
                    input.bytes(len)
                } else {
                    let first = if flags.contains(TcpFlags::SYN) {
                        seq.wrapping_add(1)
                    } else {
                        seq
                    };
                    stored = (0..len as u32)
                        .map(|i| pattern(first.wrapping_add(i)))
                        .collect::<Vec<u8>>();
                    &stored
                };
                let before = s.r.status();
                let start = s.r.next_seq().or_else(|| {
                    let anchors = before == StreamStatus::Open
                        && (flags.contains(TcpFlags::SYN) || !payload.is_empty());
                    anchors.then(|| {
                        if flags.contains(TcpFlags::SYN) {
                            seq.wrapping_add(1)
                        } else {
                            seq
                        }
                    })
                });
                let mut check = Checker::new(start, raw);
                let status =
                    s.r.segment(&mut budget, &config, seq, flags, payload, &mut |d| {
                        check.take(d)
                    });
                assert_eq!(status, s.r.status());
                if before != StreamStatus::Open {
                    assert_eq!(status, before, "a finished stream stays finished");
                    assert_eq!(check.data + check.gaps, 0, "delivery after {before:?}");
                }
                check.end(s);
            }
        }
        let held: u64 = sides.iter().map(|s| s.r.memory_bytes()).sum();
        assert!(
            budget.used_bytes() <= budget.cap_bytes(),
            "budget over its cap"
        );
        assert!(
            held <= budget.used_bytes(),
            "sides hold {held} > budget's {}",
            budget.used_bytes()
        );
        for s in &sides {
            assert!(
                s.r.memory_bytes() <= config.max_side_bytes,
                "side holds {} > cap {}",
                s.r.memory_bytes(),
                config.max_side_bytes
            );
        }
    }
    for s in &mut sides {
        let start = s.r.next_seq();
        let mut check = Checker::new(start, raw);
        s.r.flush(&mut budget, &mut |d| check.take(d));
        check.end(s);
        assert_eq!(s.r.buffered_bytes(), 0);
        assert_eq!(s.r.memory_bytes(), 0);
    }
}

/// Follows one call's deliveries from the sequence number they start at.
struct Checker {
    cursor: Option<u32>,
    raw: bool,
    data: u64,
    gaps: u64,
}

impl Checker {
    fn new(start: Option<u32>, raw: bool) -> Self {
        Self {
            cursor: start,
            raw,
            data: 0,
            gaps: 0,
        }
    }

    fn take(&mut self, d: Delivery<'_>) {
        let cursor = self
            .cursor
            .expect("delivery before the stream was anchored");
        match d {
            Delivery::Data(bytes) => {
                assert!(!bytes.is_empty(), "empty data delivery");
                if !self.raw {
                    for (i, &b) in bytes.iter().enumerate() {
                        let seq = cursor.wrapping_add(i as u32);
                        assert_eq!(b, pattern(seq), "byte at seq {seq} is not the one sent");
                    }
                }
                self.data += bytes.len() as u64;
                self.cursor = Some(cursor.wrapping_add(bytes.len() as u32));
            }
            Delivery::Gap(n) => {
                assert!(n > 0, "empty gap");
                self.gaps += n;
                self.cursor = Some(cursor.wrapping_add(n as u32));
            }
        }
    }

    /// Checks the side after the call.
    fn end(self, s: &mut Side) {
        s.delivered += self.data;
        assert_eq!(
            s.r.counters().bytes_delivered,
            s.delivered,
            "bytes_delivered"
        );
        if s.r.next_seq().is_some() {
            assert_eq!(s.r.next_seq(), self.cursor, "deliveries end at next_seq");
        } else {
            assert_eq!(self.data + self.gaps, 0);
        }
    }
}

/// Encodes a segment operation at ISN + `rel` for the seed generator.
pub fn encode_segment(out: &mut Vec<u8>, side: u8, rel: i16, flags: u8, len: u8) {
    out.push(OP_SEGMENT_REL | (side & 1));
    out.extend_from_slice(&(rel as u16).to_be_bytes());
    out.extend_from_slice(&[flags, len]);
}

/// Encodes the header for the seed generator.
pub fn encode_header(out: &mut Vec<u8>, mode: u8, side_cap_shift: u8, budget8: u16, isn: [u32; 2]) {
    out.extend_from_slice(&[mode, side_cap_shift]);
    out.extend_from_slice(&budget8.to_be_bytes());
    for i in isn {
        out.extend_from_slice(&i.to_be_bytes());
    }
}
