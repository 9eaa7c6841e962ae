//! Flow extractors and decapsulation combinators.
//!
//! Extractors ([`crate::FlowExtractor`]) turn a packet into a flow key plus
//! what the tracker needs ([`crate::Extracted`]). Every extractor walks the
//! link layer of [`crate::PacketView::link`] (Ethernet, raw IP, Linux SLL and
//! SLL2, BSD loopback), any VLAN tags (802.1Q, 802.1ad, QinQ; up to 4) and an
//! MPLS label stack (up to 8 labels) before the IP header:
//!
//! - [`FiveTuple`]: addresses, ports, protocol; bidirectional or directional.
//! - [`IpPair`]: the address pair (every fragment matches).
//! - [`MacPair`]: the Ethernet address pair (any EtherType).
//! - [`FlowLabel`]: any key plus the IPv6 flow label.
//!
//! Combinators peel one encapsulation and run an extractor on the inner
//! packet: [`StripVlan`], [`StripMpls`], [`InnerVxlan`], [`InnerGeneve`],
//! [`InnerGtpU`], [`InnerGre`], [`InnerIpInIp`], [`InnerTeredo`];
//! [`AutoDetectEncap`] finds them by itself. They compose:
//! `InnerGre::new(InnerVxlan::new(FiveTuple::bidirectional()))`.
//!
//! Extraction allocates nothing and hashes nothing (the flow table hashes the
//! key). [`FiveTuple`] reads the common frame (untagged Ethernet, IPv4 not a
//! fragment or IPv6 without extension headers, TCP or UDP) at fixed offsets
//! and takes the generic walk for everything else; both give the same result
//! (see `parse.rs` tests). Given a [`FrameHint`] (what the XDP program found:
//! VLAN tags, IPv6 extension chain) in [`crate::PacketView::hint`], [`FiveTuple`] reads
//! tagged frames and IPv6 extension chains at known offsets too, with the
//! same result again (see `hint_tests.rs` and `tests/kernel_meta_hint.rs`).

mod auto_detect;
mod decap;
mod five_tuple;
mod flow_label;
#[cfg(test)]
mod hint_tests;
mod ip_pair;
mod mac_pair;
mod parse;
mod steer;
#[cfg(test)]
pub(crate) mod test_frames;

pub use crate::view::FrameHint;
pub use auto_detect::{AutoDetectEncap, AutoEncapVariants, MAX_ENCAP_DEPTH};
pub use decap::{
    ETH_P_TEB, Encap, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, InnerGeneve, InnerGre, InnerGtpU,
    InnerIpInIp, InnerTeredo, InnerVxlan, StripMpls, StripVlan,
};
pub use five_tuple::{FiveTuple, FiveTupleKey};
pub use flow_label::{FlowLabel, FlowLabelKey};
pub use ip_pair::{IpPair, IpPairKey};
pub use mac_pair::{MacPair, MacPairKey};
pub use parse::{MAX_MPLS_LABELS, MAX_VLAN_TAGS};
pub use steer::{Steering, l3_start, steer_hash};
