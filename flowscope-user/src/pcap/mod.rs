//! Streaming pcap and pcapng readers.
//!
//! [`PcapReader`] reads from any [`std::io::Read`] (a file, stdin, a pipe)
//! through one reusable buffer: each [`PcapReader::next_packet`] returns a
//! [`PacketView`] borrowing that buffer, so reading allocates nothing per
//! packet. The format is detected from the first four bytes:
//!
//! - classic pcap, either byte order, microsecond (`0xA1B2C3D4`) or
//!   nanosecond (`0xA1B23C4D`) timestamps;
//! - pcapng, sections of either byte order (a new section resets the
//!   interfaces), one link type, snap length and timestamp resolution
//!   (`if_tsresol`, `if_tsoffset`) per interface; Enhanced, Simple and
//!   obsolete Packet blocks. Other blocks are skipped and counted. Simple
//!   Packet Blocks carry no timestamp: they get the previous packet's.
//!
//! Link types map to [`LinkType`]: 1 Ethernet; 101, 228, 229 and 12 raw IP;
//! 113 Linux SLL; 276 Linux SLL2; 0 and 108 loopback. Packets of any other
//! link type are **skipped and counted** in [`ReaderStats::skipped_link_type`]
//! (the last such type is kept for the message), so one odd interface in a
//! pcapng file does not stop the rest.
//!
//! ```no_run
//! # fn main() -> Result<(), flowscope::pcap::PcapError> {
//! let mut reader = flowscope::pcap::PcapReader::new(std::io::stdin().lock())?;
//! while let Some(packet) = reader.next_packet()? {
//!     println!("{} bytes at {:?}", packet.frame.len(), packet.timestamp);
//! }
//! # Ok(()) }
//! ```

mod buffer;
mod classic;
mod error;
#[cfg(target_os = "linux")]
mod mapped;
mod ng;

pub use buffer::Chunk;
pub use error::PcapError;

use crate::view::{LinkType, PacketView, Timestamp};
use buffer::StreamBuf;
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

/// Largest captured packet accepted (libpcap's largest snap length); a longer
/// record length is taken as corruption.
pub const MAX_PACKET_BYTES: u32 = 262_144;
/// Largest pcapng block accepted (libpcap's limit).
pub const MAX_BLOCK_BYTES: u32 = 16 * 1024 * 1024;
/// Most interfaces in one pcapng section.
pub const MAX_INTERFACES: usize = 65_536;

/// The container format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic pcap.
    Pcap {
        /// Timestamps in nanoseconds (magic `0xA1B23C4D`) rather than microseconds.
        nanosecond: bool,
    },
    /// pcapng.
    PcapNg,
}

/// What a reader has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Packets returned by [`PcapReader::next_packet`].
    pub packets: u64,
    /// Packets skipped because of an unsupported link type.
    pub skipped_link_type: u64,
    /// The link type of the last skipped packet.
    pub last_skipped_link_type: Option<u16>,
    /// pcapng blocks skipped as not describing packets or interfaces
    /// (statistics, name resolution, custom and unknown blocks).
    pub skipped_blocks: u64,
}

/// Maps a pcap/pcapng link type number to a [`LinkType`], `None` when unsupported.
pub fn link_type_from_pcap(link_type: u16) -> Option<LinkType> {
    match link_type {
        1 => Some(LinkType::Ethernet),
        12 | 101 | 228 | 229 => Some(LinkType::RawIp),
        113 => Some(LinkType::LinuxSll),
        276 => Some(LinkType::LinuxSll2),
        0 | 108 => Some(LinkType::Loopback),
        _ => None,
    }
}

/// Byte order of a file or section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Self::Little => u32::from_le_bytes(b),
            Self::Big => u32::from_be_bytes(b),
        }
    }

    fn u16_at(self, b: &[u8], at: usize) -> Option<u16> {
        let v = *b.get(at..)?.first_chunk::<2>()?;
        Some(match self {
            Self::Little => u16::from_le_bytes(v),
            Self::Big => u16::from_be_bytes(v),
        })
    }

    fn u32_at(self, b: &[u8], at: usize) -> Option<u32> {
        Some(self.u32(*b.get(at..)?.first_chunk::<4>()?))
    }

    fn u64_at(self, b: &[u8], at: usize) -> Option<u64> {
        let v = *b.get(at..)?.first_chunk::<8>()?;
        Some(match self {
            Self::Little => u64::from_le_bytes(v),
            Self::Big => u64::from_be_bytes(v),
        })
    }
}

/// One packet record found in the buffer, not yet consumed.
#[derive(Debug)]
struct Record {
    /// The captured bytes, relative to the record's first byte.
    data: Range<usize>,
    /// Length of the whole record or block.
    consume: usize,
    timestamp: Timestamp,
    link: Option<LinkType>,
    raw_link: u16,
    orig_len: u32,
}

#[derive(Debug)]
enum Format {
    Classic(classic::Header),
    Ng(ng::Section),
}

/// Where a packet lies in the reader's [`Chunk`], and what its record
/// says: a packet that outlives the next read, for another thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameRef {
    /// Offset of its first byte in the chunk.
    pub start: usize,
    /// Bytes captured.
    pub len: u32,
    /// Length on the wire.
    pub orig_len: u32,
    /// Capture time.
    pub timestamp: Timestamp,
    /// Link type.
    pub link: LinkType,
}

impl FrameRef {
    /// The packet as a view of the chunk's bytes (empty if they do not
    /// hold it: the chunk is not the one it was read from).
    #[inline]
    pub fn view<'a>(&self, chunk: &'a [u8]) -> PacketView<'a> {
        PacketView {
            frame: chunk
                .get(self.start..self.start + self.len as usize)
                .unwrap_or_default(),
            timestamp: self.timestamp,
            link: self.link,
            orig_len: self.orig_len,
            hint: None,
        }
    }
}

/// Reads the records `whole` finds one after the other at the start of
/// `avail` (each wholly there, of a link type flowscope reads) into `out`,
/// each at `base` plus its place in `avail`, until `out` is full or they
/// take half the prefetch distance (the next call prefetches on); returns
/// how many, and the bytes they take.
#[inline(always)]
fn packets_at_once(
    avail: &[u8],
    base: usize,
    out: &mut [FrameRef],
    mut whole: impl FnMut(&[u8]) -> Option<Record>,
) -> (usize, usize) {
    let (mut n, mut at) = (0, 0);
    while n < out.len() && at < buffer::PREFETCH_AHEAD / 2 {
        let Some(r) = avail.get(at..).and_then(&mut whole) else {
            break;
        };
        let (Some(link), Some(slot)) = (r.link, out.get_mut(n)) else {
            break;
        };
        *slot = FrameRef {
            start: base + at + r.data.start,
            len: r.data.len() as u32,
            orig_len: r.orig_len,
            timestamp: r.timestamp,
            link,
        };
        n += 1;
        at += r.consume;
    }
    (n, at)
}

/// A streaming reader of pcap and pcapng files.
#[derive(Debug)]
pub struct PcapReader<R> {
    src: StreamBuf<R>,
    format: Format,
    stats: ReaderStats,
}

impl PcapReader<File> {
    /// Opens the capture file at `path` (see [`from_file`](Self::from_file)).
    ///
    /// # Errors
    ///
    /// [`PcapError::Open`] when the file cannot be opened, otherwise as [`PcapReader::new`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PcapError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| PcapError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::from_file(file)
    }

    /// Reads an open file: mapped into memory when it is a regular file
    /// (Linux), so packets are never copied; read as a stream otherwise (a
    /// pipe, standard input from a pipe).
    ///
    /// # Errors
    ///
    /// As [`PcapReader::new`].
    pub fn from_file(file: File) -> Result<Self, PcapError> {
        #[cfg(target_os = "linux")]
        if let Ok(Some(map)) = mapped::MappedFile::map(&file) {
            return Self::with_buf(StreamBuf::mapped(map));
        }
        Self::new(file)
    }
}

impl<R: Read> PcapReader<R> {
    /// Reads the file header (pcap) or the first section header (pcapng).
    ///
    /// # Errors
    ///
    /// [`PcapError::BadMagic`] for any other format, a truncated or invalid
    /// header, or a read error.
    pub fn new(reader: R) -> Result<Self, PcapError> {
        Self::with_buf(StreamBuf::new(reader))
    }

    fn with_buf(mut src: StreamBuf<R>) -> Result<Self, PcapError> {
        let have = src
            .fill_to(4)
            .map_err(|source| PcapError::Io { offset: 0, source })?;
        let Some(&magic) = src.available().first_chunk::<4>() else {
            return Err(PcapError::TruncatedHeader {
                offset: 0,
                needed: 4,
                available: have,
            });
        };
        let format = match magic {
            [0xD4, 0xC3, 0xB2, 0xA1] => {
                Format::Classic(classic::read_header(&mut src, Endian::Little, false)?)
            }
            [0xA1, 0xB2, 0xC3, 0xD4] => {
                Format::Classic(classic::read_header(&mut src, Endian::Big, false)?)
            }
            [0x4D, 0x3C, 0xB2, 0xA1] => {
                Format::Classic(classic::read_header(&mut src, Endian::Little, true)?)
            }
            [0xA1, 0xB2, 0x3C, 0x4D] => {
                Format::Classic(classic::read_header(&mut src, Endian::Big, true)?)
            }
            ng::SHB_TYPE => Format::Ng(ng::read_shb(&mut src)?),
            other => {
                return Err(PcapError::BadMagic {
                    offset: 0,
                    magic: u32::from_be_bytes(other),
                });
            }
        };
        Ok(Self {
            src,
            format,
            stats: ReaderStats::default(),
        })
    }

    /// Makes a read interrupted by a signal (EINTR) return
    /// [`PcapError::Io`] ([`PcapError::is_interrupted`]) instead of being
    /// retried, so that the caller can stop reading a slow pipe when asked
    /// to.
    pub fn interruptible(mut self) -> Self {
        self.src.interruptible = true;
        self
    }

    /// The container format.
    pub fn format(&self) -> FileFormat {
        match &self.format {
            Format::Classic(h) => FileFormat::Pcap {
                nanosecond: h.nanos,
            },
            Format::Ng(_) => FileFormat::PcapNg,
        }
    }

    /// The link type of every packet of a classic pcap file (`None` for pcapng,
    /// where each interface has its own).
    pub fn pcap_link_type(&self) -> Option<u16> {
        match &self.format {
            Format::Classic(h) => Some(h.raw_link),
            Format::Ng(_) => None,
        }
    }

    /// Counters of what was read and skipped so far.
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// The next packet, borrowed from the reader's buffer until the next call;
    /// `Ok(None)` at the end of the file.
    ///
    /// # Errors
    ///
    /// A [`PcapError`] naming the byte offset of a truncated or corrupt
    /// record, or a read error. Stop reading after an error, except after
    /// an interrupted read of an [`interruptible`](Self::interruptible)
    /// reader: calling again goes on where it stopped.
    pub fn next_packet(&mut self) -> Result<Option<PacketView<'_>>, PcapError> {
        let Some(f) = self.next_frame()? else {
            return Ok(None);
        };
        Ok(Some(f.view(self.src.chunk().bytes())))
    }

    /// The next packet as its place in [`chunk`](Self::chunk) (take the
    /// chunk before the next call: a refill may move on to another);
    /// errors as [`next_packet`](Self::next_packet).
    ///
    /// # Errors
    ///
    /// As [`next_packet`](Self::next_packet).
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<FrameRef>, PcapError> {
        let record = loop {
            let record = match &mut self.format {
                Format::Classic(h) => classic::next_record(&mut self.src, h)?,
                Format::Ng(s) => ng::next_record(&mut self.src, s, &mut self.stats)?,
            };
            let Some(record) = record else {
                return Ok(None);
            };
            if record.link.is_some() {
                break record;
            }
            self.stats.skipped_link_type += 1;
            self.stats.last_skipped_link_type = Some(record.raw_link);
            self.src.consume(record.consume);
        };
        self.stats.packets += 1;
        let at = self.src.take(record.consume, record.data);
        Ok(Some(FrameRef {
            start: at.start,
            len: (at.end - at.start) as u32,
            orig_len: record.orig_len,
            timestamp: record.timestamp,
            link: record.link.unwrap_or_default(),
        }))
    }

    /// Up to `out.len()` packets as [`next_frame`](Self::next_frame) reads
    /// them, all in [`chunk`](Self::chunk) (take it before the next call);
    /// 0 at the end of the file. The packet records (pcap) or Enhanced
    /// Packet Blocks (pcapng) wholly in the buffer are read in one pass,
    /// without a call per packet; anything else (a refill, another block,
    /// a link type skipped, an error) takes one
    /// [`next_frame`](Self::next_frame).
    ///
    /// # Errors
    ///
    /// As [`next_packet`](Self::next_packet).
    #[inline]
    pub fn next_frames(&mut self, out: &mut [FrameRef]) -> Result<usize, PcapError> {
        if out.is_empty() {
            return Ok(0);
        }
        let (avail, base) = (self.src.available(), self.src.position());
        let (n, bytes) = match &mut self.format {
            Format::Ng(sec) => packets_at_once(avail, base, out, |b| ng::enhanced_packet(b, sec)),
            Format::Classic(h) => {
                packets_at_once(avail, base, out, |b| classic::whole_record(b, h))
            }
        };
        if n > 0 {
            self.src.consume(bytes);
            self.src.prefetch_ahead();
            self.stats.packets += n as u64;
            return Ok(n);
        }
        match (self.next_frame()?, out.first_mut()) {
            (Some(f), Some(slot)) => {
                *slot = f;
                Ok(1)
            }
            _ => Ok(0),
        }
    }

    /// The chunk the last packet of [`next_frame`](Self::next_frame) lies in.
    #[inline]
    pub fn chunk(&self) -> &Chunk {
        self.src.chunk()
    }
}
