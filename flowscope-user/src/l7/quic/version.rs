//! The QUIC versions read here and what differs between them: the Initial
//! salt (RFC 9001 §5.2 and the drafts' §5.2), the key labels and long-header
//! packet types (RFC 9369 §3.2–3.3), the CRYPTO frame type, what the
//! handshake carries, and how transport parameters are encoded; plus the
//! version's name as Suricata's EVE `quic.version` writes it.

use std::fmt::Write as _;

/// Initial salts, each from the document that defines it.
mod salt {
    /// draft-ietf-quic-tls-23 §5.2 (drafts 23–28; mvfst's draft-27 versions).
    pub const DRAFT_23: [u8; 20] = [
        0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63,
        0x65, 0xbe, 0xf9, 0xf5, 0x02,
    ];
    /// draft-ietf-quic-tls-29 §5.2 (drafts 29–32).
    pub const DRAFT_29: [u8; 20] = [
        0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11,
        0xe0, 0x43, 0x90, 0xa8, 0x99,
    ];
    /// RFC 9001 §5.2 (v1, drafts 33–34).
    pub const V1: [u8; 20] = [
        0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c,
        0xad, 0xcc, 0xbb, 0x7f, 0x0a,
    ];
    /// draft-ietf-quic-v2-00 §3.3.1 (version 0xff020000).
    pub const V2_DRAFT_00: [u8; 20] = [
        0xa7, 0x07, 0xc2, 0x03, 0xa5, 0x9b, 0x47, 0x18, 0x4a, 0x1d, 0x62, 0xca, 0x57, 0x04, 0x06,
        0xea, 0x7a, 0xe3, 0xe5, 0xd3,
    ];
    /// RFC 9369 §3.3.1.
    pub const V2: [u8; 20] = [
        0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d,
        0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
    ];
    /// Google QUIC T050, T051 and Q050: the salts Chromium used for those
    /// versions, as Wireshark's and nDPI's QUIC dissectors list them.
    pub const T050: [u8; 20] = [
        0x7f, 0xf5, 0x79, 0xe5, 0xac, 0xd0, 0x72, 0x91, 0x55, 0x80, 0x30, 0x4c, 0x43, 0xa2, 0x36,
        0x7c, 0x60, 0x48, 0x83, 0x10,
    ];
    pub const T051: [u8; 20] = [
        0x7a, 0x4e, 0xde, 0xf4, 0xe7, 0xcc, 0xee, 0x5f, 0xa4, 0x50, 0x6c, 0x19, 0x12, 0x4f, 0xc8,
        0xcc, 0xda, 0x6e, 0x03, 0x3d,
    ];
    pub const Q050: [u8; 20] = [
        0x50, 0x45, 0x74, 0xef, 0xd0, 0x66, 0xfe, 0x2f, 0x9d, 0x94, 0x5c, 0xfc, 0xdb, 0xd3, 0xa7,
        0xf0, 0xd3, 0xb5, 0x6b, 0x45,
    ];
}

/// Long-header packet types, as read from the two type bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PacketType {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

/// What the Initial packets' CRYPTO stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handshake {
    /// A TLS 1.3 ClientHello (IETF QUIC, Google T05x).
    Tls,
    /// A Google QUIC crypto handshake `CHLO` message (Q050).
    Chlo,
}

/// A version whose Initial packets are protected with keys derived from
/// the client's Destination Connection ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Protected {
    pub number: u32,
    pub salt: &'static [u8; 20],
    /// `quicv2 key`/`iv`/`hp` labels instead of `quic …`.
    pub v2_labels: bool,
    /// RFC 9369's long-header type numbering instead of RFC 9000's.
    pub v2_types: bool,
    /// The CRYPTO frame type: 0x06, or 0x08 for Google's T05x and Q050.
    pub crypto_frame: u8,
    pub handshake: Handshake,
    /// Transport parameters as varint id/length pairs (draft 27 and later,
    /// T051) instead of 16-bit ones behind a 16-bit total length.
    pub varint_parameters: bool,
}

impl Protected {
    /// The packet type of a long header's first byte.
    pub fn packet_type(&self, first: u8) -> PacketType {
        let bits = (first >> 4) & 0x03;
        let bits = if self.v2_types {
            // RFC 9369 §3.2: Retry 0b00, Initial 0b01, 0-RTT 0b10, Handshake 0b11.
            (bits + 3) & 0x03
        } else {
            bits
        };
        match bits {
            0 => PacketType::Initial,
            1 => PacketType::ZeroRtt,
            2 => PacketType::Handshake,
            _ => PacketType::Retry,
        }
    }
}

/// How a version's packets are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    /// IETF long headers with protected Initial packets.
    Protected(Protected),
    /// Google QUIC Q046: an IETF-style long header (connection ID lengths
    /// in two nibbles) over clear-text gQUIC frames.
    GoogleLong(u32),
    /// Google QUIC Q024 to Q043: the gQUIC public header, clear-text frames.
    GooglePublic(u32),
}

/// An IETF version with the given salt: v1 labels and packet types.
const fn ietf(number: u32, salt: &'static [u8; 20], varint_parameters: bool) -> Protected {
    Protected {
        number,
        salt,
        v2_labels: false,
        v2_types: false,
        crypto_frame: 0x06,
        handshake: Handshake::Tls,
        varint_parameters,
    }
}

/// A Google version with IETF long headers (T050, T051, Q050).
const fn google(number: u32, salt: &'static [u8; 20], handshake: Handshake) -> Protected {
    Protected {
        crypto_frame: 0x08,
        handshake,
        ..ietf(number, salt, number == Q_T051)
    }
}

/// RFC 9369 QUIC v2.
pub(super) const V2: u32 = 0x6b33_43cf;
const V2_DRAFT_00: u32 = 0xff02_0000;
const Q_T050: u32 = u32::from_be_bytes(*b"T050");
const Q_T051: u32 = u32::from_be_bytes(*b"T051");
const Q_Q050: u32 = u32::from_be_bytes(*b"Q050");
const Q_Q046: u32 = u32::from_be_bytes(*b"Q046");
const Q_Q024: u32 = u32::from_be_bytes(*b"Q024");
const Q_Q034: u32 = u32::from_be_bytes(*b"Q034");
const Q_Q039: u32 = u32::from_be_bytes(*b"Q039");
const Q_Q043: u32 = u32::from_be_bytes(*b"Q043");

/// gQUIC before Q034 puts a private flags byte before the frames.
pub(super) fn has_private_flags(number: u32) -> bool {
    number < Q_Q034
}

/// gQUIC before Q039 writes frame fields little-endian.
pub(super) fn little_endian_frames(number: u32) -> bool {
    number < Q_Q039
}

impl Version {
    /// The version of a long header's (or gQUIC public header's) version
    /// field, if it is one read here.
    pub fn of(number: u32) -> Option<Version> {
        let protected = match number {
            0x0000_0001 | 0xff00_0021..=0xff00_0022 => ietf(number, &salt::V1, true),
            0xff00_001d..=0xff00_0020 => ietf(number, &salt::DRAFT_29, true),
            // Draft 27 moved transport parameters to varints.
            0xff00_001b..=0xff00_001c => ietf(number, &salt::DRAFT_23, true),
            0xff00_0017..=0xff00_001a => ietf(number, &salt::DRAFT_23, false),
            // mvfst's draft-27 versions (Facebook).
            0xface_b002 | 0xface_b00e => ietf(number, &salt::DRAFT_23, true),
            V2_DRAFT_00 => Protected {
                v2_labels: true,
                ..ietf(number, &salt::V2_DRAFT_00, true)
            },
            V2 => Protected {
                v2_labels: true,
                v2_types: true,
                ..ietf(number, &salt::V2, true)
            },
            Q_T050 => google(number, &salt::T050, Handshake::Tls),
            Q_T051 => google(number, &salt::T051, Handshake::Tls),
            Q_Q050 => google(number, &salt::Q050, Handshake::Chlo),
            Q_Q046 => return Some(Version::GoogleLong(number)),
            Q_Q024..=Q_Q043 if number.to_be_bytes()[2..].iter().all(u8::is_ascii_digit) => {
                return Some(Version::GooglePublic(number));
            }
            _ => return None,
        };
        Some(Version::Protected(protected))
    }
}

/// Appends `quic.version` as Suricata writes it
/// (`rust/src/quic/parser.rs`): `Q039`…`Q046` by name, v2 as `v2`,
/// anything else as lowercase hex without leading zeros (`1`, `ff00001d`,
/// `54303531`).
pub(super) fn push_name(out: &mut String, number: u32) {
    match number {
        0x5130_3339 | 0x5130_3433..=0x5130_3436 => {
            out.extend(number.to_be_bytes().map(char::from));
        }
        V2 => out.push_str("v2"),
        // Writing to a `String` does not fail.
        n => {
            let _ = write!(out, "{n:x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_suricata_writes_them() {
        let name = |number| {
            let mut s = String::from("x");
            push_name(&mut s, number);
            s.split_off(1)
        };
        assert_eq!(name(1), "1");
        assert_eq!(name(0xff00_001d), "ff00001d");
        assert_eq!(name(Q_T051), "54303531");
        assert_eq!(name(Q_Q046), "Q046");
        assert_eq!(name(V2), "v2");
        assert_eq!(name(0x0a1a_2a3a), "a1a2a3a");
    }

    #[test]
    fn v2_renumbers_the_long_header_types() {
        let Some(Version::Protected(v1)) = Version::of(1) else {
            panic!("v1 is read");
        };
        let Some(Version::Protected(v2)) = Version::of(V2) else {
            panic!("v2 is read");
        };
        // RFC 9000 §17.2: Initial 0b00, 0-RTT 0b01, Handshake 0b10, Retry 0b11.
        let types = [
            PacketType::Initial,
            PacketType::ZeroRtt,
            PacketType::Handshake,
            PacketType::Retry,
        ];
        for (bits, ty) in types.iter().enumerate() {
            assert_eq!(v1.packet_type(0xc0 | (bits as u8) << 4), *ty);
        }
        // RFC 9369 §3.2.
        assert_eq!(v2.packet_type(0xd0), PacketType::Initial);
        assert_eq!(v2.packet_type(0xe0), PacketType::ZeroRtt);
        assert_eq!(v2.packet_type(0xf0), PacketType::Handshake);
        assert_eq!(v2.packet_type(0xc0), PacketType::Retry);
        assert!(Version::of(0x0a0a_0a0a).is_none());
        assert_eq!(
            Version::of(u32::from_be_bytes(*b"Q025")),
            Some(Version::GooglePublic(u32::from_be_bytes(*b"Q025")))
        );
        assert!(Version::of(u32::from_be_bytes(*b"Q03:")).is_none());
        assert!(Version::of(u32::from_be_bytes(*b"Q023")).is_none());
    }
}
