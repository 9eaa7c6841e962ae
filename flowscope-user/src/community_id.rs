//! Community ID v1 flow hashes
//! (<https://github.com/corelight/community-id-spec>), as Zeek, Suricata and
//! Wireshark compute them.
//!
//! The hash input is: seed (2 bytes), source address, destination address,
//! protocol, one zero byte, then — for TCP, UDP, SCTP, ICMP and ICMPv6 only —
//! source and destination port, all in network order. The endpoints are put
//! in order first (lower address, then lower port, as source), so both
//! directions share the ID. For ICMP and ICMPv6 the "ports" are the message
//! type and code; request/reply types map to their counterpart instead of the
//! code, so an echo request and its reply share the ID, and the other
//! (one-way) types keep the packet's direction. The result is `"1:"` and the
//! base64 of the SHA-1 digest.

use crate::extract::FiveTupleKey;
use crate::extractor::Orientation;
use crate::wire::icmp_counterpart;
use base64::Engine;
use sha1::{Digest, Sha1};
use std::fmt;
use std::net::IpAddr;

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_SCTP: u8 = 132;

/// Length of an ID: `"1:"` and 28 base64 characters.
const ID_LEN: usize = 30;

/// A Community ID configuration: the seed (0 unless all sensors agree on another).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommunityId {
    seed: u16,
}

/// One Community ID value, held inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommunityIdValue([u8; ID_LEN]);

impl CommunityIdValue {
    /// The ID, e.g. `1:LQU9qZlK+B5F3KDmev6m5PMibrg=`.
    pub fn as_str(&self) -> &str {
        // Only "1:" and base64 characters are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for CommunityIdValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CommunityIdValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommunityIdValue({})", self.as_str())
    }
}

impl CommunityId {
    /// With `seed` (the spec's default is 0).
    pub const fn new(seed: u16) -> Self {
        Self { seed }
    }

    /// The ID of a packet from `src` to `dst`. For ICMP and ICMPv6 pass the
    /// message type as `src_port` and the code as `dst_port`; for protocols
    /// without ports the ports are ignored. `None` when the address families
    /// differ.
    pub fn compute(
        &self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        src_port: u16,
        dst_port: u16,
    ) -> Option<CommunityIdValue> {
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        let len = match (src, dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                s[..4].copy_from_slice(&a.octets());
                d[..4].copy_from_slice(&b.octets());
                4
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                s = a.octets();
                d = b.octets();
                16
            }
            _ => return None,
        };
        let (mut sp, mut dp, mut one_way) = (src_port, dst_port, false);
        if proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6 {
            let msg_type = src_port as u8;
            match icmp_counterpart(msg_type, proto == IPPROTO_ICMPV6) {
                Some(other) => dp = u16::from(other),
                None => one_way = true,
            }
            sp = u16::from(msg_type);
        }
        let (sa, da) = (&s[..len], &d[..len]);
        let ordered = sa < da || (sa == da && sp < dp);
        let (sa, da, sp, dp) = if one_way || ordered {
            (sa, da, sp, dp)
        } else {
            (da, sa, dp, sp)
        };

        let mut h = Sha1::new();
        h.update(self.seed.to_be_bytes());
        h.update(sa);
        h.update(da);
        h.update([proto, 0]);
        if matches!(
            proto,
            IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP | IPPROTO_ICMP | IPPROTO_ICMPV6
        ) {
            h.update(sp.to_be_bytes());
            h.update(dp.to_be_bytes());
        }
        let mut out = [0u8; ID_LEN];
        out[..2].copy_from_slice(b"1:");
        base64::engine::general_purpose::STANDARD
            .encode_slice(h.finalize(), &mut out[2..])
            .ok()?;
        Some(CommunityIdValue(out))
    }

    /// The ID of the flow `key`, seen in the direction of a packet that had
    /// `orientation`. ICMP and ICMPv6 keys hold the type and the counterpart
    /// type or code as their ports (see [`crate::wire::IcmpMessage::flow_ports`]),
    /// which give the same ID as the packet's type and code.
    pub fn for_key(&self, key: &FiveTupleKey, orientation: Orientation) -> CommunityIdValue {
        let k = key.oriented(orientation);
        // A key never mixes address families.
        self.compute(
            k.src_ip(),
            k.dst_ip(),
            k.protocol(),
            k.src_port(),
            k.dst_port(),
        )
        .unwrap_or(CommunityIdValue([b'?'; ID_LEN]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example of the spec's README (TCP, seed 0).
    #[test]
    fn spec_examples() {
        let c = CommunityId::new(0);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            c.compute(ip("128.232.110.120"), ip("66.35.250.204"), 6, 34855, 80)
                .unwrap()
                .as_str(),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(
            c.compute(ip("66.35.250.204"), ip("128.232.110.120"), 6, 80, 34855)
                .unwrap()
                .as_str(),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert!(c.compute(ip("::1"), ip("127.0.0.1"), 6, 1, 2).is_none());
    }

    #[test]
    fn icmp_request_and_reply_share_an_id() {
        let c = CommunityId::default();
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(c.compute(a, b, 1, 8, 0), c.compute(b, a, 1, 0, 0));
        // Destination unreachable is one-way: direction matters.
        assert_ne!(c.compute(a, b, 1, 3, 1), c.compute(b, a, 1, 3, 1));
        let (x, y) = ("fe80::1".parse().unwrap(), "fe80::2".parse().unwrap());
        assert_eq!(c.compute(x, y, 58, 135, 0), c.compute(y, x, 58, 136, 0));
    }
}
