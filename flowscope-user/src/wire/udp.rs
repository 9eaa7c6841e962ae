//! UDP headers (RFC 768).

use super::WireError;

/// A UDP header and its payload.
#[derive(Debug, Clone, Copy)]
pub struct UdpDatagram<'a> {
    hdr: &'a [u8; 8],
    payload: &'a [u8],
}

impl<'a> UdpDatagram<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 8;

    /// Checks for the 8-byte header. The payload ends at the length field when
    /// that is consistent (8 ≤ length ≤ bytes present), else at the buffer's end.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`].
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, rest) = buf.split_first_chunk::<8>().ok_or(WireError::Truncated)?;
        let len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
        let payload = len
            .checked_sub(8)
            .and_then(|n| rest.get(..n))
            .unwrap_or(rest);
        Ok(Self { hdr, payload })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes([self.hdr[0], self.hdr[1]])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes([self.hdr[2], self.hdr[3]])
    }

    /// Length field (header included).
    pub fn len(&self) -> u16 {
        u16::from_be_bytes([self.hdr[4], self.hdr[5]])
    }

    /// True when the length field says the datagram is just a header.
    pub fn is_empty(&self) -> bool {
        self.len() <= 8
    }

    /// Checksum (0 = none over IPv4).
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.hdr[6], self.hdr[7]])
    }

    /// The payload.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_length() {
        let b = [0, 53, 0x13, 0x88, 0, 10, 0xBE, 0xEF, 1, 2, 3];
        let u = UdpDatagram::new_checked(&b).unwrap();
        assert_eq!(
            (u.src_port(), u.dst_port(), u.len(), u.checksum()),
            (53, 5000, 10, 0xBEEF)
        );
        assert_eq!(u.payload(), &[1, 2]);
        let mut bad = b;
        bad[5] = 200; // longer than present: the rest of the buffer
        assert_eq!(
            UdpDatagram::new_checked(&bad).unwrap().payload(),
            &[1, 2, 3]
        );
        assert_eq!(
            UdpDatagram::new_checked(&b[..7]).err(),
            Some(WireError::Truncated)
        );
    }
}
