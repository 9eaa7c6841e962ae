//! The [`FlowExtractor`] trait: what counts as a flow, and what each packet
//! tells the tracker.

use crate::view::PacketView;

/// Turns one packet into a flow key plus what the tracker needs from it.
///
/// Called once per packet on the hot path: implementations must not allocate.
/// A bidirectional extractor returns the same key for both directions and says
/// which one this packet went in through [`Extracted::orientation`].
pub trait FlowExtractor {
    /// Identifies a flow. Small and `Copy`, so the tracker can store it inline.
    type Key: Eq + std::hash::Hash + Copy + std::fmt::Debug;

    /// Extracts the flow of `view`, or says why the packet belongs to none.
    ///
    /// # Errors
    ///
    /// [`Unmatched`] names the reason; the tracker counts it.
    fn extract(&self, view: PacketView<'_>) -> Result<Extracted<Self::Key>, Unmatched>;

    /// For a packet [`extract`](Self::extract) took out of a tunnel
    /// ([`Extracted::tunnel`]), the flow of the packet as it is on the wire:
    /// the tunnel's own (outermost) flow, which the tracker counts too.
    /// Default: none (an extractor that does not decapsulate).
    fn carrier(&self, view: PacketView<'_>) -> Option<Extracted<Self::Key>> {
        let _ = view;
        None
    }
}

/// An encapsulation the combinators understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    /// 802.1Q / 802.1ad tags: the inner packet is the IP packet after them.
    Vlan,
    /// An MPLS label stack: the inner packet is the IP packet after it.
    Mpls,
    /// VXLAN over UDP (default port 4789): an inner Ethernet frame.
    Vxlan,
    /// Geneve over UDP (default port 6081): Ethernet or IP.
    Geneve,
    /// GTP-U over UDP (default port 2152): the G-PDU's IP packet.
    GtpU,
    /// GRE (IP protocol 47): IP, or Ethernet for protocol 0x6558.
    Gre,
    /// IPv4 (protocol 4) or IPv6 (protocol 41, 6in4) inside IP.
    IpInIp,
    /// Teredo over UDP (default port 3544): an IPv6 packet.
    Teredo,
}

impl Encap {
    /// Lowercase name: Zeek's `service` of a tunnel over UDP (`vxlan`,
    /// `geneve`, `gtpv1`, `teredo`), or `gre`, `ip`, `vlan`, `mpls`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Vlan => "vlan",
            Self::Mpls => "mpls",
            Self::Vxlan => "vxlan",
            Self::Geneve => "geneve",
            Self::GtpU => "gtpv1",
            Self::Gre => "gre",
            Self::IpInIp => "ip",
            Self::Teredo => "teredo",
        }
    }

    /// Whether the tunnel travels in UDP datagrams (its carrier is a UDP
    /// flow with this as its application protocol).
    pub const fn over_udp(self) -> bool {
        matches!(self, Self::Vxlan | Self::Geneve | Self::GtpU | Self::Teredo)
    }
}

/// A tunnel a packet came out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tunnelled {
    /// The outermost tunnel's kind.
    pub encap: Encap,
    /// Tunnel layers peeled to reach the keyed packet (1 = one tunnel).
    pub depth: u8,
}

/// What an extractor found in one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extracted<K> {
    /// The flow this packet belongs to.
    pub key: K,
    /// Direction of this packet relative to the key's canonical order.
    pub orientation: Orientation,
    /// Transport protocol of the (innermost) flow.
    pub l4: L4Proto,
    /// TCP header fields, for TCP packets that carry a full header.
    pub tcp: Option<TcpInfo>,
    /// VLAN IDs of the outer frame, outermost first (0 = absent).
    pub vlan: [u16; 2],
    /// Offset of the (innermost) L4 payload in the frame.
    pub payload_offset: u32,
    /// Length of that payload actually present in the frame.
    pub payload_len: u32,
    /// Length of the (innermost) IP packet as its header states it (0 when
    /// the packet is not IP): what IPFIX octet counts and Zeek's `ip_bytes`
    /// add up.
    pub ip_len: u32,
    /// IP fragment information when the (innermost) IP packet is a fragment.
    pub fragment: Option<FragmentInfo>,
    /// The tunnel the keyed packet was taken out of (decapsulating
    /// extractors only).
    pub tunnel: Option<Tunnelled>,
}

/// Direction of a packet relative to its flow key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Orientation {
    /// Source and destination are in the key's order.
    Forward,
    /// The extractor swapped them to canonicalise the key.
    Reverse,
}

impl Orientation {
    /// The other direction.
    pub fn flip(self) -> Self {
        match self {
            Self::Forward => Self::Reverse,
            Self::Reverse => Self::Forward,
        }
    }
}

/// Transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4Proto {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP (1).
    Icmp,
    /// ICMPv6 (58).
    IcmpV6,
    /// SCTP (132).
    Sctp,
    /// Any other IP protocol number.
    Other(u8),
}

impl L4Proto {
    /// From an IP protocol number.
    pub fn from_number(n: u8) -> Self {
        match n {
            6 => Self::Tcp,
            17 => Self::Udp,
            1 => Self::Icmp,
            58 => Self::IcmpV6,
            132 => Self::Sctp,
            n => Self::Other(n),
        }
    }

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Icmp => 1,
            Self::IcmpV6 => 58,
            Self::Sctp => 132,
            Self::Other(n) => n,
        }
    }

    /// Static label for metrics (`l4` label) and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
            Self::IcmpV6 => "icmpv6",
            Self::Sctp => "sctp",
            Self::Other(_) => "other",
        }
    }
}

/// TCP header fields the tracker and reassembler use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// Control flags.
    pub flags: TcpFlags,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Receive window (unscaled).
    pub window: u16,
}

/// TCP control flags, the header's flags byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// URG.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECE.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// CWR.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// True if every flag of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

/// Where an IP fragment sits in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Datagram identification (IPv4 ID, or the IPv6 Fragment header's).
    pub id: u32,
    /// Offset of this fragment's data in the datagram, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
}

/// Why a packet belongs to no flow; each reason is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unmatched {
    /// Not IP (ARP, LLDP, STP, …) at the layer the extractor looks at.
    NotIp,
    /// Truncated or malformed link-layer or VLAN/MPLS header.
    BadL2,
    /// Truncated or malformed IP header.
    BadL3,
    /// Truncated or malformed TCP/UDP/ICMP header.
    BadL4,
    /// A non-first IP fragment (no ports): left to the fragment reassembler.
    Fragment,
    /// An encapsulation the extractor was told to expect is absent or broken.
    BadEncap,
    /// A capture record claims more bytes captured than were on the wire:
    /// a malformed record, not parsed.
    CaplenOverLen,
}

impl Unmatched {
    /// Every reason, for summaries and metrics.
    pub const ALL: [Unmatched; 7] = [
        Self::NotIp,
        Self::BadL2,
        Self::BadL3,
        Self::BadL4,
        Self::Fragment,
        Self::BadEncap,
        Self::CaplenOverLen,
    ];

    /// Static label (`reason` label of `flowscope_packets_unmatched_total`).
    pub fn label(self) -> &'static str {
        match self {
            Self::NotIp => "not_ip",
            Self::BadL2 => "bad_l2",
            Self::BadL3 => "bad_l3",
            Self::BadL4 => "bad_l4",
            Self::Fragment => "fragment",
            Self::BadEncap => "bad_encap",
            Self::CaplenOverLen => "caplen_over_len",
        }
    }
}
