//! Frames built byte by byte for the extraction unit tests (documentation
//! addresses only).

/// Ethernet header with `tags` (TPID, TCI) before `ethertype`.
pub(crate) fn eth(tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// IPv4 192.0.2.1 → 198.51.100.9 with `options`, `frag` (flags and
/// offset) and `l4` after it.
pub(crate) fn ipv4(proto: u8, options: &[u8], frag: u16, l4: &[u8]) -> Vec<u8> {
    let ihl = 20 + options.len();
    let mut h = vec![0x40 | (ihl / 4) as u8, 0];
    h.extend_from_slice(&((ihl + l4.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 7]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0, 192, 0, 2, 1, 198, 51, 100, 9]);
    h.extend_from_slice(options);
    h.extend_from_slice(l4);
    h
}

/// IPv6 2001:db8::9 → 2001:db8::1 with next header `next` and `rest`
/// (extension headers, L4).
pub(crate) fn ipv6(next: u8, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0x01, 0x23, 0x45];
    h.extend_from_slice(&(rest.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    h.extend_from_slice(rest);
    h
}

/// An IPv6 extension header of `(len8 + 1) * 8` bytes.
pub(crate) fn ext(next: u8, len8: u8) -> Vec<u8> {
    let mut h = vec![next, len8];
    h.resize((usize::from(len8) + 1) * 8, 0);
    h
}

/// TCP from port 1234 to 80 with `options` (a multiple of 4 bytes), flags
/// PSH|ACK, 3 bytes of payload.
pub(crate) fn tcp_with(options: &[u8]) -> Vec<u8> {
    let offset = ((20 + options.len()) / 4) as u8;
    let mut t = vec![
        0x04,
        0xd2,
        0x00,
        0x50,
        0,
        0,
        1,
        0,
        0,
        0,
        2,
        0,
        offset << 4,
        0x18,
    ];
    t.extend_from_slice(&[0x10, 0x00, 0, 0, 0, 0]);
    t.extend_from_slice(options);
    t.extend_from_slice(b"abc");
    t
}

/// [`tcp_with`] without options.
pub(crate) fn tcp() -> Vec<u8> {
    tcp_with(&[])
}

/// UDP from port 5000 to 53, 3 bytes of payload.
pub(crate) fn udp() -> Vec<u8> {
    vec![0x13, 0x88, 0x00, 0x35, 0x00, 0x0b, 0, 0, b'x', b'y', b'z']
}
