//! Frames built byte by byte for the kernel tests.

/// Ethernet header; `ethertype` after `tags` VLAN tags (TPID, VID).
pub fn eth(tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    for (tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// IPv4 header (checksum computed) with `options` (multiple of 4 bytes) and
/// `payload_len` bytes to follow; `frag` is the flags+offset field.
pub fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    options: &[u8],
    payload_len: usize,
    frag: u16,
) -> Vec<u8> {
    let ihl = 5 + options.len() / 4;
    let total = (ihl * 4 + payload_len) as u16;
    let mut h = vec![0x40 | ihl as u8, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(options);
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

/// IPv6 header with next header `nh` and `payload_len` bytes to follow.
pub fn ipv6(src: [u8; 16], dst: [u8; 16], nh: u8, payload_len: usize) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload_len as u16).to_be_bytes());
    h.extend_from_slice(&[nh, 64]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h
}

/// A generic IPv6 extension header (hop-by-hop, routing, dest options) of
/// `(len8 + 1) * 8` bytes.
pub fn ext(nh: u8, len8: u8) -> Vec<u8> {
    let mut h = vec![nh, len8];
    h.resize((usize::from(len8) + 1) * 8, 0);
    h
}

/// IPv6 Fragment header.
pub fn frag6(nh: u8, offset8: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![nh, 0];
    h.extend_from_slice(&((offset8 << 3) | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

/// TCP header (no options) with `flags`.
pub fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&1000u32.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes());
    h.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    h
}

/// UDP header for `payload_len` bytes of payload.
pub fn udp(sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h
}

/// ICMP / ICMPv6 echo request header.
pub fn icmp_echo(kind: u8) -> Vec<u8> {
    vec![kind, 0, 0, 0, 0, 1, 0, 1]
}

/// Concatenates parts into one frame.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Internet checksum.
pub fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// 192.0.2.x
pub fn v4a(x: u8) -> [u8; 4] {
    [192, 0, 2, x]
}

/// 198.51.100.x
pub fn v4b(x: u8) -> [u8; 4] {
    [198, 51, 100, x]
}

/// 2001:db8::x
pub fn v6(x: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0x20;
    a[1] = 0x01;
    a[2] = 0x0d;
    a[3] = 0xb8;
    a[15] = x;
    a
}

/// A xorshift64 sequence from `seed` (non-zero): cheap, reproducible
/// pseudo-random numbers for mutating frames.
pub fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// A pcap file (Ethernet, microsecond times) of `frames`, `step_us`
/// microseconds apart from 2023-11-14 22:13:20 UTC on.
pub fn pcap(frames: &[Vec<u8>], step_us: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for w in [0xa1b2_c3d4u32.to_le_bytes(), [2, 0, 4, 0]] {
        out.extend_from_slice(&w);
    }
    for w in [0u32, 0, 65_535, 1] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        let us = 1_700_000_000_000_000 + i as u64 * step_us;
        let len = f.len() as u32;
        for w in [(us / 1_000_000) as u32, (us % 1_000_000) as u32, len, len] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    out
}
