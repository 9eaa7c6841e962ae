//! [`classify`]: the userspace twin of the XDP program's parse, following the
//! rules of [`flowscope_common::frame`] to the letter.
//!
//! Where the written rules leave a field open, this is what both sides write
//! (the differential test holds the XDP program to it):
//!
//! - `magic`, `version` and `frame_len = min(len, 65535)` are always set;
//!   every other field starts at 0.
//! - `vlan_count` counts the tags consumed (a truncated tag is not counted).
//! - `l3_offset` is where the L2 parse ended (after the tags), also for
//!   non-IP frames and for a third tag; it stays 0 on `ERR_L2`.
//! - `ERR_L3`: `l3` is the class of the EtherType, `l4` stays `None`,
//!   `ip_proto` 0 and both hashes 0 (no parsed IP header).
//! - `ip_proto`, `l4` and the hashes are set for every frame whose IP header
//!   (and IPv6 extension chain) parsed, fragments and `ERR_L4` included.
//! - `l4_offset` is set only together with `FLAG_L4_VALID`; otherwise 0.
//! - L4 sizes are checked against the end of the frame, not the IP length.
//! - An IPv6 Fragment header sets `FLAG_FRAGMENT` even with offset 0 and M 0.
//! - `anomalies` is [`crate::anomaly::detect`] of the frame (the rules of
//!   `flowscope_common::anomaly`).

use super::{IcmpMessage, Ipv4Packet, Ipv6Packet, TcpSegment, UdpDatagram};
use flowscope_common::XdpMeta;
use flowscope_common::frame::{
    ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6,
    IPPROTO_TCP, IPPROTO_UDP, L3Class, L4Class, MAX_VLAN_TAGS, VLAN_HLEN,
};
use flowscope_common::hash::{address_hash, flow_and_steer};
use flowscope_common::meta::{
    FLAG_ERR_L2, FLAG_ERR_L3, FLAG_ERR_L4, FLAG_FRAGMENT, FLAG_L4_VALID, FLAG_NONFIRST_FRAGMENT,
    META_MAGIC, META_VERSION,
};

/// Address words as [`flowscope_common::hash`] wants them: little-endian
/// loads of the wire bytes.
pub(crate) fn words16(a: [u8; 16]) -> [u32; 4] {
    [
        u32::from_le_bytes([a[0], a[1], a[2], a[3]]),
        u32::from_le_bytes([a[4], a[5], a[6], a[7]]),
        u32::from_le_bytes([a[8], a[9], a[10], a[11]]),
        u32::from_le_bytes([a[12], a[13], a[14], a[15]]),
    ]
}

fn words4(a: [u8; 4]) -> [u32; 4] {
    [u32::from_le_bytes(a), 0, 0, 0]
}

/// What the IP layer yields for the L4 step.
struct L3 {
    src: [u32; 4],
    dst: [u32; 4],
    proto: u8,
    /// Offset of the L4 header in the frame.
    l4_offset: usize,
    fragment: bool,
    nonfirst: bool,
    /// The identification of a fragment (IPv4's 16 bits, IPv6's 32).
    id: u32,
}

impl L3 {
    /// Rule 4 for a frame that is not a non-first fragment: the ports of a
    /// complete TCP or UDP header, (0, 0) for a complete ICMP header, `None`
    /// for a truncated one and for other protocols.
    fn l4_ports(&self, frame: &[u8]) -> Option<(u16, u16)> {
        let l4 = frame.get(self.l4_offset..).unwrap_or_default();
        match self.proto {
            IPPROTO_TCP => TcpSegment::new_checked(l4)
                .map(|t| (t.src_port(), t.dst_port()))
                .ok(),
            IPPROTO_UDP => UdpDatagram::new_checked(l4)
                .map(|u| (u.src_port(), u.dst_port()))
                .ok(),
            IPPROTO_ICMP | IPPROTO_ICMPV6 => IcmpMessage::new_checked(l4).map(|_| (0, 0)).ok(),
            _ => None,
        }
    }
}

/// Parses an Ethernet frame as the XDP program does and returns the metadata
/// it would write (see the module docs for the fields the rules leave open).
pub fn classify(frame: &[u8], seed: u32) -> XdpMeta {
    let mut m = XdpMeta {
        magic: META_MAGIC,
        version: META_VERSION,
        frame_len: frame.len().min(usize::from(u16::MAX)) as u16,
        anomalies: crate::anomaly::detect(frame),
        ..XdpMeta::default()
    };
    // Rule 1: Ethernet and up to two VLAN tags.
    let Some(eth) = frame.get(12..ETH_HLEN) else {
        m.flags |= FLAG_ERR_L2;
        return m;
    };
    let mut ethertype = u16::from_be_bytes([eth[0], eth[1]]);
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(tag) = frame.get(off..off + VLAN_HLEN) else {
            m.flags |= FLAG_ERR_L2;
            return m;
        };
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        off += VLAN_HLEN;
        m.vlan_count += 1;
    }
    m.l3_offset = off as u16;
    let l3_bytes = frame.get(off..).unwrap_or_default();
    // Rules 2 and 3.
    let l3 = match ethertype {
        ETH_P_IPV4 => {
            m.l3 = L3Class::Ipv4 as u8;
            ipv4(l3_bytes, off)
        }
        ETH_P_IPV6 => {
            m.l3 = L3Class::Ipv6 as u8;
            ipv6(l3_bytes, off)
        }
        _ => return m,
    };
    let Some(l3) = l3 else {
        m.flags |= FLAG_ERR_L3;
        return m;
    };
    m.ip_proto = l3.proto;
    m.l4 = L4Class::from_ip_proto(l3.proto) as u8;
    if l3.fragment {
        m.flags |= FLAG_FRAGMENT;
    }
    // Rule 4.
    let mut ports = (0, 0);
    if l3.nonfirst {
        m.flags |= FLAG_NONFIRST_FRAGMENT;
    } else {
        match (l3.l4_ports(frame), L4Class::from_ip_proto(l3.proto)) {
            (_, L4Class::Other) => {}
            (None, _) => m.flags |= FLAG_ERR_L4,
            (Some(p), _) => {
                m.flags |= FLAG_L4_VALID;
                m.l4_offset = l3.l4_offset as u16;
                ports = p;
            }
        }
    }
    // Rule 5.
    let (a, b) = (address_hash(seed, &l3.src), address_hash(seed, &l3.dst));
    (m.flow_hash, m.steer_hash) = flow_and_steer(a, ports.0, b, ports.1, l3.proto, l3.fragment);
    m
}

/// What the XDP program steers a frame by (see [`steer_fields`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SteerFields {
    /// Source address words, as [`flowscope_common::hash`] takes them.
    pub src: [u32; 4],
    /// Destination address words.
    pub dst: [u32; 4],
    /// IP protocol, after IPv6 extension headers.
    pub proto: u8,
    /// Source port of a complete TCP or UDP header (first fragments
    /// included), else 0.
    pub sport: u16,
    /// Destination port, likewise.
    pub dport: u16,
    /// A fragment's identification and whether it is a non-first fragment.
    pub fragment: Option<(u32, bool)>,
}

/// What the XDP program steers a frame by: from the header at `off` with
/// `ethertype` after the link header (0: IP of either version, by its
/// version nibble), up to two VLAN tags walked as the program walks them,
/// the IP pair, the protocol after IPv6 extension headers, the ports and
/// the fragment, as [`classify`] reads them for Ethernet frames; `None`
/// without a parsable IP header.
#[inline]
pub fn steer_fields(frame: &[u8], mut ethertype: u16, mut off: usize) -> Option<SteerFields> {
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let tag = frame.get(off..off + VLAN_HLEN)?;
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        off += VLAN_HLEN;
    }
    let l3_bytes = frame.get(off..).unwrap_or_default();
    let version = l3_bytes.first().map_or(0, |b| b >> 4);
    let l3 = match (ethertype, version) {
        (ETH_P_IPV4, _) | (0, 4) => ipv4(l3_bytes, off),
        (ETH_P_IPV6, _) | (0, 6) => ipv6(l3_bytes, off),
        _ => None,
    }?;
    let (sport, dport) = if l3.nonfirst {
        (0, 0)
    } else {
        l3.l4_ports(frame).unwrap_or((0, 0))
    };
    Some(SteerFields {
        src: l3.src,
        dst: l3.dst,
        proto: l3.proto,
        sport,
        dport,
        fragment: l3.fragment.then_some((l3.id, l3.nonfirst)),
    })
}

fn ipv4(b: &[u8], off: usize) -> Option<L3> {
    let ip = Ipv4Packet::new_checked(b).ok()?;
    Some(L3 {
        src: words4(ip.src_bytes()),
        dst: words4(ip.dst_bytes()),
        proto: ip.protocol(),
        l4_offset: off + ip.header_len(),
        fragment: ip.is_fragment(),
        nonfirst: ip.frag_offset() != 0,
        id: u32::from(ip.ident()),
    })
}

fn ipv6(b: &[u8], off: usize) -> Option<L3> {
    let ip = Ipv6Packet::new_checked(b).ok()?;
    // The walk is bounded by the frame, not by the payload length field.
    let rest = b.get(Ipv6Packet::HEADER_LEN..).unwrap_or_default();
    let up = super::walk_extension_headers(ip.next_header(), rest).ok()?;
    Some(L3 {
        src: words16(ip.src_bytes()),
        dst: words16(ip.dst_bytes()),
        proto: up.protocol,
        l4_offset: off + Ipv6Packet::HEADER_LEN + up.offset,
        fragment: up.fragment.is_some(),
        nonfirst: up.is_nonfirst_fragment(),
        id: up.fragment.map_or(0, |f| f.ident),
    })
}
