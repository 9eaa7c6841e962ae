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

/// Reads `N` bytes at `off`, or `None` past the end of the frame.
#[inline(always)]
fn bytes<const N: usize>(ctx: &XdpContext, off: usize) -> Option<[u8; N]> {
    if off > MAX_OFFSET {
        return None;
    }
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + N > end {
        return None;
    }
    // SAFETY: `start + off .. start + off + N` lies inside the packet, checked
    // against data_end just above; the read is unaligned-safe.
    Some(unsafe { core::ptr::read_unaligned((start + off) as *const [u8; N]) })
}

#[inline(always)]
fn be16(ctx: &XdpContext, off: usize) -> Option<u16> {
    bytes::<2>(ctx, off).map(u16::from_be_bytes)
}

#[inline(always)]
fn word(ctx: &XdpContext, off: usize) -> Option<u32> {
    bytes::<4>(ctx, off).map(u32::from_le_bytes)
}

// The word layout `classify` writes.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(XdpMeta, magic) == 0 && offset_of!(XdpMeta, version) == 2);
    assert!(offset_of!(XdpMeta, frame_len) == 12 && offset_of!(Parsed, meta) == 0);
    assert!(size_of::<Parsed>() % 8 == 0 && align_of::<Parsed>() == 8);
};

/// Parses the frame in `ctx` into `p` (hashes seeded with `seed`).
///
/// `p` lives in map memory (see `program::PARSED`): the verifier does not
/// track what is stored there, so the many paths through the parser, which
/// set fields to different constants, reach the code after it as one state.
#[inline(always)]
pub fn classify(ctx: &XdpContext, seed: u32, p: &mut Parsed) {
    let len = ctx.data_end() - ctx.data();
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
        // SAFETY: `p` is a valid, 8-aligned `Parsed` of 9 words; volatile so
        // the stores are not merged back into a memset call.
        unsafe { core::ptr::write_volatile(words.add(i), w) };
    }
    parse_into(ctx, seed, len, p);
}

#[inline(always)]
fn parse_into(ctx: &XdpContext, seed: u32, len: usize, p: &mut Parsed) {
    let m = &mut p.meta;
    // L2: Ethernet and up to two VLAN tags.
    let Some(mut ethertype) = be16(ctx, 12) else {
        m.flags |= meta::FLAG_ERR_L2;
        m.anomalies |= A::TruncatedL2.bit();
        return;
    };
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(inner) = be16(ctx, off + 2) else {
            m.flags |= meta::FLAG_ERR_L2;
            m.anomalies |= A::TruncatedL2.bit();
            return;
        };
        ethertype = inner;
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
    match ethertype {
        ETH_P_IPV4 => {
            m.l3 = L3Class::Ipv4 as u8;
            let Some(h) = bytes::<20>(ctx, off) else {
                m.flags |= meta::FLAG_ERR_L3;
                m.anomalies |= A::TruncatedL3.bit();
                return;
            };
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if h[0] >> 4 != 4 || ihl < 20 {
                m.flags |= meta::FLAG_ERR_L3;
                m.anomalies |= A::Ipv4BadHeaderLen.bit();
                return;
            }
            if bytes::<1>(ctx, off + ihl - 1).is_none() {
                m.flags |= meta::FLAG_ERR_L3;
                m.anomalies |= A::TruncatedL3.bit();
                return;
            }
            if total < ihl {
                m.flags |= meta::FLAG_ERR_L3;
                m.anomalies |= A::Ipv4BadTotalLen.bit();
                return;
            }
            if total > len - off {
                m.anomalies |= A::Ipv4BadTotalLen.bit();
            }
            if ihl > 20 {
                m.anomalies |= A::Ipv4Options.bit();
            }
            let frag = u16::from_be_bytes([h[6], h[7]]);
            fragment = frag & 0x3fff != 0;
            nonfirst = frag & 0x1fff != 0;
            proto = h[9];
            ttl = h[8];
            p.src[0] = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
            p.dst[0] = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
            p.family = 4;
            l4_off = off + ihl;
            ip_payload = total - ihl;
            let s = [h[12], h[13], h[14], h[15]];
            if s == [255, 255, 255, 255] {
                m.anomalies |= A::SrcBroadcast.bit();
            } else if s[0] & 0xf0 == 0xe0 {
                m.anomalies |= A::SrcMulticast.bit();
            } else if s[0] == 127 {
                m.anomalies |= A::SrcLoopback.bit();
            } else if s == [0, 0, 0, 0] {
                m.anomalies |= A::SrcUnspecified.bit();
            }
        }
        ETH_P_IPV6 => {
            m.l3 = L3Class::Ipv6 as u8;
            let Some(first) = bytes::<1>(ctx, off) else {
                m.flags |= meta::FLAG_ERR_L3;
                m.anomalies |= A::TruncatedL3.bit();
                return;
            };
            if first[0] >> 4 != 6 {
                m.flags |= meta::FLAG_ERR_L3;
                return;
            }
            let Some(h) = bytes::<8>(ctx, off) else {
                m.flags |= meta::FLAG_ERR_L3;
                m.anomalies |= A::TruncatedL3.bit();
                return;
            };
            if bytes::<40>(ctx, off).is_none() {
                m.flags |= meta::FLAG_ERR_L3;
                m.anomalies |= A::TruncatedL3.bit();
                return;
            }
            for i in 0..4 {
                p.src[i] = word(ctx, off + 8 + 4 * i).unwrap_or(0);
                p.dst[i] = word(ctx, off + 24 + 4 * i).unwrap_or(0);
            }
            p.family = 6;
            proto = h[6];
            ttl = h[7];
            let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
            l4_off = off + 40;
            let mut done = false;
            for _ in 0..MAX_IPV6_EXT_HEADERS {
                match proto {
                    IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                        let Some(e) = bytes::<2>(ctx, l4_off) else {
                            m.flags |= meta::FLAG_ERR_L3;
                            m.anomalies |= A::TruncatedL3.bit();
                            return;
                        };
                        let hlen = (usize::from(e[1]) + 1) * 8;
                        if bytes::<1>(ctx, l4_off + hlen - 1).is_none() {
                            m.flags |= meta::FLAG_ERR_L3;
                            m.anomalies |= A::TruncatedL3.bit();
                            return;
                        }
                        proto = e[0];
                        l4_off += hlen;
                    }
                    IPPROTO_FRAGMENT => {
                        let Some(e) = bytes::<8>(ctx, l4_off) else {
                            m.flags |= meta::FLAG_ERR_L3;
                            m.anomalies |= A::TruncatedL3.bit();
                            return;
                        };
                        fragment = true;
                        proto = e[0];
                        l4_off += 8;
                        if u16::from_be_bytes([e[2], e[3]]) & 0xfff8 != 0 {
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
                m.flags |= meta::FLAG_ERR_L3;
                return;
            }
            ip_payload = (off + 40 + payload_len).saturating_sub(l4_off);
            let s = &p.src;
            if s[0] & 0xff == 0xff {
                m.anomalies |= A::SrcMulticast.bit();
            } else if s[0] == 0
                && s[1] == 0
                && s[2] == 0
                && s[3] == u32::from_le_bytes([0, 0, 0, 1])
            {
                m.anomalies |= A::SrcLoopback.bit();
            } else if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
                m.anomalies |= A::SrcUnspecified.bit();
            }
        }
        ETH_P_ARP => return,
        _ => {
            m.anomalies |= A::UnknownEthertype.bit();
            return;
        }
    }

    if ttl <= 1 {
        m.anomalies |= A::TtlLow.bit();
    }
    if p.src[0] == p.dst[0] && p.src[1] == p.dst[1] && p.src[2] == p.dst[2] && p.src[3] == p.dst[3]
    {
        m.anomalies |= A::Land.bit();
    }
    if !is_known_l4(proto) {
        m.anomalies |= A::UnknownL4Proto.bit();
    }
    m.ip_proto = proto;
    m.l4 = L4Class::from_ip_proto(proto) as u8;
    if fragment {
        m.flags |= meta::FLAG_FRAGMENT;
        m.anomalies |= if nonfirst {
            A::FragNonFirst.bit()
        } else if ip_payload < min_l4_header(proto) {
            A::FragTinyFirst.bit()
        } else {
            A::FragFirst.bit()
        };
    }
    if nonfirst {
        m.flags |= meta::FLAG_NONFIRST_FRAGMENT;
    }
    // L4, then the hashes once for every path.
    let Some(l4_off) = crate::program::launder(l4_off) else {
        return;
    };
    if l4_off > MAX_OFFSET {
        return;
    }
    l4(ctx, p, proto, l4_off, fragment, nonfirst, ip_payload);
    let (sport, dport) = if m_ports(p) {
        (p.sport, p.dport)
    } else {
        (0, 0)
    };
    let (flow, steer) = hash::flow_and_steer(seed, &p.src, sport, &p.dst, dport, proto);
    p.meta.flow_hash = flow;
    p.meta.steer_hash = steer;
}

/// Ports go into the flow hash for complete TCP/UDP headers outside fragments.
#[inline(always)]
fn m_ports(p: &Parsed) -> bool {
    p.meta.flags & (meta::FLAG_L4_VALID | meta::FLAG_FRAGMENT) == meta::FLAG_L4_VALID
        && (p.meta.ip_proto == IPPROTO_TCP || p.meta.ip_proto == IPPROTO_UDP)
}

#[inline(always)]
fn l4(
    ctx: &XdpContext,
    p: &mut Parsed,
    proto: u8,
    l4_off: usize,
    fragment: bool,
    nonfirst: bool,
    ip_payload: usize,
) {
    let m = &mut p.meta;
    if nonfirst {
        return;
    }
    let complete = match proto {
        IPPROTO_TCP => match bytes::<20>(ctx, l4_off) {
            Some(h) => {
                let doff = usize::from(h[12] >> 4) * 4;
                let ok = doff >= 20 && bytes::<1>(ctx, l4_off + doff - 1).is_some();
                if ok {
                    m.anomalies |= tcp_anomalies(&h, ip_payload > doff);
                }
                ok
            }
            None => false,
        },
        IPPROTO_UDP => match bytes::<8>(ctx, l4_off) {
            Some(h) => {
                if (h[0] == 0 && h[1] == 0) || (h[2] == 0 && h[3] == 0) {
                    m.anomalies |= A::UdpPortZero.bit();
                }
                if !fragment && usize::from(u16::from_be_bytes([h[4], h[5]])) != ip_payload {
                    m.anomalies |= A::UdpLenMismatch.bit();
                }
                true
            }
            None => false,
        },
        IPPROTO_ICMP | IPPROTO_ICMPV6 => match bytes::<4>(ctx, l4_off) {
            Some(h) => {
                if (proto == IPPROTO_ICMP && h[0] == 3) || (proto == IPPROTO_ICMPV6 && h[0] == 1) {
                    m.anomalies |= A::IcmpUnreachable.bit();
                }
                true
            }
            None => false,
        },
        _ => return,
    };
    if !complete {
        m.flags |= meta::FLAG_ERR_L4;
        if !fragment {
            m.anomalies |= A::TruncatedL4.bit();
        }
        return;
    }
    m.l4_offset = l4_off as u16;
    m.flags |= meta::FLAG_L4_VALID;
    if proto == IPPROTO_TCP || proto == IPPROTO_UDP {
        p.sport = be16(ctx, l4_off).unwrap_or(0);
        p.dport = be16(ctx, l4_off + 2).unwrap_or(0);
    }
}

/// Flag, port and payload kinds of a complete TCP header `h`.
#[inline(always)]
fn tcp_anomalies(h: &[u8; 20], has_payload: bool) -> u64 {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;
    const ACK: u8 = 0x10;
    const URG: u8 = 0x20;
    let f = h[13];
    let mut a = 0u64;
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
    if (h[0] == 0 && h[1] == 0) || (h[2] == 0 && h[3] == 0) {
        a |= A::TcpPortZero.bit();
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
