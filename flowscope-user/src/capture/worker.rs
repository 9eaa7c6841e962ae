//! The worker loop: one per socket, pinned, batch in, frames back.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use flowscope_common::XdpMeta;
use xsk_rs::FrameDesc;

use super::{
    CaptureError, RingSizes,
    socket::{self, XskSocket},
    stats::{self, RingLevel, RingLevels, SocketStats, WorkerShared},
};
use crate::view::Timestamp;

/// Identity of a worker and the socket it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerId {
    /// 0-based worker number.
    pub index: usize,
    /// RX queue of its socket.
    pub queue: u32,
    /// XSKMAP slot of its socket (`queue · S + i`).
    pub slot: u32,
    /// Core it is pinned to, when pinning is on (modulo the core count).
    pub core: Option<usize>,
}

/// Per-batch context handed with each frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameCtx {
    /// Capture clock, read once per batch.
    pub timestamp: Timestamp,
}

/// One received frame, borrowed from the UMEM, with the XDP program's
/// metadata when it is present and valid.
#[derive(Debug, Clone, Copy, Default)]
pub struct RxFrame<'a> {
    /// The frame bytes.
    pub frame: &'a [u8],
    /// The metadata block in front of it.
    pub meta: Option<XdpMeta>,
}

/// Frames a worker hands its [`FrameHandler`] per [`FrameHandler::on_frames`]
/// call (a ring read larger than this comes in several calls).
pub const HANDLER_BATCH: usize = 64;

/// Receives a worker's frames. Owned by the worker thread: no locking.
pub trait FrameHandler: Send + 'static {
    /// One frame, borrowed from the UMEM for the duration of the call, with
    /// the XDP program's metadata when it is present and valid.
    fn on_frame(&mut self, frame: &[u8], meta: Option<&XdpMeta>, ctx: &FrameCtx);

    /// Up to [`HANDLER_BATCH`] frames of one ring read, in order: what the
    /// worker calls. By default, [`FrameHandler::on_frame`] for each.
    fn on_frames(&mut self, frames: &[RxFrame<'_>], ctx: &FrameCtx) {
        for f in frames {
            self.on_frame(f.frame, f.meta.as_ref(), ctx);
        }
    }

    /// After every batch and on idle wake-ups (about every 100 ms), with the
    /// capture clock: the place for timer work.
    fn on_tick(&mut self, _now: Timestamp) {}
}

const POLL_TIMEOUT_MS: i32 = 100;
/// Empty 1 ms polls in a row that end the drain after a stop.
const DRAIN_EMPTY_POLLS: u32 = 5;
/// While traffic flows, an empty RX ring is waited out with short naps
/// instead of poll(2): the kernel then has no sleeping worker to wake for
/// every few frames (in the capture benchmark's profile those wake-ups cost
/// the sending CPU about a fifth of its time), and frames gather into
/// larger batches. A nap is far shorter than the default RX ring takes to
/// fill at 10 Mpps.
const NAP: Duration = Duration::from_micros(50);
/// Empty naps in a row (about 10 ms without traffic) after which the worker
/// blocks in poll(2) again.
const NAPS_BEFORE_POLL: u32 = 200;
/// How often a worker copies its ring levels for the control thread.
const RINGS_PUBLISH_EVERY: Duration = Duration::from_millis(200);

pub(super) fn spawn<H: FrameHandler>(
    id: WorkerId,
    sock: XskSocket,
    handler: H,
    stop: Arc<AtomicBool>,
    shared: Arc<WorkerShared>,
    rings: RingSizes,
    read_meta: bool,
) -> Result<JoinHandle<(H, SocketStats)>, CaptureError> {
    std::thread::Builder::new()
        .name(format!("fs-worker-{}", id.index))
        .spawn(move || {
            if let Some(core) = id.core {
                let cores = core_affinity::get_core_ids().unwrap_or_default();
                if let Some(c) = cores.get(core % cores.len().max(1)) {
                    core_affinity::set_for_current(*c);
                }
            }
            run(sock, handler, &stop, &shared, &rings, read_meta)
        })
        .map_err(CaptureError::Thread)
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Timestamp::new(d.as_secs(), d.subsec_nanos())
}

fn run<H: FrameHandler>(
    mut sock: XskSocket,
    mut handler: H,
    stop: &AtomicBool,
    shared: &WorkerShared,
    sizes: &RingSizes,
    read_meta: bool,
) -> (H, SocketStats) {
    let mut descs: Vec<FrameDesc> = (0..sizes.batch.max(1))
        .map(|_| FrameDesc::default())
        .collect();
    let mut levels = RingLevels {
        rx: RingLevel::new(sizes.rx_ring),
        fill: RingLevel::new(sizes.fill_ring),
    };
    shared.publish_rings(&levels);
    let mut rings_published = now();
    let mut rx_packets = 0u64;
    let mut rx_bytes = 0u64;
    let mut batches = 0u64;
    let mut idle_after_stop = 0;
    let mut naps = NAPS_BEFORE_POLL;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        // SAFETY: `descs` are plain descriptor slots to be written.
        let mut n = unsafe { sock.rx.consume(&mut descs) };
        if n == 0 {
            if stopping {
                // Draining: the program is detached; a few empty polls in a
                // row mean the socket holds nothing more.
                idle_after_stop += 1;
                if idle_after_stop > DRAIN_EMPTY_POLLS {
                    break;
                }
            }
            if stopping {
                let _ = sock.rx.poll(1);
            } else if naps < NAPS_BEFORE_POLL {
                naps += 1;
                std::thread::sleep(NAP);
            } else {
                let _ = sock.rx.poll(POLL_TIMEOUT_MS);
            }
            // SAFETY: as above.
            n = unsafe { sock.rx.consume(&mut descs) };
            if n == 0 {
                let t = now();
                publish_rings_if_due(shared, &levels, &mut rings_published, t);
                handler.on_tick(t);
                continue;
            }
        }
        idle_after_stop = 0;
        naps = 0;
        // What the ring held when this batch was read: the batch and the
        // entries already behind it (libxdp reloads the mmapped producer
        // index with acquire ordering; no syscall).
        levels
            .rx
            .record((n as u32).saturating_add(sock.rx.nb_avail_exact()));
        let ctx = FrameCtx { timestamp: now() };
        let mut frames = [RxFrame::default(); HANDLER_BATCH];
        for chunk in descs[..n].chunks(HANDLER_BATCH) {
            for (slot, desc) in frames.iter_mut().zip(chunk) {
                // SAFETY: `desc` was just consumed from this socket's RX ring
                // and goes back to the fill ring only after this loop.
                let (frame, meta) =
                    unsafe { socket::frame_and_meta(&sock.umem, desc, sock.frame_size, read_meta) };
                rx_bytes += frame.len() as u64;
                *slot = RxFrame { frame, meta };
            }
            handler.on_frames(&frames[..chunk.len()], &ctx);
        }
        rx_packets += n as u64;
        batches += 1;
        give_back(&mut sock, &descs[..n], &mut levels.fill, sizes.fill_slots());
        shared.publish(rx_packets, rx_bytes, batches);
        publish_rings_if_due(shared, &levels, &mut rings_published, ctx.timestamp);
        handler.on_tick(ctx.timestamp);
    }
    shared.publish_rings(&levels);
    let stats = stats::read_socket_stats(sock.fd, shared);
    (handler, stats)
}

/// Copies the ring levels for the control thread when the last copy is
/// [`RINGS_PUBLISH_EVERY`] old.
fn publish_rings_if_due(
    shared: &WorkerShared,
    levels: &RingLevels,
    last: &mut Timestamp,
    now: Timestamp,
) {
    if now.saturating_sub(*last) >= RINGS_PUBLISH_EVERY {
        *last = now;
        shared.publish_rings(levels);
    }
}

/// Returns a batch of frames to the queue's shared fill ring, once per batch,
/// after sampling how many frames the ring still offered the kernel.
fn give_back(sock: &mut XskSocket, descs: &[FrameDesc], fill_level: &mut RingLevel, slots: u32) {
    let Ok(mut shared) = sock.fill.lock() else {
        return;
    };
    // Entries = slots − free; libxdp reloads the kernel's consumer index
    // from the mmapped ring with acquire ordering (no syscall). They include
    // frames the kernel took but has not released yet: at most every frame.
    let free = shared.fill.nb_free_exact();
    fill_level.record(slots.saturating_sub(free).min(fill_level.size));
    // SAFETY: the frames were received on this UMEM and are no longer read;
    // the ring has room for them: it has twice as many slots as the UMEM
    // has frames (RingSizes::fill_slots).
    let produced = unsafe { shared.fill.produce(descs) };
    debug_assert_eq!(produced, descs.len());
    if shared.fill.needs_wakeup() {
        let _ = shared.fill.wakeup(sock.rx.fd_mut(), 0);
    }
}
