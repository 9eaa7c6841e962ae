//! Steering: which worker a frame goes to. The capture-file reader uses the
//! XDP program's rule ([`steer_fields`]) on frames of every link type the
//! file may hold, so that a file splits across workers as the program
//! splits traffic across a queue's sockets.

use crate::view::LinkType;
use crate::wire::{EthernetFrame, LoopbackHeader, Sll2Header, SllHeader, steer_fields};
use flowscope_common::hash;

/// Where the L3 header of a frame of `link` type starts, after the link
/// header only (VLAN tags are the caller's): its EtherType (0 when the
/// link says "IP" without naming the version: raw IP and BSD loopback) and
/// its offset. `None` when the link header is cut short.
pub fn l3_start(frame: &[u8], link: LinkType) -> Option<(u16, usize)> {
    Some(match link {
        LinkType::RawIp => (0, 0),
        LinkType::Ethernet => (
            EthernetFrame::new_checked(frame).ok()?.ethertype(),
            EthernetFrame::HEADER_LEN,
        ),
        LinkType::LinuxSll => (
            SllHeader::new_checked(frame).ok()?.protocol(),
            SllHeader::HEADER_LEN,
        ),
        LinkType::LinuxSll2 => (
            Sll2Header::new_checked(frame).ok()?.protocol(),
            Sll2Header::HEADER_LEN,
        ),
        LinkType::Loopback => (0, LoopbackHeader::HEADER_LEN),
    })
}

/// The steering hash of a frame: the XDP program's (equal for every
/// Ethernet frame) — the outer IP pair and the protocol after IPv6
/// extension headers, hashed by [`flowscope_common::hash::steer_hash`],
/// after up to two VLAN tags; 0 for frames without a parsable IP header.
/// Other link types reach their IP header by their own link header first.
/// No port enters it, so every fragment of a datagram and every packet of a
/// flow get the same value.
pub fn steer_hash(frame: &[u8], link: LinkType, seed: u32) -> u32 {
    SteerKey::of(frame, link).map_or(0, |k| k.hash(seed))
}

/// What a frame is steered by: its outer IP pair and protocol (see
/// [`steer_hash`]). A reader of many frames of one pair compares keys and
/// hashes once per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SteerKey {
    src: [u32; 4],
    dst: [u32; 4],
    proto: u8,
}

impl SteerKey {
    /// The key of a frame; `None` without a parsable IP header.
    #[inline]
    pub fn of(frame: &[u8], link: LinkType) -> Option<Self> {
        let (ethertype, off) = l3_start(frame, link)?;
        let (src, dst, proto) = steer_fields(frame, ethertype, off)?;
        Some(Self { src, dst, proto })
    }

    /// Its steering hash with `seed`.
    #[inline]
    pub fn hash(&self, seed: u32) -> u32 {
        hash::steer_hash(seed, &self.src, &self.dst, self.proto)
    }
}
