//! Per-frame anomaly detection, the userspace twin of the XDP program's.
//!
//! [`detect`] returns the bit mask of `flowscope_common::anomaly::Anomaly`
//! kinds an Ethernet frame raises, by the rules written in that module; the
//! kernel tests compare it with the mask the XDP program writes into the
//! metadata of the same frames.

use flowscope_common::{
    anomaly::{Anomaly as A, is_known_l4},
    frame::*,
};

const ETH_P_ARP: u16 = 0x0806;

fn be16(f: &[u8], off: usize) -> Option<u16> {
    f.get(off..off + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// The anomaly mask of the Ethernet frame `f`.
pub fn detect(f: &[u8]) -> u64 {
    let Some(mut ethertype) = be16(f, 12) else {
        return A::TruncatedL2.bit();
    };
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(inner) = be16(f, off + 2) else {
            return A::TruncatedL2.bit();
        };
        ethertype = inner;
        off += VLAN_HLEN;
    }
    let mut a = 0u64;
    let l3 = match ethertype {
        ETH_P_IPV4 => match ipv4(f, off, &mut a) {
            Some(l3) => l3,
            None => return a,
        },
        ETH_P_IPV6 => match ipv6(f, off, &mut a) {
            Some(l3) => l3,
            None => return a,
        },
        ETH_P_ARP => return 0,
        _ => return A::UnknownEthertype.bit(),
    };
    if l3.ttl <= 1 {
        a |= A::TtlLow.bit();
    }
    if l3.src == l3.dst {
        a |= A::Land.bit();
    }
    if !is_known_l4(l3.proto) {
        a |= A::UnknownL4Proto.bit();
    }
    if l3.fragment {
        a |= if l3.nonfirst {
            A::FragNonFirst.bit()
        } else if l3.ip_payload < min_l4_header(l3.proto) {
            A::FragTinyFirst.bit()
        } else {
            A::FragFirst.bit()
        };
    }
    if l3.nonfirst {
        return a;
    }
    let l4 = f.get(l3.l4_off..).unwrap_or(&[]);
    let complete = match l3.proto {
        IPPROTO_TCP => match l4.get(..20) {
            Some(h) => {
                let doff = usize::from(h[12] >> 4) * 4;
                let ok = doff >= 20 && l4.len() >= doff;
                if ok {
                    a |= tcp(h, l3.ip_payload > doff);
                }
                ok
            }
            None => false,
        },
        IPPROTO_UDP => match l4.get(..8) {
            Some(h) => {
                if h[0..2] == [0, 0] || h[2..4] == [0, 0] {
                    a |= A::UdpPortZero.bit();
                }
                if !l3.fragment && usize::from(u16::from_be_bytes([h[4], h[5]])) != l3.ip_payload {
                    a |= A::UdpLenMismatch.bit();
                }
                true
            }
            None => false,
        },
        IPPROTO_ICMP | IPPROTO_ICMPV6 => match l4.first() {
            Some(&t) if l4.len() >= 4 => {
                if (l3.proto == IPPROTO_ICMP && t == 3) || (l3.proto == IPPROTO_ICMPV6 && t == 1) {
                    a |= A::IcmpUnreachable.bit();
                }
                true
            }
            _ => false,
        },
        _ => true,
    };
    if !complete && !l3.fragment {
        a |= A::TruncatedL4.bit();
    }
    a
}

/// What the L4 rules need from a valid IP header.
struct L3 {
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    ttl: u8,
    fragment: bool,
    nonfirst: bool,
    ip_payload: usize,
    l4_off: usize,
}

fn ipv4(f: &[u8], off: usize, a: &mut u64) -> Option<L3> {
    let Some(h) = f.get(off..off + 20) else {
        *a |= A::TruncatedL3.bit();
        return None;
    };
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if h[0] >> 4 != 4 || ihl < 20 {
        *a |= A::Ipv4BadHeaderLen.bit();
        return None;
    }
    if f.len() < off + ihl {
        *a |= A::TruncatedL3.bit();
        return None;
    }
    if total < ihl {
        *a |= A::Ipv4BadTotalLen.bit();
        return None;
    }
    if total > f.len() - off {
        *a |= A::Ipv4BadTotalLen.bit();
    }
    if ihl > 20 {
        *a |= A::Ipv4Options.bit();
    }
    let s = [h[12], h[13], h[14], h[15]];
    if s == [255; 4] {
        *a |= A::SrcBroadcast.bit();
    } else if s[0] & 0xf0 == 0xe0 {
        *a |= A::SrcMulticast.bit();
    } else if s[0] == 127 {
        *a |= A::SrcLoopback.bit();
    } else if s == [0; 4] {
        *a |= A::SrcUnspecified.bit();
    }
    let frag = u16::from_be_bytes([h[6], h[7]]);
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src[..4].copy_from_slice(&s);
    dst[..4].copy_from_slice(&h[16..20]);
    Some(L3 {
        src,
        dst,
        proto: h[9],
        ttl: h[8],
        fragment: frag & 0x3fff != 0,
        nonfirst: frag & 0x1fff != 0,
        ip_payload: total - ihl,
        l4_off: off + ihl,
    })
}

fn ipv6(f: &[u8], off: usize, a: &mut u64) -> Option<L3> {
    let Some(&first) = f.get(off) else {
        *a |= A::TruncatedL3.bit();
        return None;
    };
    if first >> 4 != 6 {
        return None;
    }
    let Some(h) = f.get(off..off + 40) else {
        *a |= A::TruncatedL3.bit();
        return None;
    };
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let mut proto = h[6];
    let mut l4_off = off + 40;
    let (mut fragment, mut nonfirst, mut done) = (false, false, false);
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match proto {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let Some(e) = f.get(l4_off..l4_off + 2) else {
                    *a |= A::TruncatedL3.bit();
                    return None;
                };
                let hlen = (usize::from(e[1]) + 1) * 8;
                if f.len() < l4_off + hlen {
                    *a |= A::TruncatedL3.bit();
                    return None;
                }
                proto = e[0];
                l4_off += hlen;
            }
            IPPROTO_FRAGMENT => {
                let Some(e) = f.get(l4_off..l4_off + 8) else {
                    *a |= A::TruncatedL3.bit();
                    return None;
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
    if !done
        && matches!(
            proto,
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT
        )
    {
        return None;
    }
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&h[8..24]);
    dst.copy_from_slice(&h[24..40]);
    if src[0] == 0xff {
        *a |= A::SrcMulticast.bit();
    } else if src == std::net::Ipv6Addr::LOCALHOST.octets() {
        *a |= A::SrcLoopback.bit();
    } else if src == [0; 16] {
        *a |= A::SrcUnspecified.bit();
    }
    Some(L3 {
        src,
        dst,
        proto,
        ttl: h[7],
        fragment,
        nonfirst,
        ip_payload: (off + 40 + payload_len).saturating_sub(l4_off),
        l4_off,
    })
}

fn tcp(h: &[u8], has_payload: bool) -> u64 {
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;
    const ACK: u8 = 0x10;
    const URG: u8 = 0x20;
    let f = h[13];
    let no_ack = f & ACK == 0;
    let mut a = if f & 0x3f == 0 {
        A::TcpNull.bit()
    } else if f & (FIN | PSH | URG) == FIN | PSH | URG {
        A::TcpXmas.bit()
    } else if f & (SYN | FIN) == SYN | FIN {
        A::TcpSynFin.bit()
    } else if f & (SYN | RST) == SYN | RST {
        A::TcpSynRst.bit()
    } else if f & (FIN | RST) == FIN | RST {
        A::TcpFinRst.bit()
    } else if no_ack && f & FIN != 0 {
        A::TcpFinNoAck.bit()
    } else if no_ack && f & PSH != 0 {
        A::TcpPshNoAck.bit()
    } else if no_ack && f & URG != 0 {
        A::TcpUrgNoAck.bit()
    } else {
        0
    };
    if f & SYN != 0 && has_payload {
        a |= A::TcpSynPayload.bit();
    }
    if h[0..2] == [0, 0] || h[2..4] == [0, 0] {
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

fn min_l4_header(proto: u8) -> usize {
    match proto {
        IPPROTO_TCP => 20,
        IPPROTO_UDP => 8,
        IPPROTO_ICMP | IPPROTO_ICMPV6 => 4,
        _ => 1,
    }
}
