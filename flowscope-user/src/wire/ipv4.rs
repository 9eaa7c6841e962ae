//! IPv4 headers (RFC 791).

use super::WireError;
use std::net::Ipv4Addr;

/// An IPv4 header, its options and its payload.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<'a> {
    hdr: &'a [u8; 20],
    options: &'a [u8],
    payload: &'a [u8],
    /// The total length field exceeds the bytes present.
    short: bool,
}

impl<'a> Ipv4Packet<'a> {
    /// Length of the header without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// Checks the header as `frame.rs` rule 2 says: 20 bytes, version 4,
    /// IHL ≥ 5 with IHL·4 bytes present, total length ≥ IHL·4. A total length
    /// beyond the buffer is accepted: the payload is what is present.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] or [`WireError::Malformed`].
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, rest) = buf.split_first_chunk::<20>().ok_or(WireError::Truncated)?;
        if hdr[0] >> 4 != 4 || hdr[0] & 0x0F < 5 {
            return Err(WireError::Malformed);
        }
        let header_len = usize::from(hdr[0] & 0x0F) * 4;
        let options = rest.get(..header_len - 20).ok_or(WireError::Truncated)?;
        let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        if total < header_len {
            return Err(WireError::Malformed);
        }
        let after = rest.get(header_len - 20..).unwrap_or_default();
        let want = total - header_len;
        let payload = after.get(..want).unwrap_or(after);
        Ok(Self {
            hdr,
            options,
            payload,
            short: after.len() < want,
        })
    }

    /// Header length in bytes (IHL · 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.hdr[0] & 0x0F) * 4
    }

    /// DSCP and ECN byte.
    pub fn tos(&self) -> u8 {
        self.hdr[1]
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        u16::from_be_bytes([self.hdr[2], self.hdr[3]])
    }

    /// True when the total length exceeds the bytes present.
    pub fn is_truncated(&self) -> bool {
        self.short
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        u16::from_be_bytes([self.hdr[4], self.hdr[5]])
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.hdr[6] & 0x40 != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.hdr[6] & 0x20 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (u16::from_be_bytes([self.hdr[6], self.hdr[7]]) & 0x1FFF) << 3
    }

    /// MF set or offset non-zero.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.hdr[8]
    }

    /// Protocol number of the payload.
    pub fn protocol(&self) -> u8 {
        self.hdr[9]
    }

    /// Header checksum.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.hdr[10], self.hdr[11]])
    }

    /// Source address bytes.
    pub fn src_bytes(&self) -> [u8; 4] {
        [self.hdr[12], self.hdr[13], self.hdr[14], self.hdr[15]]
    }

    /// Destination address bytes.
    pub fn dst_bytes(&self) -> [u8; 4] {
        [self.hdr[16], self.hdr[17], self.hdr[18], self.hdr[19]]
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src_bytes())
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst_bytes())
    }

    /// Options bytes (empty when IHL is 5).
    pub fn options(&self) -> &'a [u8] {
        self.options
    }

    /// Payload: after the header, up to the total length or the end of the buffer.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(ihl: u8, total: u16, flags_off: u16) -> Vec<u8> {
        let mut h = vec![0x40 | ihl, 0x10];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0x12, 0x34]);
        h.extend_from_slice(&flags_off.to_be_bytes());
        h.extend_from_slice(&[64, 17, 0xAB, 0xCD, 10, 0, 0, 1, 192, 168, 1, 2]);
        h
    }

    #[test]
    fn fields_and_payload_bounds() {
        let mut b = hdr(6, 26, 0x2000 | 3);
        b.extend_from_slice(&[1, 2, 3, 4, 9, 9, 0xEE, 0xEE]); // option, 2 payload bytes, 2 padding
        let p = Ipv4Packet::new_checked(&b).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(
            (p.tos(), p.total_len(), p.ident(), p.ttl(), p.protocol()),
            (0x10, 26, 0x1234, 64, 17)
        );
        assert_eq!(
            (p.more_frags(), p.dont_frag(), p.frag_offset()),
            (true, false, 24)
        );
        assert!(p.is_fragment());
        assert_eq!(p.checksum(), 0xABCD);
        assert_eq!(p.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(192, 168, 1, 2));
        assert_eq!(p.options(), &[1, 2, 3, 4]);
        assert_eq!(
            p.payload(),
            &[9, 9],
            "padding after the total length is not payload"
        );
        assert!(!p.is_truncated());
    }

    #[test]
    fn rule_2_errors() {
        let ok = hdr(5, 20, 0x4000);
        assert!(Ipv4Packet::new_checked(&ok).is_ok());
        assert_eq!(
            Ipv4Packet::new_checked(&ok[..19]).err(),
            Some(WireError::Truncated)
        );
        let mut v6 = ok.clone();
        v6[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&v6).err(),
            Some(WireError::Malformed)
        );
        assert_eq!(
            Ipv4Packet::new_checked(&hdr(4, 20, 0)).err(),
            Some(WireError::Malformed)
        );
        assert_eq!(
            Ipv4Packet::new_checked(&hdr(6, 24, 0)).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            Ipv4Packet::new_checked(&hdr(5, 19, 0)).err(),
            Some(WireError::Malformed)
        );
        // Total length beyond the buffer: accepted, flagged.
        let b = hdr(5, 1500, 0);
        let long = Ipv4Packet::new_checked(&b).unwrap();
        assert!(long.is_truncated());
        assert!(long.payload().is_empty());
    }
}
