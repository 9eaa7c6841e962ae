//! ICMP (RFC 792) and ICMPv6 (RFC 4443) headers: both start with type, code, checksum.
//!
//! Flows of these protocols are keyed as Zeek (`ICMP4_counterpart`,
//! `ICMP6_counterpart`) and the Community ID spec key them: the "source
//! port" is the message type; the "destination port" is the counterpart
//! type of a request/reply type (so an echo reply keys like its request
//! seen from the other side) and the code of a one-way type (an
//! unreachable stays apart from an echo exchange between the same hosts).
//! See [`IcmpMessage::flow_ports`].

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

    /// The flow key's ports of this message (ICMPv6 when `v6`), as Zeek and
    /// the Community ID spec key ICMP: its type, then the counterpart type
    /// of a request/reply type or the code of a one-way type.
    #[inline]
    pub fn flow_ports(&self, v6: bool) -> (u16, u16) {
        let t = self.msg_type();
        let other = counterpart(t, v6).unwrap_or(self.code());
        (u16::from(t), u16::from(other))
    }
}

/// The (type, code) each side of an ICMP (ICMPv6 when `v6`) flow sends,
/// initiator first, from its key's ports `(src_port, dst_port)` oriented
/// initiator first (see [`IcmpMessage::flow_ports`]). A request/reply
/// type's code is not in the key: it is 0, the only code RFC 792 and RFC
/// 4443 define for those types (Zeek makes the same assumption). A one-way
/// type's responder (possible only when type equals code) sends the same.
pub fn side_type_codes(src_port: u16, dst_port: u16, v6: bool) -> [(u8, u8); 2] {
    let (t, other) = (src_port as u8, dst_port as u8);
    match counterpart(t, v6) {
        Some(reply) => [(t, 0), (reply, 0)],
        None => [(t, other), (t, other)],
    }
}

/// The counterpart of a request/reply type of ICMP (`v6 == false`) or
/// ICMPv6; `None` for one-way types. The pairs Zeek and the Community ID
/// spec match.
pub fn counterpart(msg_type: u8, v6: bool) -> Option<u8> {
    let pairs: &[(u8, u8)] = if v6 {
        // Echo, multicast listener query/report, router and neighbour
        // solicitation/advertisement, node information, home agent address
        // discovery.
        &[
            (128, 129),
            (130, 131),
            (133, 134),
            (135, 136),
            (139, 140),
            (144, 145),
        ]
    } else {
        // Echo, router solicitation/advertisement, timestamp, information,
        // address mask.
        &[(8, 0), (10, 9), (13, 14), (15, 16), (17, 18)]
    };
    pairs.iter().find_map(|&(a, b)| {
        if msg_type == a {
            Some(b)
        } else if msg_type == b {
            Some(a)
        } else {
            None
        }
    })
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

    #[test]
    fn flow_ports_pair_requests_with_replies() {
        let ports = |b: [u8; 4], v6| IcmpMessage::new_checked(&b).unwrap().flow_ports(v6);
        // Echo request and reply: each other's ports reversed.
        assert_eq!(ports([8, 0, 0, 0], false), (8, 0));
        assert_eq!(ports([0, 0, 0, 0], false), (0, 8));
        assert_eq!(ports([13, 0, 0, 0], false), (13, 14));
        // Port unreachable: type and code.
        assert_eq!(ports([3, 3, 0, 0], false), (3, 3));
        assert_eq!(ports([11, 1, 0, 0], false), (11, 1));
        // ICMPv6 echo, neighbour discovery; 1 (unreachable) is one-way.
        assert_eq!(ports([129, 0, 0, 0], true), (129, 128));
        assert_eq!(ports([135, 0, 0, 0], true), (135, 136));
        assert_eq!(ports([1, 4, 0, 0], true), (1, 4));
        // ICMPv4 numbers mean nothing in ICMPv6 and the reverse.
        assert_eq!(ports([8, 0, 0, 0], true), (8, 0));
        assert_eq!(ports([128, 0, 0, 0], false), (128, 0));
    }
}
