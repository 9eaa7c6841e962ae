//! Builds one Ethernet frame: IPv4 or IPv6, UDP or TCP, with correct lengths
//! and IP, UDP and TCP checksums, padded with a payload to a requested length.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum;

/// Ethernet header length (no VLAN tag).
pub const ETH_LEN: usize = 14;
/// Largest frame built (without FCS): a 1500-byte MTU plus the Ethernet header.
pub const MAX_FRAME_LEN: usize = 1514;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const UDP_LEN: usize = 8;
const TCP_LEN: usize = 20;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const TTL: u8 = 64;
/// TCP flags of every generated segment: PSH | ACK (mid-stream data).
const TCP_FLAGS_PSH_ACK: u8 = 0x18;
const TCP_WINDOW: u16 = 65535;

/// Transport protocol of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP (IP protocol 17).
    Udp,
    /// TCP (IP protocol 6).
    Tcp,
}

impl Transport {
    /// IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Transport::Udp => 17,
            Transport::Tcp => 6,
        }
    }

    const fn header_len(self) -> usize {
        match self {
            Transport::Udp => UDP_LEN,
            Transport::Tcp => TCP_LEN,
        }
    }
}

/// Source and destination addresses of one frame, of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpPair {
    /// IPv4 source and destination.
    V4(Ipv4Addr, Ipv4Addr),
    /// IPv6 source and destination.
    V6(Ipv6Addr, Ipv6Addr),
}

impl IpPair {
    /// The same pair seen from the other side.
    pub const fn reversed(self) -> IpPair {
        match self {
            IpPair::V4(s, d) => IpPair::V4(d, s),
            IpPair::V6(s, d) => IpPair::V6(d, s),
        }
    }

    const fn header_len(self) -> usize {
        match self {
            IpPair::V4(..) => IPV4_LEN,
            IpPair::V6(..) => IPV6_LEN,
        }
    }
}

/// Everything that varies between generated frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    /// Ethernet source address.
    pub src_mac: [u8; 6],
    /// Ethernet destination address.
    pub dst_mac: [u8; 6],
    /// IP addresses.
    pub ips: IpPair,
    /// Transport protocol.
    pub transport: Transport,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// TCP sequence number (ignored for UDP).
    pub tcp_seq: u32,
    /// TCP acknowledgement number (ignored for UDP).
    pub tcp_ack: u32,
}

impl FrameSpec {
    /// Length of the Ethernet, IP and transport headers: the shortest frame.
    pub const fn header_len(&self) -> usize {
        headers_len(self.ips, self.transport)
    }
}

/// Length of the Ethernet, IP and transport headers of a frame with these
/// addresses and transport.
pub const fn headers_len(ips: IpPair, transport: Transport) -> usize {
    ETH_LEN + ips.header_len() + transport.header_len()
}

/// Why a frame could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The requested length is below the headers' length.
    TooShort {
        /// Requested frame length.
        len: usize,
        /// Length of the headers.
        min: usize,
    },
    /// The requested length exceeds [`MAX_FRAME_LEN`] or the buffer.
    TooLong {
        /// Requested frame length.
        len: usize,
        /// Largest length possible here.
        max: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooShort { len, min } => {
                write!(
                    f,
                    "frame length {len} is below the {min} bytes of its headers"
                )
            }
            FrameError::TooLong { len, max } => {
                write!(f, "frame length {len} exceeds the maximum of {max} bytes")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Writes the frame `spec` of `len` bytes at the start of `buf`; the payload
/// after the headers is the byte pattern 0, 1, 2, ... (mod 256).
///
/// # Errors
/// [`FrameError`] when `len` is below [`FrameSpec::header_len`] or above
/// [`MAX_FRAME_LEN`] or `buf.len()`.
pub fn write(spec: &FrameSpec, len: usize, buf: &mut [u8]) -> Result<(), FrameError> {
    let min = spec.header_len();
    let max = MAX_FRAME_LEN.min(buf.len());
    if len < min {
        return Err(FrameError::TooShort { len, min });
    }
    if len > max {
        return Err(FrameError::TooLong { len, max });
    }
    let frame = &mut buf[..len];
    let (eth, rest) = frame.split_at_mut(ETH_LEN);
    eth[0..6].copy_from_slice(&spec.dst_mac);
    eth[6..12].copy_from_slice(&spec.src_mac);
    let (ip, l4) = rest.split_at_mut(spec.ips.header_len());
    // `len <= MAX_FRAME_LEN`, so every length below fits in u16.
    let l4_len = l4.len() as u16;
    let (hdr, payload) = l4.split_at_mut(spec.transport.header_len());
    for (i, b) in payload.iter_mut().enumerate() {
        *b = i as u8;
    }
    let proto = spec.transport.number();
    let pseudo = match spec.ips {
        IpPair::V4(src, dst) => {
            eth[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            write_ipv4(ip, src, dst, proto, IPV4_LEN as u16 + l4_len);
            let mut acc = checksum::add(0, &src.octets());
            acc = checksum::add(acc, &dst.octets());
            acc + u64::from(proto) + u64::from(l4_len)
        }
        IpPair::V6(src, dst) => {
            eth[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            write_ipv6(ip, src, dst, proto, l4_len);
            let mut acc = checksum::add(0, &src.octets());
            acc = checksum::add(acc, &dst.octets());
            acc + u64::from(proto) + u64::from(l4_len)
        }
    };
    hdr[0..2].copy_from_slice(&spec.src_port.to_be_bytes());
    hdr[2..4].copy_from_slice(&spec.dst_port.to_be_bytes());
    let csum_at = match spec.transport {
        Transport::Udp => {
            hdr[4..6].copy_from_slice(&l4_len.to_be_bytes());
            6
        }
        Transport::Tcp => {
            hdr[4..8].copy_from_slice(&spec.tcp_seq.to_be_bytes());
            hdr[8..12].copy_from_slice(&spec.tcp_ack.to_be_bytes());
            hdr[12] = ((TCP_LEN / 4) as u8) << 4;
            hdr[13] = TCP_FLAGS_PSH_ACK;
            hdr[14..16].copy_from_slice(&TCP_WINDOW.to_be_bytes());
            hdr[18..20].fill(0);
            16
        }
    };
    hdr[csum_at..csum_at + 2].fill(0);
    let mut csum = checksum::finish(checksum::add(checksum::add(pseudo, hdr), payload));
    if csum == 0 && spec.transport == Transport::Udp {
        // RFC 768: a computed zero is sent as all ones (zero means "none").
        csum = 0xffff;
    }
    hdr[csum_at..csum_at + 2].copy_from_slice(&csum.to_be_bytes());
    Ok(())
}

fn write_ipv4(ip: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, proto: u8, total_len: u16) {
    ip[0] = 0x45;
    ip[1] = 0;
    ip[2..4].copy_from_slice(&total_len.to_be_bytes());
    ip[4..6].fill(0); // identification: unused, DF is set
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
    ip[8] = TTL;
    ip[9] = proto;
    ip[10..12].fill(0);
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let csum = checksum::finish(checksum::add(0, ip));
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
}

fn write_ipv6(ip: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, proto: u8, payload_len: u16) {
    ip[0..4].copy_from_slice(&0x6000_0000u32.to_be_bytes());
    ip[4..6].copy_from_slice(&payload_len.to_be_bytes());
    ip[6] = proto;
    ip[7] = TTL;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

    fn udp4() -> FrameSpec {
        FrameSpec {
            src_mac: SRC_MAC,
            dst_mac: DST_MAC,
            ips: IpPair::V4(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 2)),
            transport: Transport::Udp,
            src_port: 1024,
            dst_port: 53,
            tcp_seq: 0,
            tcp_ack: 0,
        }
    }

    /// Hand-computed: IPv4 header of a 64-byte UDP frame (total length 50)
    /// from 192.0.2.1 to 198.51.100.2, DF, TTL 64. Words:
    /// 4500 0032 0000 4000 4011 (0000) c000 0201 c633 6402
    /// sum = 0x2_B179 → fold 0xB17B → checksum !0xB17B = 0x4E84.
    #[test]
    fn ipv4_header_matches_hand_computed_bytes() {
        let mut buf = [0u8; 64];
        write(&udp4(), 64, &mut buf).unwrap();
        let expected_ip: [u8; 20] = [
            0x45, 0x00, 0x00, 0x32, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x4e, 0x84, 192, 0, 2, 1,
            198, 51, 100, 2,
        ];
        assert_eq!(&buf[0..6], &DST_MAC);
        assert_eq!(&buf[6..12], &SRC_MAC);
        assert_eq!(&buf[12..14], &[0x08, 0x00]);
        assert_eq!(&buf[14..34], &expected_ip);
    }

    /// Hand-computed UDP header for the frame above: ports 1024 → 53, length
    /// 30 (8 + 22 payload bytes 0..=21).
    /// Pseudo-header: c000+0201+c633+6402+0011+001e = 0x1_EC65.
    /// UDP header (checksum 0): 0400+0035+001e = 0x0453.
    /// Payload words 0001 0203 .. 1415: sum over k = 0..=10 of
    /// (0x0202 * k + 0x0001) = 0x0202 * 55 + 11 = 0x6E79.
    /// Total 0x1_EC65 + 0x0453 + 0x6E79 = 0x2_5F31 → fold 0x5F33 →
    /// checksum 0xA0CC.
    #[test]
    fn udp_header_matches_hand_computed_bytes() {
        let mut buf = [0u8; 64];
        write(&udp4(), 64, &mut buf).unwrap();
        assert_eq!(
            &buf[34..42],
            &[0x04, 0x00, 0x00, 0x35, 0x00, 0x1e, 0xa0, 0xcc]
        );
        let payload: Vec<u8> = (0..22).collect();
        assert_eq!(&buf[42..64], payload.as_slice());
    }

    /// Verifies a transport checksum with an independent fold over 32-bit
    /// accumulations: the sum over pseudo-header and segment must be 0xffff.
    fn verify_l4(src: &[u8], dst: &[u8], proto: u8, segment: &[u8]) {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(src);
        bytes.extend_from_slice(dst);
        bytes.extend_from_slice(&[0, proto]);
        bytes.extend_from_slice(&(segment.len() as u16).to_be_bytes());
        bytes.extend_from_slice(segment);
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        let mut sum: u32 = 0;
        for pair in bytes.chunks(2) {
            sum = sum.wrapping_add(u32::from(pair[0]) << 8 | u32::from(pair[1]));
        }
        while sum > 0xffff {
            sum = (sum >> 16) + (sum & 0xffff);
        }
        assert_eq!(sum, 0xffff, "transport checksum does not verify");
    }

    #[test]
    fn tcp4_odd_length_checksum_verifies() {
        let spec = FrameSpec {
            transport: Transport::Tcp,
            tcp_seq: 0x0102_0304,
            tcp_ack: 0xa0b0_c0d0,
            ..udp4()
        };
        let mut buf = [0u8; 128];
        write(&spec, 99, &mut buf).unwrap();
        let ip = &buf[14..34];
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 99 - 14);
        assert_eq!(ip[9], 6);
        assert_eq!(&buf[38..42], &[1, 2, 3, 4]);
        assert_eq!(&buf[42..46], &[0xa0, 0xb0, 0xc0, 0xd0]);
        assert_eq!(buf[46], 0x50);
        verify_l4(&ip[12..16], &ip[16..20], 6, &buf[34..99]);
    }

    #[test]
    fn ipv6_udp_lengths_and_checksum() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
        let spec = FrameSpec {
            ips: IpPair::V6(a, b),
            ..udp4()
        };
        let mut buf = [0u8; 128];
        // Headers: 14 + 40 + 8 = 62; a 64-byte frame carries 2 payload bytes.
        write(&spec, 64, &mut buf).unwrap();
        assert_eq!(&buf[12..14], &[0x86, 0xdd]);
        assert_eq!(&buf[14..18], &[0x60, 0, 0, 0]);
        assert_eq!(&buf[18..20], &[0, 10]); // payload length: UDP 8 + 2
        assert_eq!(buf[20], 17);
        assert_eq!(&buf[22..38], &a.octets());
        assert_eq!(&buf[38..54], &b.octets());
        assert_eq!(&buf[58..60], &[0, 10]);
        verify_l4(&a.octets(), &b.octets(), 17, &buf[54..64]);
    }

    #[test]
    fn rejects_lengths_outside_headers_and_maximum() {
        let mut buf = [0u8; 2048];
        let tcp6 = FrameSpec {
            ips: IpPair::V6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST),
            transport: Transport::Tcp,
            ..udp4()
        };
        assert_eq!(tcp6.header_len(), 74);
        assert_eq!(
            write(&tcp6, 64, &mut buf),
            Err(FrameError::TooShort { len: 64, min: 74 })
        );
        assert_eq!(
            write(&udp4(), 1515, &mut buf),
            Err(FrameError::TooLong {
                len: 1515,
                max: 1514
            })
        );
        assert_eq!(
            write(&udp4(), 100, &mut buf[..80]),
            Err(FrameError::TooLong { len: 100, max: 80 })
        );
    }
}
