//! Finding the outer IP packet of a frame and telling whether it is a
//! fragment, so fragments go to the [`FragmentReassembler`] before the
//! tracker sees them.
//!
//! Only the outermost IP header is looked at (after the link header and
//! VLAN tags; not under MPLS or inside tunnels): fragments elsewhere reach
//! the tracker as they are, and non-first ones are counted there as
//! unmatched.
//!
//! [`FragmentReassembler`]: crate::reassembly::ipfrag::FragmentReassembler

use flowscope_common::frame::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6};

use crate::extract::MAX_VLAN_TAGS;
use crate::extract::l3_start;
use crate::view::{LinkType, PacketView};
use crate::wire::VlanTag;

/// IPv6 next-header values that may precede a Fragment header (hop-by-hop,
/// routing, destination options) or are one (44).
const V6_FRAGMENT_CHAIN: [u8; 4] = [0, 43, 44, 60];

/// The outer IP packet of `view` if it may be a fragment: IPv4 with MF or
/// a fragment offset, or IPv6 whose first next header can lead to a
/// Fragment header. `None` for everything else (the common case, decided
/// from a few header bytes).
pub(super) fn fragment_candidate<'a>(view: &PacketView<'a>) -> Option<&'a [u8]> {
    let (mut ethertype, mut at) = l3_start(view.frame, view.link)?;
    if view.link == LinkType::Ethernet && matches!(ethertype, ETH_P_IPV4 | ETH_P_IPV6) {
        // The common case: no tag to walk.
        return ip_fragment(view.frame.get(at..)?);
    }
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let tag = VlanTag::new_checked(view.frame.get(at..)?).ok()?;
        ethertype = tag.ethertype();
        at += VlanTag::HEADER_LEN;
    }
    if !matches!(ethertype, 0 | ETH_P_IPV4 | ETH_P_IPV6) {
        return None;
    }
    ip_fragment(view.frame.get(at..)?)
}

/// `ip` if it may be a fragment (by its version nibble: the EtherType said
/// IP).
#[inline]
fn ip_fragment(ip: &[u8]) -> Option<&[u8]> {
    let fragment = match ip.first()? >> 4 {
        4 => {
            let field = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            field & 0x3fff != 0
        }
        6 => V6_FRAGMENT_CHAIN.contains(ip.get(6)?),
        _ => false,
    };
    fragment.then_some(ip)
}
