//! Non-Ethernet link headers: Linux cooked capture v1/v2 and BSD loopback.
//!
//! Formats: <https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html>,
//! <https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html>,
//! <https://www.tcpdump.org/linktypes/LINKTYPE_NULL.html>.

use super::WireError;
use flowscope_common::frame::{ETH_P_IPV4, ETH_P_IPV6};

/// A Linux cooked capture v1 header (16 bytes).
#[derive(Debug, Clone, Copy)]
pub struct SllHeader<'a> {
    hdr: &'a [u8; 16],
    payload: &'a [u8],
}

impl<'a> SllHeader<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 16;

    /// Checks that the header is present.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`].
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, payload) = buf.split_first_chunk::<16>().ok_or(WireError::Truncated)?;
        Ok(Self { hdr, payload })
    }

    /// Packet type (0 to us, 4 sent by us, …).
    pub fn packet_type(&self) -> u16 {
        u16::from_be_bytes([self.hdr[0], self.hdr[1]])
    }

    /// ARPHRD_ type of the device.
    pub fn arphrd(&self) -> u16 {
        u16::from_be_bytes([self.hdr[2], self.hdr[3]])
    }

    /// Link-layer address (up to 8 bytes, as many as the length field says).
    pub fn addr(&self) -> &'a [u8] {
        let n = usize::from(u16::from_be_bytes([self.hdr[4], self.hdr[5]])).min(8);
        self.hdr.get(6..6 + n).unwrap_or_default()
    }

    /// Protocol: an EtherType for IP.
    pub fn protocol(&self) -> u16 {
        u16::from_be_bytes([self.hdr[14], self.hdr[15]])
    }

    /// Bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// A Linux cooked capture v2 header (20 bytes).
#[derive(Debug, Clone, Copy)]
pub struct Sll2Header<'a> {
    hdr: &'a [u8; 20],
    payload: &'a [u8],
}

impl<'a> Sll2Header<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 20;

    /// Checks that the header is present.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`].
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, payload) = buf.split_first_chunk::<20>().ok_or(WireError::Truncated)?;
        Ok(Self { hdr, payload })
    }

    /// Protocol: an EtherType for IP.
    pub fn protocol(&self) -> u16 {
        u16::from_be_bytes([self.hdr[0], self.hdr[1]])
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        u32::from_be_bytes([self.hdr[4], self.hdr[5], self.hdr[6], self.hdr[7]])
    }

    /// ARPHRD_ type of the device.
    pub fn arphrd(&self) -> u16 {
        u16::from_be_bytes([self.hdr[8], self.hdr[9]])
    }

    /// Packet type.
    pub fn packet_type(&self) -> u8 {
        self.hdr[10]
    }

    /// Link-layer address (up to 8 bytes).
    pub fn addr(&self) -> &'a [u8] {
        let n = usize::from(self.hdr[11]).min(8);
        self.hdr.get(12..12 + n).unwrap_or_default()
    }

    /// Bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// A BSD loopback header: a 4-byte address family in the capturing host's
/// byte order (link type 0) or big-endian (108); both are accepted.
#[derive(Debug, Clone, Copy)]
pub struct LoopbackHeader<'a> {
    hdr: &'a [u8; 4],
    payload: &'a [u8],
}

impl<'a> LoopbackHeader<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 4;

    /// Checks that the header is present.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`].
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, payload) = buf.split_first_chunk::<4>().ok_or(WireError::Truncated)?;
        Ok(Self { hdr, payload })
    }

    /// The address family; families are small numbers, so a value with its
    /// low bytes first was written little-endian.
    pub fn family(&self) -> u32 {
        if self.hdr[0] == 0 && self.hdr[1] == 0 {
            u32::from_be_bytes(*self.hdr)
        } else {
            u32::from_le_bytes(*self.hdr)
        }
    }

    /// The EtherType equivalent of the family: `AF_INET` (2) is IPv4;
    /// `AF_INET6` is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD) or 30 (macOS).
    pub fn ethertype(&self) -> Option<u16> {
        match self.family() {
            2 => Some(ETH_P_IPV4),
            10 | 24 | 28 | 30 => Some(ETH_P_IPV6),
            _ => None,
        }
    }

    /// Bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sll_fields() {
        let b = [0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xDD, 0x60];
        let h = SllHeader::new_checked(&b).unwrap();
        assert_eq!((h.packet_type(), h.arphrd(), h.protocol()), (4, 1, 0x86DD));
        assert_eq!(h.addr(), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(h.payload(), &[0x60]);
        assert_eq!(
            SllHeader::new_checked(&b[..15]).err(),
            Some(WireError::Truncated)
        );
    }

    #[test]
    fn sll2_fields() {
        let b = [
            8, 0, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x45,
        ];
        let h = Sll2Header::new_checked(&b).unwrap();
        assert_eq!(
            (h.protocol(), h.ifindex(), h.arphrd(), h.packet_type()),
            (0x0800, 3, 1, 4)
        );
        assert_eq!(h.addr(), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(h.payload(), &[0x45]);
        assert_eq!(
            Sll2Header::new_checked(&b[..19]).err(),
            Some(WireError::Truncated)
        );
    }

    #[test]
    fn loopback_families_in_both_orders() {
        for (b, want) in [
            ([2, 0, 0, 0], Some(ETH_P_IPV4)),
            ([0, 0, 0, 2], Some(ETH_P_IPV4)),
            ([30, 0, 0, 0], Some(ETH_P_IPV6)),
            ([0, 0, 0, 24], Some(ETH_P_IPV6)),
            ([0, 0, 0, 10], Some(ETH_P_IPV6)),
            ([28, 0, 0, 0], Some(ETH_P_IPV6)),
            ([7, 0, 0, 0], None),
        ] {
            assert_eq!(
                LoopbackHeader::new_checked(&b).unwrap().ethertype(),
                want,
                "{b:?}"
            );
        }
    }
}
