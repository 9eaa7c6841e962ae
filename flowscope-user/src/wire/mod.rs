//! Zero-copy frame parsing: link layers, VLAN, IPv4/IPv6 with extension
//! headers, TCP/UDP/ICMP and tunnel headers; [`classify`] applies the XDP
//! program's rules.
//!
//! Each view borrows its buffer. `new_checked` validates the length (and the
//! few fields that decide the layout) once; after that no accessor can fail
//! or panic. Views copy nothing: the fixed part of each header is held as a
//! `&[u8; N]`, so field reads need no bounds checks.

mod classify;
mod ethernet;
mod icmp;
mod ipv4;
mod ipv6;
mod link;
mod tcp;
mod tunnel;
mod udp;

pub(crate) use classify::words16;
pub use classify::{SteerFields, classify, steer_fields};
pub use ethernet::{EthernetFrame, VlanTag};
pub use icmp::{
    IcmpMessage, counterpart as icmp_counterpart, side_type_codes as icmp_side_type_codes,
};
pub use ipv4::Ipv4Packet;
pub use ipv6::{Ipv6Fragment, Ipv6Packet, Ipv6Upper, walk_extension_headers};
pub use link::{LoopbackHeader, Sll2Header, SllHeader};
pub use tcp::TcpSegment;
pub use tunnel::{
    GTP_G_PDU, GeneveHeader, GreHeader, GtpUHeader, MplsLabel, TeredoPacket, VxlanHeader,
};
pub use udp::UdpDatagram;

/// Why a header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    /// The buffer ends before the header does.
    #[error("truncated header")]
    Truncated,
    /// A field that decides the layout is invalid (version, header length).
    #[error("malformed header")]
    Malformed,
}
