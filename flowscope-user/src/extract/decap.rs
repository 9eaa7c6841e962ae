//! Decapsulation combinators: each finds one kind of tunnel in the outer
//! packet and runs the wrapped extractor on the inner packet.
//!
//! The wrapped extractor sees a [`PacketView`] of the inner bytes (an
//! Ethernet frame for VXLAN, Geneve and GRE bridging; a raw IP packet
//! otherwise); the result's `payload_offset` is moved back into the outer
//! frame and `vlan` holds the outer frame's tags. A packet without the
//! expected encapsulation is [`Unmatched::BadEncap`].

use super::parse::{self, Ip, Link};
pub use crate::extractor::Encap;
use crate::extractor::{Extracted, FlowExtractor, Tunnelled, Unmatched};
use crate::view::{LinkType, PacketView};
use crate::wire::{
    GTP_G_PDU, GeneveHeader, GreHeader, GtpUHeader, TeredoPacket, UdpDatagram, VxlanHeader,
};
use flowscope_common::frame::{
    ETH_P_IPV4, ETH_P_IPV6, GENEVE_PORT, GTP_U_PORT, IPPROTO_UDP, TEREDO_PORT, VXLAN_PORT,
};

/// GRE's IP protocol number.
pub const IPPROTO_GRE: u8 = 47;
/// IPv4-in-IP protocol number.
pub const IPPROTO_IPIP: u8 = 4;
/// IPv6-in-IP (6in4) protocol number.
pub const IPPROTO_IPV6: u8 = 41;
/// EtherType of transparent Ethernet bridging (Ethernet inside GRE or Geneve).
pub const ETH_P_TEB: u16 = 0x6558;

/// Where the inner packet lies in the frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inner {
    pub start: usize,
    pub end: usize,
    pub link: LinkType,
    /// The outer frame's VLAN IDs.
    pub vlan: [u16; 2],
    /// What enclosed it.
    pub encap: Encap,
}

/// The IP packet after the VLAN tags ([`Encap::Vlan`]) or MPLS labels
/// ([`Encap::Mpls`]) of a frame whose link layer is parsed.
pub(crate) fn l2_inner(frame: &[u8], link: &Link, encap: Encap) -> Result<Inner, Unmatched> {
    let present = if encap == Encap::Vlan {
        link.vlan_count
    } else {
        link.mpls_count
    };
    if present == 0 {
        return Err(Unmatched::BadEncap);
    }
    Ok(Inner {
        start: link.l3_offset,
        end: frame.len(),
        link: LinkType::RawIp,
        vlan: link.vlan,
        encap,
    })
}

/// The inner packet of an IP-borne `encap` in a frame whose link and IP
/// layers are parsed. UDP tunnels match on either port.
pub(crate) fn ip_inner(
    frame: &[u8],
    link: &Link,
    ip: &Ip,
    encap: Encap,
    udp_port: u16,
) -> Result<Inner, Unmatched> {
    let inner = |start: usize, end: usize, link_type| Inner {
        start,
        end,
        link: link_type,
        vlan: link.vlan,
        encap,
    };
    let l4 = frame.get(ip.l4_offset..ip.end).unwrap_or_default();
    let ip_payload_link = |proto: u16| match proto {
        ETH_P_TEB => Ok(LinkType::Ethernet),
        ETH_P_IPV4 | ETH_P_IPV6 => Ok(LinkType::RawIp),
        _ => Err(Unmatched::BadEncap),
    };
    match encap {
        Encap::Gre if ip.proto == IPPROTO_GRE && !ip.nonfirst => {
            let gre = GreHeader::new_checked(l4).map_err(|_| Unmatched::BadEncap)?;
            Ok(inner(
                ip.l4_offset + gre.header_len(),
                ip.end,
                ip_payload_link(gre.protocol())?,
            ))
        }
        Encap::IpInIp if (ip.proto == IPPROTO_IPIP || ip.proto == IPPROTO_IPV6) && !ip.nonfirst => {
            Ok(inner(ip.l4_offset, ip.end, LinkType::RawIp))
        }
        Encap::Vxlan | Encap::Geneve | Encap::GtpU | Encap::Teredo
            if ip.proto == IPPROTO_UDP && !ip.nonfirst =>
        {
            let udp = UdpDatagram::new_checked(l4).map_err(|_| Unmatched::BadL4)?;
            if udp.dst_port() != udp_port && udp.src_port() != udp_port {
                return Err(Unmatched::BadEncap);
            }
            let at = ip.l4_offset + UdpDatagram::HEADER_LEN;
            let end = at + udp.payload().len();
            let body = udp.payload();
            match encap {
                Encap::Vxlan => {
                    VxlanHeader::new_checked(body).map_err(|_| Unmatched::BadEncap)?;
                    Ok(inner(at + VxlanHeader::HEADER_LEN, end, LinkType::Ethernet))
                }
                Encap::Geneve => {
                    let g = GeneveHeader::new_checked(body).map_err(|_| Unmatched::BadEncap)?;
                    Ok(inner(
                        at + g.header_len(),
                        end,
                        ip_payload_link(g.protocol())?,
                    ))
                }
                Encap::GtpU => {
                    let g = GtpUHeader::new_checked(body).map_err(|_| Unmatched::BadEncap)?;
                    if g.msg_type() != GTP_G_PDU || parse::ethertype_of_ip(g.payload()).is_none() {
                        return Err(Unmatched::BadEncap);
                    }
                    let start = at + g.header_len();
                    Ok(inner(start, start + g.payload().len(), LinkType::RawIp))
                }
                _ => {
                    let t = TeredoPacket::new_checked(body).map_err(|_| Unmatched::BadEncap)?;
                    Ok(inner(at + t.header_len(), end, LinkType::RawIp))
                }
            }
        }
        _ if ip.nonfirst => Err(Unmatched::Fragment),
        _ => Err(Unmatched::BadEncap),
    }
}

/// Runs `extractor` on the inner packet and moves its offsets back into the
/// outer frame. A tunnel (not tags or labels) is noted in the result with
/// `encap`, the outermost one, and `depth`.
pub(crate) fn run_inner<E: FlowExtractor>(
    extractor: &E,
    view: PacketView<'_>,
    inner: Inner,
    encap: Encap,
    depth: u8,
) -> Result<Extracted<E::Key>, Unmatched> {
    let frame = view
        .frame
        .get(inner.start..inner.end)
        .ok_or(Unmatched::BadEncap)?;
    let start = inner.start as u32;
    let sub = PacketView {
        frame,
        timestamp: view.timestamp,
        link: inner.link,
        orig_len: view.orig_len.saturating_sub(start),
        hint: None,
    };
    let mut e = extractor.extract(sub)?;
    e.payload_offset += start;
    e.vlan = inner.vlan;
    if !matches!(encap, Encap::Vlan | Encap::Mpls) {
        e.tunnel = Some(Tunnelled { encap, depth });
    }
    Ok(e)
}

/// Parses the outer layers of `view` and runs `extractor` inside `encap`.
fn decap<E: FlowExtractor>(
    extractor: &E,
    view: PacketView<'_>,
    encap: Encap,
    udp_port: u16,
) -> Result<Extracted<E::Key>, Unmatched> {
    let link = parse::link(view.frame, view.link)?;
    let inner = match encap {
        Encap::Vlan | Encap::Mpls => l2_inner(view.frame, &link, encap)?,
        _ => {
            let ip = parse::ip(view.frame, link.l3_offset, link.ethertype)?;
            ip_inner(view.frame, &link, &ip, encap, udp_port)?
        }
    };
    run_inner(extractor, view, inner, encap, 1)
}

macro_rules! decap_combinator {
    ($(#[$doc:meta])* $name:ident, $encap:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name<E> {
            /// The extractor run on the inner packet.
            pub extractor: E,
        }

        impl<E> $name<E> {
            /// Wraps `extractor`.
            pub fn new(extractor: E) -> Self {
                Self { extractor }
            }
        }

        impl<E: FlowExtractor> FlowExtractor for $name<E> {
            type Key = E::Key;

            fn extract(&self, view: PacketView<'_>) -> Result<Extracted<E::Key>, Unmatched> {
                decap(&self.extractor, view, $encap, 0)
            }

            fn carrier(&self, view: PacketView<'_>) -> Option<Extracted<E::Key>> {
                self.extractor.extract(view).ok()
            }
        }
    };
}

macro_rules! udp_decap_combinator {
    ($(#[$doc:meta])* $name:ident, $encap:expr, $port:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<E> {
            /// The extractor run on the inner packet.
            pub extractor: E,
            /// UDP port (source or destination) that marks the tunnel.
            pub udp_port: u16,
        }

        impl<E> $name<E> {
            /// The IANA port.
            pub const DEFAULT_PORT: u16 = $port;

            /// Wraps `extractor`, tunnel on the IANA port.
            pub fn new(extractor: E) -> Self {
                Self { extractor, udp_port: $port }
            }

            /// Wraps `extractor`, tunnel on `udp_port`.
            pub fn with_port(extractor: E, udp_port: u16) -> Self {
                Self { extractor, udp_port }
            }
        }

        impl<E: FlowExtractor> FlowExtractor for $name<E> {
            type Key = E::Key;

            fn extract(&self, view: PacketView<'_>) -> Result<Extracted<E::Key>, Unmatched> {
                decap(&self.extractor, view, $encap, self.udp_port)
            }

            fn carrier(&self, view: PacketView<'_>) -> Option<Extracted<E::Key>> {
                self.extractor.extract(view).ok()
            }
        }
    };
}

decap_combinator!(
    /// Requires VLAN tags (802.1Q, 802.1ad, QinQ) and runs `extractor` on the
    /// IP packet after them as raw IP (so it sees no MAC addresses). The base
    /// extractors already see through tags; this makes them mandatory.
    StripVlan,
    Encap::Vlan
);
decap_combinator!(
    /// Requires an MPLS label stack and runs `extractor` on the IP packet
    /// after it as raw IP.
    StripMpls,
    Encap::Mpls
);
decap_combinator!(
    /// Decapsulates GRE (IP protocol 47; checksum, key and sequence fields
    /// allowed): IPv4/IPv6 payloads as raw IP, transparent Ethernet bridging
    /// (0x6558) as Ethernet.
    InnerGre,
    Encap::Gre
);
decap_combinator!(
    /// Decapsulates IP-in-IP: IPv4 in IP (protocol 4) and IPv6 in IP
    /// (protocol 41, 6in4).
    InnerIpInIp,
    Encap::IpInIp
);
udp_decap_combinator!(
    /// Decapsulates VXLAN (RFC 7348) and runs `extractor` on the inner Ethernet frame.
    InnerVxlan,
    Encap::Vxlan,
    VXLAN_PORT
);
udp_decap_combinator!(
    /// Decapsulates Geneve (RFC 8926): inner Ethernet (0x6558) or IP.
    InnerGeneve,
    Encap::Geneve,
    GENEVE_PORT
);
udp_decap_combinator!(
    /// Decapsulates GTP-U G-PDUs (3GPP TS 29.281) and runs `extractor` on the
    /// user's IP packet; other GTP-U messages are `BadEncap`.
    InnerGtpU,
    Encap::GtpU,
    GTP_U_PORT
);
udp_decap_combinator!(
    /// Decapsulates Teredo (RFC 4380): the IPv6 packet after the optional
    /// authentication and origin indication headers.
    InnerTeredo,
    Encap::Teredo,
    TEREDO_PORT
);
