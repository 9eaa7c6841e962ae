//! Steering: which worker a frame goes to. The capture-file reader uses the
//! XDP program's rule ([`steer_fields`], [`flowscope_common::hash`]) and its
//! fragment table ([`Steering`]) on frames of every link type the file may
//! hold, so that a file splits across workers as the program splits traffic
//! across a queue's sockets.

use crate::view::LinkType;
use crate::wire::{
    EthernetFrame, LoopbackHeader, Sll2Header, SllHeader, SteerFields, steer_fields, words16,
};
use flowscope_common::frag::{FRAG_SLOTS, FragEntry, frag_slot};
use flowscope_common::frame::{IPPROTO_TCP, IPPROTO_UDP};
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
#[inline(always)]
fn hashes(f: &SteerFields, seed: u32) -> (u32, u32) {
    let (a, b) = (
        hash::address_hash(seed, &f.src),
        hash::address_hash(seed, &f.dst),
    );
    hash::flow_and_steer(a, f.sport, b, f.dport, f.proto, f.fragment.is_some())
}

/// The steering fields of an untagged Ethernet frame carrying a whole TCP
/// or UDP header right after an IPv4 header without options that is not a
/// fragment, or right after an IPv6 header, read at fixed offsets; `None`
/// for every other frame. It takes only frames [`steer_fields`] reads the
/// same way, so the fields are its fields (a unit test holds them equal),
/// in a few steps.
#[inline(always)]
fn fast_fields(frame: &[u8]) -> Option<SteerFields> {
    let (ethertype, l3) = frame.get(12..)?.split_first_chunk::<2>()?;
    let (src, dst, proto, l4) = match *ethertype {
        [0x08, 0x00] => {
            let (h, l4) = l3.split_first_chunk::<20>()?;
            // Version 4, IHL 5; MF clear and offset 0; a total length that
            // holds the header.
            if h[0] != 0x45
                || u16::from_be_bytes([h[6], h[7]]) & 0x3FFF != 0
                || u16::from_be_bytes([h[2], h[3]]) < 20
            {
                return None;
            }
            let word = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
            ([word(12), 0, 0, 0], [word(16), 0, 0, 0], h[9], l4)
        }
        [0x86, 0xdd] => {
            let (h, l4) = l3.split_first_chunk::<40>()?;
            if h[0] >> 4 != 6 {
                return None;
            }
            let (src, dst) = h[8..].split_first_chunk::<16>()?;
            let dst = dst.first_chunk::<16>()?;
            (words16(*src), words16(*dst), h[6], l4)
        }
        _ => return None,
    };
    let ports = match proto {
        IPPROTO_TCP => {
            let t = l4.first_chunk::<20>()?;
            // Data offset of at least 5 words, all in the frame.
            let words = usize::from(t[12] >> 4);
            if words < 5 || l4.len() < words * 4 {
                return None;
            }
            t.first_chunk::<4>()?
        }
        IPPROTO_UDP => l4.first_chunk::<4>().filter(|_| l4.len() >= 8)?,
        _ => return None,
    };
    Some(SteerFields {
        src,
        dst,
        proto,
        sport: u16::from_be_bytes([ports[0], ports[1]]),
        dport: u16::from_be_bytes([ports[2], ports[3]]),
        fragment: None,
    })
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
        // Fast-read fields are never a fragment's.
        if link == LinkType::Ethernet
            && let Some(f) = fast_fields(frame)
        {
            return hashes(&f, self.seed).1;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::test_frames::{eth, ext, ipv4, ipv6, tcp, tcp_with, udp};

    fn frame(ethertype: u16, l3: Vec<u8>) -> Vec<u8> {
        let mut f = eth(&[], ethertype);
        f.extend(l3);
        f
    }

    /// Frames the fast read takes (TCP and UDP over IPv4 and IPv6, UDP to a
    /// tunnel port) and frames it leaves to the general rules (IPv4
    /// options, ICMP, a fragment, an IPv6 extension header, a VLAN tag).
    fn bases() -> Vec<Vec<u8>> {
        let mut vxlan = udp();
        vxlan[2..4].copy_from_slice(&4789u16.to_be_bytes());
        let mut tagged = eth(&[(0x8100, 7)], 0x0800);
        tagged.extend(ipv4(6, &[], 0, &tcp()));
        vec![
            frame(0x0800, ipv4(6, &[], 0, &tcp())),
            frame(0x0800, ipv4(6, &[1, 1, 1, 0], 0, &tcp_with(&[1, 1, 1, 0]))),
            frame(0x0800, ipv4(17, &[], 0, &udp())),
            frame(0x0800, ipv4(17, &[], 0, &vxlan)),
            frame(0x0800, ipv4(1, &[], 0, &[8, 0, 0, 0, 0, 1, 0, 1])),
            frame(0x0800, ipv4(6, &[], 0x2000, &tcp())),
            frame(0x86dd, ipv6(6, &tcp())),
            frame(0x86dd, ipv6(17, &udp())),
            frame(0x86dd, ipv6(0, &[ext(6, 0), tcp()].concat())),
            tagged,
        ]
    }

    /// Whenever the fast read takes a frame, its fields are the general
    /// rules' fields: on the frames above, every truncation of them, and
    /// each with any one of its first 80 bytes set to another value.
    #[test]
    fn the_fast_read_reads_as_the_rules_do() {
        let (mut taken, mut left) = (0, 0);
        let mut check = |f: &[u8]| match fast_fields(f) {
            Some(fast) => {
                assert_eq!(Some(fast), fields(f, LinkType::Ethernet), "{f:02x?}");
                taken += 1;
            }
            None => left += 1,
        };
        for base in bases() {
            for len in 0..=base.len() {
                check(&base[..len]);
            }
            for at in 0..base.len().min(80) {
                for v in [0u8, 1, 0x0f, 0x10, 0x3f, 0x40, 0x45, 0x4f, 0x60, 0x80, 0xff] {
                    let mut f = base.clone();
                    f[at] = v;
                    check(&f);
                    f[at] = base[at] ^ v;
                    check(&f);
                }
            }
        }
        assert!(taken > 4_000 && left > 4_000, "{taken} taken, {left} left");
    }
}
