//! Socket statistics: frames seen by each worker, how full its rings run,
//! and the kernel's `XDP_STATISTICS` of its socket.

use std::sync::{
    Mutex,
    atomic::{AtomicU64, Ordering},
};

use super::WorkerId;
use crate::obs::Log2Histogram;

/// Figures a worker publishes once per batch (one relaxed store each), so the
/// control thread can read them without touching the worker's hot path; its
/// ring levels are copied a few times per second (one uncontended lock).
#[derive(Debug, Default)]
pub(super) struct WorkerShared {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    batches: AtomicU64,
    rings: Mutex<RingLevels>,
}

impl WorkerShared {
    pub fn publish(&self, packets: u64, bytes: u64, batches: u64) {
        self.rx_packets.store(packets, Ordering::Relaxed);
        self.rx_bytes.store(bytes, Ordering::Relaxed);
        self.batches.store(batches, Ordering::Relaxed);
    }

    pub fn publish_rings(&self, rings: &RingLevels) {
        if let Ok(mut r) = self.rings.lock() {
            *r = *rings;
        }
    }
}

/// How full one ring was, sampled once per receive batch from its mmapped
/// producer and consumer indexes (no syscall).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingLevel {
    /// Entries the ring holds at most.
    pub size: u32,
    /// Entries at the last sample.
    pub last: u32,
    /// Entries per sample.
    pub entries: Log2Histogram,
}

impl RingLevel {
    /// No samples yet, for a ring of `size` entries.
    pub(super) fn new(size: u32) -> Self {
        Self {
            size,
            ..Self::default()
        }
    }

    /// Counts one sample (at most the ring's size).
    pub(super) fn record(&mut self, entries: u32) {
        self.last = entries.min(self.size);
        self.entries.record(u64::from(self.last));
    }
}

/// The levels of the two rings a worker reads and refills.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingLevels {
    /// Its socket's RX ring, when a batch is read: the batch and what is
    /// already queued behind it. Near full: the worker falls behind.
    pub rx: RingLevel,
    /// Its queue's fill ring (shared by the queue's sockets) just before the
    /// batch's frames go back: frames left for the kernel to receive into.
    /// Near empty: `fill_ring_empty` drops are next.
    pub fill: RingLevel,
}

/// One socket's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Frames its worker received.
    pub rx_packets: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// RX batches processed.
    pub batches: u64,
    /// Frames the kernel dropped for this socket (`rx_dropped`).
    pub rx_dropped: u64,
    /// Frames dropped because the RX ring was full (`rx_ring_full`).
    pub rx_ring_full: u64,
    /// Times the fill ring was empty (`rx_fill_ring_empty_descs`).
    pub fill_ring_empty: u64,
    /// Invalid RX descriptors (`rx_invalid_descs`).
    pub invalid_descs: u64,
    /// Ring levels, one sample per batch (published every 200 ms and at the
    /// end, so a live read may trail `batches` by that much).
    pub rings: RingLevels,
}

/// A worker and its socket's figures.
#[derive(Debug, Clone)]
pub struct WorkerStats {
    /// The worker.
    pub id: WorkerId,
    /// Its figures.
    pub socket: SocketStats,
}

/// `struct xdp_statistics` from `<linux/if_xdp.h>`.
#[repr(C)]
#[derive(Default)]
struct XdpStatistics {
    rx_dropped: u64,
    rx_invalid_descs: u64,
    tx_invalid_descs: u64,
    rx_ring_full: u64,
    rx_fill_ring_empty_descs: u64,
    tx_ring_empty_descs: u64,
}

const SOL_XDP: libc::c_int = 283;
const XDP_STATISTICS: libc::c_int = 7;

/// Reads the socket's kernel statistics and the worker's published counts.
pub(super) fn read_socket_stats(fd: i32, shared: &WorkerShared) -> SocketStats {
    let mut s = XdpStatistics::default();
    let mut len = std::mem::size_of::<XdpStatistics>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `s`, a repr(C)
    // struct of the kernel's layout.
    let rc =
        unsafe { libc::getsockopt(fd, SOL_XDP, XDP_STATISTICS, (&raw mut s).cast(), &mut len) };
    if rc != 0 {
        s = XdpStatistics::default();
    }
    SocketStats {
        rx_packets: shared.rx_packets.load(Ordering::Relaxed),
        rx_bytes: shared.rx_bytes.load(Ordering::Relaxed),
        batches: shared.batches.load(Ordering::Relaxed),
        rx_dropped: s.rx_dropped,
        rx_ring_full: s.rx_ring_full,
        fill_ring_empty: s.rx_fill_ring_empty_descs,
        invalid_descs: s.rx_invalid_descs,
        rings: shared.rings.lock().map(|r| *r).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_level_keeps_the_last_sample_and_counts_each_within_the_ring() {
        let mut l = RingLevel::new(64);
        for entries in [1, 64, 0, 65, 33] {
            l.record(entries);
        }
        assert_eq!(l.last, 33);
        assert_eq!(l.entries.count(), 5);
        // 0 → bucket 0, 1 → 1, 33 → 6 ([32, 64)), 64 and the clamped 65 → 7.
        let mut want = [0u64; 65];
        (want[0], want[1], want[6], want[7]) = (1, 1, 1, 2);
        assert_eq!(l.entries.buckets, want);
    }
}
