//! The symmetric flow and steering hashes, one definition for kernel and user.
//!
//! Each address is hashed on its own with a seeded 64-bit multiplicative
//! hash; an endpoint adds its port to its address hash with a multiply; the
//! two endpoint hashes are then combined in sorted order with one more
//! multiply, so swapping source and destination gives the same value. Only integer
//! arithmetic, no loops: the XDP program calls these functions directly, and
//! [`flow_and_steer`] gives both hashes from the two address hashes.
//!
//! Addresses are passed as four `u32` words built with `u32::from_le_bytes`
//! from the address bytes in wire order (IPv4: the first word, others 0);
//! that is what a little-endian load from packet memory gives on `bpfel`.
//! Ports are host-order port numbers.
//!
//! Policy (see [`flow_and_steer`]):
//!
//! - **Flow hash**: addresses, protocol and, for TCP and UDP frames that are
//!   not fragments, ports. A non-first fragment carries no ports, so every
//!   fragment (first included) hashes with port 0.
//! - **Steering hash**: the five-tuple for TCP and UDP, so that the flows of
//!   one busy address pair spread over the workers as RSS spreads them over
//!   queues. Two exceptions keep the address pair and protocol only: UDP to
//!   or from a tunnel port ([`is_tunnel_port`]: the outer source port is
//!   picked by each end, so the two directions of a tunnel differ in it, and
//!   `--decap` needs both directions of the inner flows on one worker), and
//!   frames without ports (other protocols, ICMP, truncated headers,
//!   non-first fragments). A first fragment steers by its five-tuple and
//!   leaves it in the fragment table ([`crate::frag`]), where the later
//!   fragments of its datagram find it.

/// murmur3's 32-bit finaliser: a cheap bijective avalanche.
#[inline(always)]
pub const fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Seeded hash of an address: two 64-bit multiplies, the high half kept.
#[inline(always)]
pub const fn address_hash(seed: u32, addr: &[u32; 4]) -> u32 {
    let lo = (addr[0] as u64 | (addr[1] as u64) << 32) ^ (seed as u64) << 16;
    let hi = addr[2] as u64 | (addr[3] as u64) << 32;
    ((lo.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ hi).wrapping_mul(0xc2b2_ae3d_27d4_eb4f) >> 32) as u32
}

/// An endpoint's hash from its address hash and port (port 0: unchanged).
#[inline(always)]
pub const fn with_port(address: u32, port: u16) -> u32 {
    address ^ (port as u32).wrapping_mul(0x9e37_79b1)
}

/// Hash of one endpoint: `seed`, the address words and the port.
#[inline(always)]
pub const fn endpoint_hash(seed: u32, addr: &[u32; 4], port: u16) -> u32 {
    with_port(address_hash(seed, addr), port)
}

/// Combines two endpoint hashes and the IP protocol, independent of order:
/// the sorted pair and the protocol in one 64-bit word, one multiply, the
/// high half kept.
#[inline(always)]
pub const fn combine(a: u32, b: u32, proto: u8) -> u32 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let x = ((lo as u64) << 32 | hi as u64) ^ (proto as u64) << 24;
    (x.wrapping_mul(0xd6e8_feb8_6659_fd93) >> 32) as u32
}

/// UDP ports of the tunnels `--decap` opens (VXLAN, Geneve, GTP-U, Teredo):
/// UDP to or from them steers by the address pair.
#[inline(always)]
pub const fn is_tunnel_port(port: u16) -> bool {
    matches!(
        port,
        crate::frame::VXLAN_PORT
            | crate::frame::GENEVE_PORT
            | crate::frame::GTP_U_PORT
            | crate::frame::TEREDO_PORT
    )
}

/// The flow hash and the steering hash of a frame, from the
/// [`address_hash`]es of its two addresses, the ports of its L4 header
/// (TCP and UDP with a complete header, first fragments included; else 0)
/// and whether it is a fragment (see the module docs for the policy).
#[inline(always)]
pub const fn flow_and_steer(
    a: u32,
    sport: u16,
    b: u32,
    dport: u16,
    proto: u8,
    fragment: bool,
) -> (u32, u32) {
    let pair = combine(a, b, proto);
    if sport == 0 && dport == 0 {
        return (pair, pair);
    }
    let five = combine(with_port(a, sport), with_port(b, dport), proto);
    let tunnel =
        proto == crate::frame::IPPROTO_UDP && (is_tunnel_port(sport) || is_tunnel_port(dport));
    (
        if fragment { pair } else { five },
        if tunnel { pair } else { five },
    )
}

/// Symmetric flow hash of a frame that is not a fragment (ports 0 where
/// the frame has none).
#[inline(always)]
pub const fn flow_hash(
    seed: u32,
    src: &[u32; 4],
    sport: u16,
    dst: &[u32; 4],
    dport: u16,
    proto: u8,
) -> u32 {
    let (a, b) = (address_hash(seed, src), address_hash(seed, dst));
    flow_and_steer(a, sport, b, dport, proto, false).0
}

/// Symmetric hash of the address pair and protocol: the steering hash of
/// frames without ports and of tunnels.
#[inline(always)]
pub const fn pair_hash(seed: u32, src: &[u32; 4], dst: &[u32; 4], proto: u8) -> u32 {
    combine(address_hash(seed, src), address_hash(seed, dst), proto)
}

/// XSKMAP slot for a frame received on `queue`: `queue · S + ⌊steer · S / 2³²⌋`
/// (the steering hash scaled into `0..S`: a multiply where `steer % S`
/// would cost the XDP program a division per frame).
#[inline(always)]
pub const fn xsk_slot(queue: u32, sockets_per_queue: u32, steer: u32) -> u32 {
    let s = if sockets_per_queue == 0 {
        1
    } else {
        sockets_per_queue
    };
    queue * s + ((steer as u64 * s as u64) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u32; 4] = [u32::from_le_bytes([192, 0, 2, 1]), 0, 0, 0];
    const B: [u32; 4] = [u32::from_le_bytes([198, 51, 100, 7]), 0, 0, 0];

    #[test]
    fn flow_hash_is_symmetric() {
        for seed in [0, 1, 0xdead_beef] {
            assert_eq!(
                flow_hash(seed, &A, 1234, &B, 80, 6),
                flow_hash(seed, &B, 80, &A, 1234, 6)
            );
        }
    }

    #[test]
    fn flow_hash_separates_ports_protocols_and_seeds() {
        let h = flow_hash(7, &A, 1234, &B, 80, 6);
        assert_ne!(h, flow_hash(7, &A, 1235, &B, 80, 6));
        assert_ne!(h, flow_hash(7, &A, 80, &B, 1234, 6));
        assert_ne!(h, flow_hash(7, &A, 1234, &B, 80, 17));
        assert_ne!(h, flow_hash(8, &A, 1234, &B, 80, 6));
    }

    #[test]
    fn every_address_word_and_port_counts() {
        let v6 = [1, 2, 3, 4];
        let h = flow_hash(7, &v6, 1, &A, 2, 17);
        for i in 0..4 {
            let mut w = v6;
            w[i] ^= 1 << 20;
            assert_ne!(h, flow_hash(7, &w, 1, &A, 2, 17), "word {i}");
        }
        assert_eq!(flow_hash(7, &v6, 0, &A, 0, 17), pair_hash(7, &v6, &A, 17));
        assert_ne!(h, pair_hash(7, &v6, &A, 17));
    }

    /// Flow and steering hashes of A:sport ↔ B:dport.
    fn both(sport: u16, dport: u16, proto: u8, fragment: bool) -> (u32, u32) {
        let (a, b) = (address_hash(3, &A), address_hash(3, &B));
        flow_and_steer(a, sport, b, dport, proto, fragment)
    }

    #[test]
    fn steering_takes_the_five_tuple_in_both_directions() {
        let (a, b) = (address_hash(3, &A), address_hash(3, &B));
        let (flow, steer) = both(40000, 80, 6, false);
        assert_eq!((flow, steer), (flow_hash(3, &A, 40000, &B, 80, 6), flow));
        assert_eq!(flow_and_steer(b, 80, a, 40000, 6, false), (flow, steer));
        assert_ne!(steer, both(40001, 80, 6, false).1);
        assert_ne!(steer, pair_hash(3, &A, &B, 6));
    }

    #[test]
    fn a_first_fragment_steers_by_its_ports_and_hashes_without_them() {
        let pair = pair_hash(3, &A, &B, 17);
        assert_eq!(
            both(5000, 53, 17, true),
            (pair, both(5000, 53, 17, false).1)
        );
        assert_eq!(both(0, 0, 17, true), (pair, pair));
    }

    #[test]
    fn tunnels_and_portless_frames_steer_by_the_address_pair() {
        for port in [4789, 6081, 2152, 3544] {
            let pair = pair_hash(3, &A, &B, 17);
            assert_eq!(both(50123, port, 17, false).1, pair, "to {port}");
            assert_eq!(both(port, 50123, 17, false).1, pair, "from {port}");
            assert_ne!(both(50123, port, 17, false).0, pair, "flows keep ports");
            // Only UDP: TCP on those ports is an ordinary flow.
            assert_ne!(both(50123, port, 6, false).1, pair_hash(3, &A, &B, 6));
        }
        assert_eq!(
            both(0, 0, 1, false),
            (pair_hash(3, &A, &B, 1), pair_hash(3, &A, &B, 1))
        );
    }

    #[test]
    fn sequential_addresses_spread_over_the_sockets() {
        let mut per_slot = [0u32; 4];
        for i in 0..64u8 {
            for j in 0..64u8 {
                let a = [u32::from_le_bytes([192, 0, 2, i]), 0, 0, 0];
                let b = [u32::from_le_bytes([198, 51, 100, j]), 0, 0, 0];
                per_slot[xsk_slot(0, 4, pair_hash(9, &a, &b, 6)) as usize] += 1;
            }
        }
        // 4096 pairs, 1024 expected per slot.
        assert!(
            per_slot.iter().all(|n| (900..1150).contains(n)),
            "{per_slot:?}"
        );
    }

    #[test]
    fn slot_stays_within_queue() {
        for steer in [0, 1, 2, 3, u32::MAX] {
            let s = xsk_slot(3, 2, steer);
            assert!((6..8).contains(&s));
        }
        assert_eq!(xsk_slot(5, 0, 99), 5);
    }
}
