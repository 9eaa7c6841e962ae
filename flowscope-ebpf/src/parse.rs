//! Bounded, verifier-friendly frame parser producing an `XdpMeta`, with the
//! anomaly bits of `flowscope_common::anomaly`.
//!
//! Mirrors `flowscope_common::frame` and `::anomaly` rule by rule;
//! `flowscope::wire::classify` is the userspace twin and a differential test
//! keeps them equal.

use aya_ebpf::programs::XdpContext;
use flowscope_common::{
    anomaly::{Anomaly as A, is_known_l4},
    frame::*,
    hash,
    meta::{self, Parsed, XdpMeta},
};

/// Largest header offset the parser follows. XDP's linear frame data is far
/// smaller; the bound lets the verifier prove every access in range.
const MAX_OFFSET: usize = 0x3fff;

const ETH_P_ARP: u16 = 0x0806;

/// The frame's bounds, read from the context once.
#[derive(Clone, Copy)]
struct Frame {
    start: usize,
    end: usize,
}

impl Frame {
    /// The `N` bytes at `off`, or `None` past the end of the frame.
    #[inline(always)]
    fn header<const N: usize>(self, off: usize) -> Option<Header<N>> {
        if off > MAX_OFFSET || self.start + off + N > self.end {
            return None;
        }
        Some(Header(self.start + off))
    }

    /// True if the frame holds a byte at `off`.
    #[inline(always)]
    fn has(self, off: usize) -> bool {
        self.header::<1>(off).is_some()
    }
}

/// `N` bytes of the frame at this address, checked against its end: field
/// reads at constant offsets (checked at compile time) need no more checks,
/// and each is one load (the program is built with misaligned loads).
#[derive(Clone, Copy)]
struct Header<const N: usize>(usize);

impl<const N: usize> Header<N> {
    #[inline(always)]
    fn read<T: Copy, const I: usize>(self) -> T {
        const { assert!(I + core::mem::size_of::<T>() <= N) };
        // SAFETY: `I + size_of::<T>() <= N` (asserted at compile time) and
        // the `N` bytes lie inside the packet (checked by `Frame::header`);
        // the read is unaligned-safe.
        unsafe { core::ptr::read_unaligned((self.0 + I) as *const T) }
    }

    /// Byte `I`.
    #[inline(always)]
    fn u8<const I: usize>(self) -> u8 {
        self.read::<u8, I>()
    }

    /// Big-endian 16-bit field at `I`.
    #[inline(always)]
    fn be16<const I: usize>(self) -> u16 {
        u16::from_be(self.read::<u16, I>())
    }

    /// Big-endian 32-bit field at `I`.
    #[inline(always)]
    fn be32<const I: usize>(self) -> u32 {
        u32::from_be(self.read::<u32, I>())
    }

    /// Address word at `I`: a little-endian load, as `flowscope_common::hash`
    /// wants it.
    #[inline(always)]
    fn word<const I: usize>(self) -> u32 {
        u32::from_le(self.read::<u32, I>())
    }
}

// The word layout `classify` writes.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(XdpMeta, magic) == 0 && offset_of!(XdpMeta, version) == 2);
    assert!(offset_of!(XdpMeta, frame_len) == 12 && offset_of!(Parsed, meta) == 0);
    assert!(size_of::<Parsed>() % 8 == 0 && align_of::<Parsed>() == 8);
};

/// `FLAG_*` bits and anomaly bits found so far, kept in registers and
/// written once.
#[derive(Clone, Copy, Default)]
struct Found {
    flags: u8,
    anomalies: u64,
}

impl Found {
    /// Adds `flags` and the bit of `anomaly`.
    #[inline(always)]
    fn with(self, flags: u8, anomaly: A) -> Self {
        Self {
            flags: self.flags | flags,
            anomalies: self.anomalies | anomaly.bit(),
        }
    }
}

/// Parses the frame in `ctx` into `p` (hashes seeded with `seed`).
///
/// `p` lives in map memory (see `program::COUNTERS`): the verifier does not
/// track what is stored there, so the many paths through the parser, which
/// set fields to different constants, reach the code after it as one state.
#[inline(always)]
pub fn classify(ctx: &XdpContext, seed: u32, p: &mut Parsed) {
    let f = Frame {
        start: ctx.data(),
        end: ctx.data_end(),
    };
    let len = f.end - f.start;
    let frame_len = if len > 0xffff { 0xffff } else { len as u64 };
    // Whole 8-byte words: a struct literal here becomes a byte-by-byte
    // memset subprogram of about 350 instructions per frame.
    let words = (p as *mut Parsed).cast::<u64>();
    let header = u64::from(meta::META_MAGIC) | u64::from(meta::META_VERSION) << 16;
    for i in 0..core::mem::size_of::<Parsed>() / 8 {
        let w = match i {
            0 => header,
            1 => frame_len << 32,
            _ => 0,
        };
        // SAFETY: `p` is a valid, 8-aligned `Parsed` of 10 words; volatile so
        // the stores are not merged back into a memset call.
        unsafe { core::ptr::write_volatile(words.add(i), w) };
    }
    let found = parse_into(f, seed, len, p);
    p.meta.flags = found.flags;
    p.meta.anomalies = found.anomalies;
}

#[inline(always)]
fn parse_into(f: Frame, seed: u32, len: usize, p: &mut Parsed) -> Found {
    let mut found = Found::default();
    let m = &mut p.meta;
    // L2: Ethernet and up to two VLAN tags.
    let Some(eth) = f.header::<{ ETH_HLEN }>(0) else {
        return found.with(meta::FLAG_ERR_L2, A::TruncatedL2);
    };
    let mut ethertype = eth.be16::<12>();
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(tag) = f.header::<{ VLAN_HLEN }>(off) else {
            return found.with(meta::FLAG_ERR_L2, A::TruncatedL2);
        };
        ethertype = tag.be16::<2>();
        off += VLAN_HLEN;
        m.vlan_count += 1;
    }
    m.l3_offset = off as u16;

    // L3.
    let mut proto: u8;
    let mut l4_off: usize;
    let mut fragment = false;
    let mut nonfirst = false;
    // Bytes of IP payload after the IP header (and extension chain), by the
    // header's own length fields.
    let ip_payload: usize;
    let ttl: u8;
    // The address hashes, taken where the addresses are read (IPv4 needs
    // one word of each), and whether the addresses are equal.
    let (src_hash, dst_hash, land): (u32, u32, bool);
    match ethertype {
        ETH_P_IPV4 => {
            m.l3 = L3Class::Ipv4 as u8;
            let Some(h) = f.header::<20>(off) else {
                return found.with(meta::FLAG_ERR_L3, A::TruncatedL3);
            };
            let vihl = h.u8::<0>();
            let ihl = usize::from(vihl & 0x0f) * 4;
            let total = usize::from(h.be16::<2>());
            if vihl >> 4 != 4 || ihl < 20 {
                return found.with(meta::FLAG_ERR_L3, A::Ipv4BadHeaderLen);
            }
            if !f.has(off + ihl - 1) {
                return found.with(meta::FLAG_ERR_L3, A::TruncatedL3);
            }
            if total < ihl {
                return found.with(meta::FLAG_ERR_L3, A::Ipv4BadTotalLen);
            }
            if total > len - off {
                found.anomalies |= A::Ipv4BadTotalLen.bit();
            }
            if ihl > 20 {
                found.anomalies |= A::Ipv4Options.bit();
            }
            let frag = h.be16::<6>();
            fragment = frag & 0x3fff != 0;
            nonfirst = frag & 0x1fff != 0;
            if fragment {
                p.frag_id = u32::from(h.be16::<4>());
            }
            proto = h.u8::<9>();
            ttl = h.u8::<8>();
            let s = h.word::<12>();
            let (src, dst) = ([s, 0, 0, 0], [h.word::<16>(), 0, 0, 0]);
            // The other words stay 0 from `classify`.
            (p.src[0], p.dst[0], p.family) = (s, dst[0], 4);
            src_hash = hash::address_hash(seed, &src);
            dst_hash = hash::address_hash(seed, &dst);
            land = s == dst[0];
            l4_off = off + ihl;
            ip_payload = total - ihl;
            // The first address byte is the word's low byte.
            if s == u32::MAX {
                found.anomalies |= A::SrcBroadcast.bit();
            } else if s & 0xf0 == 0xe0 {
                found.anomalies |= A::SrcMulticast.bit();
            } else if s & 0xff == 127 {
                found.anomalies |= A::SrcLoopback.bit();
            } else if s == 0 {
                found.anomalies |= A::SrcUnspecified.bit();
            }
        }
        ETH_P_IPV6 => {
            m.l3 = L3Class::Ipv6 as u8;
            let Some(first) = f.header::<1>(off) else {
                return found.with(meta::FLAG_ERR_L3, A::TruncatedL3);
            };
            if first.u8::<0>() >> 4 != 6 {
                found.flags |= meta::FLAG_ERR_L3;
                return found;
            }
            let Some(h) = f.header::<40>(off) else {
                return found.with(meta::FLAG_ERR_L3, A::TruncatedL3);
            };
            let src = [
                h.word::<8>(),
                h.word::<12>(),
                h.word::<16>(),
                h.word::<20>(),
            ];
            let dst = [
                h.word::<24>(),
                h.word::<28>(),
                h.word::<32>(),
                h.word::<36>(),
            ];
            (p.src, p.dst, p.family) = (src, dst, 6);
            src_hash = hash::address_hash(seed, &src);
            dst_hash = hash::address_hash(seed, &dst);
            land = src == dst;
            proto = h.u8::<6>();
            ttl = h.u8::<7>();
            let payload_len = usize::from(h.be16::<4>());
            l4_off = off + 40;
            let mut done = false;
            for _ in 0..MAX_IPV6_EXT_HEADERS {
                match proto {
                    IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                        let Some(e) = f.header::<2>(l4_off) else {
                            return found.with(meta::FLAG_ERR_L3, A::TruncatedL3);
                        };
                        let hlen = (usize::from(e.u8::<1>()) + 1) * 8;
                        if !f.has(l4_off + hlen - 1) {
                            return found.with(meta::FLAG_ERR_L3, A::TruncatedL3);
                        }
                        proto = e.u8::<0>();
                        l4_off += hlen;
                    }
                    IPPROTO_FRAGMENT => {
                        let Some(e) = f.header::<8>(l4_off) else {
                            return found.with(meta::FLAG_ERR_L3, A::TruncatedL3);
                        };
                        fragment = true;
                        p.frag_id = e.be32::<4>();
                        proto = e.u8::<0>();
                        l4_off += 8;
                        if e.be16::<2>() & 0xfff8 != 0 {
                            nonfirst = true;
                            done = true;
                            break;
                        }
                    }
                    _ => {
                        done = true;
                        break;
                    }
                }
            }
            if !done && is_ext_header(proto) {
                found.flags |= meta::FLAG_ERR_L3;
                return found;
            }
            ip_payload = (off + 40 + payload_len).saturating_sub(l4_off);
            let s = &src;
            if s[0] & 0xff == 0xff {
                found.anomalies |= A::SrcMulticast.bit();
            } else if s[0] == 0
                && s[1] == 0
                && s[2] == 0
                && s[3] == u32::from_le_bytes([0, 0, 0, 1])
            {
                found.anomalies |= A::SrcLoopback.bit();
            } else if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
                found.anomalies |= A::SrcUnspecified.bit();
            }
        }
        ETH_P_ARP => return found,
        _ => {
            found.anomalies |= A::UnknownEthertype.bit();
            return found;
        }
    }
    if ttl <= 1 {
        found.anomalies |= A::TtlLow.bit();
    }
    if land {
        found.anomalies |= A::Land.bit();
    }
    if !is_known_l4(proto) {
        found.anomalies |= A::UnknownL4Proto.bit();
    }
    let m = &mut p.meta;
    m.ip_proto = proto;
    m.l4 = L4Class::from_ip_proto(proto) as u8;
    if fragment {
        found.flags |= meta::FLAG_FRAGMENT;
        found.anomalies |= if nonfirst {
            A::FragNonFirst.bit()
        } else if ip_payload < min_l4_header(proto) {
            A::FragTinyFirst.bit()
        } else {
            A::FragFirst.bit()
        };
    }
    if nonfirst {
        found.flags |= meta::FLAG_NONFIRST_FRAGMENT;
    }
    // L4, then the hashes once for every path.
    if l4_off > MAX_OFFSET {
        return found;
    }
    let l4_off = launder(m, l4_off);
    let (sport, dport) = l4(
        f, p, &mut found, proto, l4_off, fragment, nonfirst, ip_payload,
    );
    let (flow, steer) = hash::flow_and_steer(src_hash, sport, dst_hash, dport, proto, fragment);
    p.meta.flow_hash = flow;
    p.meta.steer_hash = steer;
    found
}

/// Returns `l4_off` with everything the verifier knew about it forgotten, by
/// a round trip through `m.l4_offset` in map memory (which it does not
/// track); [`l4`] leaves it there only for a complete L4 header.
///
/// The paths through the L2/L3 parser (VLAN tags, IPv6 extension chains)
/// reach the L4 parser with header offsets the verifier knows exactly, and it
/// would verify the rest of the program once per distinct offset — past its
/// one-million-instruction limit. Laundered, they all arrive as the same
/// unknown value and the verifier prunes them to one.
#[inline(always)]
fn launder(m: &mut XdpMeta, l4_off: usize) -> usize {
    // SAFETY: volatile accesses to a field of a valid, exclusive reference.
    unsafe {
        core::ptr::write_volatile(&mut m.l4_offset, l4_off as u16);
        usize::from(core::ptr::read_volatile(&m.l4_offset))
    }
}

/// Parses the L4 header at `l4_off` into `p` and `found`: the ports the
/// hashes take (complete TCP/UDP headers, first fragments included; else 0).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn l4(
    f: Frame,
    p: &mut Parsed,
    found: &mut Found,
    proto: u8,
    l4_off: usize,
    fragment: bool,
    nonfirst: bool,
    ip_payload: usize,
) -> (u16, u16) {
    let m = &mut p.meta;
    // The header's ports (0 for ICMP) when it is complete.
    let ports = if nonfirst {
        None
    } else {
        match proto {
            IPPROTO_TCP => match f.header::<20>(l4_off) {
                Some(h) => {
                    let doff = usize::from(h.u8::<12>() >> 4) * 4;
                    let ok = doff >= 20 && f.has(l4_off + doff - 1);
                    if ok {
                        found.anomalies |= tcp_anomalies(h, ip_payload > doff);
                    }
                    ok.then(|| (h.be16::<0>(), h.be16::<2>()))
                }
                None => None,
            },
            IPPROTO_UDP => match f.header::<8>(l4_off) {
                Some(h) => {
                    let ports = (h.be16::<0>(), h.be16::<2>());
                    if ports.0 == 0 || ports.1 == 0 {
                        found.anomalies |= A::UdpPortZero.bit();
                    }
                    if !fragment && usize::from(h.be16::<4>()) != ip_payload {
                        found.anomalies |= A::UdpLenMismatch.bit();
                    }
                    Some(ports)
                }
                None => None,
            },
            IPPROTO_ICMP | IPPROTO_ICMPV6 => match f.header::<4>(l4_off) {
                Some(h) => {
                    let t = h.u8::<0>();
                    if (proto == IPPROTO_ICMP && t == 3) || (proto == IPPROTO_ICMPV6 && t == 1) {
                        found.anomalies |= A::IcmpUnreachable.bit();
                    }
                    Some((0, 0))
                }
                None => None,
            },
            _ => {
                m.l4_offset = 0;
                return (0, 0);
            }
        }
    };
    let Some((sport, dport)) = ports else {
        m.l4_offset = 0;
        if !nonfirst {
            found.flags |= meta::FLAG_ERR_L4;
            if !fragment {
                found.anomalies |= A::TruncatedL4.bit();
            }
        }
        return (0, 0);
    };
    found.flags |= meta::FLAG_L4_VALID;
    p.sport = sport;
    p.dport = dport;
    (sport, dport)
}

/// Flag, port and payload kinds of a complete TCP header `h`.
#[inline(always)]
fn tcp_anomalies(h: Header<20>, has_payload: bool) -> u64 {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;
    const ACK: u8 = 0x10;
    const URG: u8 = 0x20;
    let f = h.u8::<13>();
    let port_zero = if h.be16::<0>() == 0 || h.be16::<2>() == 0 {
        A::TcpPortZero.bit()
    } else {
        0
    };
    // The common segment (ACK, no SYN, FIN or RST) raises none of the flag
    // kinds below.
    if f & (ACK | SYN | FIN | RST) == ACK {
        return port_zero;
    }
    let mut a = port_zero;
    a |= if f & 0x3f == 0 {
        A::TcpNull.bit()
    } else if f & (FIN | PSH | URG) == FIN | PSH | URG {
        A::TcpXmas.bit()
    } else if f & (SYN | FIN) == SYN | FIN {
        A::TcpSynFin.bit()
    } else if f & (SYN | RST) == SYN | RST {
        A::TcpSynRst.bit()
    } else if f & (FIN | RST) == FIN | RST {
        A::TcpFinRst.bit()
    } else if f & ACK == 0 && f & FIN != 0 {
        A::TcpFinNoAck.bit()
    } else if f & ACK == 0 && f & PSH != 0 {
        A::TcpPshNoAck.bit()
    } else if f & ACK == 0 && f & URG != 0 {
        A::TcpUrgNoAck.bit()
    } else {
        0
    };
    if f & SYN != 0 && has_payload {
        a |= A::TcpSynPayload.bit();
    }
    if f & (SYN | ACK) == SYN {
        a |= A::Syn.bit();
    }
    if f & (SYN | ACK) == SYN | ACK {
        a |= A::SynAck.bit();
    }
    if f & RST != 0 {
        a |= A::Rst.bit();
    }
    a
}

/// Smallest L4 header of `proto` (1 byte for protocols we do not parse).
#[inline(always)]
fn min_l4_header(proto: u8) -> usize {
    match proto {
        IPPROTO_TCP => 20,
        IPPROTO_UDP => 8,
        IPPROTO_ICMP | IPPROTO_ICMPV6 => 4,
        _ => 1,
    }
}

#[inline(always)]
fn is_ext_header(p: u8) -> bool {
    matches!(
        p,
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT
    )
}
