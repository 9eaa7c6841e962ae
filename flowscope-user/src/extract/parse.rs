//! The layer walk every extractor shares: link header, VLAN tags, MPLS
//! labels, IP header, transport header. Values only; no allocation, no
//! hashing.

use crate::extractor::{FragmentInfo, L4Proto, TcpFlags, TcpInfo, Unmatched};
use crate::view::LinkType;
use crate::wire::{
    EthernetFrame, IcmpMessage, Ipv4Packet, Ipv6Packet, LoopbackHeader, MplsLabel, Sll2Header,
    SllHeader, TcpSegment, UdpDatagram, VlanTag, walk_extension_headers,
};
use flowscope_common::frame::{
    ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS, IPPROTO_ROUTING,
};

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
    /// Length of the IP packet as its header states it (IPv4 total length,
    /// IPv6 40 + payload length), whatever the capture kept of it.
    pub len: u32,
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
                len: u32::from(p.total_len()),
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
                len: ipv6_len(p.payload_len(), p.payload().len()),
                fragment,
                nonfirst: up.is_nonfirst_fragment(),
            })
        }
        _ => Err(Unmatched::NotIp),
    }
}

/// An IPv6 packet's length: 40 plus the payload length field, or, for a
/// jumbogram (field 0), 40 plus the payload the frame holds.
fn ipv6_len(field: u16, present: usize) -> u32 {
    let payload = if field == 0 {
        u32::try_from(present).unwrap_or(u32::MAX)
    } else {
        u32::from(field)
    };
    payload.saturating_add(40)
}

/// Parses the transport header of `ip`. ICMP and ICMPv6 get the ports
/// [`IcmpMessage::flow_ports`] gives (type, then counterpart type or code);
/// other protocols without ports get 0. For protocols without ports the
/// payload is the whole L4 message, its header included (so ICMP type and
/// code are at `payload_offset`).
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
            let m = IcmpMessage::new_checked(bytes).map_err(|_| Unmatched::BadL4)?;
            (out.src_port, out.dst_port) = m.flow_ports(proto == L4Proto::IcmpV6);
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

/// Untagged Ethernet carrying IPv4 (not a fragment) or IPv6 (no extension
/// headers, not a jumbogram) and a well-formed TCP or UDP header, read with
/// fixed offsets: the common case, without the generic walk. Returns what
/// [`ip`] and [`l4`] would return for such a frame, and `None` for every
/// other frame (the caller then takes the generic walk, which also reports
/// why a frame does not match).
#[inline(always)]
pub(crate) fn ethernet_ip_fast(frame: &[u8]) -> Option<(Ip, L4)> {
    let t = frame.get(12..EthernetFrame::HEADER_LEN)?;
    ip_fast(
        frame,
        EthernetFrame::HEADER_LEN,
        u16::from_be_bytes([t[0], t[1]]),
        None,
    )
}

/// [`ethernet_ip_fast`] for IPv4 only.
#[inline(always)]
pub(crate) fn ethernet_ipv4_fast(frame: &[u8]) -> Option<(Ip, L4)> {
    let t = frame.get(12..EthernetFrame::HEADER_LEN)?;
    if u16::from_be_bytes([t[0], t[1]]) != ETH_P_IPV4 {
        return None;
    }
    ipv4_fast(frame, EthernetFrame::HEADER_LEN)
}

/// The fixed-offset read of an IPv4 header (not a fragment) at `offset` and
/// the TCP or UDP header after it; see [`ip_fast`].
#[inline(always)]
pub(crate) fn ipv4_fast(frame: &[u8], offset: usize) -> Option<(Ip, L4)> {
    let rest = frame.get(offset..)?;
    let h = rest.first_chunk::<20>()?;
    let header_len = usize::from(h[0] & 0x0F) * 4;
    // Version 4, IHL ≥ 5; MF clear and offset 0.
    if h[0] >> 4 != 4 || header_len < 20 || u16::from_be_bytes([h[6], h[7]]) & 0x3FFF != 0 {
        return None;
    }
    let after = rest.get(header_len..)?;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let payload = after.get(..total.checked_sub(header_len)?).unwrap_or(after);
    let mut src = [0; 16];
    let mut dst = [0; 16];
    src[..4].copy_from_slice(&h[12..16]);
    dst[..4].copy_from_slice(&h[16..20]);
    let l4_offset = offset + header_len;
    let ip = Ip {
        ipv6: false,
        src,
        dst,
        proto: h[9],
        flow_label: 0,
        l4_offset,
        end: l4_offset + payload.len(),
        len: total as u32,
        fragment: None,
        nonfirst: false,
    };
    Some((ip, tcp_udp_fast(h[9], payload, l4_offset)?))
}

/// The fixed-offset read of [`ethernet_ip_fast`] for an IP header of
/// `ethertype` at `offset`, wherever the link layer put it. `upper` is the
/// protocol and frame offset of the upper-layer header of an IPv6 packet
/// whose extension headers (no Fragment header) were walked already, by the
/// XDP program (see [`super::FrameHint`]); it is trusted within the IP
/// payload. Returns what [`ip`] and [`l4`] would, or `None`.
#[inline(always)]
pub(crate) fn ip_fast(
    frame: &[u8],
    offset: usize,
    ethertype: u16,
    upper: Option<(u8, usize)>,
) -> Option<(Ip, L4)> {
    match ethertype {
        ETH_P_IPV4 => ipv4_fast(frame, offset),
        ETH_P_IPV6 => {
            let (h, after) = frame.get(offset..)?.split_first_chunk::<40>()?;
            let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
            if h[0] >> 4 != 6 || len == 0 {
                return None;
            }
            let end = offset + 40 + after.get(..len).unwrap_or(after).len();
            // An upper-layer header past `end` fails the read below: the
            // generic walk then reports the chain as truncated.
            let (proto, l4_offset) = match upper {
                None => (h[6], offset + 40),
                Some((proto, at)) if is_v6_ext_header(h[6]) && at > offset + 40 => (proto, at),
                Some(_) => return None,
            };
            let mut src = [0; 16];
            let mut dst = [0; 16];
            src.copy_from_slice(&h[8..24]);
            dst.copy_from_slice(&h[24..40]);
            let ip = Ip {
                ipv6: true,
                src,
                dst,
                proto,
                flow_label: u32::from_be_bytes([0, h[1] & 0x0F, h[2], h[3]]),
                l4_offset,
                end,
                len: 40 + len as u32,
                fragment: None,
                nonfirst: false,
            };
            let l4 = tcp_udp_fast(proto, frame.get(l4_offset..end)?, l4_offset)?;
            Some((ip, l4))
        }
        _ => None,
    }
}

/// An IPv6 extension header the walk steps over (hop-by-hop, routing,
/// destination options, Fragment).
#[inline(always)]
fn is_v6_ext_header(next: u8) -> bool {
    matches!(
        next,
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT
    )
}

/// The TCP or UDP header at the start of `bytes` (at `offset` in the frame),
/// as [`l4`] reads it; `None` for other protocols and malformed headers.
#[inline(always)]
fn tcp_udp_fast(proto: u8, bytes: &[u8], offset: usize) -> Option<L4> {
    match L4Proto::from_number(proto) {
        L4Proto::Tcp => {
            let t = bytes.first_chunk::<20>()?;
            let header_len = usize::from(t[12] >> 4) * 4;
            if header_len < 20 || header_len > bytes.len() {
                return None;
            }
            Some(L4 {
                proto: L4Proto::Tcp,
                src_port: u16::from_be_bytes([t[0], t[1]]),
                dst_port: u16::from_be_bytes([t[2], t[3]]),
                tcp: Some(TcpInfo {
                    flags: TcpFlags(t[13]),
                    seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                    ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
                    window: u16::from_be_bytes([t[14], t[15]]),
                }),
                payload_offset: offset + header_len,
                payload_len: bytes.len() - header_len,
            })
        }
        L4Proto::Udp => {
            let (u, rest) = bytes.split_first_chunk::<8>()?;
            let len = usize::from(u16::from_be_bytes([u[4], u[5]]));
            let payload_len = match len.checked_sub(8) {
                Some(n) if n <= rest.len() => n,
                _ => rest.len(),
            };
            Some(L4 {
                proto: L4Proto::Udp,
                src_port: u16::from_be_bytes([u[0], u[1]]),
                dst_port: u16::from_be_bytes([u[2], u[3]]),
                tcp: None,
                payload_offset: offset + UdpDatagram::HEADER_LEN,
                payload_len,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::extract::test_frames::{self, tcp, tcp_with, udp};

    /// Ethernet + `l3` (EtherType `ethertype`).
    fn eth(ethertype: u16, l3: &[u8]) -> Vec<u8> {
        [test_frames::eth(&[], ethertype), l3.to_vec()].concat()
    }

    /// IPv4 with DF set, no options.
    fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
        test_frames::ipv4(proto, &[], 0x4000, l4)
    }

    fn ipv6(next: u8, l4: &[u8]) -> Vec<u8> {
        test_frames::ipv6(next, l4)
    }

    /// What the generic walk says about an Ethernet frame.
    fn generic(frame: &[u8]) -> Result<(Ip, L4), Unmatched> {
        let link = link(frame, LinkType::Ethernet)?;
        let ip = ip(frame, link.l3_offset, link.ethertype)?;
        let l4 = l4(frame, &ip)?;
        Ok((ip, l4))
    }

    /// Whenever the fast path answers, its answer is the generic walk's;
    /// the IPv4-only entry answers exactly for the IPv4 frames it takes.
    fn check(frame: &[u8]) -> bool {
        let fast4 = ethernet_ipv4_fast(frame).map(|f| format!("{f:?}"));
        let Some(fast) = ethernet_ip_fast(frame) else {
            assert_eq!(fast4, None, "frame {frame:02x?}");
            return false;
        };
        let v4 = frame.get(12..14) == Some(&[0x08, 0x00]);
        assert_eq!(fast4, v4.then(|| format!("{fast:?}")), "frame {frame:02x?}");
        let slow = generic(frame);
        assert_eq!(
            format!("{:?}", Ok::<_, Unmatched>(fast)),
            format!("{slow:?}"),
            "frame {frame:02x?}"
        );
        true
    }

    #[test]
    fn fast_path_agrees_with_the_generic_walk() {
        let frames = [
            eth(ETH_P_IPV4, &ipv4(6, &tcp())),
            // TCP options (4 NOPs).
            eth(ETH_P_IPV4, &ipv4(6, &tcp_with(&[1, 1, 1, 1]))),
            eth(ETH_P_IPV4, &ipv4(17, &udp())),
            eth(ETH_P_IPV6, &ipv6(6, &tcp())),
            eth(ETH_P_IPV6, &ipv6(17, &udp())),
            // UDP length shorter than the IP payload: the payload ends at it.
            eth(ETH_P_IPV4, &ipv4(17, &[udp(), vec![0; 5]].concat())),
            // IPv4 options (4 bytes of NOP, NOP, NOP, EOL).
            eth(
                ETH_P_IPV4,
                &test_frames::ipv4(6, &[1, 1, 1, 0], 0x4000, &tcp()),
            ),
        ];
        for base in &frames {
            assert!(check(base), "fast path declined {base:02x?}");
            // Every truncation, and trailing bytes past the IP length.
            for n in 0..base.len() {
                check(&base[..n]);
            }
            let mut padded = base.clone();
            padded.extend_from_slice(&[0xee; 9]);
            assert!(check(&padded));
            // Every header byte set to values that change its meaning.
            for i in 12..base.len() {
                for v in [
                    0x00, 0x01, 0x06, 0x11, 0x2c, 0x3f, 0x40, 0x45, 0x46, 0x50, 0x60, 0xff,
                ] {
                    let mut f = base.clone();
                    if let Some(b) = f.get_mut(i) {
                        *b = v;
                    }
                    check(&f);
                }
            }
        }
    }

    #[test]
    fn fast_path_declines_what_it_does_not_handle() {
        let mut frag = ipv4(6, &tcp());
        frag[6] = 0x20; // MF
        let mut vlan = vec![0x00, 0x05, 0x08, 0x00];
        vlan.extend_from_slice(&ipv4(6, &tcp()));
        for f in [
            eth(ETH_P_IPV4, &frag),
            eth(ETH_P_8021Q, &vlan),
            eth(ETH_P_IPV4, &ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1])),
            eth(ETH_P_IPV6, &ipv6(0, &[6, 0, 1, 4, 0, 0, 0, 0])),
            eth(ETH_P_IPV6, &ipv6(6, &tcp()[..19])),
        ] {
            assert!(ethernet_ip_fast(&f).is_none(), "{f:02x?}");
        }
    }

    /// `Ip::len` and `Extracted::ip_len` are the length the IP header
    /// states (IPv4 total length, IPv6 40 + payload length): the whole IP
    /// packet even when the capture snapped it, without Ethernet padding.
    #[test]
    fn ip_len_is_the_length_the_header_states() {
        use crate::extract::FiveTuple;
        use crate::extractor::FlowExtractor;
        use crate::view::{PacketView, Timestamp};
        // Hop-by-hop options header (8 bytes of PadN) before TCP.
        let hop = [vec![6, 0, 1, 4, 0, 0, 0, 0], tcp()].concat();
        let packets = [
            (ETH_P_IPV4, ipv4(6, &tcp())),
            (ETH_P_IPV4, ipv4(17, &udp())),
            (ETH_P_IPV6, ipv6(6, &tcp())),
            (ETH_P_IPV6, ipv6(17, &udp())),
            (ETH_P_IPV6, ipv6(0, &hop)),
        ];
        let extractor = FiveTuple::default();
        for (ethertype, l3) in &packets {
            // The built packets' header fields state their own size.
            let stated = l3.len() as u32;
            let whole = eth(*ethertype, l3);
            let mut padded = whole.clone();
            padded.resize(whole.len() + 20, 0);
            // Snapped in the payload (every built packet ends in 3 bytes of it).
            let snapped = &whole[..whole.len() - 3];
            for frame in [&whole[..], &padded[..], snapped] {
                let ip_hdr = ip(frame, 14, *ethertype).expect("IP header");
                assert_eq!(ip_hdr.len, stated, "generic walk, {frame:02x?}");
                if let Some((fast, _)) = ethernet_ip_fast(frame) {
                    assert_eq!(fast.len, stated, "fast path, {frame:02x?}");
                }
                let view = PacketView::new(frame, Timestamp::new(0, 0));
                let e = extractor.extract(view).expect("extracted");
                assert_eq!(e.ip_len, stated, "extractor, {frame:02x?}");
            }
        }
    }
}
