//! IPv6 headers (RFC 8200) and the walk over their extension headers.

use super::WireError;
use flowscope_common::frame::{
    IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_ROUTING, MAX_IPV6_EXT_HEADERS,
};
use std::net::Ipv6Addr;

/// An IPv6 fixed header and its payload (extension headers included).
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<'a> {
    hdr: &'a [u8; 40],
    payload: &'a [u8],
}

impl<'a> Ipv6Packet<'a> {
    /// Fixed header length.
    pub const HEADER_LEN: usize = 40;

    /// Checks for 40 bytes and version 6 (`frame.rs` rule 3).
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] or [`WireError::Malformed`].
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, rest) = buf.split_first_chunk::<40>().ok_or(WireError::Truncated)?;
        if hdr[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        let len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
        // Payload length 0 is a jumbogram (RFC 2675): the rest of the buffer.
        let payload = if len == 0 {
            rest
        } else {
            rest.get(..len).unwrap_or(rest)
        };
        Ok(Self { hdr, payload })
    }

    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        (self.hdr[0] << 4) | (self.hdr[1] >> 4)
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        u32::from_be_bytes([0, self.hdr[1] & 0x0F, self.hdr[2], self.hdr[3]])
    }

    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        u16::from_be_bytes([self.hdr[4], self.hdr[5]])
    }

    /// Next header after the fixed header.
    pub fn next_header(&self) -> u8 {
        self.hdr[6]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.hdr[7]
    }

    /// Source address bytes.
    pub fn src_bytes(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.hdr[8..24]);
        a
    }

    /// Destination address bytes.
    pub fn dst_bytes(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.hdr[24..40]);
        a
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src_bytes())
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst_bytes())
    }

    /// Bytes after the fixed header, up to the payload length (or the buffer's end).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Walks the extension headers of the payload; see [`walk_extension_headers`].
    ///
    /// # Errors
    ///
    /// As [`walk_extension_headers`].
    pub fn upper_layer(&self) -> Result<Ipv6Upper, WireError> {
        walk_extension_headers(self.next_header(), self.payload)
    }
}

/// The IPv6 Fragment header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Fragment {
    /// Offset of the fragment's data in bytes.
    pub offset: u16,
    /// M flag: more fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// Where the upper-layer header of an IPv6 packet starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Upper {
    /// Protocol number after the extension headers.
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 payload.
    pub offset: usize,
    /// The Fragment header, when one was walked.
    pub fragment: Option<Ipv6Fragment>,
    /// Number of extension headers walked.
    pub ext_headers: u8,
}

impl Ipv6Upper {
    /// A Fragment header with a non-zero offset: no upper-layer header follows.
    pub fn is_nonfirst_fragment(&self) -> bool {
        self.fragment.is_some_and(|f| f.offset != 0)
    }
}

/// Walks extension headers as `frame.rs` rule 3 says: at most
/// [`MAX_IPV6_EXT_HEADERS`] of hop-by-hop, routing, destination options
/// (2 bytes, then `(len + 1) · 8` present) and Fragment (8 present). A
/// Fragment header with a non-zero offset ends the walk.
///
/// # Errors
///
/// [`WireError::Truncated`] for a header that does not fit,
/// [`WireError::Malformed`] for a chain still going after the limit.
#[inline]
pub fn walk_extension_headers(mut next: u8, payload: &[u8]) -> Result<Ipv6Upper, WireError> {
    let mut up = Ipv6Upper {
        protocol: next,
        offset: 0,
        fragment: None,
        ext_headers: 0,
    };
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let rest = payload.get(up.offset..).unwrap_or_default();
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let [nh, len] = *rest.first_chunk::<2>().ok_or(WireError::Truncated)?;
                let size = (usize::from(len) + 1) * 8;
                if rest.len() < size {
                    return Err(WireError::Truncated);
                }
                next = nh;
                up.offset += size;
            }
            IPPROTO_FRAGMENT => {
                let h = rest.first_chunk::<8>().ok_or(WireError::Truncated)?;
                let frag = Ipv6Fragment {
                    offset: u16::from_be_bytes([h[2], h[3]]) & 0xFFF8,
                    more: h[3] & 1 != 0,
                    ident: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                };
                next = h[0];
                up.offset += 8;
                up.fragment = Some(frag);
                if frag.offset != 0 {
                    up.ext_headers += 1;
                    up.protocol = next;
                    return Ok(up);
                }
            }
            _ => {
                up.protocol = next;
                return Ok(up);
            }
        }
        up.ext_headers += 1;
    }
    match next {
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_FRAGMENT => {
            Err(WireError::Malformed)
        }
        _ => {
            up.protocol = next;
            Ok(up)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x6A, 0xB1, 0x23, 0x45];
        h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        h.extend_from_slice(&[next, 64]);
        h.extend((1..=16).map(|i| i as u8));
        h.extend((17..=32).map(|i| i as u8));
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn fields() {
        let mut b = fixed(17, &[1, 2, 3]);
        b.push(0xEE); // beyond the payload length
        let p = Ipv6Packet::new_checked(&b).unwrap();
        assert_eq!(
            (p.traffic_class(), p.flow_label(), p.payload_len()),
            (0xAB, 0x12345, 3)
        );
        assert_eq!((p.next_header(), p.hop_limit()), (17, 64));
        assert_eq!(p.src_bytes()[0], 1);
        assert_eq!(p.dst_bytes()[15], 32);
        assert_eq!(p.payload(), &[1, 2, 3]);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..39]).err(),
            Some(WireError::Truncated)
        );
        b[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&b).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn chain_of_options_routing_and_first_fragment() {
        // hop-by-hop (8) → routing (len 1: 16) → fragment offset 0 → dstopts (8) → TCP
        let mut ext = vec![43, 0, 0, 0, 0, 0, 0, 0];
        ext.extend_from_slice(&[44, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[60, 0, 0x00, 0x01, 0xDE, 0xAD, 0xBE, 0xEF]);
        ext.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        let up = walk_extension_headers(0, &ext).unwrap();
        assert_eq!(up.protocol, 6);
        assert_eq!(up.offset, 40);
        assert_eq!(up.ext_headers, 4);
        assert_eq!(
            up.fragment,
            Some(Ipv6Fragment {
                offset: 0,
                more: true,
                ident: 0xDEAD_BEEF
            })
        );
        assert!(!up.is_nonfirst_fragment());
        // Truncated at each header boundary and inside each header.
        for cut in 0..ext.len() {
            assert_eq!(
                walk_extension_headers(0, &ext[..cut]).err(),
                Some(WireError::Truncated),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn nonfirst_fragment_ends_the_walk() {
        let ext = [60, 0, 0x05, 0x28, 0, 0, 0, 7]; // offset 0x528 & !7 = 1320
        let up = walk_extension_headers(44, &ext).unwrap();
        assert_eq!(up.protocol, 60, "the walk stops at the fragment header");
        assert_eq!(up.offset, 8);
        assert!(up.is_nonfirst_fragment());
        assert_eq!(up.fragment.unwrap().offset, 1320);
    }

    #[test]
    fn limit_of_six_headers() {
        let mut six = Vec::new();
        for _ in 0..5 {
            six.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
        }
        six.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(walk_extension_headers(60, &six).unwrap().protocol, 17);
        let mut seven = six.clone();
        seven[40] = 60;
        seven.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            walk_extension_headers(60, &seven).err(),
            Some(WireError::Malformed)
        );
    }
}
