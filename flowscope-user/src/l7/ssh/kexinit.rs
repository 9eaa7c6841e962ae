//! The KEXINIT message (RFC 4253 §7.1): the algorithm name-lists a side
//! offers.

/// Reads one `name-list` (RFC 4251 §5) at the start of `b`.
fn name_list<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = b.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    let list = rest.get(..len)?;
    *b = &rest[len..];
    Some(list)
}

/// Parses a KEXINIT payload after its message number: the 16-byte cookie,
/// ten name-lists, the `first_kex_packet_follows` boolean and a reserved
/// `uint32`. Returns the first eight lists, as sent (the two language
/// lists are left out).
pub(super) fn parse(payload: &[u8]) -> Option<[&[u8]; 8]> {
    let mut b = payload.get(16..)?;
    let mut lists: [&[u8]; 10] = [&[]; 10];
    for list in &mut lists {
        *list = name_list(&mut b)?;
    }
    if b.len() < 5 {
        return None;
    }
    lists.first_chunk().copied()
}
