//! [`FiveTuple`]: addresses, ports and protocol.

use super::{FrameHint, parse};
use crate::extractor::{Extracted, FlowExtractor, L4Proto, Orientation, Unmatched};
use crate::view::{LinkType, PacketView};
use std::cmp::Ordering;
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
/// direction back. In a directional key they are the packet's. Keys are
/// ordered by source address, destination address, source port,
/// destination port, protocol, then family.
///
/// Each field is written whole and read whole, at one width: the hash and
/// the comparison read a key right after extraction wrote it, and a read
/// wider than the stores it spans (the two ports as one word, written as
/// two) waits for them to retire instead of taking its bytes from them.
/// Byte arrays keep the key at 38 bytes, aligned to 1, so that it shares
/// its record's first cache line with what every packet updates.
#[derive(Clone, Copy, Eq)]
pub struct FiveTupleKey {
    /// Source address; IPv4 in the first 4 bytes, the rest 0.
    src: [u8; 16],
    dst: [u8; 16],
    /// Source port | destination port << 16, native byte order.
    ports: [u8; 4],
    /// Protocol | 1 for IPv6 << 8, native byte order.
    meta: [u8; 2],
}

impl FiveTupleKey {
    /// A key from its fields.
    #[inline(always)]
    const fn of(
        src: [u8; 16],
        dst: [u8; 16],
        sport: u16,
        dport: u16,
        proto: u8,
        ipv6: bool,
    ) -> Self {
        Self {
            src,
            dst,
            ports: (sport as u32 | (dport as u32) << 16).to_ne_bytes(),
            meta: (proto as u16 | (ipv6 as u16) << 8).to_ne_bytes(),
        }
    }

    /// Ports, protocol and family in one word: ports in bits 0–31,
    /// protocol 32–39, IPv6 bit 40.
    #[inline(always)]
    fn rest(&self) -> u64 {
        u64::from(u32::from_ne_bytes(self.ports)) | u64::from(u16::from_ne_bytes(self.meta)) << 32
    }
}

impl PartialEq for FiveTupleKey {
    /// Field by field at the widths they are stored with, without
    /// branches.
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        (u128::from_ne_bytes(self.src) == u128::from_ne_bytes(other.src))
            & (u128::from_ne_bytes(self.dst) == u128::from_ne_bytes(other.dst))
            & (self.ports == other.ports)
            & (self.meta == other.meta)
    }
}

/// Every field in as few words as they fit rather than one call per field,
/// the flow table hashes a key per packet: one 128-bit word for an IPv4
/// key (whose address bytes past the fourth are always zero), three for
/// IPv6.
impl Hash for FiveTupleKey {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        match (
            self.is_ipv6(),
            self.src.first_chunk(),
            self.dst.first_chunk(),
        ) {
            (false, Some(&src), Some(&dst)) => {
                let addrs =
                    u64::from(u32::from_ne_bytes(src)) | u64::from(u32::from_ne_bytes(dst)) << 32;
                h.write_u128(u128::from(addrs) | u128::from(self.rest()) << 64);
            }
            _ => {
                h.write_u128(u128::from_ne_bytes(self.src));
                h.write_u128(u128::from_ne_bytes(self.dst));
                h.write_u64(self.rest());
            }
        }
    }
}

impl Ord for FiveTupleKey {
    fn cmp(&self, other: &Self) -> Ordering {
        let fields = |k: &Self| {
            (
                k.src,
                k.dst,
                k.src_port(),
                k.dst_port(),
                k.protocol(),
                k.is_ipv6(),
            )
        };
        fields(self).cmp(&fields(other))
    }
}

impl PartialOrd for FiveTupleKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Debug for FiveTupleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FiveTupleKey")
            .field("src", &self.src())
            .field("dst", &self.dst())
            .field("proto", &self.protocol())
            .finish()
    }
}

impl FiveTupleKey {
    /// An IPv4 key in the given order.
    pub fn from_v4(src: Ipv4Addr, src_port: u16, dst: Ipv4Addr, dst_port: u16, proto: u8) -> Self {
        let mut s = [0; 16];
        let mut d = [0; 16];
        s[..4].copy_from_slice(&src.octets());
        d[..4].copy_from_slice(&dst.octets());
        Self::of(s, d, src_port, dst_port, proto, false)
    }

    /// An IPv6 key in the given order.
    pub fn from_v6(src: Ipv6Addr, src_port: u16, dst: Ipv6Addr, dst_port: u16, proto: u8) -> Self {
        Self::of(src.octets(), dst.octets(), src_port, dst_port, proto, true)
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
        if self.is_ipv6() {
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
        u32::from_ne_bytes(self.ports) as u16
    }

    /// Destination port (0 for protocols without ports).
    pub fn dst_port(&self) -> u16 {
        (u32::from_ne_bytes(self.ports) >> 16) as u16
    }

    /// Source address and port.
    pub fn src(&self) -> SocketAddr {
        SocketAddr::new(self.src_ip(), self.src_port())
    }

    /// Destination address and port.
    pub fn dst(&self) -> SocketAddr {
        SocketAddr::new(self.dst_ip(), self.dst_port())
    }

    /// IP protocol number.
    pub fn protocol(&self) -> u8 {
        u16::from_ne_bytes(self.meta) as u8
    }

    /// Transport protocol.
    pub fn proto(&self) -> L4Proto {
        L4Proto::from_number(self.protocol())
    }

    /// True for IPv6.
    pub fn is_ipv6(&self) -> bool {
        u16::from_ne_bytes(self.meta) >> 8 == 1
    }

    /// True if either side uses `port`.
    pub fn either_port(&self, port: u16) -> bool {
        self.src_port() == port || self.dst_port() == port
    }

    /// Source and destination swapped.
    #[must_use]
    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            ports: u32::from_ne_bytes(self.ports).rotate_left(16).to_ne_bytes(),
            meta: self.meta,
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
        let src = (u128::from_be_bytes(self.src), self.src_port());
        let dst = (u128::from_be_bytes(self.dst), self.dst_port());
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
        let key = FiveTupleKey::of(ip.src, ip.dst, l4.src_port, l4.dst_port, ip.proto, ip.ipv6);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A key's fields, as the key was built from them.
    type Fields = ([u8; 16], [u8; 16], u16, u16, u8, bool);

    fn key(f: Fields) -> FiveTupleKey {
        FiveTupleKey::of(f.0, f.1, f.2, f.3, f.4, f.5)
    }

    fn fields() -> impl Strategy<Value = Fields> {
        // Few distinct values per field, so that equal fields are common.
        let addr = prop_oneof![Just([0; 16]), Just([1; 16]), any::<[u8; 16]>()];
        let port = prop_oneof![Just(0u16), Just(80), any::<u16>()];
        (
            addr.clone(),
            addr,
            port.clone(),
            port,
            0u8..3,
            any::<bool>(),
        )
    }

    proptest! {
        /// The packed key reads back its fields, swaps them when reversed,
        /// and orders, compares and hashes as the tuple of its fields.
        #[test]
        fn the_key_behaves_as_its_fields(a in fields(), b in fields()) {
            let (ka, kb) = (key(a), key(b));
            prop_assert_eq!(
                (ka.src, ka.dst, ka.src_port(), ka.dst_port(), ka.protocol(), ka.is_ipv6()),
                a
            );
            prop_assert_eq!(ka.reversed(), key((a.1, a.0, a.3, a.2, a.4, a.5)));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(ka == kb, a == b);
            if a == b {
                let h = ahash::RandomState::with_seeds(1, 2, 3, 4);
                prop_assert_eq!(h.hash_one(ka), h.hash_one(kb));
            }
        }
    }
}
