//! Ethernet II frames and 802.1Q / 802.1ad VLAN tags.

use super::WireError;

/// An Ethernet II header and what follows it.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<'a> {
    hdr: &'a [u8; 14],
    payload: &'a [u8],
}

impl<'a> EthernetFrame<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 14;

    /// Checks that the 14-byte header is present.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] when it is not.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, payload) = buf.split_first_chunk::<14>().ok_or(WireError::Truncated)?;
        Ok(Self { hdr, payload })
    }

    /// Destination MAC address.
    pub fn dst(&self) -> [u8; 6] {
        let h = self.hdr;
        [h[0], h[1], h[2], h[3], h[4], h[5]]
    }

    /// Source MAC address.
    pub fn src(&self) -> [u8; 6] {
        let h = self.hdr;
        [h[6], h[7], h[8], h[9], h[10], h[11]]
    }

    /// EtherType (or 802.3 length when ≤ 1500).
    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.hdr[12], self.hdr[13]])
    }

    /// Bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// One 4-byte VLAN tag (the bytes after a 0x8100 or 0x88A8 EtherType).
#[derive(Debug, Clone, Copy)]
pub struct VlanTag<'a> {
    hdr: &'a [u8; 4],
    payload: &'a [u8],
}

impl<'a> VlanTag<'a> {
    /// Tag length.
    pub const HEADER_LEN: usize = 4;

    /// Checks that the 4-byte tag is present.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] when it is not.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, payload) = buf.split_first_chunk::<4>().ok_or(WireError::Truncated)?;
        Ok(Self { hdr, payload })
    }

    /// VLAN identifier (12 bits).
    pub fn vid(&self) -> u16 {
        u16::from_be_bytes([self.hdr[0], self.hdr[1]]) & 0x0FFF
    }

    /// Priority code point (3 bits).
    pub fn pcp(&self) -> u8 {
        self.hdr[0] >> 5
    }

    /// Drop eligible indicator.
    pub fn dei(&self) -> bool {
        self.hdr[0] & 0x10 != 0
    }

    /// EtherType of what follows the tag.
    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.hdr[2], self.hdr[3]])
    }

    /// Bytes after the tag.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let mut f = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0x00];
        f.extend_from_slice(&[0xB0, 0x64, 0x08, 0x00, 0xAA]);
        let e = EthernetFrame::new_checked(&f).unwrap();
        assert_eq!(e.dst(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(e.src(), [7, 8, 9, 10, 11, 12]);
        assert_eq!(e.ethertype(), 0x8100);
        let v = VlanTag::new_checked(e.payload()).unwrap();
        assert_eq!(
            (v.pcp(), v.dei(), v.vid(), v.ethertype()),
            (5, true, 100, 0x0800)
        );
        assert_eq!(v.payload(), &[0xAA]);
        assert_eq!(
            EthernetFrame::new_checked(&f[..13]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            VlanTag::new_checked(&f[14..17]).err(),
            Some(WireError::Truncated)
        );
    }
}
