//! The fragment table: where the later fragments of a datagram go.
//!
//! A non-first fragment carries no ports, so it cannot compute the
//! five-tuple steering hash of its flow. The first fragment (offset 0) does:
//! it leaves that hash in the table under its datagram's key (addresses,
//! protocol, identification), and a later fragment that finds its key there
//! takes the same hash, so the whole datagram reaches the worker that owns
//! the flow. A later fragment that finds no entry (it came before the first,
//! or the entry was overwritten) steers by the address pair.
//!
//! The table is direct-mapped, [`FRAG_SLOTS`] entries, a newer datagram
//! overwriting an older one in the same slot: the same deterministic rule
//! for the XDP program (one table per CPU; symmetric RSS on the address pair
//! brings every fragment of a datagram to one queue, so one CPU) and the
//! capture-file reader (one table).

use crate::hash::fmix32;

/// Entries of the table (a power of two).
pub const FRAG_SLOTS: u32 = 1024;

/// One datagram's entry: its key and the steering hash of its first fragment.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragEntry {
    /// Source address words, as [`crate::hash`] takes them.
    pub src: [u32; 4],
    /// Destination address words.
    pub dst: [u32; 4],
    /// IP identification: IPv4's 16 bits or the IPv6 Fragment header's 32,
    /// as numbers.
    pub id: u32,
    /// IP protocol, with bit 8 set in a used entry.
    pub proto: u32,
    /// The first fragment's steering hash.
    pub steer: u32,
    /// Padding, 0.
    pub _pad: u32,
}

const _: () = assert!(core::mem::size_of::<FragEntry>() == 48);

/// Marks a used entry, so that the zeroed table matches no datagram.
const USED: u32 = 0x100;

/// The slot of a datagram: `pair` is its [`crate::hash::pair_hash`] (the
/// flow hash every fragment carries), `id` its identification.
#[inline(always)]
pub const fn frag_slot(pair: u32, id: u32) -> u32 {
    fmix32(pair ^ id) & (FRAG_SLOTS - 1)
}

impl FragEntry {
    /// The steering hash of a fragment whose datagram's slot is `self`,
    /// `own` being the fragment's own steering hash (a first fragment's
    /// five-tuple, a later one's address pair): a first fragment takes the
    /// slot and keeps `own`; a later one takes the first's hash when the slot
    /// holds its datagram, else `own`, and then the second value is true
    /// (a fragment steered without its first, to be counted).
    #[inline(always)]
    pub fn steer(
        &mut self,
        src: &[u32; 4],
        dst: &[u32; 4],
        id: u32,
        proto: u8,
        nonfirst: bool,
        own: u32,
    ) -> (u32, bool) {
        let proto = u32::from(proto) | USED;
        if !nonfirst {
            *self = Self {
                src: *src,
                dst: *dst,
                id,
                proto,
                steer: own,
                _pad: 0,
            };
            return (own, false);
        }
        if self.id == id && self.proto == proto && self.src == *src && self.dst == *dst {
            (self.steer, false)
        } else {
            (own, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u32; 4] = [1, 0, 0, 0];
    const B: [u32; 4] = [2, 0, 0, 0];

    #[test]
    fn later_fragments_follow_the_first() {
        let mut e = FragEntry::default();
        let missed = (99, true);
        assert_eq!(
            e.steer(&A, &B, 7, 17, true, 99),
            missed,
            "empty slot: own hash"
        );
        assert_eq!(e.steer(&A, &B, 7, 17, false, 5), (5, false));
        assert_eq!(e.steer(&A, &B, 7, 17, true, 99), (5, false));
        assert_eq!(
            e.steer(&A, &B, 7, 17, true, 98),
            (5, false),
            "every later one"
        );
        assert_eq!(e.steer(&A, &B, 8, 17, true, 99), missed, "another datagram");
        assert_eq!(
            e.steer(&B, &A, 7, 17, true, 99),
            missed,
            "the other direction"
        );
        assert_eq!(e.steer(&A, &B, 7, 6, true, 99), missed, "another protocol");
        assert_eq!(
            e.steer(&A, &B, 9, 17, false, 6),
            (6, false),
            "a newer datagram"
        );
        assert_eq!(
            e.steer(&A, &B, 7, 17, true, 99),
            missed,
            "the older one is gone"
        );
    }

    #[test]
    fn a_zeroed_slot_matches_nothing() {
        let mut e = FragEntry::default();
        assert_eq!(e.steer(&[0; 4], &[0; 4], 0, 0, true, 42), (42, true));
    }

    #[test]
    fn slots_stay_in_the_table() {
        for (pair, id) in [(0, 0), (u32::MAX, 1), (0xdead_beef, 0xffff)] {
            assert!(frag_slot(pair, id) < FRAG_SLOTS);
        }
    }
}
