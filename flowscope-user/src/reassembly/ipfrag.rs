//! IPv4 and IPv6 fragment reassembly.
//!
//! [`FragmentReassembler::push`] takes an IP packet (from its IP header on)
//! and, when it completes a datagram, returns the whole datagram as one
//! contiguous IP packet: the first fragment's header (IPv6: its
//! unfragmentable part, the Fragment header removed) with the total length
//! set, the fragment fields cleared and, for IPv4, the header checksum
//! recomputed, so the normal extractor can process it. That packet lives in
//! a buffer the reassembler reuses; it is valid until the next call.
//!
//! Datagrams are keyed by (source, destination, protocol, identification);
//! IPv6 keys use protocol 0, since RFC 8200 §4.5 keys on the addresses and
//! identification only. Limits: 65 535 bytes per datagram, a cap on
//! datagrams in progress and on the bytes they hold, a timeout in packet
//! time (default 30 s). A fragment overlapping another of its datagram
//! drops the whole datagram (RFC 5722); an exact duplicate is ignored.
//! Every drop is counted by reason.
//!
//! The table is searched linearly: it holds few datagrams (fragments are
//! rare), and this keeps it free of hashing and allocation per packet.

use std::time::Duration;

use crate::view::Timestamp;

/// Largest IP datagram, header included.
const MAX_DATAGRAM_BYTES: usize = 65_535;

/// Most fragments one datagram may have.
const MAX_FRAGMENTS: usize = 128;

/// IPv6 fixed header length.
const IPV6_HEADER_BYTES: usize = 40;

/// IPv6 Fragment header next-header value.
const IPV6_FRAGMENT: u8 = 44;

/// Fragment reassembly settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragConfig {
    /// Datagrams in progress at once. Default 256.
    pub max_datagrams: usize,
    /// Bytes all datagrams in progress may hold. Default 4 MiB.
    pub max_memory_bytes: usize,
    /// A datagram not completed this long after its first fragment is
    /// dropped. Default 30 s.
    pub timeout: Duration,
}

impl Default for FragConfig {
    fn default() -> Self {
        Self {
            max_datagrams: 256,
            max_memory_bytes: 4 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why a datagram (or a fragment that would have started one) was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragDrop {
    /// A fragment overlapped another of the same datagram (RFC 5722).
    Overlap,
    /// The datagram was not completed within the timeout.
    Timeout,
    /// The datagram would exceed 65 535 bytes.
    TooLarge,
    /// A malformed fragment header or length (non-final fragment not a
    /// multiple of 8 bytes, bytes past the final fragment, two finals).
    Malformed,
    /// Too many fragments in one datagram.
    TooManyFragments,
    /// The table of datagrams in progress was full.
    TableFull,
    /// The memory cap was reached.
    MemoryFull,
}

impl FragDrop {
    /// Every reason, for summaries and metrics.
    pub const ALL: [FragDrop; 7] = [
        Self::Overlap,
        Self::Timeout,
        Self::TooLarge,
        Self::Malformed,
        Self::TooManyFragments,
        Self::TableFull,
        Self::MemoryFull,
    ];

    /// Static label (`reason` label).
    pub const fn label(self) -> &'static str {
        match self {
            Self::Overlap => "overlap",
            Self::Timeout => "timeout",
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::TooManyFragments => "too_many_fragments",
            Self::TableFull => "table_full",
            Self::MemoryFull => "memory_full",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What the reassembler counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragCounters {
    /// Fragments taken.
    pub fragments: u64,
    /// Exact duplicate fragments ignored.
    pub duplicates: u64,
    /// Datagrams completed.
    pub completed: u64,
    /// Datagrams dropped, by [`FragDrop`] reason (index = order of
    /// [`FragDrop::ALL`]).
    pub dropped: [u64; 7],
    /// Most bytes held at once.
    pub high_watermark_bytes: u64,
}

impl FragCounters {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: FragDrop) -> u64 {
        self.dropped[reason.index()]
    }
}

/// What [`FragmentReassembler::push`] did with a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum FragOutcome<'a> {
    /// Not a fragment (or not IPv4/IPv6): process the packet as it is.
    NotFragment,
    /// Held until the rest of its datagram arrives.
    Held,
    /// This fragment completed its datagram: the whole IP packet.
    Complete(&'a [u8]),
    /// The fragment, and its datagram if it had one, were dropped.
    Dropped(FragDrop),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    id: u32,
    v6: bool,
}

/// One fragment's place, parsed.
struct Fragment<'a> {
    key: Key,
    /// Offset of this fragment's data in the datagram's payload.
    offset: usize,
    more: bool,
    /// The header to rebuild from (IPv4 header, or IPv6 unfragmentable part).
    header: &'a [u8],
    /// IPv6: offset in `header` of the next-header byte that named the
    /// Fragment header; and the Fragment header's next-header value.
    v6_next: Option<(usize, u8)>,
    data: &'a [u8],
}

#[derive(Debug)]
struct Datagram {
    key: Key,
    first_seen: Timestamp,
    /// Header of the first fragment, once it arrived.
    header: Vec<u8>,
    v6_next: Option<(usize, u8)>,
    payload: Vec<u8>,
    /// `[start, end)` of each fragment received, unsorted.
    pieces: Vec<(usize, usize)>,
    /// Payload length, once the final fragment arrived.
    total: Option<usize>,
    has_first: bool,
}

impl Datagram {
    fn memory_bytes(&self) -> usize {
        self.header.capacity()
            + self.payload.capacity()
            + self.pieces.capacity() * std::mem::size_of::<(usize, usize)>()
    }
}

/// Reassembles IPv4 and IPv6 fragments. One per worker.
#[derive(Debug)]
pub struct FragmentReassembler {
    config: FragConfig,
    table: Vec<Datagram>,
    memory_bytes: usize,
    counters: FragCounters,
    out: Vec<u8>,
}

impl FragmentReassembler {
    /// An empty reassembler.
    pub fn new(config: FragConfig) -> Self {
        Self {
            config,
            table: Vec::new(),
            memory_bytes: 0,
            counters: FragCounters::default(),
            out: Vec::new(),
        }
    }

    /// What it counted.
    pub fn counters(&self) -> &FragCounters {
        &self.counters
    }

    /// Datagrams in progress.
    pub fn in_progress(&self) -> usize {
        self.table.len()
    }

    /// Bytes held by datagrams in progress.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    /// Drops datagrams whose first fragment is older than the timeout.
    pub fn expire(&mut self, now: Timestamp) {
        let timeout = self.config.timeout;
        let mut i = 0;
        while i < self.table.len() {
            if now.saturating_sub(self.table[i].first_seen) >= timeout {
                self.remove(i, Some(FragDrop::Timeout));
            } else {
                i += 1;
            }
        }
    }

    /// Drops every datagram in progress (end of capture), counted as
    /// timed out.
    pub fn expire_all(&mut self) {
        while !self.table.is_empty() {
            self.remove(self.table.len() - 1, Some(FragDrop::Timeout));
        }
    }

    /// Takes one IP packet, `ip` starting at its IP header, seen at `now`.
    /// Expires timed-out datagrams first.
    pub fn push(&mut self, ip: &[u8], now: Timestamp) -> FragOutcome<'_> {
        self.expire(now);
        let fragment = match ip.first().map(|b| b >> 4) {
            Some(4) => parse_v4(ip),
            Some(6) => parse_v6(ip),
            _ => return FragOutcome::NotFragment,
        };
        let fragment = match fragment {
            Ok(Some(f)) => f,
            Ok(None) => return FragOutcome::NotFragment,
            Err(reason) => return self.drop_fragment(reason),
        };
        self.counters.fragments += 1;
        let i = match self.table.iter().position(|d| d.key == fragment.key) {
            Some(i) => i,
            None if self.table.len() >= self.config.max_datagrams => {
                return self.drop_fragment(FragDrop::TableFull);
            }
            None => {
                self.table.push(Datagram {
                    key: fragment.key,
                    first_seen: now,
                    header: Vec::new(),
                    v6_next: None,
                    payload: Vec::new(),
                    pieces: Vec::new(),
                    total: None,
                    has_first: false,
                });
                self.table.len() - 1
            }
        };
        match self.add(i, &fragment) {
            Ok(true) => self.complete(i),
            Ok(false) => FragOutcome::Held,
            Err(reason) => {
                self.remove(i, Some(reason));
                FragOutcome::Dropped(reason)
            }
        }
    }

    /// Adds a fragment to datagram `i`; true when the datagram is complete.
    fn add(&mut self, i: usize, f: &Fragment<'_>) -> Result<bool, FragDrop> {
        let start = f.offset;
        let end = start + f.data.len();
        let d = &self.table[i];
        let header_len = if f.offset == 0 {
            f.header.len()
        } else {
            d.header.len()
        };
        if header_len + end > MAX_DATAGRAM_BYTES {
            return Err(FragDrop::TooLarge);
        }
        if f.more && !f.data.len().is_multiple_of(8) {
            return Err(FragDrop::Malformed);
        }
        if let Some(total) = d.total
            && (end > total || (!f.more && end != total))
        {
            return Err(FragDrop::Malformed);
        }
        if !f.more && d.pieces.iter().any(|&(_, e)| e > end) {
            return Err(FragDrop::Malformed);
        }
        if d.pieces.contains(&(start, end)) {
            self.counters.duplicates += 1;
            return Ok(false);
        }
        if d.pieces.iter().any(|&(s, e)| s < end && start < e) {
            return Err(FragDrop::Overlap);
        }
        if d.pieces.len() >= MAX_FRAGMENTS {
            return Err(FragDrop::TooManyFragments);
        }
        let before = d.memory_bytes();
        let grow_payload = end.saturating_sub(d.payload.capacity());
        let grow_header = if f.offset == 0 { f.header.len() } else { 0 };
        let grow_pieces = if d.pieces.len() == d.pieces.capacity() {
            d.pieces.capacity().max(4) * std::mem::size_of::<(usize, usize)>()
        } else {
            0
        };
        if self.memory_bytes + grow_payload + grow_header + grow_pieces
            > self.config.max_memory_bytes
        {
            return Err(FragDrop::MemoryFull);
        }
        let d = &mut self.table[i];
        if d.payload.len() < end {
            d.payload.reserve_exact(end - d.payload.len());
            d.payload.resize(end, 0);
        }
        d.payload[start..end].copy_from_slice(f.data);
        d.pieces.push((start, end));
        if f.offset == 0 {
            d.header.clear();
            d.header.extend_from_slice(f.header);
            d.v6_next = f.v6_next;
            d.has_first = true;
        }
        if !f.more {
            d.total = Some(end);
        }
        let after = d.memory_bytes();
        self.memory_bytes = self.memory_bytes + after - before.min(after);
        self.counters.high_watermark_bytes = self
            .counters
            .high_watermark_bytes
            .max(self.memory_bytes as u64);
        let received: usize = d.pieces.iter().map(|&(s, e)| e - s).sum();
        Ok(d.has_first && d.total == Some(received))
    }

    /// Builds datagram `i`'s packet into the output buffer and frees it.
    fn complete(&mut self, i: usize) -> FragOutcome<'_> {
        let d = self.remove(i, None);
        self.counters.completed += 1;
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(&d.header);
        match d.v6_next {
            Some((at, next)) => {
                if let Some(b) = out.get_mut(at) {
                    *b = next;
                }
                let plen = (d.header.len() - IPV6_HEADER_BYTES + d.payload.len()) as u16;
                out[4..6].copy_from_slice(&plen.to_be_bytes());
            }
            None => {
                let total = (d.header.len() + d.payload.len()) as u16;
                out[2..4].copy_from_slice(&total.to_be_bytes());
                out[6..8].copy_from_slice(&[0, 0]);
                out[10..12].copy_from_slice(&[0, 0]);
                let sum = checksum(out);
                out[10..12].copy_from_slice(&sum.to_be_bytes());
            }
        }
        out.extend_from_slice(&d.payload);
        FragOutcome::Complete(&self.out)
    }

    /// Removes datagram `i`, counting `reason` if it is a drop.
    fn remove(&mut self, i: usize, reason: Option<FragDrop>) -> Datagram {
        let d = self.table.swap_remove(i);
        self.memory_bytes -= d.memory_bytes().min(self.memory_bytes);
        if let Some(reason) = reason {
            self.counters.dropped[reason.index()] += 1;
        }
        d
    }

    fn drop_fragment(&mut self, reason: FragDrop) -> FragOutcome<'_> {
        self.counters.dropped[reason.index()] += 1;
        FragOutcome::Dropped(reason)
    }
}

/// The IPv4 header checksum of `header`.
fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// An IPv4 fragment, `None` if the packet is whole.
fn parse_v4(ip: &[u8]) -> Result<Option<Fragment<'_>>, FragDrop> {
    let ihl = usize::from(ip.first().ok_or(FragDrop::Malformed)? & 0x0f) * 4;
    let total = usize::from(be16(ip, 2).ok_or(FragDrop::Malformed)?);
    let frag = be16(ip, 6).ok_or(FragDrop::Malformed)?;
    let more = frag & 0x2000 != 0;
    let offset = usize::from(frag & 0x1fff) * 8;
    if !more && offset == 0 {
        return Ok(None);
    }
    if ihl < 20 || total < ihl || total > ip.len() {
        return Err(FragDrop::Malformed);
    }
    let mut src = [0; 16];
    let mut dst = [0; 16];
    src[..4].copy_from_slice(&ip[12..16]);
    dst[..4].copy_from_slice(&ip[16..20]);
    let key = Key {
        src,
        dst,
        proto: ip[9],
        id: u32::from(be16(ip, 4).unwrap_or(0)),
        v6: false,
    };
    Ok(Some(Fragment {
        key,
        offset,
        more,
        header: &ip[..ihl],
        v6_next: None,
        data: &ip[ihl..total],
    }))
}

/// An IPv6 fragment, `None` if the packet has no Fragment header (or
/// an atomic one: offset 0, no more fragments, RFC 6946).
fn parse_v6(ip: &[u8]) -> Result<Option<Fragment<'_>>, FragDrop> {
    let plen = usize::from(be16(ip, 4).ok_or(FragDrop::Malformed)?);
    let end = IPV6_HEADER_BYTES + plen;
    let ip = ip.get(..end).ok_or(FragDrop::Malformed)?;
    let mut next_at = 6;
    let mut next = ip[next_at];
    let mut at = IPV6_HEADER_BYTES;
    // Hop-by-hop, routing and destination options may precede it.
    while matches!(next, 0 | 43 | 60) {
        let len = (usize::from(*ip.get(at + 1).ok_or(FragDrop::Malformed)?) + 1) * 8;
        next_at = at;
        next = ip[at];
        at += len;
    }
    if next != IPV6_FRAGMENT {
        return Ok(None);
    }
    let fh = ip.get(at..at + 8).ok_or(FragDrop::Malformed)?;
    let field = u16::from_be_bytes([fh[2], fh[3]]);
    let offset = usize::from(field >> 3) * 8;
    let more = field & 1 != 0;
    if !more && offset == 0 {
        return Ok(None);
    }
    let mut src = [0; 16];
    let mut dst = [0; 16];
    src.copy_from_slice(&ip[8..24]);
    dst.copy_from_slice(&ip[24..40]);
    let id = u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]);
    Ok(Some(Fragment {
        key: Key {
            src,
            dst,
            proto: 0,
            id,
            v6: true,
        },
        offset,
        more,
        header: &ip[..at],
        v6_next: Some((next_at, fh[0])),
        data: &ip[at + 8..],
    }))
}
