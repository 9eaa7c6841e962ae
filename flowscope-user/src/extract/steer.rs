//! Steering: which worker a frame goes to. The capture-file reader uses the
//! XDP program's rule ([`steer_fields`], [`flowscope_common::hash`]) and its
//! fragment table ([`Steering`]) on frames of every link type the file may
//! hold, so that a file splits across workers as the program splits traffic
//! across a queue's sockets.

use crate::view::LinkType;
use crate::wire::{
    EthernetFrame, LoopbackHeader, Sll2Header, SllHeader, SteerFields, steer_fields,
};
use flowscope_common::frag::{FRAG_SLOTS, FragEntry, frag_slot};
use flowscope_common::hash;

/// Where the L3 header of a frame of `link` type starts, after the link
/// header only (VLAN tags are the caller's): its EtherType (0 when the
/// link says "IP" without naming the version: raw IP and BSD loopback) and
/// its offset. `None` when the link header is cut short.
#[inline]
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

/// A frame's own steering hash, as the XDP program computes it before its
/// fragment table (equal to [`crate::wire::classify`]'s for every Ethernet
/// frame): the five-tuple after up to two VLAN tags and the IPv6 extension
/// headers, or the address pair and protocol (UDP on a tunnel port, frames
/// without ports, non-first fragments), hashed by
/// [`flowscope_common::hash::flow_and_steer`]; 0 for frames without a
/// parsable IP header. Other link types reach their IP header by their own
/// link header first.
pub fn steer_hash(frame: &[u8], link: LinkType, seed: u32) -> u32 {
    fields(frame, link).map_or(0, |f| hashes(&f, seed).1)
}

/// The steering fields of a frame of `link` type.
#[inline]
fn fields(frame: &[u8], link: LinkType) -> Option<SteerFields> {
    let (ethertype, off) = l3_start(frame, link)?;
    steer_fields(frame, ethertype, off)
}

/// The flow and steering hashes of a frame's fields.
#[inline]
fn hashes(f: &SteerFields, seed: u32) -> (u32, u32) {
    let (a, b) = (
        hash::address_hash(seed, &f.src),
        hash::address_hash(seed, &f.dst),
    );
    hash::flow_and_steer(a, f.sport, b, f.dport, f.proto, f.fragment.is_some())
}

/// The XDP program's steering with its fragment table
/// ([`flowscope_common::frag`]): fed the frames of a file in order, it
/// steers each where the program would, the later fragments of a datagram
/// where its first went. The table is allocated once; no allocation per
/// frame.
pub struct Steering {
    seed: u32,
    frags: Box<[FragEntry]>,
    unsteered: u64,
}

impl Steering {
    /// An empty table; `seed` as the program's hash seed.
    pub fn new(seed: u32) -> Self {
        Self {
            seed,
            frags: vec![FragEntry::default(); FRAG_SLOTS as usize].into_boxed_slice(),
            unsteered: 0,
        }
    }

    /// The steering hash of the next frame, of `link` type.
    #[inline]
    pub fn steer(&mut self, frame: &[u8], link: LinkType) -> u32 {
        let Some(f) = fields(frame, link) else {
            return 0;
        };
        let (flow, own) = hashes(&f, self.seed);
        let Some((id, nonfirst)) = f.fragment else {
            return own;
        };
        // Every fragment's flow hash is its address pair's.
        let Some(e) = self.frags.get_mut(frag_slot(flow, id) as usize) else {
            return own;
        };
        let (steer, unsteered) = e.steer(&f.src, &f.dst, id, f.proto, nonfirst, own);
        self.unsteered += u64::from(unsteered);
        steer
    }

    /// Later fragments steered so far whose first the table did not hold
    /// (the program's `fragment_unsteered` counter).
    pub fn unsteered(&self) -> u64 {
        self.unsteered
    }
}
