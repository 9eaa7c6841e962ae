//! [`AutoDetectEncap`]: finds tunnels by protocol number and UDP port and
//! keys the innermost flow.

use super::decap::{Encap, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, Inner, ip_inner, run_inner};
use super::parse;
use crate::extractor::{Extracted, FlowExtractor, Unmatched};
use crate::view::PacketView;
use crate::wire::UdpDatagram;
use flowscope_common::frame::{GENEVE_PORT, GTP_U_PORT, IPPROTO_UDP, TEREDO_PORT, VXLAN_PORT};

/// Most tunnel layers peeled from one packet.
pub const MAX_ENCAP_DEPTH: usize = 4;

/// UDP tunnels in the order they are tried, with their IANA ports.
const UDP_TUNNELS: [(Encap, u16); 4] = [
    (Encap::Vxlan, VXLAN_PORT),
    (Encap::Geneve, GENEVE_PORT),
    (Encap::GtpU, GTP_U_PORT),
    (Encap::Teredo, TEREDO_PORT),
];

/// Which tunnels [`AutoDetectEncap`] looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoEncapVariants {
    /// VXLAN on UDP port 4789.
    pub vxlan: bool,
    /// Geneve on UDP port 6081.
    pub geneve: bool,
    /// GTP-U on UDP port 2152.
    pub gtp_u: bool,
    /// Teredo on UDP port 3544.
    pub teredo: bool,
    /// GRE (IP protocol 47).
    pub gre: bool,
    /// IP-in-IP (protocol 4) and 6in4 (protocol 41).
    pub ip_in_ip: bool,
}

impl AutoEncapVariants {
    /// Every tunnel.
    pub const fn all() -> Self {
        Self {
            vxlan: true,
            geneve: true,
            gtp_u: true,
            teredo: true,
            gre: true,
            ip_in_ip: true,
        }
    }

    /// No tunnel: the wrapped extractor alone.
    pub const fn none() -> Self {
        Self {
            vxlan: false,
            geneve: false,
            gtp_u: false,
            teredo: false,
            gre: false,
            ip_in_ip: false,
        }
    }

    fn enabled(&self, encap: Encap) -> bool {
        match encap {
            Encap::Vxlan => self.vxlan,
            Encap::Geneve => self.geneve,
            Encap::GtpU => self.gtp_u,
            Encap::Teredo => self.teredo,
            Encap::Gre => self.gre,
            Encap::IpInIp => self.ip_in_ip,
            Encap::Vlan | Encap::Mpls => false,
        }
    }
}

impl Default for AutoEncapVariants {
    fn default() -> Self {
        Self::all()
    }
}

/// Keys the innermost flow of tunnelled traffic and plain traffic alike.
///
/// VLAN tags and MPLS labels need no detection: every extractor walks them.
/// For each layer, after the link and IP headers: IP protocol 47 is GRE, 4
/// and 41 are IP-in-IP; for UDP, the destination port and then the source
/// port are compared with VXLAN (4789), Geneve (6081), GTP-U (2152) and
/// Teredo (3544), in that order. A tunnel whose header does not parse ends
/// the descent. Up to [`MAX_ENCAP_DEPTH`] layers are peeled; the wrapped
/// extractor runs on the innermost packet, and if it fails there, on each
/// enclosing layer in turn (so a port collision with a non-tunnel protocol
/// still yields the outer flow).
///
/// Costs one extra parse of the outer headers per packet; for traffic known
/// to be plain or of one tunnel type, use the extractor or one combinator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AutoDetectEncap<E> {
    /// The extractor run on the innermost packet.
    pub extractor: E,
    /// Which tunnels to look for. Default: all.
    pub variants: AutoEncapVariants,
}

impl<E> AutoDetectEncap<E> {
    /// Looks for every tunnel.
    pub fn new(extractor: E) -> Self {
        Self {
            extractor,
            variants: AutoEncapVariants::all(),
        }
    }

    /// Looks for the tunnels in `variants`.
    pub fn with_variants(extractor: E, variants: AutoEncapVariants) -> Self {
        Self {
            extractor,
            variants,
        }
    }

    /// The tunnel directly inside `view`, if any.
    fn detect(&self, view: &PacketView<'_>) -> Option<Inner> {
        let link = parse::link(view.frame, view.link).ok()?;
        let ip = parse::ip(view.frame, link.l3_offset, link.ethertype).ok()?;
        if ip.nonfirst {
            return None;
        }
        let (encap, port) = match ip.proto {
            IPPROTO_GRE => (Encap::Gre, 0),
            IPPROTO_IPIP | IPPROTO_IPV6 => (Encap::IpInIp, 0),
            IPPROTO_UDP => {
                let udp = UdpDatagram::new_checked(view.frame.get(ip.l4_offset..ip.end)?).ok()?;
                let enabled = UDP_TUNNELS
                    .iter()
                    .filter(|(e, _)| self.variants.enabled(*e));
                let mut by_dst = enabled.clone().filter(|(_, p)| *p == udp.dst_port());
                let mut by_src = enabled.filter(|(_, p)| *p == udp.src_port());
                *by_dst.next().or_else(|| by_src.next())?
            }
            _ => return None,
        };
        if !self.variants.enabled(encap) {
            return None;
        }
        ip_inner(view.frame, &link, &ip, encap, port).ok()
    }
}

impl<E: FlowExtractor> FlowExtractor for AutoDetectEncap<E> {
    type Key = E::Key;

    fn extract(&self, view: PacketView<'_>) -> Result<Extracted<E::Key>, Unmatched> {
        // Absolute extents of each layer found, outermost first.
        let mut layers = [None::<Inner>; MAX_ENCAP_DEPTH];
        let mut cur = view;
        let mut base = 0;
        for slot in &mut layers {
            let Some(found) = self.detect(&cur) else {
                break;
            };
            let Some(frame) = cur.frame.get(found.start..found.end) else {
                break;
            };
            let abs = Inner {
                start: base + found.start,
                end: base + found.end,
                ..found
            };
            *slot = Some(abs);
            base = abs.start;
            cur = PacketView {
                frame,
                link: found.link,
                hint: None,
                ..cur
            };
        }
        if let Some(outer) = layers[0] {
            for (depth, layer) in layers.iter().enumerate().rev() {
                let Some(layer) = layer else { continue };
                let layer = Inner {
                    vlan: outer.vlan,
                    ..*layer
                };
                if let Ok(e) = run_inner(&self.extractor, view, layer, outer.encap, depth as u8 + 1)
                {
                    return Ok(e);
                }
            }
        }
        self.extractor.extract(view)
    }

    fn carrier(&self, view: PacketView<'_>) -> Option<Extracted<E::Key>> {
        self.extractor.extract(view).ok()
    }
}
