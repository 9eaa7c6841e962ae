//! The flows the generator sends and how many frames each one gets.
//!
//! Flow `i` is fully determined by its index, so a test can recompute what
//! was sent: even indices are UDP, odd ones TCP; with IPv6 enabled, indices
//! with `i % 4 >= 2` are IPv6. Addresses come from the documentation ranges
//! (RFC 5737 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24; RFC 3849
//! 2001:db8::/32) and side A's port is unique per flow (up to
//! [`PORTS_PER_ADDRESS`] flows per A address).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::frame::{IpPair, Transport};

/// Distinct A ports used before the A address changes.
pub const PORTS_PER_ADDRESS: u32 = 64_000;
/// Most flows the generator supports (every 5-tuple stays distinct).
pub const MAX_FLOWS: u32 = PORTS_PER_ADDRESS * 254;
const FIRST_A_PORT: u32 = 1024;
const FIRST_B_PORT: u32 = 20_000;
const B_PORTS: u32 = 1000;

/// One bidirectional flow between side A and side B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// Index of the flow, `0..flows`.
    pub index: u32,
    /// Transport protocol.
    pub transport: Transport,
    /// Addresses, A first.
    pub ips: IpPair,
    /// Port of side A.
    pub a_port: u16,
    /// Port of side B.
    pub b_port: u16,
}

impl Flow {
    /// The flow with this index (`index < MAX_FLOWS`).
    pub fn new(index: u32, ipv6: bool) -> Flow {
        let transport = if index.is_multiple_of(2) {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        // Both values are below 2^16 by construction.
        let a_port = (FIRST_A_PORT + index % PORTS_PER_ADDRESS) as u16;
        let b_port = (FIRST_B_PORT + index % B_PORTS) as u16;
        let a_host = (1 + (index / PORTS_PER_ADDRESS) % 254) as u8;
        let b_host = (1 + index % 254) as u8;
        let ips = if ipv6 && index % 4 >= 2 {
            let a = Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0xa,
                0,
                0,
                (index >> 16) as u16,
                index as u16,
            );
            let b = Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0xb,
                0,
                0,
                (index >> 16) as u16,
                index as u16,
            );
            IpPair::V6(a, b)
        } else {
            let a = Ipv4Addr::new(192, 0, 2, a_host);
            let b = if index.is_multiple_of(3) {
                Ipv4Addr::new(203, 0, 113, b_host)
            } else {
                Ipv4Addr::new(198, 51, 100, b_host)
            };
            IpPair::V4(a, b)
        };
        Flow {
            index,
            transport,
            ips,
            a_port,
            b_port,
        }
    }

    /// Address of side A.
    pub fn a(&self) -> IpAddr {
        match self.ips {
            IpPair::V4(a, _) => IpAddr::V4(a),
            IpPair::V6(a, _) => IpAddr::V6(a),
        }
    }

    /// Address of side B.
    pub fn b(&self) -> IpAddr {
        match self.ips {
            IpPair::V4(_, b) => IpAddr::V4(b),
            IpPair::V6(_, b) => IpAddr::V6(b),
        }
    }
}

/// Frames of flow `index` when `total` frames are spread over `flows` flows
/// round-robin: `total / flows`, plus one for the first `total % flows`.
pub fn frames_of(index: u32, total: u64, flows: u32) -> u64 {
    let flows = u64::from(flows.max(1));
    total / flows + u64::from(u64::from(index) < total % flows)
}

/// Splits a flow's frames into (A→B, B→A): alternating, A→B first, when
/// `both_directions`, else all A→B.
pub fn split_directions(frames: u64, both_directions: bool) -> (u64, u64) {
    if both_directions {
        (frames.div_ceil(2), frames / 2)
    } else {
        (frames, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn frames_sum_to_total() {
        for (total, flows) in [(0u64, 1u32), (10, 3), (200_000, 1000), (7, 10)] {
            let sum: u64 = (0..flows).map(|i| frames_of(i, total, flows)).sum();
            assert_eq!(sum, total);
        }
        assert_eq!(frames_of(0, 10, 3), 4);
        assert_eq!(frames_of(2, 10, 3), 3);
        assert_eq!(split_directions(7, true), (4, 3));
        assert_eq!(split_directions(7, false), (7, 0));
    }

    #[test]
    fn five_tuples_are_distinct_and_documentation_addresses() {
        let mut seen = HashSet::new();
        for i in 0..130_000 {
            let f = Flow::new(i, true);
            assert!(seen.insert((f.a(), f.a_port, f.b(), f.b_port, f.transport.number())));
            match f.ips {
                IpPair::V4(a, b) => {
                    assert_eq!(&a.octets()[..3], &[192, 0, 2]);
                    assert!(matches!(b.octets(), [198, 51, 100, _] | [203, 0, 113, _]));
                }
                IpPair::V6(a, b) => {
                    assert_eq!(&a.segments()[..2], &[0x2001, 0xdb8]);
                    assert_eq!(&b.segments()[..2], &[0x2001, 0xdb8]);
                }
            }
        }
        assert_eq!(Flow::new(0, true).transport, Transport::Udp);
        assert_eq!(Flow::new(1, true).transport, Transport::Tcp);
        assert!(matches!(Flow::new(2, true).ips, IpPair::V6(..)));
        assert!(matches!(Flow::new(2, false).ips, IpPair::V4(..)));
    }
}
