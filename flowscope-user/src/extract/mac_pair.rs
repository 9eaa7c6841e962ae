//! [`MacPair`]: the two Ethernet addresses, for any EtherType.

use super::parse;
use crate::extractor::{Extracted, FlowExtractor, L4Proto, Orientation, Unmatched};
use crate::view::PacketView;

/// Keys an Ethernet frame by its MAC address pair (bidirectional): ARP, LLDP
/// and STP included. Frames without an Ethernet header (raw IP, loopback,
/// Linux cooked captures) are [`Unmatched::BadL2`]. For IP frames the
/// transport fields are filled when they parse; for others `l4` is
/// `Other(0)` and the payload is everything after the link header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MacPair;

/// Key of [`MacPair`]: the lower address first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacPairKey {
    /// The lower MAC address.
    pub a: [u8; 6],
    /// The higher MAC address.
    pub b: [u8; 6],
}

impl FlowExtractor for MacPair {
    type Key = MacPairKey;

    fn extract(&self, view: PacketView<'_>) -> Result<Extracted<MacPairKey>, Unmatched> {
        let link = parse::link(view.frame, view.link)?;
        let (src, dst) = link.macs.ok_or(Unmatched::BadL2)?;
        let (a, b, orientation) = if dst < src {
            (dst, src, Orientation::Reverse)
        } else {
            (src, dst, Orientation::Forward)
        };
        let ip = parse::ip(view.frame, link.l3_offset, link.ethertype).ok();
        let l4 = ip.and_then(|ip| parse::l4(view.frame, &ip).ok());
        let rest = view.frame.len().saturating_sub(link.l3_offset);
        Ok(Extracted {
            key: MacPairKey { a, b },
            orientation,
            l4: ip.map_or(L4Proto::Other(0), |ip| L4Proto::from_number(ip.proto)),
            tcp: l4.and_then(|l| l.tcp),
            vlan: link.vlan,
            payload_offset: l4.map_or(link.l3_offset, |l| l.payload_offset) as u32,
            payload_len: l4.map_or(rest, |l| l.payload_len) as u32,
            ip_len: ip.map_or(0, |ip| ip.len),
            fragment: ip.and_then(|ip| ip.fragment),
            tunnel: None,
        })
    }
}
