//! ICMP (RFC 792) and ICMPv6 (RFC 4443) headers: both start with type, code, checksum.

use super::WireError;

/// The first four bytes of an ICMP or ICMPv6 message and the rest.
#[derive(Debug, Clone, Copy)]
pub struct IcmpMessage<'a> {
    hdr: &'a [u8; 4],
    rest: &'a [u8],
}

impl<'a> IcmpMessage<'a> {
    /// Bytes checked by [`Self::new_checked`] (`frame.rs` rule 4).
    pub const HEADER_LEN: usize = 4;

    /// Checks for type, code and checksum.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`].
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, rest) = buf.split_first_chunk::<4>().ok_or(WireError::Truncated)?;
        Ok(Self { hdr, rest })
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.hdr[0]
    }

    /// Code.
    pub fn code(&self) -> u8 {
        self.hdr[1]
    }

    /// Checksum.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.hdr[2], self.hdr[3]])
    }

    /// Identifier and sequence number of an echo message, when present.
    pub fn echo_id_seq(&self) -> Option<(u16, u16)> {
        let r = self.rest.first_chunk::<4>()?;
        Some((
            u16::from_be_bytes([r[0], r[1]]),
            u16::from_be_bytes([r[2], r[3]]),
        ))
    }

    /// Bytes after the first four.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let b = [8, 0, 0xF7, 0xFF, 0, 1, 0, 2, 0xAA];
        let m = IcmpMessage::new_checked(&b).unwrap();
        assert_eq!((m.msg_type(), m.code(), m.checksum()), (8, 0, 0xF7FF));
        assert_eq!(m.echo_id_seq(), Some((1, 2)));
        assert_eq!(m.rest(), &[0, 1, 0, 2, 0xAA]);
        assert_eq!(
            IcmpMessage::new_checked(&b[..3]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            IcmpMessage::new_checked(&b[..6]).unwrap().echo_id_seq(),
            None
        );
    }
}
