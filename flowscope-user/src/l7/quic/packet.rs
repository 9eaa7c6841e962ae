//! Packet headers: IETF long headers (RFC 8999 §5.1, RFC 9000 §17.2),
//! which may be coalesced in one datagram (RFC 9000 §12.2), Google QUIC's
//! Q046 long header and its older public header. Reading a header copies
//! nothing; every length is checked against the datagram.

use super::keys::MAX_CID_BYTES;
use super::version::{self, PacketType, Protected, Version};

/// A variable-length integer (RFC 9000 §16) at the start of `b`: its
/// value and encoded length.
pub(super) fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(..len)?;
    let value = bytes[1..]
        .iter()
        .fold(u64::from(first & 0x3f), |v, &x| v << 8 | u64::from(x));
    Some((value, len))
}

/// Reads a varint at `*at` and moves past it.
fn take_varint(d: &[u8], at: &mut usize) -> Option<u64> {
    let (v, n) = varint(d.get(*at..)?)?;
    *at += n;
    Some(v)
}

/// Reads a length-prefixed (one byte) connection ID at `*at`.
fn take_cid<'a>(d: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = usize::from(*d.get(*at)?);
    let cid = d.get(*at + 1..*at + 1 + len)?;
    *at += 1 + len;
    Some(cid)
}

/// The first packet of a datagram (or of what remains after coalesced
/// packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Packet<'a> {
    /// A protected long-header packet of a version read here.
    Protected {
        version: Protected,
        ty: PacketType,
        dcid: &'a [u8],
        scid: &'a [u8],
        /// Where the packet number starts (Initial, 0-RTT, Handshake).
        pn_offset: usize,
        /// Where the packet ends: the next coalesced packet starts here.
        end: usize,
    },
    /// A Google QUIC packet with clear-text frames (Q046 Initial, or a
    /// public header with a version): its frames start at `frames` and run
    /// to the end of the datagram.
    Clear { version: u32, frames: usize },
    /// Version Negotiation (version 0); the rest of the datagram.
    VersionNegotiation,
    /// A long header of a version not read here; its length is unknown.
    Unsupported(u32),
    /// A short header (1-RTT), or a gQUIC packet without a version: the
    /// handshake has moved on.
    Short,
    /// Zero bytes: padding after the coalesced packets.
    Padding,
}

/// Reads the header of the packet at the start of `d`; `None` when it is
/// truncated or its lengths do not fit.
pub(super) fn parse(d: &[u8]) -> Option<Packet<'_>> {
    let first = *d.first()?;
    if first & 0x80 == 0 {
        return Some(short_or_public(d, first));
    }
    let version = u32::from_be_bytes(d.get(1..5)?.try_into().ok()?);
    if version == 0 {
        return Some(Packet::VersionNegotiation);
    }
    match Version::of(version) {
        Some(Version::Protected(v)) => protected(d, first, v),
        Some(Version::GoogleLong(n)) => google_long(d, first, n),
        // A public-header version in a long header: not a packet of it.
        Some(Version::GooglePublic(_)) => None,
        // Every version seen in use sets the fixed bit (RFC 9000 §17.2).
        None if first & 0x40 == 0 => None,
        None => {
            // The invariant part must still hold (RFC 8999 §5.1).
            let mut at = 5;
            take_cid(d, &mut at)?;
            take_cid(d, &mut at)?;
            Some(Packet::Unsupported(version))
        }
    }
}

fn protected(d: &[u8], first: u8, version: Protected) -> Option<Packet<'_>> {
    let mut at = 5;
    let dcid = take_cid(d, &mut at)?;
    let scid = take_cid(d, &mut at)?;
    if dcid.len() > MAX_CID_BYTES || scid.len() > MAX_CID_BYTES {
        return None;
    }
    let ty = version.packet_type(first);
    if ty == PacketType::Retry {
        return Some(Packet::Protected {
            version,
            ty,
            dcid,
            scid,
            pn_offset: d.len(),
            end: d.len(),
        });
    }
    if ty == PacketType::Initial {
        let token = usize::try_from(take_varint(d, &mut at)?).ok()?;
        at = at.checked_add(token).filter(|&end| end <= d.len())?;
    }
    let length = usize::try_from(take_varint(d, &mut at)?).ok()?;
    let end = at.checked_add(length).filter(|&end| end <= d.len())?;
    Some(Packet::Protected {
        version,
        ty,
        dcid,
        scid,
        pn_offset: at,
        end,
    })
}

/// Q046: type bits as in QUIC v1, connection ID lengths in two nibbles
/// (0, or the nibble plus 3), the packet number, a 12-byte message
/// authentication hash, then frames.
fn google_long(d: &[u8], first: u8, version: u32) -> Option<Packet<'_>> {
    let lengths = *d.get(5)?;
    let cid = |nibble: u8| match nibble {
        0 => 0,
        n => usize::from(n) + 3,
    };
    let pn_len = usize::from(first & 0x03) + 1;
    let frames = 6 + cid(lengths >> 4) + cid(lengths & 0x0f) + pn_len + 12;
    if frames > d.len() {
        return None;
    }
    Some(if (first >> 4) & 0x03 == 0 {
        Packet::Clear { version, frames }
    } else {
        // 0-RTT and later Q046 packets are encrypted.
        Packet::Short
    })
}

/// gQUIC public header flags.
mod public {
    pub const VERSION: u8 = 0x01;
    /// An 8-byte connection ID (0x0c before Q033, 0x08 since).
    pub const CID: u8 = 0x08;
    pub const PN_LEN: u8 = 0x30;
}

/// A first byte without the long-header bit: zero padding, a gQUIC public
/// header carrying a version, or any other short header.
fn short_or_public(d: &[u8], first: u8) -> Packet<'_> {
    if first == 0 {
        return Packet::Padding;
    }
    // Client packets carry the 8-byte connection ID, then the version.
    if first & (public::VERSION | public::CID) == public::VERSION | public::CID
        && let Some(v) = d.get(9..13)
        && let Some(Version::GooglePublic(version)) =
            Version::of(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
    {
        let pn_len = match first & public::PN_LEN {
            0x00 => 1,
            0x10 => 2,
            0x20 => 4,
            _ => 6,
        };
        // The message authentication hash, and the private flags byte.
        let frames = 13 + pn_len + 12 + usize::from(version::has_private_flags(version));
        if frames <= d.len() {
            return Packet::Clear { version, frames };
        }
    }
    Packet::Short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_of_rfc9000_appendix_a1() {
        // RFC 9000 §A.1's sample encodings.
        let cases: [(&[u8], u64); 4] = [
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (bytes, value) in cases {
            assert_eq!(varint(bytes), Some((value, bytes.len())));
            assert_eq!(varint(&bytes[..bytes.len() - 1]), None);
        }
        // Two-byte encoding of a one-byte value (§A.1: 0x4025 is 37).
        assert_eq!(varint(&[0x40, 0x25]), Some((37, 2)));
    }

    #[test]
    fn lengths_that_do_not_fit_are_rejected() {
        // v1 Initial: DCID length 8 but 3 bytes follow.
        assert_eq!(parse(&[0xc0, 0, 0, 0, 1, 8, 1, 2, 3]), None);
        // Token length larger than the datagram.
        assert_eq!(parse(&[0xc0, 0, 0, 0, 1, 0, 0, 0x10, 0]), None);
        // Length past the datagram's end.
        assert_eq!(parse(&[0xc0, 0, 0, 0, 1, 0, 0, 0, 0x05, 1, 2]), None);
        // A 21-byte connection ID is not v1.
        let mut long_cid = vec![0xc0, 0, 0, 0, 1, 21];
        long_cid.extend([7; 21]);
        long_cid.extend([0, 0, 0]);
        assert_eq!(parse(&long_cid), None);
        assert_eq!(parse(&[]), None);
    }

    #[test]
    fn kinds() {
        assert_eq!(
            parse(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Some(Packet::VersionNegotiation)
        );
        assert_eq!(
            parse(&[0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 1, 9, 0]),
            Some(Packet::Unsupported(0x1a2a_3a4a))
        );
        assert_eq!(parse(&[0x40, 1, 2, 3]), Some(Packet::Short));
        assert_eq!(parse(&[0, 0, 0]), Some(Packet::Padding));
        // A v1 Handshake packet of 3 bytes after its Length, then more.
        let Some(Packet::Protected {
            ty, pn_offset, end, ..
        }) = parse(&[0xe0, 0, 0, 0, 1, 0, 0, 3, 9, 9, 9, 0xff])
        else {
            panic!("a handshake packet");
        };
        assert_eq!((ty, pn_offset, end), (PacketType::Handshake, 8, 11));
    }
}
