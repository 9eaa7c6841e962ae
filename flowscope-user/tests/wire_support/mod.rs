//! Frame builders shared by the wire and extract tests: every header byte by
//! byte, nothing computed by the code under test.
#![allow(dead_code, reason = "each test crate uses a subset")]

pub const A4: [u8; 4] = [192, 0, 2, 1];
pub const B4: [u8; 4] = [198, 51, 100, 7];
pub const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const B6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xef,
];
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// Ethernet header (destination MAC_A, source MAC_B): each tag's (TPID, VID),
/// then the EtherType.
pub fn eth(tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut f = [MAC_A, MAC_B].concat();
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// IPv4 header: IHL 5 + `opt_words`, total length = header + `payload_len`,
/// ID 0xabcd.
pub fn ipv4(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    flags_off: u16,
    opt_words: u8,
    payload_len: u16,
) -> Vec<u8> {
    let ihl = 5 + opt_words;
    let total = u16::from(ihl) * 4 + payload_len;
    let mut h = vec![0x40 | ihl, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0xab, 0xcd]);
    h.extend_from_slice(&flags_off.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend(std::iter::repeat_n(1u8, usize::from(opt_words) * 4));
    h
}

/// IPv6 header with flow label 0x12345.
pub fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16], payload_len: u16) -> Vec<u8> {
    let mut h = vec![0x60, 0x01, 0x23, 0x45];
    h.extend_from_slice(&payload_len.to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h
}

/// 20-byte TCP header: seq 1, ack 0, SYN, window 0xffff.
pub fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    h
}

/// 8-byte UDP header announcing `payload_len` bytes of payload.
pub fn udp(sport: u16, dport: u16, payload_len: u16) -> Vec<u8> {
    let mut h = sport.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&(8 + payload_len).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h
}

/// Concatenation.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
