//! [`IpPair`]: the two IP addresses, whatever the protocol.

use super::parse;
use crate::extractor::{Extracted, FlowExtractor, L4Proto, Orientation, Unmatched};
use crate::view::PacketView;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Keys a packet by its IP address pair (bidirectional). Every fragment,
/// first or not, matches, so this also groups fragmented datagrams. Transport
/// fields (`tcp`, payload) are filled when the L4 header parses; otherwise the
/// payload is the whole IP payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpPair;

/// Key of [`IpPair`]: the lower address first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPairKey {
    a: [u8; 16],
    b: [u8; 16],
    ipv6: bool,
}

impl IpPairKey {
    fn addr(&self, x: [u8; 16]) -> IpAddr {
        if self.ipv6 {
            IpAddr::V6(Ipv6Addr::from(x))
        } else {
            IpAddr::V4(Ipv4Addr::new(x[0], x[1], x[2], x[3]))
        }
    }

    /// The lower address.
    pub fn a(&self) -> IpAddr {
        self.addr(self.a)
    }

    /// The higher address.
    pub fn b(&self) -> IpAddr {
        self.addr(self.b)
    }

    /// True for IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.ipv6
    }
}

impl FlowExtractor for IpPair {
    type Key = IpPairKey;

    fn extract(&self, view: PacketView<'_>) -> Result<Extracted<IpPairKey>, Unmatched> {
        let link = parse::link(view.frame, view.link)?;
        let ip = parse::ip(view.frame, link.l3_offset, link.ethertype)?;
        let (a, b, orientation) = if ip.dst < ip.src {
            (ip.dst, ip.src, Orientation::Reverse)
        } else {
            (ip.src, ip.dst, Orientation::Forward)
        };
        let l4 = parse::l4(view.frame, &ip).ok();
        Ok(Extracted {
            key: IpPairKey {
                a,
                b,
                ipv6: ip.ipv6,
            },
            orientation,
            l4: L4Proto::from_number(ip.proto),
            tcp: l4.and_then(|l| l.tcp),
            vlan: link.vlan,
            payload_offset: l4.map_or(ip.l4_offset, |l| l.payload_offset) as u32,
            payload_len: l4.map_or(ip.end.saturating_sub(ip.l4_offset), |l| l.payload_len) as u32,
            ip_len: ip.len,
            fragment: ip.fragment,
            tunnel: None,
        })
    }
}
