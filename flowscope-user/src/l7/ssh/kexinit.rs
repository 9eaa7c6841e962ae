//! The KEXINIT message (RFC 4253 §7.1): the algorithm name-lists a side
//! offers.

use crate::l7::prefixed::prefixed;

/// Parses a KEXINIT payload after its message number: the 16-byte cookie,
/// ten name-lists, the `first_kex_packet_follows` boolean and a reserved
/// `uint32`. Returns the first eight lists, as sent (the two language
/// lists are left out).
pub(super) fn parse(payload: &[u8]) -> Option<[&[u8]; 8]> {
    let mut b = payload.get(16..)?;
    let mut lists: [&[u8]; 10] = [&[]; 10];
    for list in &mut lists {
        // A `name-list` (RFC 4251 §5): a string behind a 4-byte length.
        (*list, b) = prefixed::<4>(b)?;
    }
    if b.len() < 5 {
        return None;
    }
    lists.first_chunk().copied()
}
