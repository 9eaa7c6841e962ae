//! Google QUIC crypto handshake messages (the `CHLO` of gQUIC's "QUIC
//! Crypto" design): a tag, an entry count, then (tag, end offset) pairs
//! and the values, little-endian. In Q043/Q046 the CHLO travels in clear
//! in a STREAM frame of stream 1; in Q050 in the Initial CRYPTO stream.

/// A message's tag: `CHLO`.
const CHLO: &[u8; 4] = b"CHLO";
/// Most entries read from one message.
const MAX_ENTRIES: usize = 128;

/// Tag of the server name.
const SNI: [u8; 4] = *b"SNI\0";
/// Tag of the user agent.
const UAID: [u8; 4] = *b"UAID";

/// What a CHLO says, borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chlo<'a> {
    /// Server name (`SNI`).
    pub sni: Option<&'a [u8]>,
    /// User agent (`UAID`).
    pub ua: Option<&'a [u8]>,
    /// The message's index: (tag, end offset) entries of 8 bytes.
    index: &'a [u8],
}

impl<'a> Chlo<'a> {
    /// The tags in message order, each up to its first NUL: the CYU
    /// fingerprint's list.
    pub fn tags(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.index
            .chunks_exact(8)
            .map(|entry| entry[..4].split(|&c| c == 0).next().unwrap_or_default())
    }
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The length of the CHLO message at the start of `b`, once its header
/// and index are there; `None` if they are not (yet), `Some(0)` if `b`
/// does not start a CHLO.
pub(super) fn message_len(b: &[u8]) -> Option<usize> {
    if !b.starts_with(CHLO) && b.len() >= 4 {
        return Some(0);
    }
    let entries = usize::from(u16::from_le_bytes(b.get(4..6)?.try_into().ok()?));
    if entries > MAX_ENTRIES {
        return Some(0);
    }
    let values = 8 + 8 * entries;
    let last = match entries {
        0 => 0,
        n => u32_le(b, 8 + 8 * (n - 1) + 4)?,
    };
    Some(values + usize::try_from(last).ok()?)
}

/// Parses a whole CHLO message.
pub(super) fn parse(b: &[u8]) -> Option<Chlo<'_>> {
    if message_len(b)? == 0 {
        return None;
    }
    let entries = usize::from(u16::from_le_bytes(b.get(4..6)?.try_into().ok()?));
    let index = b.get(8..8 + 8 * entries)?;
    let values = b.get(8 + 8 * entries..)?;
    let mut out = Chlo {
        sni: None,
        ua: None,
        index,
    };
    let mut start = 0usize;
    for entry in index.chunks_exact(8) {
        let (tag, end) = entry.split_at(4);
        let end = usize::try_from(u32_le(end, 0)?).ok()?;
        let value = values.get(start..end)?;
        start = end;
        match <[u8; 4]>::try_from(tag).ok()? {
            SNI => out.sni = Some(value),
            UAID => out.ua = Some(value),
            _ => {}
        }
    }
    Some(out)
}

/// The data of a STREAM frame of stream 1 first in gQUIC clear-text
/// `frames` (type `1fdooossB`; fields little-endian before Q039);
/// `None` at any other frame.
pub(super) fn handshake_stream_data(frames: &[u8], little_endian: bool) -> Option<&[u8]> {
    let ty = *frames.first()?;
    if ty & 0x80 == 0 {
        return None;
    }
    let id_len = usize::from(ty & 0x03) + 1;
    let offset_len = match (ty >> 2) & 0x07 {
        0 => 0,
        n => usize::from(n) + 1,
    };
    let id = frames.get(1..1 + id_len)?;
    let one = if little_endian { id.first() } else { id.last() };
    if one != Some(&1) || id.iter().filter(|&&b| b != 0).count() != 1 {
        return None;
    }
    let mut at = 1 + id_len + offset_len;
    let len = if ty & 0x20 != 0 {
        let l: [u8; 2] = frames.get(at..at + 2)?.try_into().ok()?;
        at += 2;
        usize::from(if little_endian {
            u16::from_le_bytes(l)
        } else {
            u16::from_be_bytes(l)
        })
    } else {
        frames.len().checked_sub(at)?
    };
    frames.get(at..at + len)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A CHLO with `entries` (tag, value) in order.
    pub(crate) fn chlo(entries: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut m = CHLO.to_vec();
        m.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        m.extend_from_slice(&[0, 0]);
        let mut end = 0u32;
        for (tag, value) in entries {
            end += value.len() as u32;
            m.extend_from_slice(*tag);
            m.extend_from_slice(&end.to_le_bytes());
        }
        for (_, value) in entries {
            m.extend_from_slice(value);
        }
        m
    }

    #[test]
    fn tags_values_and_length() {
        let m = chlo(&[
            (b"PAD\0", &[b'-'; 5]),
            (b"SNI\0", b"www.example.com"),
            (b"VER\0", b"Q043"),
            (b"UAID", b"Chrome/70"),
        ]);
        for cut in 0..m.len() {
            // A prefix never claims to be whole.
            assert!(message_len(&m[..cut]).is_none_or(|n| n > cut), "cut {cut}");
        }
        assert_eq!(message_len(&m), Some(m.len()));
        let c = parse(&m).unwrap();
        assert_eq!(c.sni, Some(&b"www.example.com"[..]));
        assert_eq!(c.ua, Some(&b"Chrome/70"[..]));
        assert_eq!(
            c.tags().collect::<Vec<_>>(),
            [&b"PAD"[..], b"SNI", b"VER", b"UAID"]
        );
        assert_eq!(message_len(b"SHLO\x00\x00\x00\x00"), Some(0));
        assert!(parse(&m[..m.len() - 1]).is_none());
    }

    #[test]
    fn decreasing_offsets_are_malformed() {
        let mut m = chlo(&[(b"SNI\0", b"abc"), (b"UAID", b"de")]);
        // Second end offset (5) rewritten as 2: below the first (3).
        m[20] = 2;
        assert!(parse(&m).is_none());
    }

    #[test]
    fn stream_one_frames_only() {
        // STREAM, data length present, 2-byte offset, 1-byte stream ID 1.
        let frame = [0xa4, 0x01, 0x04, 0x00, 0x00, 0x03, b'a', b'b', b'c', 0, 0];
        assert_eq!(handshake_stream_data(&frame, false), Some(&b"abc"[..]));
        let mut other = frame;
        other[1] = 3;
        assert_eq!(handshake_stream_data(&other, false), None);
        // Before Q039: little-endian, here a 2-byte stream ID 1 and length 3.
        let old = [0xa1, 0x01, 0x00, 0x03, 0x00, b'a', b'b', b'c'];
        assert_eq!(handshake_stream_data(&old, true), Some(&b"abc"[..]));
        assert_eq!(handshake_stream_data(&old, false), None);
        // No data length: to the end of the packet.
        assert_eq!(
            handshake_stream_data(&[0x80, 0x01, b'x', b'y'], false),
            Some(&b"xy"[..])
        );
        assert_eq!(handshake_stream_data(&[0x40, 0x01], false), None);
    }
}
