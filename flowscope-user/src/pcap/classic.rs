//! The classic pcap format: a 24-byte file header, then 16-byte record headers
//! (<https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html>).

use super::buffer::StreamBuf;
use super::{Endian, MAX_PACKET_BYTES, PcapError, Record, link_type_from_pcap};
use crate::view::Timestamp;
use std::io::Read;

/// Length of the file header.
const FILE_HEADER_BYTES: usize = 24;
/// Length of a record header.
const RECORD_HEADER_BYTES: usize = 16;

/// What the file header says about every record.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub(super) endian: Endian,
    /// The fraction field counts nanoseconds rather than microseconds.
    pub(super) nanos: bool,
    /// The header's link type (low 16 bits of the field; the rest holds FCS hints).
    pub(super) raw_link: u16,
}

/// Reads the file header; `endian` and `nanos` come from the magic number.
pub(super) fn read_header<R: Read>(
    src: &mut StreamBuf<R>,
    endian: Endian,
    nanos: bool,
) -> Result<Header, PcapError> {
    let offset = src.offset();
    let have = src
        .fill_to(FILE_HEADER_BYTES)
        .map_err(|source| PcapError::Io { offset, source })?;
    let Some(h) = src.available().first_chunk::<FILE_HEADER_BYTES>() else {
        return Err(PcapError::TruncatedHeader {
            offset,
            needed: FILE_HEADER_BYTES,
            available: have,
        });
    };
    // The snap length (bytes 16..20) limits nothing here: every record
    // gives its own captured length, and 0 means "no limit", as libpcap
    // and tshark read it.
    let raw_link = endian.u32([h[20], h[21], h[22], h[23]]) as u16;
    src.consume(FILE_HEADER_BYTES);
    Ok(Header {
        endian,
        nanos,
        raw_link,
    })
}

/// Reads the next record header and makes sure its data is buffered.
/// `Ok(None)` at a clean end of file.
#[inline]
pub(super) fn next_record<R: Read>(
    src: &mut StreamBuf<R>,
    hdr: &Header,
) -> Result<Option<Record>, PcapError> {
    let offset = src.offset();
    let io = |source| PcapError::Io { offset, source };
    let have = src.fill_to(RECORD_HEADER_BYTES).map_err(io)?;
    if have == 0 {
        return Ok(None);
    }
    src.prefetch_ahead();
    let Some(h) = src.available().first_chunk::<RECORD_HEADER_BYTES>() else {
        return Err(PcapError::TruncatedHeader {
            offset,
            needed: RECORD_HEADER_BYTES,
            available: have,
        });
    };
    let record = record(h, hdr).map_err(|incl_len| PcapError::RecordTooLong {
        offset,
        len: incl_len.into(),
        max: MAX_PACKET_BYTES.into(),
    })?;
    let total = record.consume;
    let have = src.fill_to(total).map_err(io)?;
    if have < total {
        return Err(PcapError::TruncatedPacket {
            offset,
            needed: total,
            available: have,
        });
    }
    Ok(Some(record))
}

/// The record whose header is `h`; `Err` with its captured length when
/// that is over [`MAX_PACKET_BYTES`].
#[inline]
fn record(h: &[u8; RECORD_HEADER_BYTES], hdr: &Header) -> Result<Record, u32> {
    let e = hdr.endian;
    let sec = u64::from(e.u32([h[0], h[1], h[2], h[3]]));
    let frac = u64::from(e.u32([h[4], h[5], h[6], h[7]]));
    let incl_len = e.u32([h[8], h[9], h[10], h[11]]);
    let orig_len = e.u32([h[12], h[13], h[14], h[15]]);
    if incl_len > MAX_PACKET_BYTES {
        return Err(incl_len);
    }
    let total = RECORD_HEADER_BYTES + incl_len as usize;
    let frac_ns = if hdr.nanos { frac } else { frac * 1_000 };
    Ok(Record {
        data: RECORD_HEADER_BYTES..total,
        consume: total,
        timestamp: Timestamp(sec.saturating_mul(1_000_000_000).saturating_add(frac_ns)),
        link: link_type_from_pcap(hdr.raw_link),
        raw_link: hdr.raw_link,
        orig_len,
    })
}

/// The record at the start of `avail` if it is wholly there (`None` for
/// anything [`next_record`] has to read or name as wrong).
#[inline]
pub(super) fn whole_record(avail: &[u8], hdr: &Header) -> Option<Record> {
    let h = avail.first_chunk::<RECORD_HEADER_BYTES>()?;
    record(h, hdr).ok().filter(|r| r.consume <= avail.len())
}
