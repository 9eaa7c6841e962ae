//! Target `ipfrag`: the IP [`FragmentReassembler`], driven by an operation
//! language.
//!
//! Input: a header (mode, datagram table size, memory cap, timeout), then
//! operations. In raw mode each operation is an arbitrary packet; in
//! structured mode it is an IPv4 or IPv6 fragment built from a few fields
//! (identification, offset, more-fragments, length) whose payload byte at
//! datagram offset `o` is [`pattern`]`(o)`, so every datagram completed must
//! carry exactly that payload. Either mode may advance the clock.
//!
//! Checked after every operation: memory and table stay under their caps;
//! a completed datagram is a whole IP packet whose length fields match its
//! size, that is not itself a fragment, and (structured mode) whose payload
//! is the pattern.

use std::time::Duration;

use flowscope::Timestamp;
use flowscope::reassembly::ipfrag::{FragConfig, FragOutcome, FragmentReassembler};

use super::input::Input;

/// Header byte bit: operations are raw packets.
pub const MODE_RAW: u8 = 0x01;
/// Operation: an IPv4 fragment (structured) or a raw packet (raw mode).
pub const OP_V4: u8 = 0;
/// Operation: an IPv6 fragment (structured) or a raw packet (raw mode).
pub const OP_V6: u8 = 1;
/// Operation: advance the clock by the next byte × 100 ms.
pub const OP_TICK: u8 = 2;

/// The payload byte at datagram offset `o` in structured mode.
pub fn pattern(o: usize) -> u8 {
    (o as u8).wrapping_mul(13) ^ (o >> 8) as u8
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let config = FragConfig {
        max_datagrams: 1 + usize::from(input.u8() % 16),
        max_memory_bytes: 256 << (input.u8() % 12),
        timeout: Duration::from_millis(100 * (1 + u64::from(input.u8()))),
    };
    let mut fr = FragmentReassembler::new(config);
    let mut now = Timestamp::new(1_600_000_000, 0);
    let mut packet = Vec::new();
    while !input.is_empty() {
        let op = input.u8() % 3;
        if op == OP_TICK {
            now = now.saturating_add(Duration::from_millis(100 * u64::from(input.u8())));
            fr.expire(now);
            continue;
        }
        packet.clear();
        if mode & MODE_RAW != 0 {
            let len = usize::from(input.u16() % 1600);
            packet.extend_from_slice(input.bytes(len));
        } else {
            let id = input.u8();
            let offset8 = input.u16() & 0x1fff;
            let more = offset8 & 0x1000 != 0;
            let offset8 = offset8 & 0x0fff;
            let len = usize::from(input.u16() % 2048);
            let body: Vec<u8> = (0..len)
                .map(|i| pattern(usize::from(offset8) * 8 + i))
                .collect();
            if op == OP_V4 {
                v4_fragment(&mut packet, id, offset8, more, &body);
            } else {
                v6_fragment(&mut packet, id, offset8, more, &body);
            }
        }
        let structured = mode & MODE_RAW == 0;
        if let FragOutcome::Complete(whole) = fr.push(&packet, now) {
            check_complete(whole, structured);
        }
        assert!(
            fr.memory_bytes() <= config.max_memory_bytes,
            "memory over the cap"
        );
        assert!(
            fr.in_progress() <= config.max_datagrams,
            "table over its size"
        );
    }
    fr.expire_all();
    assert_eq!((fr.in_progress(), fr.memory_bytes()), (0, 0));
}

fn check_complete(whole: &[u8], structured: bool) {
    let payload_at = match whole[0] >> 4 {
        4 => {
            let total = usize::from(u16::from_be_bytes([whole[2], whole[3]]));
            assert_eq!(
                total,
                whole.len(),
                "IPv4 total length of a reassembled packet"
            );
            assert_eq!(
                u16::from_be_bytes([whole[6], whole[7]]) & 0x3fff,
                0,
                "still a fragment"
            );
            usize::from(whole[0] & 0x0f) * 4
        }
        6 => {
            let plen = usize::from(u16::from_be_bytes([whole[4], whole[5]]));
            assert_eq!(
                plen + 40,
                whole.len(),
                "IPv6 payload length of a reassembled packet"
            );
            40
        }
        v => panic!("reassembled packet of IP version {v}"),
    };
    let mut again = FragmentReassembler::new(FragConfig::default());
    assert_eq!(
        again.push(whole, Timestamp(0)),
        FragOutcome::NotFragment,
        "a reassembled packet is a fragment again"
    );
    if structured {
        for (o, &b) in whole[payload_at..].iter().enumerate() {
            assert_eq!(b, pattern(o), "reassembled byte at offset {o}");
        }
    }
}

/// An IPv4 fragment from 192.0.2.1 to 198.51.100.1, UDP, checksum set.
fn v4_fragment(out: &mut Vec<u8>, id: u8, offset8: u16, more: bool, body: &[u8]) {
    let total = (20 + body.len()) as u16;
    let frag = offset8 | if more { 0x2000 } else { 0 };
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0, id]);
    out.extend_from_slice(&frag.to_be_bytes());
    out.extend_from_slice(&[64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1]);
    let sum = !out.chunks(2).fold(0u32, |s, c| {
        let s = s + u32::from(u16::from_be_bytes([c[0], c[1]]));
        (s & 0xffff) + (s >> 16)
    }) as u16;
    out[10..12].copy_from_slice(&sum.to_be_bytes());
    out.extend_from_slice(body);
}

/// An IPv6 packet 2001:db8::1 → 2001:db8::2 with a Fragment header, UDP.
fn v6_fragment(out: &mut Vec<u8>, id: u8, offset8: u16, more: bool, body: &[u8]) {
    let plen = (8 + body.len()) as u16;
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&plen.to_be_bytes());
    out.extend_from_slice(&[44, 64]);
    for last in [1u8, 2] {
        out.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        out.extend_from_slice(&[0; 11]);
        out.push(last);
    }
    out.extend_from_slice(&[17, 0]);
    out.extend_from_slice(&((offset8 << 3) | u16::from(more)).to_be_bytes());
    out.extend_from_slice(&u32::from(id).to_be_bytes());
    out.extend_from_slice(body);
}

/// Encodes a structured fragment operation for the seed generator.
pub fn encode_fragment(out: &mut Vec<u8>, v6: bool, id: u8, offset8: u16, more: bool, len: u16) {
    out.push(if v6 { OP_V6 } else { OP_V4 });
    out.push(id);
    out.extend_from_slice(&((offset8 & 0x0fff) | if more { 0x1000 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
}

/// Encodes a raw packet operation for the seed generator.
pub fn encode_raw(out: &mut Vec<u8>, packet: &[u8]) {
    out.push(OP_V4);
    out.extend_from_slice(&(packet.len().min(1599) as u16).to_be_bytes());
    out.extend_from_slice(&packet[..packet.len().min(1599)]);
}
