//! TCP headers (RFC 9293).

use super::WireError;

/// A TCP header, its options and its payload.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    hdr: &'a [u8; 20],
    options: &'a [u8],
    payload: &'a [u8],
}

impl<'a> TcpSegment<'a> {
    /// Length of the header without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// Checks for 20 bytes and a data offset ≥ 5 with that many words present
    /// (`frame.rs` rule 4).
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] or [`WireError::Malformed`] (data offset < 5).
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, rest) = buf.split_first_chunk::<20>().ok_or(WireError::Truncated)?;
        let words = usize::from(hdr[12] >> 4);
        if words < 5 {
            return Err(WireError::Malformed);
        }
        let options = rest.get(..words * 4 - 20).ok_or(WireError::Truncated)?;
        let payload = rest.get(words * 4 - 20..).unwrap_or_default();
        Ok(Self {
            hdr,
            options,
            payload,
        })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes([self.hdr[0], self.hdr[1]])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes([self.hdr[2], self.hdr[3]])
    }

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        u32::from_be_bytes([self.hdr[4], self.hdr[5], self.hdr[6], self.hdr[7]])
    }

    /// Acknowledgment number.
    pub fn ack(&self) -> u32 {
        u32::from_be_bytes([self.hdr[8], self.hdr[9], self.hdr[10], self.hdr[11]])
    }

    /// Header length in bytes (data offset · 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.hdr[12] >> 4) * 4
    }

    /// The flags byte (CWR … FIN).
    pub fn flags(&self) -> u8 {
        self.hdr[13]
    }

    /// Receive window (unscaled).
    pub fn window(&self) -> u16 {
        u16::from_be_bytes([self.hdr[14], self.hdr[15]])
    }

    /// Checksum.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.hdr[16], self.hdr[17]])
    }

    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        u16::from_be_bytes([self.hdr[18], self.hdr[19]])
    }

    /// Options bytes.
    pub fn options(&self) -> &'a [u8] {
        self.options
    }

    /// Bytes after the header (bounded by the IP payload the caller passed).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_rule_4() {
        let mut b = vec![
            0x04, 0xD2, 0x00, 0x50, 0, 0, 0x03, 0xE8, 0, 0, 0, 7, 0x60, 0x12, 0x20, 0, 0xAB, 0xCD,
            0, 1,
        ];
        b.extend_from_slice(&[2, 4, 5, 0xB4, b'h', b'i']);
        let t = TcpSegment::new_checked(&b).unwrap();
        assert_eq!(
            (t.src_port(), t.dst_port(), t.seq(), t.ack()),
            (1234, 80, 1000, 7)
        );
        assert_eq!(
            (
                t.header_len(),
                t.flags(),
                t.window(),
                t.checksum(),
                t.urgent()
            ),
            (24, 0x12, 0x2000, 0xABCD, 1)
        );
        assert_eq!(t.options(), &[2, 4, 5, 0xB4]);
        assert_eq!(t.payload(), b"hi");
        assert_eq!(
            TcpSegment::new_checked(&b[..19]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            TcpSegment::new_checked(&b[..23]).err(),
            Some(WireError::Truncated)
        );
        b[12] = 0x40;
        assert_eq!(
            TcpSegment::new_checked(&b).err(),
            Some(WireError::Malformed)
        );
    }
}
