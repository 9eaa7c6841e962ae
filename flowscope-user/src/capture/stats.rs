//! Socket statistics: frames seen by each worker and the kernel's
//! `XDP_STATISTICS` of its socket.

use std::sync::atomic::{AtomicU64, Ordering};

use super::WorkerId;

/// Figures a worker publishes once per batch (one relaxed store each), so the
/// control thread can read them without touching the worker's hot path.
#[derive(Debug, Default)]
pub(super) struct WorkerShared {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    batches: AtomicU64,
}

impl WorkerShared {
    pub fn publish(&self, packets: u64, bytes: u64, batches: u64) {
        self.rx_packets.store(packets, Ordering::Relaxed);
        self.rx_bytes.store(bytes, Ordering::Relaxed);
        self.batches.store(batches, Ordering::Relaxed);
    }
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
    }
}
