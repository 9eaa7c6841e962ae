//! What a frame means: the parse rules shared by the XDP program and userspace.
//!
//! Both parsers follow these rules exactly (a differential test in
//! `flowscope-user` runs the XDP program and the userspace parser on the same
//! frames and compares the resulting [`crate::XdpMeta`]):
//!
//! 1. **Ethernet**: 14 bytes or `ERR_L2`. Up to [`MAX_VLAN_TAGS`] tags with
//!    EtherType [`ETH_P_8021Q`] or [`ETH_P_8021AD`] follow, 4 bytes each, or
//!    `ERR_L2`. A third tag leaves the frame as [`L3Class::Other`].
//! 2. **IPv4** ([`ETH_P_IPV4`]): 20 bytes, version 4, IHL ≥ 5 and IHL·4 bytes
//!    present, total length ≥ IHL·4, or `ERR_L3`. A total length beyond the
//!    frame is *not* an error (the frame is counted; anomaly counters flag it).
//!    MF set or offset ≠ 0 makes it a fragment; offset ≠ 0 a non-first
//!    fragment, whose L4 header is not parsed.
//! 3. **IPv6** ([`ETH_P_IPV6`]): 40 bytes and version 6, or `ERR_L3`. Then at
//!    most [`MAX_IPV6_EXT_HEADERS`] extension headers: hop-by-hop, routing and
//!    destination options (2 bytes, then `(len + 1) · 8` bytes present) and
//!    Fragment (8 bytes present); a truncated header, or a chain still going
//!    after the limit, is `ERR_L3`. A Fragment header with a non-zero offset
//!    makes a non-first fragment and ends the walk.
//! 4. **L4**, unless a non-first fragment: TCP needs 20 bytes and data offset
//!    ≥ 5 with that many words present; UDP 8 bytes; ICMP and ICMPv6 4 bytes;
//!    otherwise `ERR_L4`. Other protocols are [`L4Class::Other`] and not parsed.
//! 5. **Hashes** (see [`crate::hash`]): the flow hash covers addresses,
//!    protocol and — for TCP and UDP frames that are not fragments — ports; the
//!    steering hash covers the five-tuple of TCP and UDP (first fragments
//!    included), and only addresses and protocol for UDP on a tunnel port and
//!    frames without ports. A fragment's steering hash then goes through the
//!    fragment table ([`crate::frag`]), so every fragment of a datagram and
//!    every packet of a flow reach the same socket. Frames without a parsed
//!    IP header hash to 0.
//!
//! The L3 class follows the EtherType alone: a frame with an IPv4 EtherType
//! whose header is broken is class IPv4 with `ERR_L3`.
//!
//! Counting (per CPU, packets and bytes of the whole frame): every frame in
//! [`crate::Counter::All`]; one L3 class; IP frames in one L4 class by protocol
//! number (fragments included); fragments also in `Fragment`; failures in the
//! counter of the layer that failed.

/// 802.1Q VLAN tag EtherType.
pub const ETH_P_8021Q: u16 = 0x8100;
/// 802.1ad (QinQ service tag) EtherType.
pub const ETH_P_8021AD: u16 = 0x88A8;
/// IPv4 EtherType.
pub const ETH_P_IPV4: u16 = 0x0800;
/// IPv6 EtherType.
pub const ETH_P_IPV6: u16 = 0x86DD;
/// Ethernet header length.
pub const ETH_HLEN: usize = 14;
/// VLAN tag length.
pub const VLAN_HLEN: usize = 4;
/// Most VLAN tags parsed before the L3 header.
pub const MAX_VLAN_TAGS: usize = 2;
/// Most IPv6 extension headers walked.
pub const MAX_IPV6_EXT_HEADERS: usize = 6;

/// VXLAN's UDP port (IANA).
pub const VXLAN_PORT: u16 = 4789;
/// Geneve's UDP port (IANA).
pub const GENEVE_PORT: u16 = 6081;
/// GTP-U's UDP port (3GPP TS 29.281).
pub const GTP_U_PORT: u16 = 2152;
/// Teredo's UDP port (IANA).
pub const TEREDO_PORT: u16 = 3544;

/// IPv6 hop-by-hop options header.
pub const IPPROTO_HOPOPTS: u8 = 0;
/// ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// TCP.
pub const IPPROTO_TCP: u8 = 6;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IPv6 routing header.
pub const IPPROTO_ROUTING: u8 = 43;
/// IPv6 fragment header.
pub const IPPROTO_FRAGMENT: u8 = 44;
/// ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;
/// IPv6 destination options header.
pub const IPPROTO_DSTOPTS: u8 = 60;

/// Network-layer class of a frame.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L3Class {
    /// Not IPv4 or IPv6 (ARP, LLDP, a third VLAN tag, …), or not parsed.
    Other = 0,
    /// IPv4.
    Ipv4 = 1,
    /// IPv6.
    Ipv6 = 2,
}

impl L3Class {
    /// Decodes the `u8` stored in metadata; unknown values are `Other`.
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Ipv4,
            2 => Self::Ipv6,
            _ => Self::Other,
        }
    }
}

/// Transport-layer class of an IP frame.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L4Class {
    /// Not an IP frame.
    None = 0,
    /// TCP.
    Tcp = 1,
    /// UDP.
    Udp = 2,
    /// ICMP (IPv4).
    Icmp = 3,
    /// ICMPv6.
    Icmpv6 = 4,
    /// Any other protocol number.
    Other = 5,
}

impl L4Class {
    /// Decodes the `u8` stored in metadata; unknown values are `Other`.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::None,
            1 => Self::Tcp,
            2 => Self::Udp,
            3 => Self::Icmp,
            4 => Self::Icmpv6,
            _ => Self::Other,
        }
    }

    /// The class of IP protocol number `proto`.
    pub fn from_ip_proto(proto: u8) -> Self {
        match proto {
            IPPROTO_TCP => Self::Tcp,
            IPPROTO_UDP => Self::Udp,
            IPPROTO_ICMP => Self::Icmp,
            IPPROTO_ICMPV6 => Self::Icmpv6,
            _ => Self::Other,
        }
    }
}
