//! [`FiveTuple`]: addresses, ports and protocol.

use super::{FrameHint, parse};
use crate::extractor::{Extracted, FlowExtractor, L4Proto, Orientation, Unmatched};
use crate::view::{LinkType, PacketView};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The standard flow key extractor: IP addresses, ports and protocol of the
/// outermost IP header after the link layer, VLAN tags and MPLS labels (wrap
/// it in a decapsulation combinator to key on a tunnel's inner flow).
///
/// Bidirectional by default: both directions share one key and
/// [`Extracted::orientation`] tells them apart. Protocols without ports
/// (ICMP, ICMPv6, others) are keyed by addresses and protocol, ports 0; their
/// [`Extracted::payload_offset`] points at the L4 header (ICMP type and code).
/// First fragments are keyed with their ports and carry
/// [`Extracted::fragment`]; non-first fragments are [`Unmatched::Fragment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiveTuple {
    bidirectional: bool,
}

impl FiveTuple {
    /// Both directions of a conversation share one key.
    pub const fn bidirectional() -> Self {
        Self {
            bidirectional: true,
        }
    }

    /// Each direction is its own flow; the key is in packet order.
    pub const fn directional() -> Self {
        Self {
            bidirectional: false,
        }
    }

    /// Whether both directions share a key.
    pub const fn is_bidirectional(&self) -> bool {
        self.bidirectional
    }
}

impl Default for FiveTuple {
    fn default() -> Self {
        Self::bidirectional()
    }
}

/// Key of [`FiveTuple`]: 38 bytes, `Copy`, no heap.
///
/// In a bidirectional key, `src` is the lower endpoint (address, then port)
/// and `dst` the higher; [`FiveTupleKey::oriented`] gives the packet's
/// direction back. In a directional key they are the packet's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FiveTupleKey {
    /// Source address; IPv4 in the first 4 bytes, the rest 0.
    src: [u8; 16],
    dst: [u8; 16],
    src_port: u16,
    dst_port: u16,
    proto: u8,
    ipv6: bool,
}

/// Every field in as few words as they fit rather than the derive's eight
/// calls, the flow table hashes a key per packet: one 128-bit word for an
/// IPv4 key (whose address bytes past the fourth are always zero), three for
/// IPv6.
impl Hash for FiveTupleKey {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        let rest = u64::from(self.src_port)
            | u64::from(self.dst_port) << 16
            | u64::from(self.proto) << 32
            | u64::from(self.ipv6) << 40;
        match (self.ipv6, self.src.first_chunk(), self.dst.first_chunk()) {
            (false, Some(&src), Some(&dst)) => {
                let addrs =
                    u64::from(u32::from_ne_bytes(src)) | u64::from(u32::from_ne_bytes(dst)) << 32;
                h.write_u128(u128::from(addrs) | u128::from(rest) << 64);
            }
            _ => {
                h.write_u128(u128::from_ne_bytes(self.src));
                h.write_u128(u128::from_ne_bytes(self.dst));
                h.write_u64(rest);
            }
        }
    }
}

impl FiveTupleKey {
    /// An IPv4 key in the given order.
    pub fn from_v4(src: Ipv4Addr, src_port: u16, dst: Ipv4Addr, dst_port: u16, proto: u8) -> Self {
        let mut s = [0; 16];
        let mut d = [0; 16];
        s[..4].copy_from_slice(&src.octets());
        d[..4].copy_from_slice(&dst.octets());
        Self {
            src: s,
            dst: d,
            src_port,
            dst_port,
            proto,
            ipv6: false,
        }
    }

    /// An IPv6 key in the given order.
    pub fn from_v6(src: Ipv6Addr, src_port: u16, dst: Ipv6Addr, dst_port: u16, proto: u8) -> Self {
        Self {
            src: src.octets(),
            dst: dst.octets(),
            src_port,
            dst_port,
            proto,
            ipv6: true,
        }
    }

    /// A key in the given order; `None` when the families differ.
    pub fn new(src: SocketAddr, dst: SocketAddr, proto: u8) -> Option<Self> {
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                Some(Self::from_v4(s, src.port(), d, dst.port(), proto))
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                Some(Self::from_v6(s, src.port(), d, dst.port(), proto))
            }
            _ => None,
        }
    }

    fn addr(&self, a: [u8; 16]) -> IpAddr {
        if self.ipv6 {
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
        }
    }

    /// Source address.
    pub fn src_ip(&self) -> IpAddr {
        self.addr(self.src)
    }

    /// Destination address.
    pub fn dst_ip(&self) -> IpAddr {
        self.addr(self.dst)
    }

    /// Source port (0 for protocols without ports).
    pub fn src_port(&self) -> u16 {
        self.src_port
    }

    /// Destination port (0 for protocols without ports).
    pub fn dst_port(&self) -> u16 {
        self.dst_port
    }

    /// Source address and port.
    pub fn src(&self) -> SocketAddr {
        SocketAddr::new(self.src_ip(), self.src_port)
    }

    /// Destination address and port.
    pub fn dst(&self) -> SocketAddr {
        SocketAddr::new(self.dst_ip(), self.dst_port)
    }

    /// IP protocol number.
    pub fn protocol(&self) -> u8 {
        self.proto
    }

    /// Transport protocol.
    pub fn proto(&self) -> L4Proto {
        L4Proto::from_number(self.proto)
    }

    /// True for IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.ipv6
    }

    /// True if either side uses `port`.
    pub fn either_port(&self, port: u16) -> bool {
        self.src_port == port || self.dst_port == port
    }

    /// Source and destination swapped.
    #[must_use]
    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            ..*self
        }
    }

    /// The key in the direction of a packet that had `orientation`:
    /// unchanged for `Forward`, reversed for `Reverse`.
    #[must_use]
    pub fn oriented(&self, orientation: Orientation) -> Self {
        match orientation {
            Orientation::Forward => *self,
            Orientation::Reverse => self.reversed(),
        }
    }

    /// The canonical (bidirectional) form and the orientation of `self` relative to it.
    #[inline]
    pub fn canonical(&self) -> (Self, Orientation) {
        // Big-endian u128 order is the byte order of the addresses.
        let src = (u128::from_be_bytes(self.src), self.src_port);
        let dst = (u128::from_be_bytes(self.dst), self.dst_port);
        if dst < src {
            (self.reversed(), Orientation::Reverse)
        } else {
            (*self, Orientation::Forward)
        }
    }
}

impl FiveTuple {
    /// The extraction with or without a hint: `extract` calls it with a
    /// constant for each case, so each gets its own straight-line code.
    #[inline(always)]
    fn extract_with(
        &self,
        view: PacketView<'_>,
        hint: Option<&FrameHint>,
    ) -> Result<Extracted<FiveTupleKey>, Unmatched> {
        // Untagged Ethernet and IPv4, the most common frame, on a path of its
        // own: its key's address bytes past the fourth are known zeros there.
        if hint.is_none()
            && view.link == LinkType::Ethernet
            && let Some((ip, l4)) = parse::ethernet_ipv4_fast(view.frame)
        {
            return Ok(self.extracted([0; 2], &ip, &l4));
        }
        let hinted = match view.link {
            LinkType::Ethernet => hint.and_then(|h| h.link(view.frame)),
            _ => None,
        };
        let (vlan, ip, l4) = if let Some(link) = hinted {
            match parse::ip_fast(view.frame, link.l3_offset, link.ethertype, link.upper) {
                Some((ip, l4)) => (link.vlan, ip, l4),
                None => {
                    let (ip, l4) = walk_ip(view.frame, link.l3_offset, link.ethertype)?;
                    (link.vlan, ip, l4)
                }
            }
        } else {
            let fast = match view.link {
                LinkType::Ethernet => parse::ethernet_ip_fast(view.frame),
                _ => None,
            };
            match fast {
                Some((ip, l4)) => ([0; 2], ip, l4),
                None => walk(view.frame, view.link)?,
            }
        };
        Ok(self.extracted(vlan, &ip, &l4))
    }

    /// What the tracker gets for a packet with these headers.
    #[inline(always)]
    fn extracted(&self, vlan: [u16; 2], ip: &parse::Ip, l4: &parse::L4) -> Extracted<FiveTupleKey> {
        let key = FiveTupleKey {
            src: ip.src,
            dst: ip.dst,
            src_port: l4.src_port,
            dst_port: l4.dst_port,
            proto: ip.proto,
            ipv6: ip.ipv6,
        };
        let (key, orientation) = if self.bidirectional {
            key.canonical()
        } else {
            (key, Orientation::Forward)
        };
        Extracted {
            key,
            orientation,
            l4: l4.proto,
            tcp: l4.tcp,
            vlan,
            payload_offset: l4.payload_offset as u32,
            payload_len: l4.payload_len as u32,
            ip_len: ip.len,
            fragment: ip.fragment,
            tunnel: None,
        }
    }
}

/// The generic walk for frames the fixed-offset reads do not cover.
#[inline(always)]
fn walk(frame: &[u8], link: LinkType) -> Result<([u16; 2], parse::Ip, parse::L4), Unmatched> {
    let link = parse::link(frame, link)?;
    let (ip, l4) = walk_ip(frame, link.l3_offset, link.ethertype)?;
    Ok((link.vlan, ip, l4))
}

/// The IP and transport headers at `offset`, by the generic walk.
#[inline(always)]
fn walk_ip(
    frame: &[u8],
    offset: usize,
    ethertype: u16,
) -> Result<(parse::Ip, parse::L4), Unmatched> {
    let ip = parse::ip(frame, offset, ethertype)?;
    let l4 = parse::l4(frame, &ip)?;
    Ok((ip, l4))
}

impl FlowExtractor for FiveTuple {
    type Key = FiveTupleKey;

    /// Reads the IP and transport headers at the offsets `view.hint` gives
    /// where it applies (same result as the walk). Always inlined: the
    /// tracker's batch pipeline interleaves it with its prefetches.
    #[inline(always)]
    fn extract(&self, view: PacketView<'_>) -> Result<Extracted<FiveTupleKey>, Unmatched> {
        match view.hint {
            Some(hint) => self.extract_with(view, Some(&hint)),
            None => self.extract_with(view, None),
        }
    }
}
