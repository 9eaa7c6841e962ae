//! The symmetric flow and steering hashes, one definition for kernel and user.
//!
//! An endpoint (address, port) is hashed on its own with a seeded mixer; the two
//! endpoint hashes are then combined in sorted order, so swapping source and
//! destination gives the same value. Only integer arithmetic, no loops: the XDP
//! program calls these functions directly.
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

/// Hash of one endpoint: `seed`, the address words and the port.
#[inline(always)]
pub const fn endpoint_hash(seed: u32, addr: &[u32; 4], port: u16) -> u32 {
    let mut h = fmix32(seed ^ 0x9e37_79b9 ^ addr[0]);
    h = fmix32(h ^ addr[1]);
    h = fmix32(h ^ addr[2]);
    h = fmix32(h ^ addr[3]);
    fmix32(h ^ port as u32)
}

/// Combines two endpoint hashes and the IP protocol, independent of order.
#[inline(always)]
pub const fn combine(a: u32, b: u32, proto: u8) -> u32 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    fmix32(lo.wrapping_mul(0x9e37_79b1) ^ hi ^ ((proto as u32) << 24))
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
    combine(
        endpoint_hash(seed, src, sport),
        endpoint_hash(seed, dst, dport),
        proto,
    )
}

/// Symmetric steering hash: addresses and protocol only.
#[inline(always)]
pub const fn steer_hash(seed: u32, src: &[u32; 4], dst: &[u32; 4], proto: u8) -> u32 {
    flow_hash(seed, src, 0, dst, 0, proto)
}

/// XSKMAP slot for a frame received on `queue`: `queue · S + steer % S`.
#[inline(always)]
pub const fn xsk_slot(queue: u32, sockets_per_queue: u32, steer: u32) -> u32 {
    let s = if sockets_per_queue == 0 {
        1
    } else {
        sockets_per_queue
    };
    queue * s + steer % s
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
    fn slot_stays_within_queue() {
        for steer in [0, 1, 2, 3, u32::MAX] {
            let s = xsk_slot(3, 2, steer);
            assert!((6..8).contains(&s));
        }
        assert_eq!(xsk_slot(5, 0, 99), 5);
    }
}
