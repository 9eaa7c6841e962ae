//! Shared captures edited at test time (ports rewritten, segments dropped)
//! and written as nanosecond pcap files into a temporary directory, never
//! into the repository. Checksums are left as they were: neither flowscope
//! nor tshark (by default) verifies them.

use std::path::Path;

use flowscope::pcap::PcapReader;
use flowscope::view::LinkType;

/// The innermost TCP or UDP header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// Offset of the header in the frame.
    pub at: usize,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload bytes after the header.
    pub payload_len: usize,
}

impl Transport {
    /// Rewrites port `from` to `to` wherever it is (source or destination).
    pub fn rewrite_port(&self, frame: &mut [u8], from: u16, to: u16) {
        for (port, at) in [(self.src_port, self.at), (self.dst_port, self.at + 2)] {
            if port == from {
                frame[at..at + 2].copy_from_slice(&to.to_be_bytes());
            }
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The transport header of the IP packet at `at` (IPv4 or IPv6, through
/// GRE tunnels), ending at `end` or the frame's end.
fn in_ip(f: &[u8], at: usize) -> Option<Transport> {
    let (proto, l4, end) = match f.get(at)? >> 4 {
        4 => {
            let ihl = usize::from(f[at] & 0x0f) * 4;
            let end = at + usize::from(be16(f, at + 2)?);
            (*f.get(at + 9)?, at + ihl, end)
        }
        6 => (
            *f.get(at + 6)?,
            at + 40,
            at + 40 + usize::from(be16(f, at + 4)?),
        ),
        _ => return None,
    };
    let end = end.min(f.len());
    match proto {
        6 => {
            let header = usize::from(f.get(l4 + 12)? >> 4) * 4;
            Some(Transport {
                proto,
                at: l4,
                src_port: be16(f, l4)?,
                dst_port: be16(f, l4 + 2)?,
                payload_len: end.checked_sub(l4 + header)?,
            })
        }
        17 => Some(Transport {
            proto,
            at: l4,
            src_port: be16(f, l4)?,
            dst_port: be16(f, l4 + 2)?,
            payload_len: usize::from(be16(f, l4 + 4)?).checked_sub(8)?,
        }),
        47 => {
            // GRE (RFC 2784/2890): checksum, key and sequence words are optional.
            let flags = be16(f, l4)?;
            let words = [0x8000, 0x2000, 0x1000]
                .iter()
                .filter(|&&bit| flags & bit != 0)
                .count();
            matches!(be16(f, l4 + 2)?, 0x0800 | 0x86dd)
                .then(|| in_ip(f, l4 + 4 + 4 * words))
                .flatten()
        }
        _ => None,
    }
}

/// The innermost TCP or UDP header of an Ethernet or raw IP frame.
pub fn transport(link: LinkType, f: &[u8]) -> Option<Transport> {
    match link {
        LinkType::RawIp => in_ip(f, 0),
        LinkType::Ethernet => {
            let mut at = 12;
            while matches!(be16(f, at)?, 0x8100 | 0x88a8) {
                at += 4;
            }
            matches!(be16(f, at)?, 0x0800 | 0x86dd)
                .then(|| in_ip(f, at + 2))
                .flatten()
        }
        _ => None,
    }
}

/// Copies `src`'s frames into the pcap file `dst`; `edit` sees each frame
/// (its index, its bytes to change, its transport header) and returns false
/// to drop it. Returns how many frames were dropped.
pub fn edit_capture(
    src: &Path,
    dst: &Path,
    mut edit: impl FnMut(usize, &mut Vec<u8>, Option<Transport>) -> bool,
) -> usize {
    let mut reader = PcapReader::open(src).expect("open capture");
    let mut out = Vec::new();
    let mut link_type = None;
    let mut dropped = 0;
    let mut i = 0;
    while let Some(p) = reader.next_packet().expect("read packet") {
        let dlt: u32 = match p.link {
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            other => panic!("{}: link type {other:?} not supported here", src.display()),
        };
        assert_eq!(
            *link_type.get_or_insert(dlt),
            dlt,
            "one link type per capture"
        );
        let mut frame = p.frame.to_vec();
        let t = transport(p.link, &frame);
        let (ts, orig_len) = (p.timestamp.0, p.orig_len);
        if edit(i, &mut frame, t) {
            out.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((ts % 1_000_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&orig_len.to_le_bytes());
            out.extend_from_slice(&frame);
        } else {
            dropped += 1;
        }
        i += 1;
    }
    let mut file = Vec::with_capacity(24 + out.len());
    file.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    file.extend_from_slice(&2u16.to_le_bytes());
    file.extend_from_slice(&4u16.to_le_bytes());
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&262_144u32.to_le_bytes());
    file.extend_from_slice(&link_type.unwrap_or(1).to_le_bytes());
    file.extend(out);
    std::fs::write(dst, file).expect("write edited capture");
    dropped
}

/// `src` with every TCP and UDP port `from` rewritten to `to`.
pub fn rewrite_port(src: &Path, dst: &Path, from: u16, to: u16) {
    edit_capture(src, dst, |_, frame, t| {
        if let Some(t) = t {
            t.rewrite_port(frame, from, to);
        }
        true
    });
}
