//! The layer walk every extractor shares: link header, VLAN tags, MPLS
//! labels, IP header, transport header. Values only; no allocation, no
//! hashing.

use crate::extractor::{FragmentInfo, L4Proto, TcpFlags, TcpInfo, Unmatched};
use crate::view::LinkType;
use crate::wire::{
    EthernetFrame, IcmpMessage, Ipv4Packet, Ipv6Packet, LoopbackHeader, MplsLabel, Sll2Header,
    SllHeader, TcpSegment, UdpDatagram, VlanTag, walk_extension_headers,
};
use flowscope_common::frame::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6};

/// MPLS unicast EtherType.
const ETH_P_MPLS_UC: u16 = 0x8847;
/// MPLS multicast EtherType.
const ETH_P_MPLS_MC: u16 = 0x8848;
/// Most VLAN tags walked (802.1Q/802.1ad, any mix); more is `BadL2`.
pub const MAX_VLAN_TAGS: usize = 4;
/// Most MPLS labels walked before the bottom of the stack; more is `BadL2`.
pub const MAX_MPLS_LABELS: usize = 8;

/// What the link layer says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    /// EtherType of the L3 header (0 when unknown, e.g. MPLS over non-IP).
    pub ethertype: u16,
    /// Offset of the L3 header in the frame.
    pub l3_offset: usize,
    /// VLAN IDs, outermost first (0 = absent).
    pub vlan: [u16; 2],
    /// VLAN tags walked.
    pub vlan_count: u8,
    /// MPLS labels walked.
    pub mpls_count: u8,
    /// Ethernet (source, destination) MAC addresses.
    pub macs: Option<([u8; 6], [u8; 6])>,
}

/// What the IP layer says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ip {
    pub ipv6: bool,
    /// Source address: IPv4 in the first 4 bytes, the rest 0.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Protocol after IPv6 extension headers.
    pub proto: u8,
    /// IPv6 flow label (0 for IPv4).
    pub flow_label: u32,
    /// Offset of the L4 header in the frame.
    pub l4_offset: usize,
    /// End of the IP payload in the frame (total length or frame end).
    pub end: usize,
    pub fragment: Option<FragmentInfo>,
    /// A fragment with a non-zero offset: no L4 header.
    pub nonfirst: bool,
}

/// What the transport layer says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct L4 {
    pub proto: L4Proto,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp: Option<TcpInfo>,
    pub payload_offset: usize,
    pub payload_len: usize,
}

/// Walks the link header of `link`, VLAN tags and MPLS labels.
#[inline(always)]
pub(crate) fn link(frame: &[u8], link: LinkType) -> Result<Link, Unmatched> {
    let mut out = Link {
        ethertype: 0,
        l3_offset: 0,
        vlan: [0; 2],
        vlan_count: 0,
        mpls_count: 0,
        macs: None,
    };
    match link {
        LinkType::Ethernet => {
            let eth = EthernetFrame::new_checked(frame).map_err(|_| Unmatched::BadL2)?;
            out.macs = Some((eth.src(), eth.dst()));
            out.ethertype = eth.ethertype();
            out.l3_offset = EthernetFrame::HEADER_LEN;
        }
        LinkType::RawIp => {
            out.ethertype = ethertype_of_ip(frame).ok_or(Unmatched::BadL3)?;
            return Ok(out);
        }
        LinkType::LinuxSll => {
            out.ethertype = SllHeader::new_checked(frame)
                .map_err(|_| Unmatched::BadL2)?
                .protocol();
            out.l3_offset = SllHeader::HEADER_LEN;
        }
        LinkType::LinuxSll2 => {
            out.ethertype = Sll2Header::new_checked(frame)
                .map_err(|_| Unmatched::BadL2)?
                .protocol();
            out.l3_offset = Sll2Header::HEADER_LEN;
        }
        LinkType::Loopback => {
            let lo = LoopbackHeader::new_checked(frame).map_err(|_| Unmatched::BadL2)?;
            out.ethertype = lo.ethertype().ok_or(Unmatched::NotIp)?;
            out.l3_offset = LoopbackHeader::HEADER_LEN;
            return Ok(out);
        }
    }
    while out.ethertype == ETH_P_8021Q || out.ethertype == ETH_P_8021AD {
        if usize::from(out.vlan_count) == MAX_VLAN_TAGS {
            return Err(Unmatched::BadL2);
        }
        let tag = VlanTag::new_checked(frame.get(out.l3_offset..).unwrap_or_default())
            .map_err(|_| Unmatched::BadL2)?;
        if let Some(slot) = out.vlan.get_mut(usize::from(out.vlan_count)) {
            *slot = tag.vid();
        }
        out.vlan_count += 1;
        out.ethertype = tag.ethertype();
        out.l3_offset += VlanTag::HEADER_LEN;
    }
    if out.ethertype == ETH_P_MPLS_UC || out.ethertype == ETH_P_MPLS_MC {
        loop {
            if usize::from(out.mpls_count) == MAX_MPLS_LABELS {
                return Err(Unmatched::BadL2);
            }
            let label = MplsLabel::new_checked(frame.get(out.l3_offset..).unwrap_or_default())
                .map_err(|_| Unmatched::BadL2)?;
            out.mpls_count += 1;
            out.l3_offset += MplsLabel::HEADER_LEN;
            if label.bottom_of_stack() {
                break;
            }
        }
        // No type field after the stack: IP is recognised by its version
        // nibble; anything else (pseudowire control word, Ethernet) is not IP.
        out.ethertype =
            ethertype_of_ip(frame.get(out.l3_offset..).unwrap_or_default()).unwrap_or(0);
    }
    Ok(out)
}

/// The EtherType of a bare IP packet, from its version nibble.
#[inline(always)]
pub(crate) fn ethertype_of_ip(b: &[u8]) -> Option<u16> {
    match b.first()? >> 4 {
        4 => Some(ETH_P_IPV4),
        6 => Some(ETH_P_IPV6),
        _ => None,
    }
}

/// Parses the IP header at `offset` of `frame`, which carries `ethertype`.
#[inline(always)]
pub(crate) fn ip(frame: &[u8], offset: usize, ethertype: u16) -> Result<Ip, Unmatched> {
    let bytes = frame.get(offset..).unwrap_or_default();
    match ethertype {
        ETH_P_IPV4 => {
            let p = Ipv4Packet::new_checked(bytes).map_err(|_| Unmatched::BadL3)?;
            let mut src = [0; 16];
            let mut dst = [0; 16];
            src[..4].copy_from_slice(&p.src_bytes());
            dst[..4].copy_from_slice(&p.dst_bytes());
            let l4_offset = offset + p.header_len();
            let fragment = p.is_fragment().then(|| FragmentInfo {
                id: u32::from(p.ident()),
                offset: u32::from(p.frag_offset()),
                more: p.more_frags(),
            });
            Ok(Ip {
                ipv6: false,
                src,
                dst,
                proto: p.protocol(),
                flow_label: 0,
                l4_offset,
                end: l4_offset + p.payload().len(),
                fragment,
                nonfirst: p.frag_offset() != 0,
            })
        }
        ETH_P_IPV6 => {
            let p = Ipv6Packet::new_checked(bytes).map_err(|_| Unmatched::BadL3)?;
            let up = walk_extension_headers(p.next_header(), p.payload())
                .map_err(|_| Unmatched::BadL3)?;
            let fragment = up.fragment.map(|f| FragmentInfo {
                id: f.ident,
                offset: u32::from(f.offset),
                more: f.more,
            });
            let start = offset + Ipv6Packet::HEADER_LEN;
            Ok(Ip {
                ipv6: true,
                src: p.src_bytes(),
                dst: p.dst_bytes(),
                proto: up.protocol,
                flow_label: p.flow_label(),
                l4_offset: start + up.offset,
                end: start + p.payload().len(),
                fragment,
                nonfirst: up.is_nonfirst_fragment(),
            })
        }
        _ => Err(Unmatched::NotIp),
    }
}

/// Parses the transport header of `ip`. For protocols without ports (ICMP,
/// ICMPv6, others) the ports are 0 and the payload is the whole L4 message,
/// its header included (so ICMP type and code are at `payload_offset`).
///
/// A non-first fragment is `Unmatched::Fragment`.
#[inline(always)]
pub(crate) fn l4(frame: &[u8], ip: &Ip) -> Result<L4, Unmatched> {
    if ip.nonfirst {
        return Err(Unmatched::Fragment);
    }
    let bytes = frame.get(ip.l4_offset..ip.end).unwrap_or_default();
    let proto = L4Proto::from_number(ip.proto);
    let mut out = L4 {
        proto,
        src_port: 0,
        dst_port: 0,
        tcp: None,
        payload_offset: ip.l4_offset,
        payload_len: bytes.len(),
    };
    match proto {
        L4Proto::Tcp => {
            let t = TcpSegment::new_checked(bytes).map_err(|_| Unmatched::BadL4)?;
            out.src_port = t.src_port();
            out.dst_port = t.dst_port();
            out.tcp = Some(TcpInfo {
                flags: TcpFlags(t.flags()),
                seq: t.seq(),
                ack: t.ack(),
                window: t.window(),
            });
            out.payload_offset += t.header_len();
            out.payload_len = t.payload().len();
        }
        L4Proto::Udp => {
            let u = UdpDatagram::new_checked(bytes).map_err(|_| Unmatched::BadL4)?;
            out.src_port = u.src_port();
            out.dst_port = u.dst_port();
            out.payload_offset += UdpDatagram::HEADER_LEN;
            out.payload_len = u.payload().len();
        }
        L4Proto::Icmp | L4Proto::IcmpV6 => {
            IcmpMessage::new_checked(bytes).map_err(|_| Unmatched::BadL4)?;
        }
        L4Proto::Sctp => {
            // Common header: ports, verification tag, checksum (12 bytes).
            let h = bytes.first_chunk::<12>().ok_or(Unmatched::BadL4)?;
            out.src_port = u16::from_be_bytes([h[0], h[1]]);
            out.dst_port = u16::from_be_bytes([h[2], h[3]]);
            out.payload_offset += 12;
            out.payload_len = out.payload_len.saturating_sub(12);
        }
        L4Proto::Other(_) => {}
    }
    Ok(out)
}
