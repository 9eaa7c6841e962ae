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
//! Policy for fragments: a non-first fragment carries no ports, so the flow
//! hash of *every* fragment (first included) and of non-TCP/UDP frames uses
//! port 0. Steering uses [`steer_hash`], which never includes ports, so all
//! fragments of a datagram and all packets of a flow land on one socket.
//! With both ports 0 the flow hash equals the steering hash.

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

/// The flow hash and the steering hash of a 5-tuple (ports 0 where the
/// policy says so) from the [`address_hash`]es of its two addresses.
#[inline(always)]
pub const fn flow_and_steer(a: u32, sport: u16, b: u32, dport: u16, proto: u8) -> (u32, u32) {
    let steer = combine(a, b, proto);
    if sport == 0 && dport == 0 {
        return (steer, steer);
    }
    (
        combine(with_port(a, sport), with_port(b, dport), proto),
        steer,
    )
}

/// Symmetric flow hash of a 5-tuple (ports 0 where the policy says so).
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
    flow_and_steer(a, sport, b, dport, proto).0
}

/// Symmetric steering hash: addresses and protocol only.
#[inline(always)]
pub const fn steer_hash(seed: u32, src: &[u32; 4], dst: &[u32; 4], proto: u8) -> u32 {
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
        assert_eq!(flow_hash(7, &v6, 0, &A, 0, 17), steer_hash(7, &v6, &A, 17));
        assert_ne!(h, steer_hash(7, &v6, &A, 17));
    }

    #[test]
    fn sequential_addresses_spread_over_the_sockets() {
        let mut per_slot = [0u32; 4];
        for i in 0..64u8 {
            for j in 0..64u8 {
                let a = [u32::from_le_bytes([192, 0, 2, i]), 0, 0, 0];
                let b = [u32::from_le_bytes([198, 51, 100, j]), 0, 0, 0];
                per_slot[xsk_slot(0, 4, steer_hash(9, &a, &b, 6)) as usize] += 1;
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
