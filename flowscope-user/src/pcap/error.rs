//! The errors of the capture-file readers, each naming the byte offset at fault.

use std::io;
use std::path::PathBuf;

/// Why a capture file could not be read.
///
/// Every variant names the byte offset in the file (from its first byte) of
/// the header, record or block at fault, so the file can be inspected with a
/// hex dump. After an error the reader is left in an unspecified position:
/// stop reading — except after an interrupted read
/// ([`is_interrupted`](PcapError::is_interrupted)), after which reading
/// goes on where it stopped.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file could not be opened.
    #[error("cannot open capture file {path}")]
    Open {
        /// Path given to [`super::PcapReader::open`].
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading the underlying stream failed.
    #[error("read error at byte offset {offset}")]
    Io {
        /// Offset of the first byte not yet read.
        offset: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Neither a pcap nor a pcapng magic number.
    #[error("bad magic {magic:#010x} at byte offset {offset}: not a pcap or pcapng file")]
    BadMagic {
        /// Offset of the magic number.
        offset: u64,
        /// The four bytes found, read big-endian.
        magic: u32,
    },
    /// A pcapng section of a major version other than 1.
    #[error("unsupported pcapng version {major}.{minor} at byte offset {offset}")]
    UnsupportedVersion {
        /// Offset of the section header block.
        offset: u64,
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// The file ends inside a file header, record header or block header.
    #[error("truncated header at byte offset {offset}: {needed} bytes needed, {available} present")]
    TruncatedHeader {
        /// Offset of the header.
        offset: u64,
        /// Header length.
        needed: usize,
        /// Bytes left in the file.
        available: usize,
    },
    /// The file ends inside a packet's data (or a pcapng block's body).
    #[error(
        "truncated packet data at byte offset {offset}: {needed} bytes needed, {available} present"
    )]
    TruncatedPacket {
        /// Offset of the record or block.
        offset: u64,
        /// Bytes the record or block declares.
        needed: usize,
        /// Bytes left in the file.
        available: usize,
    },
    /// A record or block longer than the reader accepts (a corrupt length).
    #[error("record at byte offset {offset} declares {len} bytes, beyond the limit of {max}")]
    RecordTooLong {
        /// Offset of the record or block.
        offset: u64,
        /// Declared length.
        len: u64,
        /// The limit ([`super::MAX_PACKET_BYTES`] or [`super::MAX_BLOCK_BYTES`]).
        max: u64,
    },
    /// A pcapng block whose structure is inconsistent.
    #[error("malformed pcapng block at byte offset {offset}: {reason}")]
    BadBlock {
        /// Offset of the block.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A pcapng packet refers to an interface no IDB described.
    #[error(
        "packet block at byte offset {offset} refers to interface {interface}, but the section has {known}"
    )]
    UnknownInterface {
        /// Offset of the block.
        offset: u64,
        /// Interface ID in the block.
        interface: u32,
        /// Interfaces described so far in the section.
        known: usize,
    },
    /// More interface description blocks than [`super::MAX_INTERFACES`].
    #[error("too many interfaces (more than {max}) at byte offset {offset}")]
    TooManyInterfaces {
        /// Offset of the interface description block.
        offset: u64,
        /// The limit.
        max: usize,
    },
}

impl PcapError {
    /// A read interrupted by a signal (EINTR): nothing was consumed, the
    /// next call goes on where this one stopped.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::Interrupted)
    }
}
