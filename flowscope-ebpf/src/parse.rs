//! Bounded, verifier-friendly frame parser producing an `XdpMeta`.
//!
//! Mirrors `flowscope_common::frame` rule by rule; `flowscope::wire::classify`
//! is the userspace twin and a differential test keeps them equal.

use aya_ebpf::programs::XdpContext;
use flowscope_common::{
    frame::*,
    hash,
    meta::{self, XdpMeta},
};

/// Largest header offset the parser follows. XDP's linear frame data is far
/// smaller; the bound lets the verifier prove every access in range.
const MAX_OFFSET: usize = 0x3fff;

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

/// Source and destination address words, as `flowscope_common::hash` wants them.
struct Addrs {
    src: [u32; 4],
    dst: [u32; 4],
}

/// Parses the frame in `ctx` into metadata, hashes seeded with `seed`.
#[inline(always)]
pub fn classify(ctx: &XdpContext, seed: u32) -> XdpMeta {
    let len = ctx.data_end() - ctx.data();
    let mut m = XdpMeta {
        magic: meta::META_MAGIC,
        version: meta::META_VERSION,
        frame_len: if len > 0xffff { 0xffff } else { len as u16 },
        ..XdpMeta::default()
    };

    // L2: Ethernet and up to two VLAN tags.
    let Some(mut ethertype) = be16(ctx, 12) else {
        m.flags |= meta::FLAG_ERR_L2;
        return m;
    };
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(inner) = be16(ctx, off + 2) else {
            m.flags |= meta::FLAG_ERR_L2;
            return m;
        };
        ethertype = inner;
        off += VLAN_HLEN;
        m.vlan_count += 1;
    }
    m.l3_offset = off as u16;

    // L3.
    let mut addrs = Addrs { src: [0; 4], dst: [0; 4] };
    let mut proto: u8;
    let mut l4_off: usize;
    let mut fragment = false;
    let mut nonfirst = false;
    match ethertype {
        ETH_P_IPV4 => {
            m.l3 = L3Class::Ipv4 as u8;
            let Some(h) = bytes::<20>(ctx, off) else {
                m.flags |= meta::FLAG_ERR_L3;
                return m;
            };
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if h[0] >> 4 != 4 || ihl < 20 || total < ihl || bytes::<1>(ctx, off + ihl - 1).is_none() {
                m.flags |= meta::FLAG_ERR_L3;
                return m;
            }
            let frag = u16::from_be_bytes([h[6], h[7]]);
            fragment = frag & 0x3fff != 0;
            nonfirst = frag & 0x1fff != 0;
            proto = h[9];
            addrs.src[0] = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
            addrs.dst[0] = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
            l4_off = off + ihl;
        }
        ETH_P_IPV6 => {
            m.l3 = L3Class::Ipv6 as u8;
            let Some(first) = bytes::<1>(ctx, off) else {
                m.flags |= meta::FLAG_ERR_L3;
                return m;
            };
            if first[0] >> 4 != 6 || bytes::<40>(ctx, off).is_none() {
                m.flags |= meta::FLAG_ERR_L3;
                return m;
            }
            for i in 0..4 {
                addrs.src[i] = word(ctx, off + 8 + 4 * i).unwrap_or(0);
                addrs.dst[i] = word(ctx, off + 24 + 4 * i).unwrap_or(0);
            }
            proto = bytes::<1>(ctx, off + 6).map(|b| b[0]).unwrap_or(0);
            l4_off = off + 40;
            let mut done = false;
            for _ in 0..MAX_IPV6_EXT_HEADERS {
                match proto {
                    IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                        let Some(h) = bytes::<2>(ctx, l4_off) else {
                            m.flags |= meta::FLAG_ERR_L3;
                            return m;
                        };
                        let hlen = (usize::from(h[1]) + 1) * 8;
                        if bytes::<1>(ctx, l4_off + hlen - 1).is_none() {
                            m.flags |= meta::FLAG_ERR_L3;
                            return m;
                        }
                        proto = h[0];
                        l4_off += hlen;
                    }
                    IPPROTO_FRAGMENT => {
                        let Some(h) = bytes::<8>(ctx, l4_off) else {
                            m.flags |= meta::FLAG_ERR_L3;
                            return m;
                        };
                        fragment = true;
                        proto = h[0];
                        l4_off += 8;
                        if u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0 {
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
                return m;
            }
        }
        _ => return m,
    }

    m.ip_proto = proto;
    m.l4 = L4Class::from_ip_proto(proto) as u8;
    if fragment {
        m.flags |= meta::FLAG_FRAGMENT;
    }
    if nonfirst {
        m.flags |= meta::FLAG_NONFIRST_FRAGMENT;
    }
    m.steer_hash = hash::steer_hash(seed, &addrs.src, &addrs.dst, proto);
    m.flow_hash = m.steer_hash;

    // L4.
    if nonfirst {
        return m;
    }
    let needed_ok = match proto {
        IPPROTO_TCP => match bytes::<13>(ctx, l4_off) {
            Some(h) => {
                let doff = usize::from(h[12] >> 4) * 4;
                doff >= 20 && bytes::<1>(ctx, l4_off + doff - 1).is_some() && bytes::<20>(ctx, l4_off).is_some()
            }
            None => false,
        },
        IPPROTO_UDP => bytes::<8>(ctx, l4_off).is_some(),
        IPPROTO_ICMP | IPPROTO_ICMPV6 => bytes::<4>(ctx, l4_off).is_some(),
        _ => return m,
    };
    if !needed_ok {
        m.flags |= meta::FLAG_ERR_L4;
        return m;
    }
    m.l4_offset = l4_off as u16;
    m.flags |= meta::FLAG_L4_VALID;
    if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && !fragment {
        let sport = be16(ctx, l4_off).unwrap_or(0);
        let dport = be16(ctx, l4_off + 2).unwrap_or(0);
        m.flow_hash = hash::flow_hash(seed, &addrs.src, sport, &addrs.dst, dport, proto);
    }
    m
}

#[inline(always)]
fn is_ext_header(p: u8) -> bool {
    matches!(p, IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT)
}
