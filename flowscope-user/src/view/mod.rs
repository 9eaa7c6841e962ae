//! A borrowed frame and its capture time: the input of every extractor.

mod hint;

use std::time::Duration;

pub use hint::FrameHint;

/// Capture time in nanoseconds since the Unix epoch.
///
/// Offline it comes from the capture file, live from the capture clock (taken
/// once per batch). Comparisons and differences are plain integer operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// From seconds and nanoseconds since the epoch.
    pub const fn new(sec: u64, nsec: u32) -> Self {
        Self(sec * 1_000_000_000 + nsec as u64)
    }

    /// Whole seconds since the epoch.
    pub const fn sec(self) -> u64 {
        self.0 / 1_000_000_000
    }

    /// Nanoseconds within the second.
    pub const fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub const fn saturating_sub(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(d.as_nanos().min(u128::from(u64::MAX)) as u64),
        )
    }
}

/// Where a frame's bytes start: the capture's link type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// Ethernet II (pcap link type 1).
    #[default]
    Ethernet,
    /// Raw IPv4 or IPv6, version in the first nibble (link types 101, 228, 229, 12).
    RawIp,
    /// Linux cooked capture v1 (link type 113).
    LinuxSll,
    /// Linux cooked capture v2 (link type 276).
    LinuxSll2,
    /// BSD loopback: a 4-byte address family in host order (link types 0 and 108).
    Loopback,
}

impl LinkType {
    /// Every link type.
    pub const ALL: [LinkType; 5] = [
        LinkType::Ethernet,
        LinkType::RawIp,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Loopback,
    ];
}

/// One captured frame, borrowed; nothing is copied.
#[derive(Debug, Clone, Copy)]
pub struct PacketView<'a> {
    /// The frame bytes as captured (possibly snapped).
    pub frame: &'a [u8],
    /// Capture time.
    pub timestamp: Timestamp,
    /// Link type of `frame`.
    pub link: LinkType,
    /// Length of the frame on the wire (≥ `frame.len()` when snapped).
    pub orig_len: u32,
    /// What the XDP program found in this frame, when it ran (live capture);
    /// [`crate::extract::FiveTuple`] then skips the walk to the IP header.
    /// A view of another frame (a decapsulated or reassembled packet) has none.
    pub hint: Option<FrameHint>,
}

impl<'a> PacketView<'a> {
    /// An Ethernet frame captured whole.
    pub fn new(frame: &'a [u8], timestamp: Timestamp) -> Self {
        Self {
            frame,
            timestamp,
            link: LinkType::Ethernet,
            orig_len: frame.len() as u32,
            hint: None,
        }
    }

    /// The same view with another link type.
    pub fn with_link(self, link: LinkType) -> Self {
        Self { link, ..self }
    }

    /// The same view with the wire length of a snapped frame.
    pub fn with_orig_len(self, orig_len: u32) -> Self {
        Self { orig_len, ..self }
    }

    /// The same view with the XDP program's findings about it.
    pub fn with_hint(self, hint: Option<FrameHint>) -> Self {
        Self { hint, ..self }
    }
}
