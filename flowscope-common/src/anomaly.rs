//! Per-frame anomaly kinds and flood/scan indicators counted by the XDP
//! program, and the sketches it keeps of SYN targets and port scanners.
//!
//! Rules (both the XDP program and `flowscope::anomaly` follow them; a
//! differential test keeps them equal). A frame may raise several kinds;
//! each at most once. Kinds within one group are exclusive by construction.
//!
//! - `truncated_l2/l3/l4`: the frame ends inside the Ethernet/VLAN, IP (or
//!   extension chain), or TCP/UDP/ICMP header — for L4 only when the packet is
//!   not a fragment (a first fragment too short for its L4 header is
//!   `frag_tiny_first` instead).
//! - `ipv4_bad_header_len`: version 4 with IHL < 5 or the IHL·4 bytes absent;
//!   `ipv4_bad_total_len`: total length below IHL·4 or beyond the frame.
//! - `ipv4_options`: IHL > 5.
//! - `ttl_low`: IPv4 TTL or IPv6 hop limit 0 or 1.
//! - `land`: source address = destination address.
//! - `src_broadcast` (255.255.255.255), `src_multicast` (224/4, ff00::/8),
//!   `src_loopback` (127/8, ::1), `src_unspecified` (0.0.0.0, ::).
//! - `frag_first` / `frag_tiny_first` (first fragment whose IP payload is
//!   shorter than the minimal L4 header: TCP 20, UDP 8, ICMP/ICMPv6 4,
//!   others 1) / `frag_nonfirst`.
//! - TCP flags, first match wins: `tcp_null` (no flag), `tcp_xmas` (FIN+PSH+URG),
//!   `tcp_syn_fin`, `tcp_syn_rst`, `tcp_fin_rst`, then `tcp_fin_no_ack`,
//!   `tcp_psh_no_ack`, `tcp_urg_no_ack`. Independently: `tcp_syn_payload`
//!   (SYN with IP payload beyond the TCP header), `tcp_port_zero`.
//! - `udp_len_mismatch` (UDP length ≠ IP payload length, unfragmented only),
//!   `udp_port_zero`.
//! - `unknown_ethertype` (not IPv4, IPv6 or ARP after at most two tags) and
//!   `unknown_l4_proto` (not in [`KNOWN_L4_PROTOCOLS`]).
//!
//! Indicators (also bits of the mask, counted alike): `syn` (SYN without
//! ACK), `syn_ack`, `rst`, `icmp_unreachable` (ICMP type 3 or ICMPv6 type 1).

/// IP protocols that are not `unknown_l4_proto`: ICMP, IGMP, IP-in-IP, TCP,
/// UDP, IPv6-in-IPv4, GRE, ESP, AH, ICMPv6, no-next-header, OSPF, PIM, VRRP,
/// SCTP.
pub const KNOWN_L4_PROTOCOLS: [u8; 15] =
    [1, 2, 4, 6, 17, 41, 47, 50, 51, 58, 59, 89, 103, 112, 132];

/// True if `p` is in [`KNOWN_L4_PROTOCOLS`].
#[inline(always)]
pub const fn is_known_l4(p: u8) -> bool {
    matches!(
        p,
        1 | 2 | 4 | 6 | 17 | 41 | 47 | 50 | 51 | 58 | 59 | 89 | 103 | 112 | 132
    )
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident = $bit:literal => $label:literal,)*) => {
        /// An anomaly kind or indicator: a bit of `XdpMeta::anomalies` and a
        /// slot of the per-CPU [`AnomalyBlock`].
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Anomaly {
            $($(#[$doc])* $name = $bit,)*
        }

        impl Anomaly {
            /// Every kind, in bit order.
            pub const ALL: &'static [Anomaly] = &[$(Anomaly::$name,)*];

            /// Static label for the `kind` metric label and EVE records.
            pub const fn label(self) -> &'static str {
                match self { $(Anomaly::$name => $label,)* }
            }
        }
    };
}

kinds! {
    /// Frame ends inside the Ethernet or VLAN header.
    TruncatedL2 = 0 => "truncated_l2",
    /// Frame ends inside the IP header or extension chain.
    TruncatedL3 = 1 => "truncated_l3",
    /// Frame ends inside the L4 header (not a fragment).
    TruncatedL4 = 2 => "truncated_l4",
    /// IPv4 IHL < 5 or header bytes absent.
    Ipv4BadHeaderLen = 3 => "ipv4_bad_header_len",
    /// IPv4 total length below the header or beyond the frame.
    Ipv4BadTotalLen = 4 => "ipv4_bad_total_len",
    /// IPv4 options present.
    Ipv4Options = 5 => "ipv4_options",
    /// TTL or hop limit 0 or 1.
    TtlLow = 6 => "ttl_low",
    /// Source address equals destination address.
    Land = 7 => "land",
    /// Source 255.255.255.255.
    SrcBroadcast = 8 => "src_broadcast",
    /// Multicast source.
    SrcMulticast = 9 => "src_multicast",
    /// Loopback source.
    SrcLoopback = 10 => "src_loopback",
    /// Unspecified source.
    SrcUnspecified = 11 => "src_unspecified",
    /// First fragment.
    FragFirst = 12 => "frag_first",
    /// Non-first fragment.
    FragNonFirst = 13 => "frag_nonfirst",
    /// First fragment too short for its L4 header.
    FragTinyFirst = 14 => "frag_tiny_first",
    /// TCP with no flag.
    TcpNull = 15 => "tcp_null",
    /// TCP FIN+PSH+URG.
    TcpXmas = 16 => "tcp_xmas",
    /// TCP SYN+FIN.
    TcpSynFin = 17 => "tcp_syn_fin",
    /// TCP SYN+RST.
    TcpSynRst = 18 => "tcp_syn_rst",
    /// TCP FIN+RST.
    TcpFinRst = 19 => "tcp_fin_rst",
    /// TCP FIN without ACK.
    TcpFinNoAck = 20 => "tcp_fin_no_ack",
    /// TCP PSH without ACK.
    TcpPshNoAck = 21 => "tcp_psh_no_ack",
    /// TCP URG without ACK.
    TcpUrgNoAck = 22 => "tcp_urg_no_ack",
    /// TCP SYN carrying payload.
    TcpSynPayload = 23 => "tcp_syn_payload",
    /// TCP source or destination port 0.
    TcpPortZero = 24 => "tcp_port_zero",
    /// UDP length field disagrees with the IP payload length.
    UdpLenMismatch = 25 => "udp_len_mismatch",
    /// UDP source or destination port 0.
    UdpPortZero = 26 => "udp_port_zero",
    /// EtherType not IPv4, IPv6 or ARP.
    UnknownEthertype = 27 => "unknown_ethertype",
    /// IP protocol outside the known set.
    UnknownL4Proto = 28 => "unknown_l4_proto",
    /// Indicator: SYN without ACK.
    Syn = 32 => "syn",
    /// Indicator: SYN+ACK.
    SynAck = 33 => "syn_ack",
    /// Indicator: RST.
    Rst = 34 => "rst",
    /// Indicator: ICMP destination unreachable (v4 type 3, v6 type 1).
    IcmpUnreachable = 35 => "icmp_unreachable",
}

impl Anomaly {
    /// Its bit in a mask.
    #[inline(always)]
    pub const fn bit(self) -> u64 {
        1 << self as u8
    }

    /// True for the four flood/scan indicators.
    pub const fn is_indicator(self) -> bool {
        self as u8 >= 32
    }

    /// The kinds set in `mask`.
    pub fn in_mask(mask: u64) -> impl Iterator<Item = Anomaly> {
        Self::ALL
            .iter()
            .copied()
            .filter(move |a| mask & a.bit() != 0)
    }
}

/// Slots in [`AnomalyBlock`]: one per possible bit.
pub const ANOMALY_SLOTS: usize = 64;

/// Frames per kind, per CPU (in [`crate::counters::CpuBlock`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnomalyBlock {
    /// Indexed by `Anomaly as usize`.
    pub counts: [u64; ANOMALY_SLOTS],
}

impl Default for AnomalyBlock {
    fn default() -> Self {
        Self {
            counts: [0; ANOMALY_SLOTS],
        }
    }
}

impl AnomalyBlock {
    /// Count of `a`.
    pub fn get(&self, a: Anomaly) -> u64 {
        self.counts[a as usize]
    }

    /// Adds `other` slot by slot.
    pub fn add(&mut self, other: &AnomalyBlock) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
    }
}

/// Rows of each count-min sketch.
pub const SKETCH_DEPTH: usize = 4;
/// Counters per row (a power of two).
pub const SKETCH_WIDTH: usize = 1024;
/// Candidate slots for the heaviest keys.
pub const SKETCH_TOP: usize = 64;
/// Bits of the seen-(source, port) filter used to count distinct ports.
pub const PAIR_FILTER_BITS: usize = 1 << 16;

/// A heavy-key candidate: an address and its estimate when last seen.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopEntry {
    /// Address words (IPv4: first word only; see `crate::hash`).
    pub addr: [u32; 4],
    /// 4 for IPv4, 6 for IPv6, 0 for an empty slot.
    pub family: u32,
    /// Estimate from this CPU's sketch when the entry was written.
    pub estimate: u32,
}

/// A count-min sketch of some per-address quantity plus candidate slots for
/// its heaviest keys. Kept per CPU, reset by userspace every interval.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Sketch {
    /// `SKETCH_DEPTH` rows of `SKETCH_WIDTH` counters.
    pub rows: [[u32; SKETCH_WIDTH]; SKETCH_DEPTH],
    /// Candidates, slot = key hash % `SKETCH_TOP`.
    pub top: [TopEntry; SKETCH_TOP],
}

const _: () = assert!(
    core::mem::size_of::<Sketch>() <= 32 * 1024,
    "per-CPU values are limited to 32 KiB"
);

impl Default for Sketch {
    fn default() -> Self {
        Self {
            rows: [[0; SKETCH_WIDTH]; SKETCH_DEPTH],
            top: [TopEntry::default(); SKETCH_TOP],
        }
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), arrays of u32 and of repr(C) u32 structs, no padding.
unsafe impl aya::Pod for Sketch {}

/// Index in the `SKETCHES` per-CPU array: SYN destinations.
pub const SKETCH_SYN_DST: u32 = 0;
/// Index in the `SKETCHES` per-CPU array: distinct destination ports per source.
pub const SKETCH_SRC_PORTS: u32 = 1;

/// The seen-(source, destination port) filter, per CPU, reset with the sketches.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PairFilter {
    /// Bit set.
    pub bits: [u64; PAIR_FILTER_BITS / 64],
}

impl Default for PairFilter {
    fn default() -> Self {
        Self {
            bits: [0; PAIR_FILTER_BITS / 64],
        }
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), an array of u64.
unsafe impl aya::Pod for PairFilter {}

/// Seed of `crate::hash::endpoint_hash` for sketch keys.
pub const SKETCH_KEY_SEED: u32 = 0x5eed;
/// Seed of `crate::hash::endpoint_hash` for the (source, port) filter.
pub const PAIR_FILTER_SEED: u32 = 0x5ca7;

/// Column of key hash `h` in sketch row `row`.
#[inline(always)]
pub const fn sketch_column(h: u32, row: usize) -> usize {
    (crate::hash::fmix32(h ^ (0x9e37_79b9u32.wrapping_mul(row as u32 + 1))) as usize)
        & (SKETCH_WIDTH - 1)
}
