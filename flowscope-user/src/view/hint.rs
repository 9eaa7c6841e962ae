//! [`FrameHint`]: what the XDP program already found in a frame (link layer
//! length, VLAN tags, IPv6 extension chain), so [`FiveTuple`](crate::extract::FiveTuple) reads
//! the IP and transport headers at known offsets instead of walking to them.
//!
//! A hint never changes an extraction's result. It is taken only from a
//! metadata block that passes [`XdpMeta::is_valid_for`] and says the link
//! layer parsed into IPv4 or IPv6 (the rules of `flowscope_common::frame`,
//! which the userspace walk follows too), and only for a frame of the length
//! it was made for. The link part is checked against the frame's EtherType
//! fields (three 2-byte reads at most), so a stale block cannot move the IP
//! header; the IPv6 upper-layer offset is taken as the program wrote it and
//! bounded by the IP payload. Anything else takes the normal walk.
//!
//! The program's `flow_hash` is not reused for the flow table: it is keyed
//! by a 32-bit seed (small enough to recover offline and then aim flows at
//! chosen buckets), it hashes every fragment without ports while the
//! tracker keys first fragments with theirs, and frames without metadata
//! (pcap input, decapsulated and reassembled packets) would need the same
//! function in userspace. Reusing it would take a wider keyed hash defined
//! on exactly the tracker's key, in place of `steer_hash` in the metadata.

use flowscope_common::XdpMeta;
use flowscope_common::frame::{
    ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP, L3Class,
    MAX_VLAN_TAGS, VLAN_HLEN,
};
use flowscope_common::meta::{FLAG_ERR_L2, FLAG_ERR_L3, FLAG_FRAGMENT, FLAG_L4_VALID};

/// Length of the fixed IPv6 header.
const IPV6_HLEN: usize = 40;

/// The XDP program's findings about one Ethernet frame, small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHint {
    /// Length of the frame the hint describes.
    frame_len: u16,
    /// VLAN tags before the IP header, 0..=2.
    vlan_count: u8,
    /// IPv6 (else IPv4).
    ipv6: bool,
    /// IPv6 with extension headers ending in a complete TCP or UDP header,
    /// no Fragment header: the protocol and the header's frame offset.
    upper: Option<(u8, u16)>,
}

/// The link layer a hint vouches for, checked against the frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HintedLink {
    /// Offset of the IP header.
    pub l3_offset: usize,
    /// [`ETH_P_IPV4`] or [`ETH_P_IPV6`].
    pub ethertype: u16,
    /// VLAN IDs, outermost first (0 = absent).
    pub vlan: [u16; 2],
    /// See [`FrameHint::upper`].
    pub upper: Option<(u8, usize)>,
}

impl FrameHint {
    /// The hint in `meta` for a frame of `frame_len` bytes, or `None` when
    /// the block is not valid for it, found no IP header after the link
    /// layer, or has nothing to skip (no VLAN tag, no IPv6 extension chain).
    pub fn from_meta(meta: &XdpMeta, frame_len: usize) -> Option<Self> {
        let vlan_count = usize::from(meta.vlan_count);
        if !meta.is_valid_for(frame_len)
            || meta.flags & FLAG_ERR_L2 != 0
            || vlan_count > MAX_VLAN_TAGS
            || usize::from(meta.l3_offset) != ETH_HLEN + VLAN_HLEN * vlan_count
        {
            return None;
        }
        let ipv6 = match meta.l3_class() {
            L3Class::Ipv4 => false,
            L3Class::Ipv6 => true,
            L3Class::Other => return None,
        };
        let upper = (ipv6
            && meta.flags & (FLAG_L4_VALID | FLAG_FRAGMENT | FLAG_ERR_L3) == FLAG_L4_VALID
            && matches!(meta.ip_proto, IPPROTO_TCP | IPPROTO_UDP)
            && usize::from(meta.l4_offset) > usize::from(meta.l3_offset) + IPV6_HLEN)
            .then_some((meta.ip_proto, meta.l4_offset));
        if vlan_count == 0 && upper.is_none() {
            // Nothing to skip: the untagged fixed-offset read is faster
            // than checking a hint (see `trackbench --hints`).
            return None;
        }
        Some(Self {
            frame_len: meta.frame_len,
            vlan_count: meta.vlan_count,
            ipv6,
            upper,
        })
    }

    /// The link layer of `frame` as the hint describes it, or `None` when
    /// `frame` is not the frame the hint was made for (another length, or
    /// EtherTypes that do not match): exactly what the generic link walk
    /// finds for such a frame.
    #[inline(always)]
    pub(crate) fn link(&self, frame: &[u8]) -> Option<HintedLink> {
        if frame.len() != usize::from(self.frame_len) {
            return None;
        }
        let be16 = |at: usize| {
            frame
                .get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let mut vlan = [0; 2];
        let n = usize::from(self.vlan_count);
        for (i, vid) in vlan.iter_mut().enumerate().take(n) {
            let tag = ETH_HLEN + VLAN_HLEN * i;
            if !matches!(be16(tag - 2)?, ETH_P_8021Q | ETH_P_8021AD) {
                return None;
            }
            *vid = be16(tag)? & 0x0FFF;
        }
        let l3_offset = ETH_HLEN + VLAN_HLEN * n;
        let ethertype = if self.ipv6 { ETH_P_IPV6 } else { ETH_P_IPV4 };
        if be16(l3_offset - 2)? != ethertype {
            return None;
        }
        Some(HintedLink {
            l3_offset,
            ethertype,
            vlan,
            upper: self.upper.map(|(p, o)| (p, usize::from(o))),
        })
    }
}
