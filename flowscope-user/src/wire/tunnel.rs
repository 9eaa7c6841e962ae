//! Encapsulation headers: MPLS, GRE, VXLAN, Geneve, GTP-U and Teredo.

use super::WireError;

/// One MPLS label stack entry (RFC 3032).
#[derive(Debug, Clone, Copy)]
pub struct MplsLabel<'a> {
    hdr: &'a [u8; 4],
    payload: &'a [u8],
}

impl<'a> MplsLabel<'a> {
    /// Entry length.
    pub const HEADER_LEN: usize = 4;

    /// Checks that the entry is present.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`].
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, payload) = buf.split_first_chunk::<4>().ok_or(WireError::Truncated)?;
        Ok(Self { hdr, payload })
    }

    /// Label value (20 bits).
    pub fn label(&self) -> u32 {
        u32::from_be_bytes(*self.hdr) >> 12
    }

    /// Traffic class (3 bits).
    pub fn traffic_class(&self) -> u8 {
        (self.hdr[2] >> 1) & 0x07
    }

    /// Bottom-of-stack bit.
    pub fn bottom_of_stack(&self) -> bool {
        self.hdr[2] & 1 != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.hdr[3]
    }

    /// Bytes after the entry.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// A GRE header (RFC 2784 with the key and sequence fields of RFC 2890).
#[derive(Debug, Clone, Copy)]
pub struct GreHeader<'a> {
    hdr: &'a [u8; 4],
    /// Checksum, key and sequence words, as present.
    optional: &'a [u8],
    payload: &'a [u8],
}

const GRE_C: u8 = 0x80;
const GRE_R: u8 = 0x40;
const GRE_K: u8 = 0x20;
const GRE_S: u8 = 0x10;

impl<'a> GreHeader<'a> {
    /// Checks the version (0) and that every optional field the flags announce
    /// is present. RFC 1701 source routing (R bit) is not supported.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`], or [`WireError::Malformed`] for version ≠ 0 or routing.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, rest) = buf.split_first_chunk::<4>().ok_or(WireError::Truncated)?;
        if hdr[1] & 0x07 != 0 || hdr[0] & GRE_R != 0 {
            return Err(WireError::Malformed);
        }
        let words = usize::from(hdr[0] & GRE_C != 0)
            + usize::from(hdr[0] & GRE_K != 0)
            + usize::from(hdr[0] & GRE_S != 0);
        let (optional, payload) = rest
            .split_at_checked(words * 4)
            .ok_or(WireError::Truncated)?;
        Ok(Self {
            hdr,
            optional,
            payload,
        })
    }

    /// Header length, optional fields included.
    pub fn header_len(&self) -> usize {
        4 + self.optional.len()
    }

    /// Protocol type of the payload (an EtherType; 0x6558 for bridged Ethernet).
    pub fn protocol(&self) -> u16 {
        u16::from_be_bytes([self.hdr[2], self.hdr[3]])
    }

    /// The word at `index` among the optional fields.
    fn word(&self, index: usize) -> Option<u32> {
        let w = self.optional.get(index * 4..)?.first_chunk::<4>()?;
        Some(u32::from_be_bytes(*w))
    }

    /// The checksum, when the C bit is set.
    pub fn checksum(&self) -> Option<u16> {
        (self.hdr[0] & GRE_C != 0)
            .then(|| self.word(0).map(|w| (w >> 16) as u16))
            .flatten()
    }

    /// The key, when the K bit is set.
    pub fn key(&self) -> Option<u32> {
        let at = usize::from(self.hdr[0] & GRE_C != 0);
        (self.hdr[0] & GRE_K != 0).then(|| self.word(at)).flatten()
    }

    /// The sequence number, when the S bit is set.
    pub fn sequence(&self) -> Option<u32> {
        let at = usize::from(self.hdr[0] & GRE_C != 0) + usize::from(self.hdr[0] & GRE_K != 0);
        (self.hdr[0] & GRE_S != 0).then(|| self.word(at)).flatten()
    }

    /// Bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// A VXLAN header (RFC 7348), followed by an Ethernet frame.
#[derive(Debug, Clone, Copy)]
pub struct VxlanHeader<'a> {
    hdr: &'a [u8; 8],
    payload: &'a [u8],
}

impl<'a> VxlanHeader<'a> {
    /// Header length.
    pub const HEADER_LEN: usize = 8;

    /// Checks for 8 bytes with the I (valid VNI) flag set.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`], or [`WireError::Malformed`] without the I flag.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, payload) = buf.split_first_chunk::<8>().ok_or(WireError::Truncated)?;
        if hdr[0] & 0x08 == 0 {
            return Err(WireError::Malformed);
        }
        Ok(Self { hdr, payload })
    }

    /// VXLAN network identifier (24 bits).
    pub fn vni(&self) -> u32 {
        u32::from_be_bytes([0, self.hdr[4], self.hdr[5], self.hdr[6]])
    }

    /// The inner Ethernet frame.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// A Geneve header with its options (RFC 8926).
#[derive(Debug, Clone, Copy)]
pub struct GeneveHeader<'a> {
    hdr: &'a [u8; 8],
    options: &'a [u8],
    payload: &'a [u8],
}

impl<'a> GeneveHeader<'a> {
    /// Checks version 0 and that the options are present.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`], or [`WireError::Malformed`] for another version.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, rest) = buf.split_first_chunk::<8>().ok_or(WireError::Truncated)?;
        if hdr[0] >> 6 != 0 {
            return Err(WireError::Malformed);
        }
        let opt_len = usize::from(hdr[0] & 0x3F) * 4;
        let (options, payload) = rest.split_at_checked(opt_len).ok_or(WireError::Truncated)?;
        Ok(Self {
            hdr,
            options,
            payload,
        })
    }

    /// Header length, options included.
    pub fn header_len(&self) -> usize {
        8 + self.options.len()
    }

    /// Protocol type of the payload (0x6558 Ethernet, or an IP EtherType).
    pub fn protocol(&self) -> u16 {
        u16::from_be_bytes([self.hdr[2], self.hdr[3]])
    }

    /// Virtual network identifier (24 bits).
    pub fn vni(&self) -> u32 {
        u32::from_be_bytes([0, self.hdr[4], self.hdr[5], self.hdr[6]])
    }

    /// O bit: a control packet.
    pub fn is_oam(&self) -> bool {
        self.hdr[1] & 0x80 != 0
    }

    /// Option bytes.
    pub fn options(&self) -> &'a [u8] {
        self.options
    }

    /// The encapsulated packet.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// A GTP-U version 1 header with its optional fields and extension headers
/// (3GPP TS 29.281).
#[derive(Debug, Clone, Copy)]
pub struct GtpUHeader<'a> {
    hdr: &'a [u8; 8],
    header_len: usize,
    payload: &'a [u8],
}

/// GTP-U message type carrying a user packet.
pub const GTP_G_PDU: u8 = 0xFF;

impl<'a> GtpUHeader<'a> {
    /// Checks version 1 with PT set, the optional word when E, S or PN is set,
    /// and every extension header.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`], or [`WireError::Malformed`] for another
    /// version or an extension header of length 0.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let (hdr, _) = buf.split_first_chunk::<8>().ok_or(WireError::Truncated)?;
        if hdr[0] >> 5 != 1 || hdr[0] & 0x10 == 0 {
            return Err(WireError::Malformed);
        }
        let mut len = 8;
        if hdr[0] & 0x07 != 0 {
            let opt = buf.get(8..12).ok_or(WireError::Truncated)?;
            len = 12;
            let mut next = opt.get(3).copied().unwrap_or(0);
            // Each extension header: a length byte in 4-byte units, content,
            // and the next type in its last byte. Bounded by the buffer.
            while next != 0 {
                let units = usize::from(*buf.get(len).ok_or(WireError::Truncated)?);
                if units == 0 {
                    return Err(WireError::Malformed);
                }
                len += units * 4;
                next = *buf.get(len - 1).ok_or(WireError::Truncated)?;
            }
        }
        let rest = buf.get(len..).ok_or(WireError::Truncated)?;
        let declared = usize::from(u16::from_be_bytes([hdr[2], hdr[3]])) + 8;
        let payload = rest.get(..declared.saturating_sub(len)).unwrap_or(rest);
        Ok(Self {
            hdr,
            header_len: len,
            payload,
        })
    }

    /// Message type ([`GTP_G_PDU`] for user data).
    pub fn msg_type(&self) -> u8 {
        self.hdr[1]
    }

    /// Tunnel endpoint identifier.
    pub fn teid(&self) -> u32 {
        u32::from_be_bytes([self.hdr[4], self.hdr[5], self.hdr[6], self.hdr[7]])
    }

    /// Header length, optional word and extension headers included.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The encapsulated packet (bounded by the length field).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// A Teredo packet (RFC 4380): optional authentication and origin indication
/// headers, then an IPv6 packet.
#[derive(Debug, Clone, Copy)]
pub struct TeredoPacket<'a> {
    header_len: usize,
    ipv6: &'a [u8],
}

impl<'a> TeredoPacket<'a> {
    /// Skips the optional headers and checks that an IPv6 header (version 6,
    /// 40 bytes) follows.
    ///
    /// # Errors
    ///
    /// [`WireError::Truncated`] or [`WireError::Malformed`] (no IPv6 packet).
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let mut at = 0;
        if let Some([0, 1, id_len, au_len]) = buf.first_chunk::<4>().copied() {
            // Client identifier, authentication value, 8-byte nonce, confirmation byte.
            at = 4 + usize::from(id_len) + usize::from(au_len) + 9;
        }
        if let Some([0, 0]) = buf.get(at..).and_then(|b| b.first_chunk::<2>()) {
            at += 8;
        }
        let ipv6 = buf.get(at..).ok_or(WireError::Truncated)?;
        match ipv6.first() {
            Some(b) if b >> 4 == 6 && ipv6.len() >= 40 => Ok(Self {
                header_len: at,
                ipv6,
            }),
            Some(b) if b >> 4 == 6 => Err(WireError::Truncated),
            _ => Err(WireError::Malformed),
        }
    }

    /// Length of the optional headers before the IPv6 packet.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The IPv6 packet.
    pub fn payload(&self) -> &'a [u8] {
        self.ipv6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpls() {
        let b = [0x00, 0x01, 0x21, 0x40, 0x45];
        let m = MplsLabel::new_checked(&b).unwrap();
        assert_eq!(
            (m.label(), m.traffic_class(), m.bottom_of_stack(), m.ttl()),
            (18, 0, true, 64)
        );
        assert_eq!(m.payload(), &[0x45]);
    }

    #[test]
    fn gre_optional_fields() {
        let b = [
            0xB0, 0x00, 0x08, 0x00, 0x12, 0x34, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9, 0x45,
        ];
        let g = GreHeader::new_checked(&b).unwrap();
        assert_eq!((g.protocol(), g.header_len()), (0x0800, 16));
        assert_eq!(
            (g.checksum(), g.key(), g.sequence()),
            (Some(0x1234), Some(7), Some(9))
        );
        assert_eq!(g.payload(), &[0x45]);
        let k = GreHeader::new_checked(&[0x20, 0, 0x65, 0x58, 0, 0, 0, 5]).unwrap();
        assert_eq!(
            (k.checksum(), k.key(), k.sequence(), k.protocol()),
            (None, Some(5), None, 0x6558)
        );
        assert_eq!(
            GreHeader::new_checked(&b[..15]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            GreHeader::new_checked(&[0, 1, 8, 0]).err(),
            Some(WireError::Malformed),
            "version 1 (PPTP)"
        );
        assert_eq!(
            GreHeader::new_checked(&[0x40, 0, 8, 0]).err(),
            Some(WireError::Malformed),
            "routing"
        );
    }

    #[test]
    fn vxlan_and_geneve() {
        let v = VxlanHeader::new_checked(&[0x08, 0, 0, 0, 0, 0x01, 0x23, 0, 0xAA]).unwrap();
        assert_eq!((v.vni(), v.payload()), (0x123, &[0xAA][..]));
        assert_eq!(
            VxlanHeader::new_checked(&[0; 8]).err(),
            Some(WireError::Malformed)
        );
        let g = GeneveHeader::new_checked(&[0x01, 0x80, 0x65, 0x58, 0, 0, 9, 0, 1, 2, 3, 4, 0xBB])
            .unwrap();
        assert_eq!(
            (g.header_len(), g.protocol(), g.vni(), g.is_oam()),
            (12, 0x6558, 9, true)
        );
        assert_eq!((g.options(), g.payload()), (&[1, 2, 3, 4][..], &[0xBB][..]));
        assert_eq!(
            GeneveHeader::new_checked(&[0x01, 0, 0, 0, 0, 0, 0, 0, 1]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            GeneveHeader::new_checked(&[0x40, 0, 0, 0, 0, 0, 0, 0]).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn gtp_u_with_extension_header() {
        // E flag, one PDU session container (1 unit of 4 bytes), then the payload.
        let b = [
            0x34, 0xFF, 0, 9, 0, 0, 0, 42, 0, 0, 0, 0x85, 1, 0x10, 0x05, 0x00, 0x45, 0xEE,
        ];
        let g = GtpUHeader::new_checked(&b).unwrap();
        assert_eq!(
            (g.msg_type(), g.teid(), g.header_len()),
            (GTP_G_PDU, 42, 16)
        );
        assert_eq!(g.payload(), &[0x45], "bounded by the length field");
        assert_eq!(
            GtpUHeader::new_checked(&b[..15]).err(),
            Some(WireError::Truncated)
        );
        let mut zero = b;
        zero[12] = 0;
        assert_eq!(
            GtpUHeader::new_checked(&zero).err(),
            Some(WireError::Malformed)
        );
        let plain = GtpUHeader::new_checked(&[0x30, 0xFF, 0, 1, 0, 0, 0, 1, 0x60]).unwrap();
        assert_eq!((plain.header_len(), plain.payload()), (8, &[0x60][..]));
        assert_eq!(
            GtpUHeader::new_checked(&[0x50, 0xFF, 0, 0, 0, 0, 0, 0]).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn teredo_headers() {
        let mut ip6 = vec![0x60];
        ip6.resize(40, 0);
        assert_eq!(TeredoPacket::new_checked(&ip6).unwrap().header_len(), 0);
        let mut origin = vec![0, 0, 0x12, 0x34, 1, 2, 3, 4];
        origin.extend_from_slice(&ip6);
        assert_eq!(TeredoPacket::new_checked(&origin).unwrap().header_len(), 8);
        let mut auth = vec![0, 1, 2, 1, 0xA, 0xB, 0xC];
        auth.extend_from_slice(&[0; 9]);
        auth.extend_from_slice(&origin);
        let t = TeredoPacket::new_checked(&auth).unwrap();
        assert_eq!(t.header_len(), 16 + 8);
        assert_eq!(t.payload(), &ip6[..]);
        assert_eq!(
            TeredoPacket::new_checked(&ip6[..39]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            TeredoPacket::new_checked(&[0x45; 40]).err(),
            Some(WireError::Malformed)
        );
    }
}
