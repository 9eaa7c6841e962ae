//! Fields behind a big-endian length, the vectors of TLS handshake messages
//! (one, two or three length bytes) and the strings of SSH (four).

/// The data behind an `N`-byte big-endian length at the start of `b`, and
/// the bytes after it; `None` when `b` is shorter than either.
pub(super) fn prefixed<const N: usize>(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = b.split_first_chunk::<N>()?;
    let len = len.iter().fold(0usize, |n, &d| n << 8 | usize::from(d));
    Some((rest.get(..len)?, &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_length_width() {
        let b = [0, 0, 2, b'a', b'b', b'c'];
        assert_eq!(prefixed::<3>(&b), Some((&b"ab"[..], &b"c"[..])));
        assert_eq!(prefixed::<2>(&b[1..]), Some((&b"ab"[..], &b"c"[..])));
        assert_eq!(prefixed::<1>(&b[2..]), Some((&b"ab"[..], &b"c"[..])));
        assert_eq!(prefixed::<1>(&[3, b'a', b'b']), None);
        assert_eq!(prefixed::<4>(&[0, 0, 1]), None);
        assert_eq!(prefixed::<4>(&[0, 0, 1, 0, 7]), None);
        assert_eq!(prefixed::<4>(&[0, 0, 0, 0]), Some((&[][..], &[][..])));
    }
}
