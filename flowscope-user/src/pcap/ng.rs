//! The pcapng format: blocks of a section header, interface descriptions and
//! packets (<https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html>).
//!
//! Understood blocks: Section Header (either byte order; a new one resets the
//! interfaces), Interface Description (link type, snap length, `if_tsresol`,
//! `if_tsoffset`), Enhanced Packet, Simple Packet and the obsolete Packet
//! block. Every other block is skipped and counted.

use super::buffer::StreamBuf;
use super::{
    Endian, MAX_BLOCK_BYTES, MAX_INTERFACES, MAX_PACKET_BYTES, PcapError, ReaderStats, Record,
    link_type_from_pcap,
};
use crate::view::{LinkType, Timestamp};
use std::io::Read;
use std::ops::Range;

/// Section Header Block type (a palindrome, the same in both byte orders).
pub(super) const SHB_TYPE: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];
const IDB_TYPE: u32 = 1;
const OPB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;
/// Byte-order magic as written by a little-endian writer.
const BOM_LE: [u8; 4] = [0x4D, 0x3C, 0x2B, 0x1A];
/// Byte-order magic as written by a big-endian writer.
const BOM_BE: [u8; 4] = [0x1A, 0x2B, 0x3C, 0x4D];
/// Smallest block: type, length, trailing length.
const MIN_BLOCK_BYTES: usize = 12;
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// Resolution of an interface's timestamps (`if_tsresol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsResol {
    /// Units of 10^-n seconds.
    Pow10(u8),
    /// Units of 2^-n seconds.
    Pow2(u8),
}

impl TsResol {
    fn from_option(v: u8) -> Self {
        if v & 0x80 == 0 {
            Self::Pow10(v)
        } else {
            Self::Pow2(v & 0x7F)
        }
    }

    /// `units` converted to nanoseconds, saturating.
    #[inline]
    fn to_ns(self, units: u64) -> u64 {
        /// 10⁰ to 10⁹: a table, not a power computed for every packet.
        const POW10: [u64; 10] = [
            1,
            10,
            100,
            1_000,
            10_000,
            100_000,
            1_000_000,
            10_000_000,
            100_000_000,
            1_000_000_000,
        ];
        match self {
            Self::Pow10(n) if n <= 9 => units.saturating_mul(POW10[usize::from(9 - n)]),
            _ => self.to_ns_finer(units),
        }
    }

    /// [`to_ns`](Self::to_ns) for resolutions finer than a nanosecond or
    /// in powers of two: rare, kept out of the per-packet path.
    #[cold]
    fn to_ns_finer(self, units: u64) -> u64 {
        let wide = u128::from(units) * 1_000_000_000;
        let ns = match self {
            Self::Pow10(n) => 10u128.checked_pow(u32::from(n)).map_or(0, |d| wide / d),
            Self::Pow2(n) => wide >> n,
        };
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// One interface of the current section.
#[derive(Debug, Clone, Copy)]
struct Interface {
    raw_link: u16,
    link: Option<LinkType>,
    /// 0 = no limit.
    snaplen: u32,
    resol: TsResol,
    /// `if_tsoffset` (seconds added to every timestamp) in nanoseconds.
    offset_ns: i64,
}

/// State of the current section.
#[derive(Debug)]
pub(super) struct Section {
    endian: Endian,
    interfaces: Vec<Interface>,
    /// Timestamp of the last packet, given to Simple Packet Blocks (which have none).
    last_ts: Timestamp,
}

/// Reads a Section Header Block at the current position.
pub(super) fn read_shb<R: Read>(src: &mut StreamBuf<R>) -> Result<Section, PcapError> {
    let mut sec = Section {
        endian: Endian::Little,
        interfaces: Vec::new(),
        last_ts: Timestamp::default(),
    };
    let offset = src.offset();
    let have = src
        .fill_to(MIN_BLOCK_BYTES)
        .map_err(|source| PcapError::Io { offset, source })?;
    let Some(h) = src.available().first_chunk::<MIN_BLOCK_BYTES>() else {
        return Err(PcapError::TruncatedHeader {
            offset,
            needed: MIN_BLOCK_BYTES,
            available: have,
        });
    };
    sec.endian = match [h[8], h[9], h[10], h[11]] {
        BOM_LE => Endian::Little,
        BOM_BE => Endian::Big,
        bom => {
            return Err(PcapError::BadMagic {
                offset: offset + 8,
                magic: u32::from_be_bytes(bom),
            });
        }
    };
    let len = block_len(src, sec.endian)?;
    let block = src.available().get(..len).unwrap_or_default();
    let major = sec.endian.u16_at(block, 12);
    let minor = sec.endian.u16_at(block, 14);
    match (major, minor) {
        (Some(1), Some(_)) => {}
        (Some(major), Some(minor)) => {
            return Err(PcapError::UnsupportedVersion {
                offset,
                major,
                minor,
            });
        }
        _ => {
            return Err(PcapError::BadBlock {
                offset,
                reason: "section header shorter than its fixed fields",
            });
        }
    }
    src.consume(len);
    Ok(sec)
}

/// Validates the length of the block at the current position, buffers the
/// whole block and checks its trailing length copy.
fn block_len<R: Read>(src: &mut StreamBuf<R>, endian: Endian) -> Result<usize, PcapError> {
    let offset = src.offset();
    let io = |source| PcapError::Io { offset, source };
    let have = src.fill_to(8).map_err(io)?;
    let Some(len) = endian.u32_at(src.available(), 4) else {
        return Err(PcapError::TruncatedHeader {
            offset,
            needed: 8,
            available: have,
        });
    };
    if len > MAX_BLOCK_BYTES {
        return Err(PcapError::RecordTooLong {
            offset,
            len: len.into(),
            max: MAX_BLOCK_BYTES.into(),
        });
    }
    let len = len as usize;
    if len < MIN_BLOCK_BYTES || !len.is_multiple_of(4) {
        return Err(PcapError::BadBlock {
            offset,
            reason: "block length below 12 or not a multiple of 4",
        });
    }
    let have = src.fill_to(len).map_err(io)?;
    if have < len {
        return Err(PcapError::TruncatedPacket {
            offset,
            needed: len,
            available: have,
        });
    }
    let trailer = endian.u32_at(src.available(), len - 4);
    if trailer != Some(len as u32) {
        return Err(PcapError::BadBlock {
            offset,
            reason: "trailing block length differs from the leading one",
        });
    }
    Ok(len)
}

/// Reads blocks until a packet block; `Ok(None)` at a clean end of file.
#[inline]
pub(super) fn next_record<R: Read>(
    src: &mut StreamBuf<R>,
    sec: &mut Section,
    stats: &mut ReaderStats,
) -> Result<Option<Record>, PcapError> {
    loop {
        let offset = src.offset();
        let have = src
            .fill_to(8)
            .map_err(|source| PcapError::Io { offset, source })?;
        if have == 0 {
            return Ok(None);
        }
        src.prefetch_ahead();
        if let Some(r) = enhanced_packet(src.available(), sec) {
            return Ok(Some(r));
        }
        if src.available().first_chunk::<4>() == Some(&SHB_TYPE) {
            *sec = read_shb(src)?;
            continue;
        }
        let len = block_len(src, sec.endian)?;
        let block = src.available().get(..len).unwrap_or_default();
        let e = sec.endian;
        let kind = e.u32_at(block, 0).unwrap_or_default();
        let record = match kind {
            IDB_TYPE => {
                if sec.interfaces.len() >= MAX_INTERFACES {
                    return Err(PcapError::TooManyInterfaces {
                        offset,
                        max: MAX_INTERFACES,
                    });
                }
                sec.interfaces.push(parse_idb(block, e, offset)?);
                None
            }
            EPB_TYPE => Some(packet_block(block, sec, offset, 4)?),
            OPB_TYPE => Some(packet_block(block, sec, offset, 2)?),
            SPB_TYPE => Some(simple_packet_block(block, sec, offset)?),
            _ => {
                stats.skipped_blocks += 1;
                None
            }
        };
        match record {
            Some(r) => return Ok(Some(r)),
            None => src.consume(len),
        }
    }
}

fn parse_idb(block: &[u8], e: Endian, offset: u64) -> Result<Interface, PcapError> {
    let short = PcapError::BadBlock {
        offset,
        reason: "interface description shorter than its fixed fields",
    };
    let (Some(raw_link), Some(snaplen)) = (e.u16_at(block, 8), e.u32_at(block, 12)) else {
        return Err(short);
    };
    let mut iface = Interface {
        raw_link,
        link: link_type_from_pcap(raw_link),
        snaplen,
        resol: TsResol::Pow10(6),
        offset_ns: 0,
    };
    let end = block.len() - 4;
    let mut at = 16;
    while at + 4 <= end {
        let (Some(code), Some(olen)) = (e.u16_at(block, at), e.u16_at(block, at + 2)) else {
            break;
        };
        let value = at + 4..at + 4 + usize::from(olen);
        if value.end > end {
            return Err(PcapError::BadBlock {
                offset,
                reason: "option runs past the end of its block",
            });
        }
        match code {
            OPT_END => break,
            OPT_IF_TSRESOL if olen >= 1 => {
                iface.resol = TsResol::from_option(block.get(value.start).copied().unwrap_or(6));
            }
            OPT_IF_TSOFFSET if olen >= 8 => {
                let seconds = e.u64_at(block, value.start).unwrap_or(0) as i64;
                iface.offset_ns = seconds.saturating_mul(1_000_000_000);
            }
            _ => {}
        }
        at = value.start + usize::from(olen).next_multiple_of(4);
    }
    Ok(iface)
}

fn interface(sec: &Section, id: u32, offset: u64) -> Result<Interface, PcapError> {
    // A match, not `ok_or`: that builds (and drops) the error value for
    // every packet.
    match sec.interfaces.get(id as usize) {
        Some(iface) => Ok(*iface),
        None => Err(PcapError::UnknownInterface {
            offset,
            interface: id,
            known: sec.interfaces.len(),
        }),
    }
}

/// The common case read at once: an Enhanced Packet Block wholly in the
/// buffer, its lengths consistent, of a known interface. `None` leaves the
/// block to the general path ([`next_record`]), which reads every other
/// block and names what is wrong with a bad one.
#[inline]
pub(super) fn enhanced_packet(avail: &[u8], sec: &mut Section) -> Option<Record> {
    match sec.endian {
        Endian::Little => enhanced_packet_in::<false>(avail, sec),
        Endian::Big => enhanced_packet_in::<true>(avail, sec),
    }
}

/// [`enhanced_packet`] for a section of one byte order (`BIG`), so that
/// each word is one load rather than a load and a choice.
#[inline(always)]
fn enhanced_packet_in<const BIG: bool>(avail: &[u8], sec: &mut Section) -> Option<Record> {
    let h = avail.first_chunk::<28>()?;
    let word = |at: usize| {
        let w = u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        if BIG { w.swap_bytes() } else { w }
    };
    let (len, caplen) = (word(4), word(20));
    if word(0) != EPB_TYPE
        || len > MAX_BLOCK_BYTES
        || !len.is_multiple_of(4)
        || caplen > MAX_PACKET_BYTES
        || 28 + caplen + 4 > len
    {
        return None;
    }
    let len = len as usize;
    if sec.endian.u32_at(avail, len.checked_sub(4)?)? != len as u32 {
        return None;
    }
    let iface = *sec.interfaces.get(word(8) as usize)?;
    Some(packet_record(
        sec,
        &iface,
        [word(12), word(16)],
        28..28 + caplen as usize,
        len,
        word(24),
    ))
}

/// A packet block's record, its timestamp (`[high, low]` units of the
/// interface's resolution) now the section's last.
#[inline]
fn packet_record(
    sec: &mut Section,
    iface: &Interface,
    [ts_hi, ts_lo]: [u32; 2],
    data: Range<usize>,
    consume: usize,
    orig_len: u32,
) -> Record {
    let units = (u64::from(ts_hi) << 32) | u64::from(ts_lo);
    let ns = iface
        .resol
        .to_ns(units)
        .saturating_add_signed(iface.offset_ns);
    sec.last_ts = Timestamp(ns);
    Record {
        data,
        consume,
        timestamp: sec.last_ts,
        link: iface.link,
        raw_link: iface.raw_link,
        orig_len,
    }
}

/// Enhanced Packet Block (`id_bytes` 4) or obsolete Packet Block (2): the
/// same layout apart from the width of the interface ID.
fn packet_block(
    block: &[u8],
    sec: &mut Section,
    offset: u64,
    id_bytes: usize,
) -> Result<Record, PcapError> {
    let e = sec.endian;
    let id = if id_bytes == 4 {
        e.u32_at(block, 8)
    } else {
        e.u16_at(block, 8).map(u32::from)
    };
    let fields = (
        id,
        e.u32_at(block, 12),
        e.u32_at(block, 16),
        e.u32_at(block, 20),
        e.u32_at(block, 24),
    );
    let (Some(id), Some(ts_hi), Some(ts_lo), Some(caplen), Some(orig_len)) = fields else {
        return Err(PcapError::BadBlock {
            offset,
            reason: "packet block shorter than its fixed fields",
        });
    };
    if caplen > MAX_PACKET_BYTES {
        return Err(PcapError::RecordTooLong {
            offset,
            len: caplen.into(),
            max: MAX_PACKET_BYTES.into(),
        });
    }
    let data = 28..28 + caplen as usize;
    if data.end > block.len() - 4 {
        return Err(PcapError::BadBlock {
            offset,
            reason: "captured length runs past the end of its block",
        });
    }
    let iface = interface(sec, id, offset)?;
    Ok(packet_record(
        sec,
        &iface,
        [ts_hi, ts_lo],
        data,
        block.len(),
        orig_len,
    ))
}

/// Simple Packet Block: interface 0, no timestamp (the previous packet's is
/// used), captured length = min(original length, snap length, block body).
fn simple_packet_block(block: &[u8], sec: &Section, offset: u64) -> Result<Record, PcapError> {
    let Some(orig_len) = sec.endian.u32_at(block, 8) else {
        return Err(PcapError::BadBlock {
            offset,
            reason: "simple packet block shorter than its fixed fields",
        });
    };
    let iface = interface(sec, 0, offset)?;
    let room = block.len().saturating_sub(16);
    let mut caplen = room.min(orig_len as usize);
    if iface.snaplen != 0 {
        caplen = caplen.min(iface.snaplen as usize);
    }
    Ok(Record {
        data: 12..12 + caplen,
        consume: block.len(),
        timestamp: sec.last_ts,
        link: iface.link,
        raw_link: iface.raw_link,
        orig_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(TsResol::from_option(6).to_ns(1_500_000), 1_500_000_000);
        assert_eq!(TsResol::from_option(9).to_ns(42), 42);
        assert_eq!(TsResol::from_option(12).to_ns(5_000), 5);
        // 2^-10 s units: 1024 units = 1 s.
        assert_eq!(TsResol::from_option(0x80 | 10).to_ns(1024), 1_000_000_000);
        assert_eq!(
            TsResol::from_option(0).to_ns(u64::MAX),
            u64::MAX,
            "saturates"
        );
        assert_eq!(
            TsResol::from_option(100).to_ns(u64::MAX),
            0,
            "absurd resolution"
        );
    }
}
