//! The metadata the XDP program writes in front of every frame it redirects.
//!
//! Written with `bpf_xdp_adjust_meta(ctx, -(size_of::<XdpMeta>()))`; an AF_XDP
//! socket receives it in the bytes immediately before the packet data (see
//! <https://docs.kernel.org/networking/af_xdp.html> and the `data_meta` field of
//! `struct xdp_md`). Userspace trusts it only when [`XdpMeta::is_valid_for`]
//! holds; otherwise it parses the frame itself.

use crate::frame::{L3Class, L4Class};

/// `magic` value of a metadata block written by this program.
pub const META_MAGIC: u16 = 0xF10E;
/// Layout version; bumped whenever a field changes.
pub const META_VERSION: u8 = 2;

/// Frame is an IP fragment (IPv4 MF/offset or an IPv6 Fragment header).
pub const FLAG_FRAGMENT: u8 = 1 << 0;
/// Fragment with a non-zero offset: it carries no L4 header.
pub const FLAG_NONFIRST_FRAGMENT: u8 = 1 << 1;
/// The L4 header was parsed: `l4_offset` and the ports are meaningful.
pub const FLAG_L4_VALID: u8 = 1 << 2;
/// Parsing failed at L2 (truncated Ethernet or VLAN header).
pub const FLAG_ERR_L2: u8 = 1 << 3;
/// Parsing failed at L3 (truncated or malformed IP header or extension chain).
pub const FLAG_ERR_L3: u8 = 1 << 4;
/// Parsing failed at L4 (truncated TCP/UDP/ICMP header).
pub const FLAG_ERR_L4: u8 = 1 << 5;

/// Parse results handed from the XDP program to userspace, 32 bytes.
///
/// The size is a multiple of 4 as `bpf_xdp_adjust_meta` requires, and at most
/// 32 bytes, the kernel's limit for XDP metadata.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpMeta {
    /// Always [`META_MAGIC`].
    pub magic: u16,
    /// Always [`META_VERSION`].
    pub version: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// [`L3Class`] as `u8`.
    pub l3: u8,
    /// [`L4Class`] as `u8`.
    pub l4: u8,
    /// IP protocol number after IPv6 extension headers (0 when not IP).
    pub ip_proto: u8,
    /// Number of VLAN tags (802.1Q or 802.1ad) before the L3 header, 0..=2.
    pub vlan_count: u8,
    /// Offset of the L3 header from the start of the frame.
    pub l3_offset: u16,
    /// Offset of the L4 header (valid with [`FLAG_L4_VALID`]).
    pub l4_offset: u16,
    /// Frame length in bytes, as the XDP program saw it (≤ 65535).
    pub frame_len: u16,
    /// Explicit padding, always 0.
    pub _pad: u16,
    /// Symmetric flow hash, see [`crate::hash`].
    pub flow_hash: u32,
    /// Symmetric steering hash that picked the socket (the five-tuple's,
    /// or the address pair's; a later fragment's from the fragment table),
    /// see [`crate::hash`] and [`crate::frag`].
    pub steer_hash: u32,
    /// Bits of the [`crate::anomaly::Anomaly`] kinds this frame raised.
    pub anomalies: u64,
}

const _: () = assert!(core::mem::size_of::<XdpMeta>() == 32);
const _: () = assert!(core::mem::size_of::<XdpMeta>().is_multiple_of(4));

impl XdpMeta {
    /// Size of the block in bytes.
    pub const SIZE: usize = core::mem::size_of::<XdpMeta>();

    /// True when this block was written by the current program for a frame of
    /// `frame_len` bytes (a stale block left in a reused UMEM frame fails the
    /// length check).
    pub fn is_valid_for(&self, frame_len: usize) -> bool {
        self.magic == META_MAGIC
            && self.version == META_VERSION
            && usize::from(self.frame_len) == frame_len
    }

    /// The L3 class.
    pub fn l3_class(&self) -> L3Class {
        L3Class::from_u8(self.l3)
    }

    /// The L4 class.
    pub fn l4_class(&self) -> L4Class {
        L4Class::from_u8(self.l4)
    }

    /// Reads a block from the bytes that precede a frame.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            u64::from_ne_bytes([
                b[i],
                b[i + 1],
                b[i + 2],
                b[i + 3],
                b[i + 4],
                b[i + 5],
                b[i + 6],
                b[i + 7],
            ])
        };
        Self {
            magic: u16_at(0),
            version: b[2],
            flags: b[3],
            l3: b[4],
            l4: b[5],
            ip_proto: b[6],
            vlan_count: b[7],
            l3_offset: u16_at(8),
            l4_offset: u16_at(10),
            frame_len: u16_at(12),
            _pad: u16_at(14),
            flow_hash: u32_at(16),
            steer_hash: u32_at(20),
            anomalies: u64_at(24),
        }
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), only integer fields, no implicit padding (size asserted above).
unsafe impl aya::Pod for XdpMeta {}

/// The program's parse result for the frame it is running on, kept per CPU
/// in [`crate::counters::CpuBlock`]: the metadata block plus the endpoints
/// the anomaly sketches need.
///
/// Userspace reads it back after `BPF_PROG_TEST_RUN` on a pinned CPU, so the
/// differential tests see what the program parsed on every kernel, including
/// those that refuse `bpf_xdp_adjust_meta` (where no block is written).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The metadata block, as written in front of the frame when enabled.
    pub meta: XdpMeta,
    /// Source address words.
    pub src: [u32; 4],
    /// Destination address words.
    pub dst: [u32; 4],
    /// 4 or 6 when the IP header is valid, else 0.
    pub family: u32,
    /// Source port (TCP/UDP with a full header), else 0.
    pub sport: u16,
    /// Destination port (TCP/UDP with a full header), else 0.
    pub dport: u16,
    /// A fragment's IP identification, as [`crate::frag::FragEntry::id`]
    /// holds it; else 0.
    pub frag_id: u32,
    /// Padding, 0.
    pub _pad: u32,
}

const _: () = assert!(core::mem::size_of::<Parsed>() == 80);
